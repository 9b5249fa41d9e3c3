"""Reading a payment header, strictly, before the package sees it.

The package's resource server decodes ``PAYMENT-SIGNATURE`` leniently and,
when it cannot, silently treats the request as unpaid: the payer is told
"Payment required" and never why. Its PaymentPayload takes any integer as
``x402Version``. It reads no ``X-PAYMENT``; a version-1 payment in
``PAYMENT-SIGNATURE`` makes its matcher raise AttributeError (a 500 in its
Flask middleware). And it never looks at the payload's ``resource``. So
each payment is read here first, and refused with a specific reason when
it is:

1. larger than ``X402_PAYMENT_HEADER_MAX_BYTES``, not standard base64, not
   UTF-8 JSON (or JSON escaping a lone surrogate), nested deeper than
   ``MAX_NESTING``, or not an object;
2. of an x402 version other than 1 or 2, or not shaped as that version's
   PaymentPayload;
3. (version 2) made for another resource, or for terms other than one of
   the offers (scheme, network, asset, amount, payee, timeout, token).

What passes goes to the package as a version-2 payload: a version-1 payment
is converted, with the offer it pays as its ``accepted``.
"""

import base64
import binascii
import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from pydantic import ValidationError
from x402.schemas import (
    PaymentPayload,
    PaymentPayloadV1,
    PaymentRequired,
    PaymentRequirements,
    PaymentRequirementsV1,
)

from payments.token import NETWORK_RE
from payments.verification import PaymentRefused, Reason

SUPPORTED_VERSIONS = (1, 2)
# A payment nests four levels (payload, authorization, a field and its
# value); its extensions may add a few. pydantic refuses to write out a
# document nested a few hundred levels deep, which a header of a few
# kilobytes can hold, and the payment is written out again on its way to
# the package.
MAX_NESTING = 32


def payment_read(
    header: str,
    *,
    offer: PaymentRequired,
    resource_path: str,
    max_bytes: int,
) -> PaymentPayload:
    """The payment in ``header`` as a version-2 payload for ``offer``, or
    PaymentRefused saying what is wrong with it."""
    document = _document_read(header, max_bytes=max_bytes)
    version = document.get("x402Version")
    # type() and not isinstance(): JSON's true is not version 1.
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise PaymentRefused(
            Reason.INVALID_VERSION,
            f"x402Version {version!r} is not supported; this server takes "
            "versions 1 and 2.",
        )
    if version == 1:
        return _version_1_convert(_shape_read(document, PaymentPayloadV1), offer)
    payload = _shape_read(document, PaymentPayload)
    _resource_check(payload, resource_path)
    _accepted_check(payload.accepted, offer.accepts)
    return payload


def network_v1(network: str) -> str:
    """The version-1 name of a CAIP-2 network, or the CAIP-2 id itself
    when version 1 has no name for it (a local chain such as ours)."""
    names = _v1_names()
    match = NETWORK_RE.fullmatch(network)
    if match is not None and int(match.group("chain_id")) in names:
        return names[int(match.group("chain_id"))]
    return network


def requirements_v1(offer: PaymentRequired) -> list[PaymentRequirementsV1]:
    """The offer's ``accepts`` as version 1 writes them, for the 402 body."""
    resource = offer.resource
    return [
        PaymentRequirementsV1(
            scheme=accepted.scheme,
            network=network_v1(accepted.network),
            max_amount_required=accepted.amount,
            resource=resource.url if resource else "",
            description=resource.description if resource else "",
            mime_type=resource.mime_type if resource else None,
            pay_to=accepted.pay_to,
            max_timeout_seconds=accepted.max_timeout_seconds,
            asset=accepted.asset,
            extra=accepted.extra,
        )
        for accepted in offer.accepts
    ]


def _document_read(header: str, *, max_bytes: int) -> dict[str, object]:
    if len(header) > max_bytes:
        raise PaymentRefused(
            Reason.INVALID_PAYLOAD,
            f"The payment header is {len(header)} bytes; at most {max_bytes} are read.",
        )
    try:
        # validate=True: refuse what is not base64 instead of skipping it,
        # as the package's decoder (b64decode without it) does.
        raw = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise PaymentRefused(
            Reason.INVALID_PAYLOAD,
            "The payment header is not standard base64 (RFC 4648, with padding).",
        ) from None
    try:
        text = raw.decode("utf-8")
        document = json.loads(text)
    except UnicodeDecodeError:
        raise PaymentRefused(
            Reason.INVALID_PAYLOAD, "The payment header does not decode to UTF-8."
        ) from None
    except (ValueError, RecursionError) as error:
        raise PaymentRefused(
            Reason.INVALID_PAYLOAD, f"The payment header is not JSON: {error}."
        ) from None
    if _nested_deeper_than(document, MAX_NESTING):
        raise PaymentRefused(
            Reason.INVALID_PAYLOAD,
            f"The payment header nests objects and arrays more than {MAX_NESTING} "
            "levels deep.",
        )
    # A JSON escape may name half of a UTF-16 pair ("\ud800"), which UTF-8
    # cannot carry: echoed into a refusal, it could not be written out.
    if "\\u" in text and _holds_lone_surrogate(document):
        raise PaymentRefused(
            Reason.INVALID_PAYLOAD,
            "The payment header escapes a lone UTF-16 surrogate, which is not "
            "Unicode text.",
        )
    if not isinstance(document, dict):
        raise PaymentRefused(
            Reason.INVALID_PAYLOAD, "The payment header must hold a JSON object."
        )
    return document


