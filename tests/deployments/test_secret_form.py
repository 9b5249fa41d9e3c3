"""Setting an example's secrets from the deployments page."""

import time
from http import HTTPStatus

import pytest

from accounts.models import User
from accounts.reauth import SESSION_KEY
from deployments import services
from deployments.models import Secret
from tests.deployments.runs import FLAGSHIP, flagship_recorded

CHOSEN = "a-value-grace-chose"


def signed_in(client, account: User, *, fresh: bool = True) -> None:
    client.force_login(account)
    if fresh:
        session = client.session
        session[SESSION_KEY] = time.time()
        session.save()


def secret_post(client, name: str, value: str, example: str = FLAGSHIP):
    return client.post(
        f"/deployments/examples/{example}/secrets/{name}", {"value": value}
    )


def test_the_page_offers_a_form_per_secret_and_shows_no_value(client, instructor):
    services.secret_set(example=FLAGSHIP, name="api_key", value=CHOSEN)
    signed_in(client, instructor)

    page = client.get("/deployments/").content.decode()

    for name in ("build_token", "api_key"):
        assert f"/deployments/examples/{FLAGSHIP}/secrets/{name}" in page
    assert "not set yet" in page
    assert CHOSEN not in page


def test_a_secret_set_from_the_page_is_used_and_never_shown(client, instructor):
    signed_in(client, instructor)

    answer = secret_post(client, "api_key", CHOSEN)

    assert answer.status_code == HTTPStatus.FOUND
    assert answer["Location"] == "/deployments/"
    assert services.secret_values(example=FLAGSHIP)["api_key"] == CHOSEN
    page = client.get(answer["Location"]).content.decode()
    assert f"api_key of {FLAGSHIP} is set" in page
    assert CHOSEN not in page


def test_setting_a_secret_without_a_fresh_passkey_asks_for_one(client, instructor):
    signed_in(client, instructor, fresh=False)

    answer = secret_post(client, "api_key", CHOSEN)

    assert answer.status_code == HTTPStatus.FOUND
    assert answer["Location"].startswith("/accounts/reauthenticate/")
    assert not Secret.objects.exists()


def test_learners_cannot_set_a_secret(client, instructor):
    signed_in(client, User.objects.create(username="Lin"))

    answer = secret_post(client, "api_key", CHOSEN)

    assert answer.status_code == HTTPStatus.FORBIDDEN
    assert not Secret.objects.exists()


@pytest.mark.parametrize(
    ("name", "value", "status", "reason"),
    [
        ("api_key", "short", HTTPStatus.BAD_REQUEST, "8 to 4096 characters"),
        ("api_key", "x" * 4097, HTTPStatus.BAD_REQUEST, "8 to 4096 characters"),
        ("password", CHOSEN, HTTPStatus.BAD_REQUEST, "needs no secret"),
        ("api_key", "\u3000" * 8, HTTPStatus.BAD_REQUEST, "begin or end with a space"),
        ("api_key", CHOSEN + "\n", HTTPStatus.BAD_REQUEST, "begin or end with a space"),
    ],
)
def test_a_value_or_name_the_example_cannot_take_is_refused_on_the_page(
    client, instructor, name, value, status, reason
):
    services.secret_set(example=FLAGSHIP, name="api_key", value=CHOSEN)
    signed_in(client, instructor)

    answer = secret_post(client, name, value)

    assert answer.status_code == status
    page = answer.content.decode()
    assert reason in page
    assert value not in page
    assert services.secret_values(example=FLAGSHIP)["api_key"] == CHOSEN


def test_a_secret_of_an_unknown_example_is_refused_with_404(client, instructor):
    signed_in(client, instructor)

    answer = secret_post(client, "api_key", CHOSEN, example="no-such-example")

    assert answer.status_code == HTTPStatus.NOT_FOUND
    assert not Secret.objects.exists()


def test_another_instructor_cannot_set_the_secret_of_a_deployment_of_theirs(
    client, instructor
):
    services.secret_set(example=FLAGSHIP, name="api_key", value=CHOSEN)
    flagship_recorded(instructor)
    signed_in(client, User.objects.create(username="Ada", role=User.Role.INSTRUCTOR))

    answer = secret_post(client, "api_key", "ada-wants-this-one")

    assert answer.status_code == HTTPStatus.FORBIDDEN
    assert "belongs to Grace" in answer.content.decode()
    assert services.secret_values(example=FLAGSHIP)["api_key"] == CHOSEN
