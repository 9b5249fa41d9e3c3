"""Example secrets are sealed at rest, bound to their example and name."""

import threading

import pytest

from deployments.keys import SecretUnreadable, secret_open, secret_seal, signing_key
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


def test_workers_making_the_first_signing_key_together_keep_one_whole_key(
    settings, tmp_path
):
    settings.DEPLOYMENTS_SIGNING_KEY = ""
    settings.DEPLOYMENTS_DIR = tmp_path
    barrier = threading.Barrier(8)
    keys: list[bytes] = []

    def make() -> None:
        barrier.wait()
        keys.append(signing_key().public_key().public_bytes_raw())

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(keys) == 8 and len(set(keys)) == 1
    assert [path.name for path in tmp_path.iterdir()] == ["signing.key"]
    assert (tmp_path / "signing.key").stat().st_mode & 0o777 == 0o600
