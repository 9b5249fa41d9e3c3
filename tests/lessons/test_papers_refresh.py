"""Refreshing papers from arXiv: the service and ``refresh_papers``,
against the local arXiv server."""

import threading
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from lessons.models import Citation, Lesson, LessonTag, Paper, Tag
from lessons.services import lesson_citations_sync, papers_refresh
from tests.lessons.arxiv_server import Answer, Version
from tests.lessons.factories import LessonFactory

pytestmark = pytest.mark.django_db

OLD = Version(title="Remote builds with Jenkins", date="2025-11-07T10:00:00Z")
NEW = Version(title="Remote container builds with Jenkins", date="2025-12-01T09:30:00Z")


def cite(lesson, paper: Paper, version: int | None = None) -> Citation:
    return Citation.objects.create(lesson=lesson, paper=paper, version=version)


@pytest.fixture
def bundled():
    call_command("load_bundled", stdout=StringIO())


@pytest.fixture
def server(arxiv_server):
    """arXiv as the bundled papers have it, one of them since revised."""
    arxiv_server.add(
        "2506.06478",
        Version(title="STRIDE for CI/CD pipelines", date="2025-06-06T19:06:59Z"),
    )
    arxiv_server.add("2511.05720", OLD, OLD, NEW)
    arxiv_server.add("2507.17852", Version(title="Tippy", date="2025-07-23T12:00:00Z"))
    return arxiv_server


def test_refresh_papers_updates_the_bundled_papers(bundled, server):
    out = StringIO()

    call_command("refresh_papers", stdout=out)

    assert "Papers: 3 updated, 0 unchanged, 0 unknown, 0 failed" in out.getvalue()
    revised = Paper.objects.get(arxiv_id="2511.05720")
    assert (revised.version, revised.title) == (3, NEW.title)
    assert revised.published.isoformat() == "2025-11-07T10:00:00+00:00"
    assert revised.primary_category == "cs.SE"
    assert all(paper.fetched for paper in Paper.objects.all())


def test_a_lesson_citing_without_version_keeps_the_version_it_was_written_against(
    bundled, server
):
    papers_refresh()

    citation = Citation.objects.get(
        lesson__slug="docker-socket-and-dind-risks", paper__arxiv_id="2511.05720"
    )
    assert citation.version is None
    assert citation.cited_version == 2  # the bundled metadata's version
    assert citation.newer_version == 3


def test_older_cited_versions_are_fetched_once_for_their_titles(bundled, server):
    papers_refresh()
    asked = [seen.ids for seen in server.requests]
    papers_refresh()

    assert asked[-1] == ["2511.05720v2"]
    assert Paper.objects.get(arxiv_id="2511.05720").versions["2"] == {
        "title": OLD.title,
        "date": "2025-11-07T10:00:00+00:00",
    }
    assert len(server.requests) == len(asked) + 1  # no second look at v2


def test_a_paper_whose_title_changed_names_the_title_cited(server):
    paper = Paper.objects.create(arxiv_id="2511.05720")
    lesson = LessonFactory()
    cite(lesson, paper, version=1)

    papers_refresh(arxiv_ids=["2511.05720"])

    citation = Citation.objects.select_related("paper").get()
    assert citation.paper.title == NEW.title
    assert citation.newer_version == 3
    assert citation.cited_title == OLD.title


def test_an_id_without_version_records_the_version_seen(server):
    lesson = LessonFactory()
    cite(lesson, Paper.objects.create(arxiv_id="2511.05720"))

    papers_refresh(arxiv_ids=["2511.05720"])

    citation = Citation.objects.get()
    assert (citation.version, citation.version_seen) == (None, 3)
    assert citation.newer_version is None


def test_refresh_papers_with_a_version_keeps_the_newest_and_learns_that_version(
    server,
):
    call_command("refresh_papers", "2511.05720v1", stdout=StringIO())

    paper = Paper.objects.get(arxiv_id="2511.05720")
    assert paper.version == 3
    assert paper.versions["1"]["title"] == OLD.title


