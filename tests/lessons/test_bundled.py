"""The lessons and papers shipped with the site."""

from io import StringIO

import networkx as nx
import pytest
from django.core.management import call_command

from lessons.models import Edge, Lesson, Paper

pytestmark = pytest.mark.django_db
REQUIRED_PAPERS = {"2506.06478", "2511.05720", "2507.17852"}


@pytest.fixture
def bundled():
    call_command("load_bundled", stdout=StringIO())


def test_at_least_twelve_lessons_over_every_depth(bundled):
    depths = set(Lesson.objects.values_list("depth", flat=True))

    assert Lesson.objects.count() >= 12
    assert depths == {1, 2, 3, 4, 5}
    assert Lesson.objects.free().exists()
    assert Lesson.objects.paid().exists()


def test_prerequisites_form_a_graph_without_cycles(bundled):
    graph = nx.DiGraph(
        list(
            Edge.objects.filter(kind=Edge.Kind.PREREQUISITE).values_list(
                "source_id", "target_id"
            )
        )
    )

    assert graph.number_of_edges() > 0
    assert nx.is_directed_acyclic_graph(graph)
    assert {Edge.Kind.EXTENDS, Edge.Kind.RELATED} <= set(
        Edge.objects.values_list("kind", flat=True)
    )


def test_every_cited_paper_ships_its_metadata(bundled):
    cited = set(
        Paper.objects.filter(citations__isnull=False).values_list("arxiv_id", flat=True)
    )

    assert cited >= REQUIRED_PAPERS
    for paper in Paper.objects.filter(arxiv_id__in=cited):
        assert paper.title and paper.authors and paper.abstract, paper.arxiv_id


def test_loading_twice_changes_nothing(bundled):
    out = StringIO()

    call_command("load_bundled", stdout=out)

    assert "0 created, 0 updated, 0 unchanged, 18 kept, 0 failed" in out.getvalue()
    assert "Papers: 3 kept" in out.getvalue()


def test_loading_again_keeps_edits_made_on_the_site(bundled):
    lesson = Lesson.objects.get(slug="kaniko-builds-in-ci")
    lesson.title = "Edited in the admin"
    lesson.save()

    call_command("load_bundled", stdout=StringIO())

    lesson.refresh_from_db()
    assert lesson.title == "Edited in the admin"


def test_update_brings_bundled_lessons_back(bundled):
    Lesson.objects.filter(slug="kaniko-builds-in-ci").update(title="Edited")
    out = StringIO()

    call_command("load_bundled", "--update", stdout=out)

    assert Lesson.objects.get(slug="kaniko-builds-in-ci").title != "Edited"
    assert "1 updated, 17 unchanged" in out.getvalue()
