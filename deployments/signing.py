"""Provenance statements signed with the site's Ed25519 key.

A statement names the image digest, the hash of the source it was built
from, the builder, who started the run and when. The signed document is
stored beside the image in the registry (``registry.signature_store``);
the deploy step fetches it and refuses an image without one, or with one
that does not verify or names another digest.
"""

import base64
import json
from typing import Any

from cryptography.exceptions import InvalidSignature

from deployments.keys import public_key, public_key_text, signing_key

STATEMENT_TYPE = "https://lessongraph.dev/provenance/v1"


class SignatureRefused(Exception):
    pass


def _canonical(statement: dict[str, Any]) -> bytes:
    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()


def provenance_sign(statement: dict[str, Any]) -> bytes:
    """The signed document: the statement, its signature and the key."""
    statement = {"type": STATEMENT_TYPE, **statement}
    signature = signing_key().sign(_canonical(statement))
    document = {
        "statement": statement,
        "signature": base64.urlsafe_b64encode(signature).decode(),
        "key": public_key_text(),
    }
    return json.dumps(document, sort_keys=True).encode()


def provenance_verify(document: bytes | None, *, digest: str) -> dict[str, Any]:
    """The statement, once its signature holds under the site's key and it
    names this digest."""
    if document is None:
        raise SignatureRefused(f"{digest} is unsigned: no provenance beside it.")
    try:
        parsed = json.loads(document)
        statement = parsed["statement"]
        signature = base64.urlsafe_b64decode(parsed["signature"])
    except (ValueError, KeyError, TypeError):
        raise SignatureRefused(f"The provenance of {digest} cannot be read.") from None
    if not isinstance(statement, dict):
        raise SignatureRefused(f"The provenance of {digest} cannot be read.")
    try:
        public_key().verify(signature, _canonical(statement))
    except InvalidSignature:
        raise SignatureRefused(
            f"The signature beside {digest} does not verify under the site's key: "
            "the image or its provenance was altered."
        ) from None
    if statement.get("digest") != digest:
        raise SignatureRefused(
            f"The provenance beside {digest} was signed for another image."
        )
    return statement