def test_a_version_past_the_newest_is_reported_without_asking_arxiv(server):
    err = StringIO()

    with pytest.raises(CommandError):
        call_command("refresh_papers", "2511.05720v9", stdout=StringIO(), stderr=err)

    assert [seen.ids for seen in server.requests] == [["2511.05720"]]
    assert "2511.05720v9: arXiv does not know this id" in err.getvalue()


def test_a_cited_version_past_the_newest_costs_no_request(server):
    cite(LessonFactory(), Paper.objects.create(arxiv_id="2511.05720"), version=9)

    report = papers_refresh()

    assert [seen.ids for seen in server.requests] == [["2511.05720"]]
    assert report.unknown == [] and report.updated == ["2511.05720"]
    assert Citation.objects.get().missing_version == 9


@pytest.mark.parametrize(
    ("held", "reason"),
    [
        ("\uff12\uff15\uff10\uff16.06478", "is not an arXiv identifier"),
        ("math.GT/0309136", "an id arXiv lists as math/0309136"),
    ],
)
def test_a_paper_held_under_an_id_no_longer_valid_is_left_out_and_marked(
    server, held, reason
):
    Paper.objects.create(arxiv_id="2511.05720")
    Paper.objects.create(arxiv_id=held)

    report = papers_refresh()

    assert [seen.ids for seen in server.requests] == [["2511.05720"]]
    assert report.updated == ["2511.05720"]
    assert reason in report.failed[held]
    assert reason in Paper.objects.get(arxiv_id=held).refresh_error


def test_an_unknown_id_is_reported_and_marked(bundled, server):
    server.papers.pop("2507.17852")
    err = StringIO()

    with pytest.raises(CommandError):
        call_command("refresh_papers", stdout=StringIO(), stderr=err)

    assert "2507.17852: arXiv does not know this id" in err.getvalue()
    paper = Paper.objects.get(arxiv_id="2507.17852")
    assert paper.refresh_error == "arXiv does not know this id."
    assert paper.title.startswith("Technical Implementation of Tippy")


def test_a_malformed_id_is_refused_before_any_request(server):
    with pytest.raises(CommandError, match=r"'2506\.0647' is not an arXiv identifier"):
        call_command("refresh_papers", "2511.05720", "2506.0647", stdout=StringIO())

    assert server.requests == []


def test_when_arxiv_stays_down_the_last_metadata_stays(bundled, server, settings):
    settings.ARXIV_RETRIES = 2
    server.always = Answer(503, b"Service Unavailable", "text/plain")
    before = {p.arxiv_id: (p.title, p.version) for p in Paper.objects.all()}

    report = papers_refresh()

    assert len(server.requests) == 3
    assert sorted(report.unavailable) == sorted(before)
    assert {p.arxiv_id: (p.title, p.version) for p in Paper.objects.all()} == before
    paper = Paper.objects.get(arxiv_id="2506.06478")
    assert paper.refresh_failed is not None
    assert "unavailable" in paper.refresh_error


def test_a_success_after_a_failure_clears_the_failure(bundled, server):
    server.queued = [Answer(200, b"<html>maintenance</html>", "text/html")]
    papers_refresh(arxiv_ids=["2506.06478"])
    assert "not an Atom feed" in Paper.objects.get(arxiv_id="2506.06478").refresh_error

    papers_refresh(arxiv_ids=["2506.06478"])

    paper = Paper.objects.get(arxiv_id="2506.06478")
    assert (paper.refresh_failed, paper.refresh_error) == (None, "")


def test_a_withdrawn_paper_is_marked_withdrawn(server):
    server.add(
        "2507.17852",
        Version(title="Tippy", date="2025-07-23T12:00:00Z"),
        Version(
            title="Tippy",
            date="2025-09-02T12:00:00Z",
            comment="This paper has been withdrawn by the authors.",
        ),
    )

    papers_refresh(arxiv_ids=["2507.17852"])

    assert Paper.objects.get(arxiv_id="2507.17852").withdrawn is True


def test_an_abstract_speaking_of_withdrawn_papers_is_not_a_withdrawal(server):
    server.add(
        "2507.17852",
        Version(
            title="Why preprints disappear",
            date="2025-07-23T12:00:00Z",
            abstract="We study 300 papers that have been withdrawn from arXiv.",
        ),
    )

    papers_refresh(arxiv_ids=["2507.17852"])

    assert Paper.objects.get(arxiv_id="2507.17852").withdrawn is False


