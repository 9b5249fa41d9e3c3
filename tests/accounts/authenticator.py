"""A software authenticator that makes real WebAuthn answers: EC P-256 keys
from cryptography, CBOR from cbor2, "none" attestation."""

import base64
import hashlib
import json
import secrets
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

FLAG_USER_PRESENT = 0x01
FLAG_USER_VERIFIED = 0x04
FLAG_ATTESTED = 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftwareAuthenticator:
    def __init__(self, *, credential_id_length: int = 32) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(credential_id_length)
        self.sign_count = 0
        self.user_handle = b""

    def cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def authenticator_data(
        self, *, rp_id: str, verified: bool, count: int, attested: bool = False
    ) -> bytes:
        flags = FLAG_USER_PRESENT | (FLAG_USER_VERIFIED if verified else 0)
        data = hashlib.sha256(rp_id.encode()).digest()
        data += bytes([flags | (FLAG_ATTESTED if attested else 0)]) + count.to_bytes(
            4, "big"
        )
        if attested:
            data += (
                bytes(16)
                + len(self.credential_id).to_bytes(2, "big")
                + self.credential_id
            )
            data += self.cose_public_key()
        return data

    @staticmethod
    def client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps(
            {
                "type": kind,
                "challenge": challenge,
                "origin": origin,
                "crossOrigin": False,
            }
        ).encode()

    def register(
        self,
        options: dict[str, Any],
        *,
        origin: str = "http://localhost:8000",
        rp_id: str = "localhost",
        verified: bool = True,
    ) -> dict[str, Any]:
        self.user_handle = unb64url(options["user"]["id"])
        client_data = self.client_data("webauthn.create", options["challenge"], origin)
        auth_data = self.authenticator_data(
            rp_id=rp_id, verified=verified, count=self.sign_count, attested=True
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }

    def assertion(
        self,
        options: dict[str, Any],
        *,
        origin: str = "http://localhost:8000",
        rp_id: str = "localhost",
        verified: bool = True,
        count: int | None = None,
        user_handle: bytes | None = None,
    ) -> dict[str, Any]:
        if count is None:
            self.sign_count += 1
            count = self.sign_count
        client_data = self.client_data("webauthn.get", options["challenge"], origin)
        auth_data = self.authenticator_data(rp_id=rp_id, verified=verified, count=count)
        signature = self.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(
                    self.user_handle if user_handle is None else user_handle
                ),
            },
            "clientExtensionResults": {},
        }
