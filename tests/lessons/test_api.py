from decimal import Decimal
from http import HTTPStatus

import pytest

from lessons.models import Edge, LessonTag, Paper, Tag
from tests.lessons.factories import EdgeFactory, LessonFactory

pytestmark = pytest.mark.django_db

METADATA_FIELDS = {
    "slug", "title", "summary", "topic", "depth", "price", "asset", "gated",
    "tags", "papers", "created", "updated", "content_sha256",
}  # fmt: skip


def test_lesson_metadata_has_every_field_and_never_the_body(client):
    lesson = LessonFactory(priced=True, body="## Only for buyers\n\nHidden text.\n")
    for position, name in enumerate(["docker", "arxiv:2506.06478"]):
        LessonTag.objects.create(
            lesson=lesson, tag=Tag.objects.create(name=name), position=position
        )

    response = client.get(f"/api/lessons/{lesson.slug}/")

    body = response.json()
    assert response.status_code == HTTPStatus.OK
    assert set(body) >= METADATA_FIELDS
    assert body["price"] == "0.005"
    assert body["asset"] == "AIN"
    assert body["gated"] is True
    assert body["tags"] == ["docker", "arxiv:2506.06478"]
    assert body["papers"] == ["2506.06478"]
    assert body["content_sha256"] == lesson.body_sha256
    assert "Hidden text" not in response.content.decode()
    assert "Only for buyers" not in response.content.decode()


def test_free_lesson_has_a_null_price(client):
    lesson = LessonFactory()

    assert client.get(f"/api/lessons/{lesson.slug}/").json()["price"] is None


def test_list_filters_and_paginates(client):
    LessonFactory.create_batch(3, depth=2)
    LessonFactory(depth=5, title="Deep one", price=Decimal("0.01"))

    deep = client.get("/api/lessons/", {"depth": 5}).json()
    paid = client.get("/api/lessons/", {"price": "paid"}).json()
    searched = client.get("/api/lessons/", {"search": "deep"}).json()
    paged = client.get("/api/lessons/", {"page_size": 2, "page": 2}).json()

    assert [item["title"] for item in deep["results"]] == ["Deep one"]
    assert paid["count"] == 1
    assert searched["count"] == 1
    assert paged["count"] == 4
    assert len(paged["results"]) == 2


@pytest.mark.parametrize(
    "query",
    [
        "depth=0",
        "depth=six",
        "price=gratis",
        "page=0",
        "page=x",
        "page=99",
        "page_size=-1",
    ],
)
def test_bad_list_parameters_get_400(client, query):
    LessonFactory()

    response = client.get(f"/api/lessons/?{query}")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()


def test_neighbourhood_reaches_the_requested_depth(client):
    a, b, c, d = LessonFactory.create_batch(4)
    EdgeFactory(source=a, target=b)
    EdgeFactory(source=c, target=b, kind=Edge.Kind.RELATED)
    EdgeFactory(source=d, target=c, kind=Edge.Kind.EXTENDS)

    one = client.get(f"/api/lessons/{a.slug}/neighborhood").json()
    three = client.get(f"/api/lessons/{a.slug}/neighborhood", {"depth": 3}).json()

    assert {node["slug"]: node["hop"] for node in one["nodes"]} == {
        a.slug: 0,
        b.slug: 1,
    }
    assert {node["slug"]: node["hop"] for node in three["nodes"]} == {
        a.slug: 0, b.slug: 1, c.slug: 2, d.slug: 3,
    }  # fmt: skip
    assert {(e["source"], e["kind"], e["target"]) for e in three["edges"]} == {
        (a.slug, "prerequisite", b.slug),
        (c.slug, "related", b.slug),
        (d.slug, "extends", c.slug),
    }


@pytest.mark.parametrize("depth", ["0", "4", "two", "-1"])
def test_neighbourhood_depth_outside_1_to_3_is_400(client, depth):
    lesson = LessonFactory()

    response = client.get(f"/api/lessons/{lesson.slug}/neighborhood", {"depth": depth})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "1 to 3" in response.json()["detail"]


def test_path_lists_prerequisites_in_order_with_the_total(client):
    basics = LessonFactory(depth=1, price=Decimal("0.001"))
    goal = LessonFactory(depth=3, priced=True)
    EdgeFactory(source=goal, target=basics)

    body = client.get(f"/api/lessons/{goal.slug}/path").json()

    assert [step["slug"] for step in body["steps"]] == [basics.slug, goal.slug]
    assert body["total"] == {"AIN": "0.006"}


@pytest.mark.parametrize(
    "url",
    [
        "/api/lessons/nope/",
        "/api/lessons/nope/neighborhood",
        "/api/lessons/nope/path",
    ],
)
def test_unknown_slugs_are_404(client, url):
    assert client.get(url).status_code == HTTPStatus.NOT_FOUND


