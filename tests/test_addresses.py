"""Addresses no view can use are refused before any view runs."""

from http import HTTPStatus

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "address",
    ["/?tag=%00", "/?search=a%00b", "/api/lessons/?tag=%00", "/?%00=1"],
)
def test_a_nul_in_the_query_is_refused_with_a_reason(client, address):
    # PostgreSQL refuses NUL in a compared text: these were server errors.
    response = client.get(address)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "NUL character" in response.content.decode()


@pytest.mark.parametrize(
    "address", ["/topics/%00/", "/lessons/a%00b/", "/api/lessons/%00/"]
)
def test_a_nul_in_the_path_is_not_found(client, address):
    response = client.get(address)

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert "NUL character" in response.content.decode()


def test_the_api_answers_json(client):
    response = client.get("/api/lessons/?tag=%00")

    assert response.json() == {
        "detail": "A query parameter holds a NUL character (%00)."
    }
