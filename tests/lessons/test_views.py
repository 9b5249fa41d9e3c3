from datetime import timedelta
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from lessons.models import Edge, Lesson
from lessons.services import topic_ensure
from tests.lessons.factories import EdgeFactory, LessonFactory

pytestmark = pytest.mark.django_db


def test_catalogue_lists_newest_first(client):
    old = LessonFactory(title="Old lesson", created=timezone.now() - timedelta(days=3))
    new = LessonFactory(title="New lesson")

    response = client.get("/")

    assert response.status_code == HTTPStatus.OK
    assert list(response.context["page"].object_list) == [new, old]


def test_catalogue_searches_title_summary_and_body(client):
    LessonFactory(title="Digests pin content")
    LessonFactory(summary="All about buildah.")
    LessonFactory(body="## X\n\nThe registry uses bcrypt.\n")
    LessonFactory(title="Unrelated")

    found = {
        word: [
            lesson.title for lesson in client.get("/", {"search": word}).context["page"]
        ]
        for word in ("digests", "BUILDAH", "bcrypt", "nothing-like-this")
    }

    assert found["digests"] == ["Digests pin content"]
    assert len(found["BUILDAH"]) == 1
    assert len(found["bcrypt"]) == 1
    assert found["nothing-like-this"] == []


def test_catalogue_filters_by_topic_depth_price_and_tag(client):
    from lessons.models import LessonTag, Tag

    deep_paid = LessonFactory(
        depth=5, price=Decimal("0.01"), topic=topic_ensure(path="security/ci-cd")
    )
    shallow_free = LessonFactory(depth=1, topic=topic_ensure(path="containers"))
    LessonTag.objects.create(lesson=shallow_free, tag=Tag.objects.create(name="docker"))

    def titles(**params: str) -> list[str]:
        return [lesson.title for lesson in client.get("/", params).context["page"]]

    assert titles(topic="security") == [deep_paid.title]
    assert titles(depth="1") == [shallow_free.title]
    assert titles(price="paid") == [deep_paid.title]
    assert titles(price="free") == [shallow_free.title]
    assert titles(tag="docker") == [shallow_free.title]


def test_catalogue_paginates(client, settings):
    settings.LESSONS_CATALOGUE_PAGE_SIZE = 2
    LessonFactory.create_batch(5)

    response = client.get("/", {"page": "3"})

    assert len(response.context["page"].object_list) == 1
    assert "Page 3 of 3" in response.content.decode()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"depth": "9"}, "depth"),
        ({"depth": "deep"}, "depth"),
        ({"price": "cheap"}, "price"),
        ({"page": "0"}, "page"),
        ({"page": "abc"}, "page"),
        ({"page": "40"}, "page"),
        # Digits of another script, which int() reads: U+0661 is 1.
        ({"depth": "\u0661"}, "depth"),
        ({"page": "\u0661"}, "page"),
    ],
)
def test_bad_catalogue_parameters_get_400_with_a_message(client, params, message):
    response = client.get("/", params)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert f"Bad query parameter {message}" in response.content.decode()


def test_free_lesson_page_shows_every_field_and_the_body(client):
    lesson = LessonFactory(body="## Hello\n\n```python\nprint('hi')\n```\n", depth=3)

    page = client.get(f"/lessons/{lesson.slug}/").content.decode()

    assert lesson.title in page
    assert lesson.summary in page
    assert "testing" in page
    assert "<dd>3</dd>" in page
    assert "Free" in page
    assert '<span class="nb">print</span>' in page


def test_gated_lesson_page_shows_a_paywall_and_no_part_of_the_body(client):
    lesson = LessonFactory(
        priced=True, body="## Secret heading\n\nSecret sentence of the body.\n"
    )

    page = client.get(f"/lessons/{lesson.slug}/").content.decode()

    assert "0.005 AIN" in page
    assert 'class="paywall"' in page
    assert "Secret heading" not in page
    assert "Secret sentence" not in page


def test_lesson_page_draws_its_neighbourhood_with_edge_kinds(client):
    center = LessonFactory(title="Centre")
    first = LessonFactory(title="Read me first")
    sibling = LessonFactory(title="A sibling")
    EdgeFactory(
        source=center, target=first, kind=Edge.Kind.PREREQUISITE, note="Basics."
    )
    EdgeFactory(source=sibling, target=center, kind=Edge.Kind.RELATED)

    page = client.get(f"/lessons/{center.slug}/").content.decode()

    assert "<svg" in page
    assert 'class="edge edge-prerequisite"' in page
    assert 'class="edge edge-related"' in page
    assert f'href="/lessons/{first.slug}/"' in page
    assert "Read first" in page
    assert "Basics." in page
    assert f'href="/lessons/{sibling.slug}/"' in page


def test_unknown_lesson_is_404(client):
    assert client.get("/lessons/no-such-lesson/").status_code == HTTPStatus.NOT_FOUND
    assert (
        client.get("/lessons/no-such-lesson/path/").status_code == HTTPStatus.NOT_FOUND
    )
    assert client.get("/topics/no/such/").status_code == HTTPStatus.NOT_FOUND


def test_learning_path_page_orders_prerequisites_and_totals_the_price(client):
    basics = LessonFactory(title="Basics", depth=1)
    middle = LessonFactory(title="Middle", depth=2, price=Decimal("0.002"))
    goal = LessonFactory(title="Goal", depth=4, priced=True)
    EdgeFactory(source=goal, target=middle)
    EdgeFactory(source=middle, target=basics)

    response = client.get(f"/lessons/{goal.slug}/path/")

    assert [step.title for step in response.context["path"].steps] == [
        "Basics",
        "Middle",
        "Goal",
    ]
    assert "0.007 AIN" in response.content.decode()