def _nested_deeper_than(document: object, levels: int) -> bool:
    # A loop, not recursion: the document may be as deep as json.loads
    # allows, and the stack is already deep inside a request.
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        children: Iterable[object]
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > levels:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def _holds_lone_surrogate(document: object) -> bool:
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _shape_read[Payload: (PaymentPayload, PaymentPayloadV1)](
    document: dict[str, object], model: type[Payload]
) -> Payload:
    try:
        return model.model_validate(document)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "payment"
        raise PaymentRefused(
            Reason.INVALID_PAYLOAD,
            f"The payment is not a version-{document['x402Version']} "
            f"PaymentPayload: {where}: {problem['msg']}.",
        ) from None


def _resource_check(payload: PaymentPayload, resource_path: str) -> None:
    """A payment pays for the resource it names and no other.

    The path is compared, not the whole URL, so that the same lesson reached
    through another host name (localhost or 127.0.0.1, a proxy) is still the
    same resource. Neither ``resource`` nor ``accepted`` is covered by the
    signature: this keeps an honest client from spending a payment on the
    wrong lesson; it does not stop whoever holds a payment header from
    rewriting them, which only TLS does.
    """
    if payload.resource is None or not payload.resource.url:
        raise PaymentRefused(
            Reason.RESOURCE_MISMATCH,
            "The payment must name the resource it pays for (resource.url), "
            "as the 402 answer gave it.",
        )
    paid_path = urlsplit(payload.resource.url).path.rstrip("/")
    if paid_path != resource_path.rstrip("/"):
        raise PaymentRefused(
            Reason.RESOURCE_MISMATCH,
            f"This payment was made for {payload.resource.url}; a payment pays "
            "only for the resource it was offered for.",
        )


def _accepted_check(
    accepted: PaymentRequirements, offered: list[PaymentRequirements]
) -> None:
    """What the payer accepted must be one of the offers, field for field.

    The package's matcher would only say "No matching payment requirements";
    this says which term differs. Comparison is as exact as the package's,
    so whatever passes here, the package matches too.
    """
    offer = _offer_of_kind(accepted.scheme, accepted.network, offered)
    extra = accepted.extra or {}
    terms: list[tuple[str, object, object, Reason]] = [
        ("asset", accepted.asset, offer.asset, Reason.ASSET_MISMATCH),
        ("amount", accepted.amount, offer.amount, Reason.VALUE_MISMATCH),
        ("payTo", accepted.pay_to, offer.pay_to, Reason.RECIPIENT_MISMATCH),
        (
            "maxTimeoutSeconds",
            accepted.max_timeout_seconds,
            offer.max_timeout_seconds,
            Reason.INVALID_PAYLOAD,
        ),
    ]
    extra_reasons = {
        "name": Reason.TOKEN_NAME_MISMATCH,
        "version": Reason.TOKEN_VERSION_MISMATCH,
    }
    terms += [
        (
            f"extra.{key}",
            extra.get(key),
            value,
            extra_reasons.get(key, Reason.INVALID_PAYLOAD),
        )
        for key, value in (offer.extra or {}).items()
    ]
    for name, sent, required, reason in terms:
        if sent != required:
            raise PaymentRefused(
                reason,
                f"The payment accepted {name} {sent!r}; the offer here is "
                f"{required!r}.",
            )


def _version_1_convert(
    payment: PaymentPayloadV1, offer: PaymentRequired
) -> PaymentPayload:
    """A version-1 payment as the version-2 payload of the offer it pays.

    Version 1 names the scheme and the network only, so the payment is
    matched to the offer on those and the facilitator checks the signed
    authorization (payee, value, token) against that offer.

    Limitation: a version-1 payment names no resource, so it is bound to a
    lesson only through its terms: one made for another lesson at the same
    price and payee is accepted here. Version-2 payments are bound by their
    ``resource``.
    """
    accepted = _offer_of_kind(
        payment.scheme, _network_from_v1(payment.network), offer.accepts
    )
    return PaymentPayload(
        x402_version=2,
        payload=payment.payload,
        accepted=accepted,
        resource=offer.resource,
    )


def _offer_of_kind(
    scheme: str, network: str, offered: list[PaymentRequirements]
) -> PaymentRequirements:
    for offer in offered:
        if (offer.scheme, offer.network) == (scheme, network):
            return offer
    offers = ", ".join(f"{offer.scheme} on {offer.network}" for offer in offered)
    reason = (
        Reason.NETWORK_MISMATCH
        if any(offer.scheme == scheme for offer in offered)
        else Reason.UNSUPPORTED_SCHEME
    )
    raise PaymentRefused(
        reason,
        f"The payment is for {scheme} on {network}; this lesson is offered as "
        f"{offers}.",
    )


def _network_from_v1(name: str) -> str:
    if NETWORK_RE.fullmatch(name):
        return name
    for chain_id, v1_name in _v1_names().items():
        if v1_name == name:
            return f"eip155:{chain_id}"
    return name


def _v1_names() -> dict[int, str]:
    # Imported here: x402.mechanisms.evm imports web3, about a second, paid
    # only once something is sold.
    from x402.mechanisms.evm.v1.constants import V1_NETWORK_CHAIN_IDS

    return {chain_id: name for name, chain_id in V1_NETWORK_CHAIN_IDS.items()}
