"""The facilitators a sale is verified and settled by, as the official
package's resource server calls them (its ``FacilitatorClientSync``
protocol: ``verify``, ``settle``, ``get_supported``).

- ``LedgerFacilitator``: the site's own facilitator, called in-process; the
  same answers ``POST /facilitator/verify`` and ``/settle`` give.
- The package's ``HTTPFacilitatorClientSync``, for ``X402_FACILITATOR_URL``
  and for offers settled elsewhere.

Both are wrapped in ``FacilitatorEdge``, which turns a facilitator that is
down, slow or answering garbage into a refusal instead of an exception, and
keeps the last answers of the current request so that the view can tell the
payer the facilitator's own message.
"""

import logging
import re
from contextvars import ContextVar
from dataclasses import dataclass

import httpx
from django.db import DatabaseError
from x402.http import FacilitatorConfig, HTTPFacilitatorClientSync
from x402.schemas import (
    PaymentPayload,
    PaymentPayloadV1,
    PaymentRequirements,
    PaymentRequirementsV1,
    SettleResponse,
    SupportedKind,
    SupportedResponse,
    VerifyResponse,
)
from x402.server import FacilitatorClientSync

from payments import eip3009, selectors, services
from payments.token import token_configured
from payments.verification import SCHEME, X402_VERSION, PaymentRefused, Reason

logger = logging.getLogger(__name__)

AnyPayload = PaymentPayload | PaymentPayloadV1
AnyRequirements = PaymentRequirements | PaymentRequirementsV1


def verify_answer(
    *, payload: PaymentPayload, requirements: PaymentRequirements
) -> VerifyResponse:
    """The site facilitator's answer to a verification."""
    try:
        payment = services.payment_verify(payload=payload, requirements=requirements)
    except PaymentRefused as refusal:
        return VerifyResponse(
            is_valid=False,
            invalid_reason=refusal.reason,
            invalid_message=refusal.message,
            payer=refusal.payer,
        )
    return VerifyResponse(is_valid=True, payer=payment.payer)


def settle_answer(
    *, payload: PaymentPayload, requirements: PaymentRequirements
) -> SettleResponse:
    """The site facilitator's answer to a settlement."""
    try:
        transfer = services.payment_settle(payload=payload, requirements=requirements)
    except PaymentRefused as refusal:
        return SettleResponse(
            success=False,
            error_reason=refusal.reason,
            error_message=refusal.message,
            payer=refusal.payer,
            transaction="",
            network=requirements.network,
        )
    return SettleResponse(
        success=True,
        payer=transfer.payer,
        transaction=transfer.transaction,
        network=transfer.network,
        amount=str(transfer.units),
    )


def supported_answer() -> SupportedResponse:
    kind = SupportedKind(
        x402_version=X402_VERSION, scheme=SCHEME, network=token_configured().network
    )
    # No signers: nothing here signs a chain transaction.
    return SupportedResponse(kinds=[kind], extensions=[], signers={})


class LedgerFacilitator:
    """The site's facilitator without the HTTP round trip."""

    def verify(
        self, payload: AnyPayload, requirements: AnyRequirements
    ) -> VerifyResponse:
        if not isinstance(payload, PaymentPayload) or isinstance(
            requirements, PaymentRequirementsV1
        ):
            # The sale converts version-1 payments before they get here.
            return VerifyResponse(
                is_valid=False,
                invalid_reason=Reason.INVALID_VERSION,
                invalid_message="The site's facilitator verifies version 2 only.",
            )
        try:
            return verify_answer(payload=payload, requirements=requirements)
        except DatabaseError:
            logger.exception("The ledger failed while verifying a payment")
            return VerifyResponse(
                is_valid=False,
                invalid_reason=Reason.UNEXPECTED_VERIFY_ERROR,
                invalid_message="The payment could not be verified; try again.",
            )

    def settle(
        self, payload: AnyPayload, requirements: AnyRequirements
    ) -> SettleResponse:
        if not isinstance(payload, PaymentPayload) or isinstance(
            requirements, PaymentRequirementsV1
        ):
            return SettleResponse(
                success=False,
                error_reason=Reason.INVALID_VERSION,
                error_message="The site's facilitator settles version 2 only.",
                transaction="",
                network=requirements.network,
            )
        try:
            return settle_answer(payload=payload, requirements=requirements)
        except DatabaseError:
            # The settlement's transaction rolled back: nothing moved.
            logger.exception("The ledger failed while settling a payment")
            return SettleResponse(
                success=False,
                error_reason=Reason.UNEXPECTED_SETTLE_ERROR,
                error_message="The payment could not be settled; nothing was charged.",
                transaction="",
                network=requirements.network,
            )

    def get_supported(self) -> SupportedResponse:
        return supported_answer()


