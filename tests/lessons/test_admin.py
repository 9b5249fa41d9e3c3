"""Authoring in the admin, with the same rules as import."""

from http import HTTPStatus
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import User
from lessons.models import Edge, Lesson, Tag
from tests.accounts.authenticator import SoftwareAuthenticator
from tests.accounts.conftest import sign_up
from tests.lessons.factories import EdgeFactory, LessonFactory, admin_change_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client) -> User:
    user = sign_up(client, SoftwareAuthenticator(), name="Editor")
    call_command("set_role", "Editor", "staff", stdout=StringIO())
    return user


def test_admin_refuses_a_prerequisite_cycle(client, staff):
    a, b = LessonFactory(slug="a"), LessonFactory(slug="b")
    EdgeFactory(source=a, target=b)

    response = client.post(
        "/admin/lessons/edge/add/",
        {"source": b.pk, "target": a.pk, "kind": "prerequisite", "note": ""},
    )

    assert response.status_code == HTTPStatus.OK
    assert "Prerequisite cycle: " in response.content.decode()
    assert Edge.objects.count() == 1


def test_admin_says_once_that_a_lesson_cannot_link_to_itself(client, staff):
    a = LessonFactory()

    response = client.post(
        "/admin/lessons/edge/add/", {"source": a.pk, "target": a.pk, "kind": "related"}
    )

    assert response.content.decode().count("A lesson cannot link to itself.") == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [("x402_gated", "is a flag"), ("arxiv:garbage", "is not an arXiv identifier")],
)
def test_admin_refuses_tags_the_importer_refuses(client, staff, name, message):
    response = client.post("/admin/lessons/tag/add/", {"name": name})

    assert message in response.content.decode()
    assert not Tag.objects.filter(name=name).exists()


def test_admin_refuses_a_body_nesting_html_too_deep(client, staff):
    lesson = LessonFactory(body="Text.")
    form = admin_change_form(lesson)
    form["body"] = "<div>" * 100_000

    response = client.post(f"/admin/lessons/lesson/{lesson.pk}/change/", form)

    assert response.status_code == HTTPStatus.OK
    assert "nests more than 100 elements deep" in response.content.decode()
    assert Lesson.objects.get().body == "Text."


def test_admin_refuses_a_title_turning_the_direction_of_the_page(client, staff):
    lesson = LessonFactory(title="Plain")
    form = admin_change_form(lesson)
    form["title"] = "Hub \u202eeerF"

    response = client.post(f"/admin/lessons/lesson/{lesson.pk}/change/", form)

    assert "It holds U+202E, a mark turning the direction" in response.content.decode()
    assert Lesson.objects.get().title == "Plain"


def test_admin_refuses_a_tag_turning_the_direction_of_the_page(client, staff):
    response = client.post("/admin/lessons/tag/add/", {"name": "a\u2067b"})

    assert "It holds U+2067" in response.content.decode()
    assert not Tag.objects.exists()


def test_admin_keeps_a_body_whose_html_nests_as_deep_as_allowed(client, staff):
    lesson = LessonFactory(body="Text.")
    form = admin_change_form(lesson)
    form["body"] = "<div>" * 100 + "Deep." + "</div>" * 100

    response = client.post(f"/admin/lessons/lesson/{lesson.pk}/change/", form)

    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    assert "Deep." in Lesson.objects.get().body


def test_arxiv_tags_added_in_the_admin_become_citations(client, staff):
    lesson = LessonFactory()
    tag = Tag.objects.create(name="arxiv:2506.06478v1")
    form = admin_change_form(lesson, [tag])

    response = client.post(f"/admin/lessons/lesson/{lesson.pk}/change/", form)

    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    assert list(
        Lesson.objects.get().citations.values_list("paper__arxiv_id", "version")
    ) == [("2506.06478", 1)]


def test_admin_refuses_two_arxiv_tags_naming_one_paper(client, staff):
    lesson = LessonFactory()
    first = Tag.objects.create(name="arxiv:math.GT/0309136v1")
    second = Tag.objects.create(name="arxiv:math/0309136v2")
    form = admin_change_form(lesson, [first, second])

    response = client.post(f"/admin/lessons/lesson/{lesson.pk}/change/", form)

    assert response.status_code == HTTPStatus.OK
    assert "name the same paper, arXiv:math/0309136" in response.content.decode()
    assert not lesson.lesson_tags.exists() and not lesson.citations.exists()


