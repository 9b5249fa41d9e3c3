"""EIP-3009 transfer authorizations, signed as EIP-712 typed data.

The one module that knows the wire form of an "exact" EVM payload and how
its signature is checked; eth_account does the cryptography. Nothing here
touches the database or the settings.
"""

import functools
import re
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys.exceptions import BadSignature
from eth_utils import to_checksum_address

UINT256_MAX = 2**256 - 1

# Decimal integers exactly as the protocol writes them. Python's int() would
# also take "+5", " 5", "5_000" and non-ASCII digits; none of those is an
# amount or a time here.
INTEGER_RE = re.compile(r"0|[1-9][0-9]*", re.ASCII)
ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}", re.ASCII)
NONCE_RE = re.compile(r"0x[0-9a-fA-F]{64}", re.ASCII)
# 65 bytes: r, s and v. Contract wallets (EIP-1271, ERC-6492) sign longer
# blobs that only a chain can check; this facilitator has no chain.
SIGNATURE_RE = re.compile(r"0x[0-9a-fA-F]{130}", re.ASCII)

AUTHORIZATION_FIELDS = ("from", "to", "value", "validAfter", "validBefore", "nonce")

TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "TransferWithAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ],
}


class MalformedField(ValueError):
    """A field of a payload or requirement that is not what the protocol
    says it is."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain of a token: its name, version, chain and
    contract address."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str


@dataclass(frozen=True)
class Authorization:
    payer: str
    payee: str
    value: int
    valid_after: int
    valid_before: int
    nonce: str


@dataclass(frozen=True)
class SignedAuthorization:
    authorization: Authorization
    signature: bytes


def integer_parse(text: object, *, field: str) -> int:
    if not isinstance(text, str) or not INTEGER_RE.fullmatch(text):
        raise MalformedField(
            field,
            "must be a decimal integer string such as '5000': no sign, spaces, "
            f"separators, exponent or hex (got {text!r}).",
        )
    value = int(text)
    if value > UINT256_MAX:
        raise MalformedField(field, "is larger than a uint256.")
    return value


def address_parse(text: object, *, field: str) -> str:
    """An EVM address in its checksummed form. All-lowercase and
    all-uppercase are accepted; mixed case must carry a valid EIP-55
    checksum."""
    if not isinstance(text, str) or not ADDRESS_RE.fullmatch(text):
        raise MalformedField(
            field, f"must be a 0x address of 40 hex digits (got {text!r})."
        )
    checksummed = _checksummed(text)
    digits = text[2:]
    mixed_case = digits not in (digits.lower(), digits.upper())
    if mixed_case and checksummed != text:
        raise MalformedField(field, f"has a wrong EIP-55 checksum (got {text!r}).")
    return checksummed


# A checksum is a Keccak hash: a paid request reads its few addresses
# dozens of times, and the same payees and tokens come back request after
# request.
@functools.lru_cache(maxsize=4096)
def _checksummed(address: str) -> str:
    return str(to_checksum_address(address))


def signed_authorization_parse(payload: dict[str, Any]) -> SignedAuthorization:
    """The ``payload`` object of an "exact" EVM payment, strictly read."""
    authorization = payload.get("authorization")
    if not isinstance(authorization, dict):
        raise MalformedField("payload.authorization", "is missing or not an object.")
    unexpected = sorted(set(authorization) - set(AUTHORIZATION_FIELDS))
    missing = [name for name in AUTHORIZATION_FIELDS if name not in authorization]
    if missing or unexpected:
        raise MalformedField(
            "payload.authorization",
            f"must have exactly the fields {', '.join(AUTHORIZATION_FIELDS)}"
            f" (missing: {missing or 'none'}, unexpected: {unexpected or 'none'}).",
        )
    nonce = authorization["nonce"]
    if not isinstance(nonce, str) or not NONCE_RE.fullmatch(nonce):
        raise MalformedField(
            "payload.authorization.nonce", "must be 0x and 64 hex digits."
        )
    signature = payload.get("signature")
    if not isinstance(signature, str) or not SIGNATURE_RE.fullmatch(signature):
        raise MalformedField(
            "payload.signature",
            "must be a 65-byte signature, 0x and 130 hex digits; contract-wallet "
            "signatures are not supported.",
        )

    def field(name: str) -> str:
        return f"payload.authorization.{name}"

    return SignedAuthorization(
        authorization=Authorization(
            payer=address_parse(authorization["from"], field=field("from")),
            payee=address_parse(authorization["to"], field=field("to")),
            value=integer_parse(authorization["value"], field=field("value")),
            valid_after=integer_parse(
                authorization["validAfter"], field=field("validAfter")
            ),
            valid_before=integer_parse(
                authorization["validBefore"], field=field("validBefore")
            ),
            nonce=nonce.lower(),
        ),
        signature=bytes.fromhex(signature[2:]),
    )


def typed_data(authorization: Authorization, domain: Domain) -> dict[str, Any]:
    """The EIP-712 document a payer signs."""
    return {
        "types": TYPES,
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": domain.name,
            "version": domain.version,
            "chainId": domain.chain_id,
            "verifyingContract": domain.verifying_contract,
        },
        "message": {
            "from": authorization.payer,
            "to": authorization.payee,
            "value": authorization.value,
            "validAfter": authorization.valid_after,
            "validBefore": authorization.valid_before,
            "nonce": bytes.fromhex(authorization.nonce[2:]),
        },
    }


# Verification and settlement each check the same payment's signature; the
# recovery, a pure function of the two, is done once.
@functools.lru_cache(maxsize=1024)
def signer_recover(signed: SignedAuthorization, domain: Domain) -> str | None:
    """The address that signed the authorization, or None when the
    signature cannot be read at all (a bad v, r or s)."""
    message = encode_typed_data(full_message=typed_data(signed.authorization, domain))
    try:
        return str(Account.recover_message(message, signature=signed.signature))
    except (BadSignature, ValueError):
        return None


def private_key_new() -> tuple[str, str]:
    """A fresh private key (0x and 64 hex digits) and its address."""
    account = Account.create()
    return "0x" + bytes(account.key).hex(), str(account.address)