@dataclass
class FacilitatorAnswers:
    """What the facilitators answered during one request."""

    verify: VerifyResponse | None = None
    settle: SettleResponse | None = None


# Set by the sale for the length of one request. The package's resource
# server passes on a refusal's reason but drops its message; this keeps it.
current_answers: ContextVar[FacilitatorAnswers | None] = ContextVar(
    "x402_facilitator_answers", default=None
)


class FacilitatorEdge:
    """A facilitator client whose failures are refusals, not exceptions.

    The package's resource server turns an exception from ``verify`` into
    a 402 whose error is the exception's text, which for the HTTP client
    can quote the facilitator's URL and answer; and one from ``settle`` into
    a PAYMENT-RESPONSE carrying the same text. Here they become refusals
    with the reason ``facilitator_unavailable``, logged with the details;
    so does a remote facilitator's answer whose text is too long or not
    Unicode, which could not be written into the payer's answer.
    """

    def __init__(
        self,
        client: FacilitatorClientSync,
        *,
        name: str,
        kinds: frozenset[tuple[str, str]],
        faults: tuple[type[Exception], ...] = (),
        remote: bool = False,
    ) -> None:
        self._client = client
        self.name = name
        # The (network, scheme) pairs this facilitator is to settle.
        self.kinds = kinds
        # What the client raises when the facilitator fails it.
        self._faults = faults
        # A remote facilitator's answers are checked before they are passed
        # on (UnreadableAnswer, one of its faults); ours need no check.
        self._remote = remote
        # Whether /supported answered when the resource server was built.
        self.answered = True

    def verify(
        self, payload: AnyPayload, requirements: AnyRequirements
    ) -> VerifyResponse:
        try:
            answer = self._client.verify(payload, requirements)  # type: ignore[arg-type]
            if self._remote:
                _answer_check(answer)
        except self._faults as error:
            logger.warning("Facilitator %s failed to verify: %s", self.name, error)
            answer = VerifyResponse(
                is_valid=False,
                invalid_reason=Reason.FACILITATOR_UNAVAILABLE,
                invalid_message="The payment facilitator gave no answer that could "
                "be read; nothing was charged. Try again later.",
            )
        self._record(verify=answer)
        return answer

    def settle(
        self, payload: AnyPayload, requirements: AnyRequirements
    ) -> SettleResponse:
        try:
            answer = self._client.settle(payload, requirements)  # type: ignore[arg-type]
            if self._remote:
                _answer_check(answer)
        except self._faults as error:
            logger.warning("Facilitator %s failed to settle: %s", self.name, error)
            answer = _settlement_unconfirmed(payload, requirements)
        self._record(settle=answer)
        return answer

    def get_supported(self) -> SupportedResponse:
        """The kinds this facilitator is to settle, each named by its own
        network; RuntimeError when it does not support one of them.

        Only our kinds: the package's resource server sends a kind to the
        first facilitator whose /supported lists it, so a facilitator that
        also lists another offer's kind would take that offer's payments.
        Each by its own network: the package finds a facilitator by the
        payment's exact network, so a facilitator listing "eip155:*" would
        be initialized and then never found.

        A facilitator that is down, slow or answers garbage is taken to
        support our kinds, and ``answered`` is False: lessons are still
        offered (402), and a payment sent meanwhile is refused by
        ``verify`` with the reason ``facilitator_unavailable``, as when the
        facilitator fails later. The resource server asks again soon
        (payments/resource_server.py).
        """
        try:
            supported = self._client.get_supported()
        except self._faults as error:
            logger.warning(
                "Facilitator %s did not say what it supports: %s", self.name, error
            )
            self.answered = False
            return SupportedResponse(
                kinds=[
                    SupportedKind(
                        x402_version=X402_VERSION, scheme=scheme, network=network
                    )
                    for network, scheme in sorted(self.kinds)
                ],
                extensions=[],
                signers={},
            )
        self.answered = True
        kinds = []
        for network, scheme in sorted(self.kinds):
            listed = next(
                (
                    kind
                    for kind in supported.kinds
                    if kind.x402_version == X402_VERSION
                    and kind.scheme == scheme
                    and _network_matches(network, kind.network)
                ),
                None,
            )
            if listed is None:
                raise RuntimeError(
                    f"Facilitator {self.name} does not list x402 version "
                    f"{X402_VERSION} {scheme!r} on {network} in /supported."
                )
            kinds.append(listed.model_copy(update={"network": network}))
        return supported.model_copy(update={"kinds": kinds})

    @staticmethod
    def _record(
        *, verify: VerifyResponse | None = None, settle: SettleResponse | None = None
    ) -> None:
        answers = current_answers.get()
        if answers is None:
            return
        if verify is not None:
            answers.verify = verify
        if settle is not None:
            answers.settle = settle