def test_admin_explains_a_zero_price(client, staff):
    lesson = LessonFactory()

    response = client.post(
        f"/admin/lessons/lesson/{lesson.pk}/change/",
        {
            "title": "x",
            "slug": lesson.slug,
            "summary": "s",
            "topic": lesson.topic.pk,
            "depth": 2,
            "price": "0",
            "asset": "AIN",
            "body": "b",
            "created_0": "2026-01-01",
            "created_1": "00:00:00",
            "lesson_tags-TOTAL_FORMS": 0,
            "lesson_tags-INITIAL_FORMS": 0,
            "edges_out-TOTAL_FORMS": 0,
            "edges_out-INITIAL_FORMS": 0,
        },
    )

    assert "leave it empty for a free lesson" in response.content.decode()


# Instructors author their own lessons --------------------------------------


@pytest.fixture
def instructor(client) -> User:
    user = sign_up(client, SoftwareAuthenticator(), name="Ada")
    call_command("set_role", "Ada", "instructor", stdout=StringIO())
    return user


@pytest.fixture
def colleague() -> User:
    user = User.objects.create(username="Grace", user_handle=b"g" * 32)
    call_command("set_role", "Grace", "instructor", stdout=StringIO())
    return user


def test_an_instructor_lists_only_their_own_lessons(client, instructor, colleague):
    LessonFactory(title="Ada's lesson", author=instructor)
    LessonFactory(title="Grace's lesson", author=colleague)

    page = client.get("/admin/lessons/lesson/").content.decode()

    assert "Ada&#x27;s lesson" in page
    assert "Grace&#x27;s lesson" not in page


def test_an_instructor_cannot_change_another_instructors_lesson(
    client, instructor, colleague
):
    lesson = LessonFactory(body="Sold text.", author=colleague)
    form = admin_change_form(lesson)
    form["author"] = instructor.pk
    form["body"] = "Taken."

    opened = client.get(f"/admin/lessons/lesson/{lesson.pk}/change/")
    client.post(f"/admin/lessons/lesson/{lesson.pk}/change/", form)

    lesson.refresh_from_db()
    assert "Sold text." not in opened.content.decode()
    assert (lesson.author, lesson.body) == (colleague, "Sold text.")


def test_an_instructors_new_lesson_is_theirs_whoever_the_form_names(
    client, instructor, colleague
):
    topic = LessonFactory(author=instructor).topic
    form = admin_change_form(LessonFactory.build(topic=topic, slug="new-one"))
    form["author"] = colleague.pk

    response = client.post("/admin/lessons/lesson/add/", form)

    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    assert Lesson.objects.get(slug="new-one").author == instructor


def test_an_instructor_cannot_give_another_instructors_lesson_an_edge(
    client, instructor, colleague
):
    own = LessonFactory(author=instructor)
    theirs = LessonFactory(author=colleague)

    client.post(
        "/admin/lessons/edge/add/",
        {"source": theirs.pk, "target": own.pk, "kind": "related", "note": ""},
    )
    linked = client.post(
        "/admin/lessons/edge/add/",
        {"source": own.pk, "target": theirs.pk, "kind": "related", "note": ""},
    )

    assert linked.status_code == HTTPStatus.FOUND
    assert list(Edge.objects.values_list("source", "target")) == [(own.pk, theirs.pk)]


def test_an_instructor_links_to_any_lesson_by_its_title(client, instructor, colleague):
    LessonFactory(title="Grace's basics", author=colleague)

    found = client.get(
        "/admin/autocomplete/",
        {
            "term": "basics",
            "app_label": "lessons",
            "model_name": "edge",
            "field_name": "target",
        },
    ).json()

    assert [item["text"] for item in found["results"]] == ["Grace's basics"]


def test_staff_change_any_lesson_and_its_author(client, staff, colleague):
    lesson = LessonFactory(body="Text.")
    form = admin_change_form(lesson)
    form["author"] = colleague.pk

    response = client.post(f"/admin/lessons/lesson/{lesson.pk}/change/", form)

    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    assert Lesson.objects.get().author == colleague
