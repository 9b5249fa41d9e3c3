"""Selling a gated lesson's body through x402.

The official package's resource server does the protocol: it builds the
offers, matches a payment to one, has the facilitator verify and settle it,
and writes the PAYMENT-* headers. ``lesson_sell`` drives it for one Django
request, as the package's Flask middleware (x402/http/middleware/flask.py)
drives it for Flask:

1. ``process_http_request``: the offer (402), a refusal, or a verified
   payment;
2. the view renders the body, which is held back;
3. ``process_settlement``, only if the view succeeded;
4. the body leaves only after the settlement succeeded, with its receipt
   headers, and the sale is recorded as a Purchase.

Around it, what the package leaves out: a strict reading of the payment
header with a reason for each refusal (payments/headers.py), version-1
payments and the version-1 402 body, binding a payment to its lesson, CORS
exposure of the headers, the facilitator's own refusal messages, and the
Purchase.

What one payment buys is ``Goods``: a lesson, or the lessons of a
learning path that the buyer does not own yet (``path_sell``). A buyer who
names an account (a session or an API token) gets what the account owns
without paying, and what it buys is recorded with it.

A sale that may settle runs in one database transaction, holding a lock on
the buyer's account when there is one, so that an account never pays twice
for a lesson. With the site's own facilitator in-process the settlement is
part of that transaction: a sale that cannot be recorded is not charged.
"""

import fcntl
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import reverse
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from x402.http import (
    HTTPRequestContext,
    PaymentOption,
    RouteConfig,
    x402HTTPResourceServerSync,
)
from x402.http.constants import (
    PAYMENT_REQUIRED_HEADER,
    PAYMENT_RESPONSE_HEADER,
    PAYMENT_SIGNATURE_HEADER,
    X_PAYMENT_HEADER,
    X_PAYMENT_RESPONSE_HEADER,
)
from x402.http.types import (
    RESULT_PAYMENT_ERROR,
    RESULT_PAYMENT_VERIFIED,
    HTTPProcessResult,
    HTTPTransportContext,
    ProcessSettleResult,
)
from x402.http.utils import (
    decode_payment_required_header,
    encode_payment_required_header,
    encode_payment_response_header,
    encode_payment_signature_header,
)
from x402.http.x402_http_server_base import with_private_cache_control
from x402.schemas import (
    AssetAmount,
    PaymentPayload,
    PaymentRequired,
    PaymentRequiredV1,
    PaymentRequirements,
    SettleResponse,
)
from x402.server import x402ResourceServerSync

from accounts.authentication import BearerTokenAuthentication
from accounts.models import User
from lessons.graph import LearningPath
from lessons.models import Lesson
from payments.facilitators import FacilitatorAnswers, current_answers
from payments.headers import payment_read, requirements_v1
from payments.models import AccountWallet, Purchase
from payments.offers import LessonOffer, offers_configured, offers_for
from payments.resource_server import (
    DjangoRequestAdapter,
    SaleUnavailable,
    resource_server,
)
from payments.services import purchase_record, wallet_for
from payments.token import token_configured
from payments.verification import PaymentRefused, Reason
from payments.wallets import WalletCannotPay, payment_sign

logger = logging.getLogger(__name__)

# Browsers let a page's script read only the response headers named here.
EXPOSED_HEADERS = ", ".join(
    [PAYMENT_REQUIRED_HEADER, PAYMENT_RESPONSE_HEADER, X_PAYMENT_RESPONSE_HEADER]
)
UNAVAILABLE_RETRY_SECONDS = 30
# Offers built by the package, by what they were built from: the 402
# answer is the most frequent one, and its offer changes only with them.
OFFERS_KEPT = 512
_offers_kept: dict[tuple[object, ...], PaymentRequired] = {}


@dataclass(frozen=True)
class Resource:
    """What is sold, as the 402 answer describes it."""

    url: str
    description: str
    mime_type: str

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


