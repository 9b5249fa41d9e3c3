"""Example secrets are sealed at rest, bound to their example and name."""

import pytest

from deployments.keys import SecretUnreadable, secret_open, secret_seal
from deployments.models import Secret
from deployments.services import secret_set

FLAGSHIP = "shipping-containers-without-dind"


def test_a_sealed_secret_opens_to_its_value():
    sealed = secret_seal("a-value-to-keep", scope=FLAGSHIP, name="api_key")

    assert b"a-value-to-keep" not in sealed
    assert secret_open(sealed, scope=FLAGSHIP, name="api_key") == "a-value-to-keep"


def test_a_sealed_secret_copied_onto_another_name_does_not_open():
    sealed = secret_seal("a-value-to-keep", scope=FLAGSHIP, name="api_key")

    with pytest.raises(SecretUnreadable):
        secret_open(sealed, scope=FLAGSHIP, name="build_token")


def test_a_secret_is_stored_sealed(db):
    secret_set(example=FLAGSHIP, name="api_key", value="stored-value-1234")

    assert b"stored-value-1234" not in bytes(Secret.objects.get().sealed)