def test_learning_path_page_with_one_prerequisite_says_read_this_lesson(client):
    basics = LessonFactory(title="Basics", depth=1)
    goal = LessonFactory(title="Goal", depth=2)
    EdgeFactory(source=goal, target=basics)

    response = client.get(f"/lessons/{goal.slug}/path/")

    assert "Read this lesson first." in response.content.decode()
    assert "Read these 1 lesson" not in response.content.decode()


def test_topic_page_groups_by_depth_and_names_the_frontier(client):
    topic = topic_ensure(path="containers/builds")
    LessonFactory(title="Intro", depth=1, topic=topic)
    LessonFactory(title="Deepest", depth=4, topic=topic)
    LessonFactory(title="Elsewhere", depth=5)

    response = client.get("/topics/containers/")

    overview = response.context["overview"]
    assert sorted(overview.by_depth) == [1, 4]
    assert [lesson.title for lesson in overview.frontier] == ["Deepest"]


def build_graph(size):
    """A centre lesson with ``size`` neighbours of every kind and tags."""
    from lessons.models import LessonTag, Tag

    center = LessonFactory(slug="center")
    tag = Tag.objects.create(name=f"tag-{size}")
    for n in range(size):
        other = LessonFactory()
        LessonTag.objects.create(lesson=other, tag=tag)
        kind = [Edge.Kind.PREREQUISITE, Edge.Kind.EXTENDS, Edge.Kind.RELATED][n % 3]
        if kind == Edge.Kind.PREREQUISITE:
            EdgeFactory(source=center, target=other, kind=kind)
        else:
            EdgeFactory(source=other, target=center, kind=kind)
    return center


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/lessons/center/",
        "/lessons/center/path/",
        "/api/lessons/",
        "/api/lessons/center/",
        "/api/lessons/center/neighborhood",
        "/api/lessons/center/neighborhood?depth=2",
        "/topics/testing/",
    ],
)
def test_query_count_does_not_grow_with_the_number_of_lessons(client, url):
    build_graph(3)
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == HTTPStatus.OK
    Lesson.objects.all().delete()

    build_graph(30)
    with CaptureQueriesContext(connection) as large:
        assert client.get(url).status_code == HTTPStatus.OK

    assert len(large) == len(small)


def test_cached_lesson_page_shows_edits_at_once(client):
    lesson = LessonFactory(title="Before", body="## Old body\n")
    neighbour = LessonFactory(title="Neighbour")
    assert "Before" in client.get(f"/lessons/{lesson.slug}/").content.decode()

    lesson.title = "After"
    lesson.body = "## New body\n"
    lesson.save()
    EdgeFactory(source=lesson, target=neighbour)
    page = client.get(f"/lessons/{lesson.slug}/").content.decode()

    assert "After" in page
    assert "New body" in page
    assert "Old body" not in page
    assert f'href="/lessons/{neighbour.slug}/"' in page


def test_cached_lesson_page_shows_a_renamed_neighbour(client):
    lesson = LessonFactory()
    neighbour = LessonFactory(title="Old name")
    EdgeFactory(source=lesson, target=neighbour)
    client.get(f"/lessons/{lesson.slug}/")

    neighbour.title = "New name"
    neighbour.save()

    assert "New name" in client.get(f"/lessons/{lesson.slug}/").content.decode()


def test_a_cached_lesson_page_costs_one_query(client, django_assert_num_queries):
    lesson = LessonFactory()
    client.get(f"/lessons/{lesson.slug}/")

    with django_assert_num_queries(1):
        client.get(f"/lessons/{lesson.slug}/")


def test_search_never_reads_into_gated_bodies(client):
    LessonFactory(priced=True, body="## Paid\n\nThe secret word is zanzibar.\n")
    LessonFactory(body="## Free\n\nThe free word is quokka.\n")

    def found(word: str) -> int:
        return client.get("/api/lessons/", {"search": word}).json()["count"]

    assert found("zanzibar") == 0
    assert found("zanz") == 0
    assert found("quokka") == 1


def test_topic_addresses_have_one_canonical_form(client):
    topic_ensure(path="security/ci-cd")

    assert (
        client.get("/topics/security/ci-cd//")["Location"] == "/topics/security/ci-cd/"
    )
    assert client.get("/topics/security//ci-cd/").status_code == HTTPStatus.NOT_FOUND


def test_topic_address_in_capitals_leads_to_the_topic(client):
    topic_ensure(path="security/ci-cd")

    response = client.get("/topics/Security/CI-CD/")

    assert response.status_code == HTTPStatus.MOVED_PERMANENTLY
    assert response["Location"] == "/topics/security/ci-cd/"


def test_unknown_api_addresses_answer_json(client):
    response = client.get("/api/no-such-thing/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json() == {"detail": "Not found."}


def test_api_lesson_paths_work_with_a_final_slash(client):
    lesson = LessonFactory()

    assert (
        client.get(f"/api/lessons/{lesson.slug}/neighborhood/").status_code
        == HTTPStatus.OK
    )
    assert client.get(f"/api/lessons/{lesson.slug}/path/").status_code == HTTPStatus.OK


def test_stylesheets_are_served_without_debug(client, settings):
    settings.DEBUG = False

    response = client.get("/static/lessons/site.css")

    assert response.status_code == HTTPStatus.OK
    assert b".paywall" in b"".join(response.streaming_content)