@dataclass(frozen=True)
class Goods:
    """What one payment buys: gated lessons, in the order they are read."""

    lessons: tuple[Lesson, ...]
    # For people: "the lesson “Dockerfiles”", "the path to “Dockerfiles”".
    name: str
    # Where a person buys it: the lesson's page, or the path's.
    page: str

    @property
    def opening(self) -> str:
        """The name, to open a sentence with."""
        return self.name[:1].upper() + self.name[1:]

    @property
    def label(self) -> str:
        """For logs: the lessons' slugs."""
        return ", ".join(lesson.slug for lesson in self.lessons)

    @property
    def price_display(self) -> str:
        if len(self.lessons) == 1:
            return self.lessons[0].price_display
        return LearningPath(
            lesson=self.lessons[-1], steps=list(self.lessons)
        ).totals_display

    def author_pay_to(self) -> str | None:
        """The wallet of the author of a lesson sold on its own, when the
        author has one. A path's lessons have several authors and a payment
        one payee: bundles pay the site."""
        if len(self.lessons) != 1:
            return None
        author = self.lessons[0].author
        wallet = getattr(author, "wallet", None) if author is not None else None
        return wallet.address if wallet is not None else None


def lesson_sell(
    request: HttpRequest,
    *,
    lesson: Lesson,
    resource: Resource,
    render: Callable[[], HttpResponse],
) -> HttpResponse:
    """Answer a request for a gated lesson's body: the offer, a refusal, or
    the body, rendered by ``render`` and delivered only once paid.

    A HEAD request gets the offer and never settles a payment: it could not
    deliver what was paid for.

    An account that bought the lesson (signed in, or with its API token)
    gets the body at once; a payment it sends as well is left unsettled.
    """
    return _sell(
        request,
        wanted=[lesson],
        name=f"the lesson “{lesson.title}”",
        page=lesson.get_absolute_url(),
        resource=resource,
        render=render,
    )


def path_sell(
    request: HttpRequest,
    *,
    path: LearningPath,
    resource: Resource,
    render: Callable[[], HttpResponse],
) -> HttpResponse:
    """As ``lesson_sell``, for every lesson of ``path`` at once: one payment
    for the gated lessons the buyer's account does not own yet (all of
    them for a buyer who names no account)."""
    return _sell(
        request,
        wanted=path.steps,
        name=f"the path to “{path.lesson.title}”",
        page=_path_page(path),
        resource=resource,
        render=render,
    )


def _sell(
    request: HttpRequest,
    *,
    wanted: Sequence[Lesson],
    name: str,
    page: str,
    resource: Resource,
    render: Callable[[], HttpResponse],
) -> HttpResponse:
    try:
        account = _account_of(request)
    except AuthenticationFailed as error:
        response = JsonResponse({"detail": str(error.detail)}, status=401)
        response["WWW-Authenticate"] = BearerTokenAuthentication.keyword
        # Like every answer of a sold resource that is not the body itself.
        response["Cache-Control"] = "no-store"
        return response
    paying = request.method != "HEAD" and _payment_sent(request)
    answers = FacilitatorAnswers()
    token = current_answers.set(answers)
    try:
        with _sale_held(account, paying=paying):
            goods = _goods_unowned(account, wanted, name=name, page=page)
            if goods is None:
                return _owned(render())
            sale = _sale_open(request, goods=goods, resource=resource, answers=answers)
            sale.account = account
            return sale.answer(render)
    except SaleUnavailable as error:
        return _unavailable(str(error))
    finally:
        current_answers.reset(token)


class PriceChanged(Exception):
    """What a person was shown before buying is not what the goods cost
    now: nothing was charged. ``price`` is the price now."""

    def __init__(self, goods: Goods, *, shown: str) -> None:
        self.price = goods.price_display
        self.shown = shown
        if shown:
            message = (
                f"{goods.opening} costs {self.price} now, not the {shown} "
                "your page showed."
            )
        else:
            message = (
                f"{goods.opening} costs {self.price}; the page you bought from "
                "did not say so."
            )
        super().__init__(message)
        self.message = message