def test_topics_and_papers_are_listed(client):
    lesson = LessonFactory()
    LessonTag.objects.create(
        lesson=lesson, tag=Tag.objects.create(name="arxiv:2506.06478")
    )
    Paper.objects.create(arxiv_id="2506.06478", title="A paper", authors=["A. Author"])

    topics = client.get("/api/topics/").json()
    papers = client.get("/api/papers/").json()

    assert {
        "path": "testing",
        "name": "testing",
        "parent": None,
        "description": "",
        "lesson_count": 1,
    } in topics
    assert papers["results"][0]["arxiv_id"] == "2506.06478"
    assert papers["results"][0]["abs_url"] == "https://arxiv.org/abs/2506.06478"


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    docs = client.get("/api/docs/")

    assert schema.status_code == HTTPStatus.OK
    assert b"/api/lessons/{slug}/neighborhood" in schema.content
    assert docs.status_code == HTTPStatus.OK


@pytest.mark.parametrize(
    "query",
    [
        "page_size=%C2%B2",
        "page=%C2%B2",
        "page=%D9%A1",
        "depth=%C2%B2",
        "depth=%D9%A1",
        "depth=3&depth=4",
        "topic=nowhere",
        "search=a&search=b",
    ],
)
def test_tricky_list_parameters_get_400_with_a_detail(client, query):
    LessonFactory()

    response = client.get(f"/api/lessons/?{query}")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["detail"].startswith("Bad query parameter")


def test_neighbourhood_depth_in_superscript_digits_is_400(client):
    lesson = LessonFactory()

    response = client.get(f"/api/lessons/{lesson.slug}/neighborhood?depth=%C2%B2")

    assert response.status_code == HTTPStatus.BAD_REQUEST


def test_neighbourhood_depth_given_twice_is_400(client):
    lesson = LessonFactory()

    response = client.get(f"/api/lessons/{lesson.slug}/neighborhood?depth=1&depth=3")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["detail"] == "Bad query parameter depth: give it only once."


@pytest.mark.parametrize("query", ["page=1&page=1", "page_size=1&page_size=2"])
def test_papers_page_parameters_given_twice_are_400(client, query):
    Paper.objects.create(arxiv_id="2506.06478", title="A paper", authors=["A. Author"])

    response = client.get(f"/api/papers/?{query}")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["detail"].endswith("give it only once.")


def test_repeated_tags_must_all_match(client):
    both = LessonFactory()
    one = LessonFactory()
    docker, secrets = (
        Tag.objects.create(name="docker"),
        Tag.objects.create(name="secrets"),
    )
    LessonTag.objects.create(lesson=both, tag=docker)
    LessonTag.objects.create(lesson=both, tag=secrets, position=1)
    LessonTag.objects.create(lesson=one, tag=docker)

    body = client.get("/api/lessons/?tag=docker&tag=secrets").json()

    assert [item["slug"] for item in body["results"]] == [both.slug]


def test_twenty_tags_at_once_find_the_lesson_carrying_them_all(client):
    every = LessonFactory()
    most = LessonFactory()
    names = [f"tag-{number}" for number in range(20)]
    for position, name in enumerate(names):
        tag = Tag.objects.create(name=name)
        LessonTag.objects.create(lesson=every, tag=tag, position=position)
        if position:
            LessonTag.objects.create(lesson=most, tag=tag, position=position)
    query = "&".join(f"tag={name}" for name in [*names, names[0]])

    body = client.get(f"/api/lessons/?{query}").json()
    page = client.get(f"/?{query}")

    assert [item["slug"] for item in body["results"]] == [every.slug]
    assert every.title in page.content.decode()
    assert most.title not in page.content.decode()


def test_more_than_twenty_tags_at_once_is_400(client):
    query = "&".join(f"tag=tag-{number}" for number in range(21))

    response = client.get(f"/api/lessons/?{query}")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["detail"] == (
        "Bad query parameter tag: at most 20 tags at once."
    )


def test_topic_filter_ignores_case_and_slashes(client):
    LessonFactory()

    assert client.get("/api/lessons/?topic=/Testing/").json()["count"] == 1


def test_topic_counts_include_subtopics(client):
    from lessons.services import topic_ensure

    LessonFactory(topic=topic_ensure(path="security/ci-cd"))
    LessonFactory(topic=topic_ensure(path="security"))

    counts = {
        topic["path"]: topic["lesson_count"]
        for topic in client.get("/api/topics/").json()
    }

    assert counts["security"] == 2
    assert counts["security/ci-cd"] == 1