def _settlement_unconfirmed(
    payload: AnyPayload, requirements: AnyRequirements
) -> SettleResponse:
    """The answer to a settlement whose facilitator's answer was lost (a
    timeout, a garbled reply): it may have moved the funds all the same.

    A facilitator settling on this site's ledger (``facilitator_serve``
    sharing the database) leaves the transfer there, and the sale goes on
    as settled. Otherwise the payer is told that the settlement is not
    known either way, with what identifies the payment, so that a charge
    made after all is never one they were not told about.

    Limitation: a facilitator that settles elsewhere (a chain) and then
    loses its answer leaves that to the payer and the facilitator; and one
    that settles on the ledger only after this look is not delivered for.
    """
    authorization = _authorization_of(payload)
    if authorization is not None:
        try:
            transfer = selectors.settlement_find(
                network=requirements.network,
                asset=eip3009.address_parse(requirements.asset, field="asset"),
                payer=authorization.payer,
                nonce=authorization.nonce,
            )
        except (DatabaseError, eip3009.MalformedField):
            logger.exception("The ledger could not be searched for a settlement")
            transfer = None
        if (
            transfer is not None
            and transfer.payee == authorization.payee
            and transfer.units == authorization.value
        ):
            logger.warning(
                "The settlement's answer was lost; the ledger holds it as %s",
                transfer.transaction,
            )
            return SettleResponse(
                success=True,
                payer=transfer.payer,
                transaction=transfer.transaction,
                network=requirements.network,
            )
    identified = (
        f" Before paying again, ask the facilitator about the authorization "
        f"from {authorization.payer} with nonce {authorization.nonce}."
        if authorization is not None
        else ""
    )
    return SettleResponse(
        success=False,
        error_reason=Reason.FACILITATOR_UNAVAILABLE,
        error_message="The payment facilitator did not confirm the settlement, "
        "so the content was not delivered; it may have settled the payment all "
        "the same." + identified,
        transaction="",
        network=requirements.network,
    )


def _authorization_of(payload: AnyPayload) -> eip3009.Authorization | None:
    try:
        return eip3009.signed_authorization_parse(payload.payload).authorization
    except eip3009.MalformedField:
        return None


class UnreadableAnswer(ValueError):
    """A facilitator's answer that parsed but cannot be passed on."""


# The longest text of an answer passed on: its reason and message go into
# the 402 answer's headers, which clients read only up to a few kilobytes.
ANSWER_TEXT_MAX = 1000


# A transaction id as chains and facilitators write them (hex, base58,
# base64url): it names the receipt in its address, which a slash, a space
# or a control character would break, and fits Purchase.transaction.
TRANSACTION_RE = re.compile(r"[A-Za-z0-9_.:=+-]{1,128}")


def _answer_check(answer: VerifyResponse | SettleResponse) -> None:
    """Raise UnreadableAnswer when a text of ``answer`` is too long, or is
    no Unicode text (JSON may escape a lone surrogate): written into the
    payer's answer, it would not fit or could not be encoded; and when a
    settlement said to have succeeded names a transaction id no receipt
    could be found by."""
    if (
        isinstance(answer, SettleResponse)
        and answer.success
        and not TRANSACTION_RE.fullmatch(answer.transaction or "")
    ):
        raise UnreadableAnswer("its transaction id is not one a receipt can name")
    for name, value in answer.model_dump().items():
        if not isinstance(value, str):
            continue
        if len(value) > ANSWER_TEXT_MAX:
            raise UnreadableAnswer(f"its {name} is {len(value)} characters long")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UnreadableAnswer(f"its {name} is not Unicode text") from None


def facilitator_for(
    url: str | None, *, timeout: float, kinds: frozenset[tuple[str, str]]
) -> FacilitatorEdge:
    """The site's own facilitator (``url`` None), in-process, or the one at
    ``url`` over HTTP, to settle ``kinds`` (network, scheme)."""
    if url is None:
        return FacilitatorEdge(LedgerFacilitator(), name="in-process", kinds=kinds)
    # The package's default timeout is 90 seconds per call, long enough to
    # hold a worker for the whole of a slow facilitator's outage.
    client = HTTPFacilitatorClientSync(FacilitatorConfig(url=url, timeout=timeout))
    # ValueError: a status other than 200, an answer that is not the
    # expected model (the package's FacilitatorResponseError), or one that
    # cannot be passed on (UnreadableAnswer).
    return FacilitatorEdge(
        client,
        name=url,
        kinds=kinds,
        faults=(httpx.HTTPError, ValueError),
        remote=True,
    )


def _network_matches(network: str, listed: str) -> bool:
    if listed.endswith(":*"):
        return network.startswith(listed[:-1])
    return network == listed