class SaleRefused(Exception):
    """A payment refused or not settled: nothing was delivered. ``reason``
    is the machine reason, the facilitator's own word when it gave one."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Verified:
    """A payment the facilitator verified, ready to settle."""

    payload: PaymentPayload
    requirements: PaymentRequirements
    context: HTTPRequestContext
    result: HTTPProcessResult


@dataclass(frozen=True)
class AccountPurchase:
    """What an account bought, a Purchase per lesson; empty when it owned
    everything already and nothing was charged."""

    purchases: list[Purchase]

    @property
    def new(self) -> bool:
        return bool(self.purchases)


def lessons_buy(
    request: HttpRequest,
    *,
    account: User,
    wanted: Sequence[Lesson],
    name: str,
    page: str,
    resource: Resource,
    price_shown: str,
) -> AccountPurchase:
    """Buy the gated lessons of ``wanted`` that ``account`` does not own,
    in one payment from the account's own wallet, at ``price_shown``: the
    price the buyer was shown and agreed to, as ``Goods.price_display``
    writes it.

    1. The account's wallet, made (and outside production funded) on first
       need.
    2. In one transaction, holding a lock on the account, so that its buys
       run one at a time: the lessons it does not own yet; when there are
       none, nothing is charged. When they cost other than
       ``price_shown`` (a price changed since the page was shown, or a
       lesson of a path was bought in another tab), nothing is charged
       either: PriceChanged.
    3. Otherwise the wallet signs the offer as the official client does,
       and the payment goes through what a program's payment goes through
       (``Sale``): the strict header reading, the package's matching, the
       facilitator's verification and settlement. The purchases are
       recorded with the account.

    With the site's own facilitator, in-process, the settlement is part of
    the transaction: a purchase that cannot be recorded is not charged.
    Raises PriceChanged, SaleRefused (nothing was settled) or
    SaleUnavailable.
    """
    wallet = wallet_for(account)
    answers = FacilitatorAnswers()
    token = current_answers.set(answers)
    try:
        with _account_held(account, in_process=_settles_in_process()):
            goods = _goods_unowned(account, wanted, name=name, page=page)
            if goods is None:
                return AccountPurchase(purchases=[])
            if goods.price_display != price_shown:
                raise PriceChanged(goods, shown=price_shown)
            sale = _sale_open(request, goods=goods, resource=resource, answers=answers)
            purchases = sale.sell_to_account(wallet)
    finally:
        current_answers.reset(token)
    return AccountPurchase(purchases=purchases)


def lesson_buy(
    request: HttpRequest,
    *,
    account: User,
    lesson: Lesson,
    resource: Resource,
    price_shown: str,
) -> AccountPurchase:
    """Buy ``lesson`` for ``account``, as ``lessons_buy``."""
    return lessons_buy(
        request,
        account=account,
        wanted=[lesson],
        name=f"the lesson “{lesson.title}”",
        page=lesson.get_absolute_url(),
        resource=resource,
        price_shown=price_shown,
    )


def path_buy(
    request: HttpRequest,
    *,
    account: User,
    path: LearningPath,
    resource: Resource,
    price_shown: str,
) -> AccountPurchase:
    """Buy what ``account`` does not own of ``path``, as ``lessons_buy``."""
    return lessons_buy(
        request,
        account=account,
        wanted=path.steps,
        name=f"the path to “{path.lesson.title}”",
        page=_path_page(path),
        resource=resource,
        price_shown=price_shown,
    )


def lesson_resource(
    request: HttpRequest, *, lesson: Lesson, mime_type: str
) -> Resource:
    """The lesson's body as the offer names it: its content URL."""
    path = reverse("payments-api:lesson-content", kwargs={"slug": lesson.slug})
    return Resource(
        url=request.build_absolute_uri(path),
        description=f"The full text of the lesson {lesson.title!r}.",
        mime_type=mime_type,
    )


def path_resource(request: HttpRequest, *, path: LearningPath) -> Resource:
    """A learning path's bundle as the offer names it: its URL."""
    url = reverse("payments-api:path-bundle", kwargs={"slug": path.lesson.slug})
    return Resource(
        url=request.build_absolute_uri(url),
        description=(
            f"The full text of every lesson of the learning path to "
            f"{path.lesson.title!r}."
        ),
        mime_type="application/json",
    )