def test_an_abstract_replaced_by_a_withdrawal_notice_is_a_withdrawal(server):
    server.add(
        "2507.17852",
        Version(
            title="Tippy",
            date="2025-07-23T12:00:00Z",
            abstract="This paper has been withdrawn by the authors.",
        ),
    )

    papers_refresh(arxiv_ids=["2507.17852"])

    assert Paper.objects.get(arxiv_id="2507.17852").withdrawn is True


def test_a_paper_whose_details_do_not_fit_stops_no_other(bundled, server):
    server.add("2506.06478", Version(title="x" * 600, date="2025-06-06T19:06:59Z"))
    before = Paper.objects.get(arxiv_id="2506.06478").title

    report = papers_refresh()

    paper = Paper.objects.get(arxiv_id="2506.06478")
    assert paper.title == before
    assert "at most 500 characters" in paper.refresh_error
    assert "at most 500 characters" in report.failed["2506.06478"]
    assert sorted(report.updated) == ["2507.17852", "2511.05720"]


def test_two_tags_naming_one_paper_make_one_citation_at_the_first(server):
    lesson = LessonFactory()
    for position, name in enumerate(["arxiv:2511.05720v1", "arxiv:2511.05720v2"]):
        tag = Tag.objects.create(name=name)
        LessonTag.objects.create(lesson=lesson, tag=tag, position=position)

    lesson_citations_sync(lesson=lesson)

    assert list(lesson.citations.values_list("paper__arxiv_id", "version")) == [
        ("2511.05720", 1)
    ]


def test_refreshing_unchanged_papers_reports_them_unchanged(bundled, server):
    papers_refresh()

    report = papers_refresh()

    assert report.updated == []
    assert sorted(report.unchanged) == ["2506.06478", "2507.17852", "2511.05720"]


def test_after_refresh_papers_lesson_and_paper_pages_show_it(bundled, server, client):
    call_command("refresh_papers", stdout=StringIO())

    lesson_page = client.get("/lessons/docker-socket-and-dind-risks/").content.decode()
    paper_page = client.get("/papers/2511.05720/").content.decode()

    assert "A newer version exists: v3 of 1 December 2025." in lesson_page
    assert f"This lesson cites v2, titled “{OLD.title}”." in lesson_page
    assert NEW.title in paper_page
    for slug in ("docker-socket-and-dind-risks", "shipping-containers-without-dind"):
        assert f'href="/lessons/{slug}/"' in paper_page


def test_editing_a_lessons_tags_keeps_the_version_its_citations_were_seen_with(
    bundled, server
):
    papers_refresh()
    lesson = Lesson.objects.get(slug="docker-socket-and-dind-risks")
    tag = Tag.objects.get(name="arxiv:2506.06478")
    LessonTag.objects.create(lesson=lesson, tag=tag, position=99)

    lesson_citations_sync(lesson=lesson)

    citation = lesson.citations.get(paper__arxiv_id="2511.05720")
    assert (citation.version_seen, citation.newer_version) == (2, 3)


def test_two_refreshes_meeting_a_new_paper_both_store_it(server, transactional_db):
    """One refresh has made the paper's row and not yet committed when the
    other comes to store the same paper."""
    made = threading.Event()
    outcomes = []

    def first_refresh() -> None:
        try:
            with transaction.atomic():
                Paper.objects.create(arxiv_id="2511.05720")
                made.set()
                time.sleep(0.5)  # the other refresh meets the row meanwhile
        finally:
            connection.close()

    def second_refresh() -> None:
        made.wait(5)
        try:
            outcomes.append(papers_refresh(arxiv_ids=["2511.05720"]))
        except Exception as error:  # the failure is what is looked for
            outcomes.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=first_refresh),
        threading.Thread(target=second_refresh),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert [getattr(o, "updated", o) for o in outcomes] == [["2511.05720"]]
    assert Paper.objects.get().title == NEW.title
