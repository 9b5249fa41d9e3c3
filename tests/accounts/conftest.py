from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from tests.accounts.authenticator import SoftwareAuthenticator


def post_json(client: Client, url: str, body: Any = None) -> Any:
    return client.post(url, body or {}, content_type="application/json")


def sign_up(
    client: Client, authenticator: SoftwareAuthenticator, name: str = "Ada"
) -> User:
    options = post_json(
        client, "/accounts/signup/options", {"display_name": name}
    ).json()
    credential = authenticator.register(options)
    response = post_json(client, "/accounts/signup/verify", {"credential": credential})
    assert response.status_code == 200, response.content
    return User.objects.get(username=name)


def sign_in_answer(
    client: Client, authenticator: SoftwareAuthenticator, **changes: Any
) -> Any:
    options = post_json(client, "/accounts/signin/options").json()
    credential = authenticator.assertion(options, **changes)
    return post_json(client, "/accounts/signin/verify", {"credential": credential})


@pytest.fixture
def authenticator() -> SoftwareAuthenticator:
    return SoftwareAuthenticator()


@pytest.fixture
def member(client: Client, authenticator: SoftwareAuthenticator, db: None) -> User:
    """An account signed up with ``authenticator`` and then signed out."""
    user = sign_up(client, authenticator)
    client.post("/accounts/signout/")
    return user