def _sale_open(
    request: HttpRequest,
    *,
    goods: Goods,
    resource: Resource,
    answers: FacilitatorAnswers,
) -> "Sale":
    """The sale of ``goods`` through every offer that takes their asset,
    or SaleUnavailable."""
    assets = sorted({lesson.asset for lesson in goods.lessons})
    if len(assets) > 1:
        raise SaleUnavailable(
            f"The lessons of {goods.name} are priced in {' and '.join(assets)}; "
            "one payment carries one asset. Buy them one by one."
        )
    configured = offers_configured()
    offers = offers_for(
        asset=assets[0],
        prices=[lesson.price_amount or "0" for lesson in goods.lessons],
        offers=configured,
        author_pay_to=goods.author_pay_to(),
    )
    if not offers:
        logger.warning("%s priced in %s, which no offer takes", goods.label, assets[0])
        raise SaleUnavailable(
            f"{goods.opening} is priced in {assets[0]}, which no payment "
            "offer takes; it cannot be bought now."
        )
    return Sale(
        request,
        goods=goods,
        resource=resource,
        server=resource_server(configured),
        offers=offers,
        answers=answers,
    )


def _goods_unowned(
    account: User | None, wanted: Sequence[Lesson], *, name: str, page: str
) -> Goods | None:
    """The gated lessons of ``wanted`` that ``account`` neither wrote nor
    owns, or None when there are none."""
    gated = [lesson for lesson in wanted if lesson.gated]
    if account is not None and gated:
        # An author reads their own lessons without buying them.
        gated = [lesson for lesson in gated if lesson.author_id != account.pk]
        owned = set(
            Purchase.objects.of_account(account)
            .filter(lesson__in=[lesson.pk for lesson in gated])
            .values_list("lesson_id", flat=True)
        )
        gated = [lesson for lesson in gated if lesson.pk not in owned]
    if not gated:
        return None
    return Goods(lessons=tuple(gated), name=name, page=page)


def _settles_in_process() -> bool:
    """Whether an offer may be settled by the site's own facilitator, in
    this process."""
    if settings.X402_FACILITATOR_URL:
        return False
    return any(offer.facilitator_url is None for offer in offers_configured())


def _path_page(path: LearningPath) -> str:
    return reverse("lessons:path", kwargs={"slug": path.lesson.slug})


def _sale_held(account: User | None, *, paying: bool) -> AbstractContextManager[Any]:
    """What a sale runs in. The settlement is part of the sale's transaction
    when the site's own facilitator makes it; a remote facilitator settles
    in its own, and holding a transaction here meanwhile would, on SQLite,
    lock the whole database against a facilitator sharing it
    (facilitator_serve) until the client gave up, and the payment would
    settle with nothing sold."""
    if not paying:
        return nullcontext()
    in_process = _settles_in_process()
    if account is not None:
        return _account_held(account, in_process=in_process)
    return transaction.atomic() if in_process else nullcontext()


