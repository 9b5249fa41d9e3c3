"""Payments signed the way real clients sign them.

``payment_signed`` goes through the official client (x402ClientSync with
the exact EVM scheme over an EthAccountSigner), so the payload is exactly
what a paying program sends. The stock client always signs validAfter "0"
and validBefore now + maxTimeoutSeconds; for the authorizations no stock
client would make (expired, not yet valid, signed by another key),
``payment_signed_with`` uses the package's own typed-data builder and
signer instead.
"""

import copy
import time

from eth_account import Account
from eth_account.signers.local import LocalAccount
from x402.http.utils import (
    decode_payment_required_header,
    encode_payment_signature_header,
)
from x402.mechanisms.evm.eip712 import build_typed_data_for_signing
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.mechanisms.evm.types import (
    ExactEIP3009Authorization,
    ExactEIP3009Payload,
    TypedDataField,
)
from x402.mechanisms.evm.utils import create_nonce
from x402.schemas import (
    PaymentPayload,
    PaymentPayloadV1,
    PaymentRequired,
    PaymentRequirements,
    ResourceInfo,
)

from payments.clients import paying_client
from payments.token import token_configured

PRICE = 5_000_000_000_000_000  # 0.005 AIN
ONE_AIN = 10**18


def account_new() -> LocalAccount:
    return Account.create()


def requirements_for(payee: str, **changes) -> PaymentRequirements:
    """What the site will ask for a lesson: 0.005 AIN to ``payee``."""
    token = token_configured()
    requirements = PaymentRequirements(
        scheme="exact",
        network=token.network,
        asset=token.address,
        amount=str(PRICE),
        pay_to=payee,
        max_timeout_seconds=60,
        extra={"name": token.name, "version": token.version},
    )
    return requirements.model_copy(update=changes)


def payment_signed(
    account: LocalAccount, requirements: PaymentRequirements
) -> PaymentPayload:
    client = paying_client(
        account, network=requirements.network, asset=requirements.asset
    )
    required = PaymentRequired(
        accepts=[requirements],
        resource=ResourceInfo(url="http://testserver/lessons/a-lesson/"),
    )
    payload = client.create_payment_payload(required)
    assert isinstance(payload, PaymentPayload)
    return payload


def payment_signed_with(
    account: LocalAccount,
    requirements: PaymentRequirements,
    *,
    valid_after: int = 0,
    valid_before: int | None = None,
    signer: LocalAccount | None = None,
    resource: ResourceInfo | None = None,
) -> PaymentPayload:
    """An authorization with chosen times, signed by ``signer`` (the payer
    unless said otherwise), for ``resource`` if given."""
    if valid_before is None:
        valid_before = int(time.time()) + requirements.max_timeout_seconds
    token = token_configured()
    authorization = ExactEIP3009Authorization(
        from_address=account.address,
        to=requirements.pay_to,
        value=requirements.amount,
        valid_after=str(valid_after),
        valid_before=str(valid_before),
        nonce=create_nonce(),
    )
    domain, types, primary_type, message = build_typed_data_for_signing(
        authorization, token.chain_id, requirements.asset, token.name, token.version
    )
    fields = {
        name: [
            TypedDataField(name=field["name"], type=field["type"]) for field in entries
        ]
        for name, entries in types.items()
    }
    signature = EthAccountSigner(signer or account).sign_typed_data(
        domain, fields, primary_type, message
    )
    inner = ExactEIP3009Payload(
        authorization=authorization, signature="0x" + signature.hex()
    )
    return PaymentPayload(
        x402_version=2,
        payload=inner.to_dict(),
        accepted=requirements,
        resource=resource,
    )


def tampered(payment: PaymentPayload, **authorization: str) -> PaymentPayload:
    """The payment with authorization fields changed after signing."""
    payload = copy.deepcopy(payment.payload)
    payload["authorization"].update(authorization)
    return payment.model_copy(update={"payload": payload})


def offer_of(response) -> PaymentRequired:
    """The version-2 offer in a 402 answer's PAYMENT-REQUIRED header (of a
    test client's response, or of any headers mapping)."""
    offer = decode_payment_required_header(response["PAYMENT-REQUIRED"])
    assert isinstance(offer, PaymentRequired)
    return offer


def payment_for(account: LocalAccount, offer: PaymentRequired) -> PaymentPayload:
    """What the official client pays for ``offer``: its first requirement,
    for the resource it names."""
    accepted = offer.accepts[0]
    client = paying_client(account, network=accepted.network, asset=accepted.asset)
    payload = client.create_payment_payload(offer)
    assert isinstance(payload, PaymentPayload)
    return payload


def header_of(payment: PaymentPayload | PaymentPayloadV1) -> str:
    return encode_payment_signature_header(payment)


def version_1_of(payment: PaymentPayload) -> PaymentPayloadV1:
    """The same signed authorization as a version-1 payment."""
    return PaymentPayloadV1(
        scheme=payment.accepted.scheme,
        network=payment.accepted.network,
        payload=payment.payload,
    )
