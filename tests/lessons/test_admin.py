"""Authoring in the admin, with the same rules as import."""

from decimal import Decimal
from http import HTTPStatus
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import User
from accounts.services import user_set_role
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


def instructor_named(name: str) -> User:
    user = User.objects.create(username=name)
    return user_set_role(user=user, role=User.Role.INSTRUCTOR)


@pytest.fixture
def sold_by_another(client) -> Lesson:
    """A gated lesson of Grace's, and Linus, another instructor, signed in."""
    lesson = LessonFactory.create(
        author=instructor_named("Grace"),
        price=Decimal("0.005"),
        body="## Paid for\n\nWhat buyers pay to read.\n",
    )
    client.force_login(instructor_named("Linus"))
    return lesson


def test_an_instructor_cannot_read_another_authors_lesson_in_the_admin(
    client, sold_by_another
):
    response = client.get(f"/admin/lessons/lesson/{sold_by_another.pk}/change/")

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "What buyers pay to read" not in response.content.decode()


def test_an_instructor_cannot_take_over_or_reprice_another_authors_lesson(
    client, sold_by_another
):
    form = admin_change_form(sold_by_another) | {
        "author": User.objects.get(username="Linus").pk,
        "price": "0.001",
        "gated": "on",
    }

    response = client.post(f"/admin/lessons/lesson/{sold_by_another.pk}/change/", form)

    assert response.status_code == HTTPStatus.FORBIDDEN
    sold_by_another.refresh_from_db()
    assert sold_by_another.author.username == "Grace"
    assert sold_by_another.price == Decimal("0.005")


def test_an_instructor_cannot_delete_another_authors_lesson(client, sold_by_another):
    response = client.post(
        "/admin/lessons/lesson/",
        {
            "action": "delete_selected",
            "_selected_action": [sold_by_another.pk],
            "post": "yes",
        },
    )

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert Lesson.objects.filter(pk=sold_by_another.pk).exists()


def test_an_instructor_still_lists_every_lesson_linking_only_their_own(
    client, sold_by_another
):
    own = LessonFactory.create(author=User.objects.get(username="Linus"))

    response = client.get("/admin/lessons/lesson/")

    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert sold_by_another.title in page
    assert f"/admin/lessons/lesson/{sold_by_another.pk}/change/" not in page
    assert f"/admin/lessons/lesson/{own.pk}/change/" in page


def test_staff_list_every_lesson_with_a_link(client, staff, sold_by_another):
    client.force_login(staff)

    page = client.get("/admin/lessons/lesson/").content.decode()

    assert f"/admin/lessons/lesson/{sold_by_another.pk}/change/" in page


def test_an_instructor_changes_their_own_lesson_and_stays_its_author(client):
    linus = instructor_named("Linus")
    lesson = LessonFactory(author=linus)
    client.force_login(linus)
    form = admin_change_form(lesson) | {
        "title": "Renamed",
        "author": instructor_named("Grace").pk,
    }

    response = client.post(f"/admin/lessons/lesson/{lesson.pk}/change/", form)

    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    lesson.refresh_from_db()
    assert (lesson.title, lesson.author) == ("Renamed", linus)


def test_a_lesson_an_instructor_adds_is_theirs(client):
    linus = instructor_named("Linus")
    client.force_login(linus)
    template = LessonFactory.build(slug="new-one")
    form = admin_change_form(template) | {"author": instructor_named("Grace").pk}

    response = client.post("/admin/lessons/lesson/add/", form)

    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    assert Lesson.objects.get(slug="new-one").author == linus


def test_an_instructor_cannot_add_a_prerequisite_to_another_authors_lesson(
    client, sold_by_another
):
    response = client.post(
        "/admin/lessons/edge/add/",
        {
            "source": sold_by_another.pk,
            "target": LessonFactory().pk,
            "kind": "prerequisite",
            "note": "",
        },
    )

    assert response.status_code == HTTPStatus.OK
    assert not Edge.objects.exists()


def test_staff_change_any_lesson_and_its_author(client, staff, sold_by_another):
    client.force_login(staff)
    form = admin_change_form(sold_by_another) | {
        "author": staff.pk,
        "price": "0.005",
        "gated": "on",
    }

    response = client.post(f"/admin/lessons/lesson/{sold_by_another.pk}/change/", form)

    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    sold_by_another.refresh_from_db()
    assert sold_by_another.author == staff


def test_an_instructor_links_their_lesson_to_another_authors(client):
    linus = instructor_named("Linus")
    own = LessonFactory(author=linus)
    theirs = LessonFactory(author=instructor_named("Grace"))
    client.force_login(linus)

    linked = client.post(
        "/admin/lessons/edge/add/",
        {"source": own.pk, "target": theirs.pk, "kind": "related", "note": ""},
    )

    assert linked.status_code == HTTPStatus.FOUND
    assert list(Edge.objects.values_list("source", "target")) == [(own.pk, theirs.pk)]


def test_an_instructor_finds_another_authors_lesson_to_link_to(client):
    LessonFactory(title="Grace's basics", author=instructor_named("Grace"))
    client.force_login(instructor_named("Linus"))

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