@contextmanager
def _account_held(account: User, *, in_process: bool) -> Iterator[None]:
    """Run the account's purchases one at a time, so that it never pays
    twice for a lesson.

    The lock is the account's row, held by a transaction, except on SQLite
    with a remote facilitator: there a transaction would lock the whole
    database against a facilitator sharing it (facilitator_serve), so the
    lock is a file beside the database, which every process of a SQLite
    site shares, and the sale writes in its own short transactions.
    """
    if in_process or connection.vendor != "sqlite":
        with transaction.atomic():
            list(
                User.objects.select_for_update().filter(pk=account.pk).values_list("pk")
            )
            yield
        return

    folder = Path(settings.DATA_DIR) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"account-{account.pk}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class Sale:
    """One request for one purchase: a lesson, or a path's lessons."""

    def __init__(
        self,
        request: HttpRequest,
        *,
        goods: Goods,
        resource: Resource,
        server: x402ResourceServerSync,
        offers: list[LessonOffer],
        answers: FacilitatorAnswers,
    ) -> None:
        self.request = request
        self.goods = goods
        self.resource = resource
        self.server = server
        self.offers = offers
        self.answers = answers
        # The account the buyer named, which the purchase is recorded with.
        self.account: User | None = None
        self.header_name: str | None = None
        self._offer: PaymentRequired | None = None
        self._http_server: x402HTTPResourceServerSync | None = None

    @property
    def http_server(self) -> x402HTTPResourceServerSync:
        """The package's HTTP server for one route, matching every path:
        this request's goods. The resource server behind it is shared."""
        if self._http_server is None:
            route = RouteConfig(
                accepts=[_payment_option(offer) for offer in self.offers],
                resource=self.resource.url,
                description=self.resource.description,
                mime_type=self.resource.mime_type,
            )
            self._http_server = x402HTTPResourceServerSync(self.server, route)
        return self._http_server

    def answer(self, render: Callable[[], HttpResponse]) -> HttpResponse:
        """The steps of the module's docstring, after reading the payment
        header (payments/headers.py)."""
        if self.request.method == "HEAD":
            return self._refusal(self._unpaid_message())
        try:
            header = self._payment_header()
            if header is None:
                return self._refusal(self._unpaid_message())
            verified = self._verify(header)
        except (PaymentRefused, SaleRefused) as refusal:
            return self._refusal(refusal.message, reason=refusal.reason)

        response = render()
        if response.status_code >= 400:
            # The view failed: nothing is settled and nothing is charged.
            return response

        # In the sale's transaction (``_sell``): with the site's own
        # facilitator in-process, the settlement and the purchase are
        # committed together or not at all.
        settled = self._settle(verified, response_headers=dict(response.items()))
        if not settled.success:
            return self._settlement_refusal(settled)
        try:
            self._purchase_record(settled, verified)
        except SaleNotRecorded:
            transaction.set_rollback(True)
            return self._refusal(
                "The sale could not be recorded, so the payment was not settled "
                "and nothing was charged. Try again.",
                reason=Reason.SALE_NOT_RECORDED,
            )
        return self._delivered(response, settled)

    def sell_to_account(self, wallet: AccountWallet) -> list[Purchase]:
        """Pay the offer from ``wallet`` and record the purchases with its
        account; SaleRefused when the payment is refused or not settled.
        The caller holds the transaction and the lock on the account."""
        try:
            payload = payment_sign(wallet, offer=self.offer(), token=token_configured())
        except WalletCannotPay as error:
            raise SaleUnavailable(str(error)) from None
        verified = self._verify(encode_payment_signature_header(payload))

        settled = self._settle(verified, response_headers={})
        if not settled.success:
            answer = self._settlement_answer(settled)
            reason = answer.error_reason or Reason.UNEXPECTED_SETTLE_ERROR
            logger.info(
                "Payment for %s by account %s not settled: %s",
                self.goods.label,
                wallet.account_id,
                reason,
            )
            raise SaleRefused(
                reason,
                f"The payment was not settled: {answer.error_message or reason}",
            )
        if not settled.transaction:
            raise RuntimeError(f"{self.goods.label} settled without a transaction id.")
        requirements = verified.requirements
        # Errors propagate: the caller's transaction then undoes the
        # settlement too, when the site's own facilitator made it.
        return purchase_record(
            lines=self._lines(requirements),
            transaction_id=settled.transaction,
            payer=settled.payer or wallet.address,
            payee=requirements.pay_to,
            asset=requirements.asset,
            network=settled.network or requirements.network,
            account=wallet.account,
        )

    def _verify(self, header: str) -> Verified:
        """Read the payment strictly, then have the package match it to the
        offer and the facilitator verify it; SaleRefused otherwise."""
        try:
            try:
                payload = payment_read(
                    header,
                    offer=self.offer(),
                    resource_path=self.resource.path,
                    max_bytes=settings.X402_PAYMENT_HEADER_MAX_BYTES,
                )
            except PaymentRefused as refusal:
                raise SaleRefused(refusal.reason, refusal.message) from None
            context = self._context(encode_payment_signature_header(payload))
            result = self.http_server.process_http_request(context)
            if result.type == RESULT_PAYMENT_ERROR:
                raise self._verification_refusal(result)
        except SaleRefused as refusal:
            logger.info("Payment for %s refused: %s", self.goods.label, refusal.reason)
            raise
        if (
            result.type != RESULT_PAYMENT_VERIFIED
            or result.payment_payload is None
            or result.payment_requirements is None
        ):
            raise RuntimeError(f"A paid request came back as {result.type!r}.")
        return Verified(
            payload=payload,
            requirements=result.payment_requirements,
            context=context,
            result=result,
        )

    def _settle(
        self, verified: Verified, *, response_headers: dict[str, str]
    ) -> ProcessSettleResult:
        result = verified.result
        assert result.payment_payload is not None
        return self.http_server.process_settlement(
            result.payment_payload,
            verified.requirements,
            context=verified.context,
            declared_extensions=result.declared_extensions,
            transport_context=HTTPTransportContext(
                request=verified.context, response_headers=response_headers
            ),
            before_handler_settlement=result.before_handler_settlement,
        )

    def offer(self) -> PaymentRequired:
        """The goods' offer, as the package answers an unpaid request."""
        if self._offer is None:
            key = (
                self.server,
                self.resource,
                tuple(self.offers),
                settings.X402_MAX_TIMEOUT_SECONDS,
            )
            offer = _offers_kept.get(key)
            if offer is None:
                offer = self._offer_build()
                if len(_offers_kept) >= OFFERS_KEPT:
                    _offers_kept.clear()
                _offers_kept[key] = offer
            self._offer = offer
        return self._offer

    def _offer_build(self) -> PaymentRequired:
        result = self.http_server.process_http_request(self._context(None))
        header = (result.response.headers if result.response else {}).get(
            PAYMENT_REQUIRED_HEADER
        )
        if header is None:
            # The package answers 500 when it cannot build the offers.
            logger.error(
                "No offer could be built for %s: %s",
                self.goods.label,
                result.response.body if result.response else result.type,
            )
            raise SaleUnavailable(f"{self.goods.opening} cannot be bought now.")
        offer = decode_payment_required_header(header)
        if not isinstance(offer, PaymentRequired):
            raise RuntimeError("The package built a version-1 offer.")
        return offer

    def _payment_header(self) -> str | None:
        signature = self.request.headers.get(PAYMENT_SIGNATURE_HEADER)
        legacy = self.request.headers.get(X_PAYMENT_HEADER)
        if signature is not None and legacy is not None:
            raise PaymentRefused(
                Reason.AMBIGUOUS_PAYMENT,
                "Send one payment, in PAYMENT-SIGNATURE or in X-PAYMENT, not both.",
            )
        if signature is not None:
            self.header_name = PAYMENT_SIGNATURE_HEADER
            return signature
        if legacy is not None:
            self.header_name = X_PAYMENT_HEADER
            return legacy
        return None

    def _context(self, payment: str | None) -> HTTPRequestContext:
        return HTTPRequestContext(
            adapter=DjangoRequestAdapter(self.request, payment=payment),
            path=self.request.path,
            method=self.request.method or "GET",
            payment_header=payment,
        )

    def _unpaid_message(self) -> str:
        return f"Payment required: {self.goods.name} costs {self.goods.price_display}."

    def _verification_refusal(self, result: HTTPProcessResult) -> SaleRefused:
        refused = self.answers.verify
        if refused is not None and not refused.is_valid:
            reason = refused.invalid_reason or Reason.INVALID_PAYLOAD
            message = refused.invalid_message or reason
        else:
            # Refused by the package itself, before any facilitator.
            header = (result.response.headers if result.response else {}).get(
                PAYMENT_REQUIRED_HEADER
            )
            package_error = (
                decode_payment_required_header(header).error if header else None
            )
            reason = Reason.INVALID_PAYLOAD
            message = package_error or "The payment was refused."
        return SaleRefused(reason, message)

    def _settlement_refusal(self, settled: ProcessSettleResult) -> HttpResponse:
        answer = self._settlement_answer(settled)
        reason = answer.error_reason or Reason.UNEXPECTED_SETTLE_ERROR
        logger.info("Payment for %s not settled: %s", self.goods.label, reason)
        response = self._refusal(
            f"The payment was not settled: {answer.error_message or reason}",
            reason=reason,
        )
        self._receipt_headers(response, settled)
        return response

    def _settlement_answer(self, settled: ProcessSettleResult) -> SettleResponse:
        """The facilitator's answer to a failed settlement, or one made here
        when it failed before any facilitator answered."""
        answer = self.answers.settle
        if answer is None:
            # Failed before any facilitator answered; the package would put
            # the exception's text in PAYMENT-RESPONSE.
            logger.error(
                "Settlement for %s failed: %s",
                self.goods.label,
                settled.error_reason,
            )
            answer = SettleResponse(
                success=False,
                error_reason=Reason.UNEXPECTED_SETTLE_ERROR,
                error_message="The payment could not be settled.",
                transaction="",
                network=settled.network or "",
            )
            settled.headers = {
                PAYMENT_RESPONSE_HEADER: encode_payment_response_header(answer)
            }
        return answer

    def _refusal(self, message: str, *, reason: str | None = None) -> HttpResponse:
        """402 with the offer twice: in PAYMENT-REQUIRED for version 2 and
        as the body for version 1, each with ``message`` as its error. A
        browser gets a page instead of the version-1 body: the paywall."""
        offer = self.offer().model_copy(update={"error": message})
        response: HttpResponse
        if _from_browser(self.request):
            page = render_to_string(
                "payments/paywall.html",
                {
                    "goods": self.goods,
                    "resource": self.resource,
                    # Why a payment sent was refused; a request that sent
                    # none needs no more than the offer itself.
                    "refusal": "" if message == self._unpaid_message() else message,
                },
                request=self.request,
            )
            response = HttpResponse(page, status=402)
        else:
            body: dict[str, Any] = PaymentRequiredV1(
                error=message, accepts=requirements_v1(offer)
            ).model_dump(mode="json", by_alias=True, exclude_none=True)
            if reason is not None:
                # Beside the version-1 fields, which clients read; extra
                # fields are ignored by the package's models.
                body["reason"] = str(reason)
            response = JsonResponse(body, status=402)
        response[PAYMENT_REQUIRED_HEADER] = encode_payment_required_header(offer)
        response["Cache-Control"] = "no-store"
        response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response

    def _delivered(
        self, response: HttpResponse, settled: ProcessSettleResult
    ) -> HttpResponse:
        self._receipt_headers(response, settled)
        # Paid for by one payer: no shared cache may keep it.
        response["Cache-Control"] = with_private_cache_control(
            response.get("Cache-Control")
        )
        response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response

    def _receipt_headers(
        self, response: HttpResponse, settled: ProcessSettleResult
    ) -> None:
        for name, value in settled.headers.items():
            response[name] = value
        receipt = settled.headers.get(PAYMENT_RESPONSE_HEADER)
        if receipt is not None and self.header_name == X_PAYMENT_HEADER:
            response[X_PAYMENT_RESPONSE_HEADER] = receipt

    def _purchase_record(
        self, settled: ProcessSettleResult, verified: Verified
    ) -> None:
        """Record the sale. When the site's own facilitator settled it in
        this transaction, a sale that cannot be recorded raises
        SaleNotRecorded, which undoes the settlement. A settlement made
        elsewhere cannot be undone: the payer has paid, the body is
        delivered all the same, and the settlement stays in that
        facilitator's records."""
        requirements = verified.requirements
        if not settled.transaction:
            logger.error(
                "%s settled without a transaction id; no receipt recorded",
                self.goods.label,
            )
            return
        settled_here = self._settled_here(requirements)
        checked = self.answers.verify
        payer = (
            settled.payer
            or (checked.payer if checked else None)
            or _authorization_payer(verified.payload)
        )
        try:
            purchase_record(
                lines=self._lines(requirements),
                transaction_id=settled.transaction,
                payer=payer or "",
                payee=requirements.pay_to,
                asset=requirements.asset,
                network=settled.network or requirements.network,
                account=self.account,
                settled_here=settled_here,
            )
        except (DatabaseError, ValidationError) as error:
            logger.exception(
                "Sale of %s in transaction %s was not recorded",
                self.goods.label,
                settled.transaction,
            )
            if settled_here:
                raise SaleNotRecorded from error

    def _lines(self, requirements: PaymentRequirements) -> list[tuple[Lesson, int]]:
        """Each lesson sold with its price, from the offer the payment took."""
        for lesson_offer in self.offers:
            if _offer_matches(lesson_offer, requirements):
                return list(zip(self.goods.lessons, lesson_offer.prices, strict=True))
        raise RuntimeError(
            f"A payment for {self.goods.label} matched none of its offers."
        )

    def _settled_here(self, requirements: PaymentRequirements) -> bool:
        """Whether the site's own facilitator settled in this process, and
        so in this database transaction."""
        if settings.X402_FACILITATOR_URL:
            return False
        return any(
            lesson_offer.offer.facilitator_url is None
            for lesson_offer in self.offers
            if _offer_matches(lesson_offer, requirements)
        )


