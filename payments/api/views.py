"""The x402 facilitator API: ``POST /verify``, ``POST /settle`` and
``GET /supported``, mounted under ``/facilitator/``.

Bodies are read and written with the official package's models
(``x402.schemas``), so their shape is the package's. Resource servers call
these endpoints, not browsers: no CSRF check and no session.

A refused payment is an answer, not an error: 200 with ``isValid`` (or
``success``) false and the reason, as the specification's examples show.
The package's HTTPFacilitatorClient raises on any status but 200, so only a
request that cannot be read at all gets a 400, in the same shape.
"""

import json

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from pydantic import BaseModel, ValidationError
from x402.schemas import (
    SettleRequest,
    SettleResponse,
    VerifyRequest,
    VerifyResponse,
)

from payments import facilitators
from payments.verification import X402_VERSION, Reason

MAX_BODY_BYTES = 64 * 1024


class BadRequest(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@csrf_exempt
@require_POST
def verify(request: HttpRequest) -> JsonResponse:
    try:
        body = _request_read(request, VerifyRequest)
    except BadRequest as error:
        return _answer(
            VerifyResponse(
                is_valid=False,
                invalid_reason=error.reason,
                invalid_message=error.message,
            ),
            status=400,
        )
    return _answer(
        facilitators.verify_answer(
            payload=body.payment_payload, requirements=body.payment_requirements
        )
    )


@csrf_exempt
@require_POST
def settle(request: HttpRequest) -> JsonResponse:
    try:
        body = _request_read(request, SettleRequest)
    except BadRequest as error:
        return _answer(
            SettleResponse(
                success=False,
                error_reason=error.reason,
                error_message=error.message,
                transaction="",
                network="",
            ),
            status=400,
        )
    return _answer(
        facilitators.settle_answer(
            payload=body.payment_payload, requirements=body.payment_requirements
        )
    )


@csrf_exempt  # so that a POST is told 405, as on the other two
@require_GET
def supported(request: HttpRequest) -> JsonResponse:
    return _answer(facilitators.supported_answer())


def _answer(model: BaseModel, *, status: int = 200) -> JsonResponse:
    return JsonResponse(
        model.model_dump(mode="json", by_alias=True, exclude_none=True), status=status
    )


def _request_read[Body: (VerifyRequest, SettleRequest)](
    request: HttpRequest, model: type[Body]
) -> Body:
    """The body as the package's request model, or BadRequest saying why."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES or (
        declared.isdigit() and int(declared) > MAX_BODY_BYTES
    ):
        raise BadRequest(
            Reason.INVALID_PAYLOAD, f"The body is larger than {MAX_BODY_BYTES} bytes."
        )
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise BadRequest(
            Reason.INVALID_PAYLOAD, f"The body is not JSON: {error}"
        ) from None
    if not isinstance(document, dict):
        raise BadRequest(Reason.INVALID_PAYLOAD, "The body must be a JSON object.")
    _version_check(document)
    try:
        return model.model_validate(document)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        reason = (
            Reason.INVALID_REQUIREMENTS
            if problem["loc"][:1] == ("paymentRequirements",)
            else Reason.INVALID_PAYLOAD
        )
        raise BadRequest(reason, f"{where}: {problem['msg']}.") from None


def _version_check(document: dict[str, object]) -> None:
    """Version 2 only, in the request and in its payload.

    Version 1 would not be cheap: the package's VerifyRequest and
    SettleRequest hold version-2 payloads only, and version 1 names
    networks ("base-sepolia") instead of CAIP-2 ids, with no name for a
    local chain such as ours.
    """
    if "x402Version" not in document:
        raise BadRequest(
            Reason.INVALID_VERSION,
            f"x402Version is missing; this facilitator speaks version {X402_VERSION}.",
        )
    payload = document.get("paymentPayload")
    versions = [document["x402Version"]]
    if isinstance(payload, dict):
        versions.append(payload.get("x402Version", X402_VERSION))
    for version in versions:
        # type() and not isinstance(): JSON's true is not version 1.
        if type(version) is not int or version != X402_VERSION:
            raise BadRequest(
                Reason.INVALID_VERSION,
                f"x402Version {version!r} is not supported; this facilitator "
                f"speaks version {X402_VERSION} only.",
            )