class SaleNotRecorded(Exception):
    """Settled by the site's own facilitator but not recorded: raised to
    undo the settlement with the transaction."""


def _offer_matches(
    lesson_offer: LessonOffer, requirements: PaymentRequirements
) -> bool:
    offer = lesson_offer.offer
    return (
        offer.network == requirements.network
        and offer.token.address.lower() == requirements.asset.lower()
        and lesson_offer.pay_to.lower() == requirements.pay_to.lower()
        and str(lesson_offer.amount) == requirements.amount
    )


def _payment_option(lesson_offer: LessonOffer) -> PaymentOption:
    offer = lesson_offer.offer
    token = offer.token
    return PaymentOption(
        scheme=offer.scheme,
        pay_to=lesson_offer.pay_to,
        # An AssetAmount, not a price such as "$0.01": the package converts
        # money only into the stablecoins it knows.
        price=AssetAmount(
            amount=str(lesson_offer.amount),
            asset=token.address,
            extra={"name": token.name, "version": token.version},
        ),
        network=offer.network,
        max_timeout_seconds=settings.X402_MAX_TIMEOUT_SECONDS,
    )


def _authorization_payer(payload: PaymentPayload) -> str | None:
    authorization = payload.payload.get("authorization")
    if isinstance(authorization, dict) and isinstance(authorization.get("from"), str):
        return str(authorization["from"])
    return None


def _from_browser(request: HttpRequest) -> bool:
    """A person's browser, which reads a page better than JSON: it asks for
    HTML first and names itself as browsers do. A program that wants the
    HTML body (``Accept: text/html``) still gets the version-1 JSON."""
    return (
        "Mozilla/" in request.headers.get("User-Agent", "")
        and request.get_preferred_type(["text/html", "application/json"]) == "text/html"
    )


def _payment_sent(request: HttpRequest) -> bool:
    return (
        PAYMENT_SIGNATURE_HEADER in request.headers
        or X_PAYMENT_HEADER in request.headers
    )


def _unavailable(message: str) -> HttpResponse:
    response = JsonResponse({"detail": message}, status=503)
    response["Retry-After"] = str(UNAVAILABLE_RETRY_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _account_of(request: HttpRequest) -> User | None:
    """The account asking: by its API token when the request carries one,
    else by its session. AuthenticationFailed for a bad token."""
    authenticated = (
        BearerTokenAuthentication().authenticate(Request(request))
        if "Authorization" in request.headers
        else None
    )
    if authenticated is not None:
        user: User = authenticated[0]
        return user
    # Without a session cookie nobody is signed in; reading request.user
    # would load an empty session and mark the answer "Vary: Cookie".
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return None
    if isinstance(request.user, User) and request.user.is_authenticated:
        return request.user
    return None


def _owned(response: HttpResponse) -> HttpResponse:
    # For one account: no cache may keep it, not even the browser's, which
    # would show it after signing out.
    response["Cache-Control"] = "private, no-store"
    return response
