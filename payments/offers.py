"""The offers a gated lesson is sold through, read from ``X402_OFFERS``.

An offer is one way to pay: a scheme, a network, a token, a payee and the
facilitator that settles it. The default is one offer in the site's own
token (``X402_NETWORK``, ``X402_ASSET_*``), paid to ``X402_SITE_PAY_TO`` and
settled by the site's own facilitator (in-process, or ``X402_FACILITATOR_URL``
when that is set). An operator adds offers settled elsewhere by listing them
with every key and a ``facilitator_url``; see ``offer_from_setting``.

A lesson is priced in one asset (``Lesson.asset``, a symbol such as "AIN");
it is offered through every offer whose token has that symbol.
"""

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from payments.eip3009 import MalformedField, address_parse
from payments.models import MINT_ADDRESS
from payments.token import NETWORK_RE, Token, token_configured
from payments.verification import SCHEME

logger = logging.getLogger(__name__)

OFFER_KEYS = {
    "scheme",
    "network",
    "asset",
    "symbol",
    "name",
    "version",
    "decimals",
    "pay_to",
    "facilitator_url",
}
# The keys an offer settled by another facilitator must spell out; ours
# default to the site's token.
TOKEN_KEYS = ("network", "asset", "symbol", "name", "version", "decimals")


@dataclass(frozen=True)
class Offer:
    scheme: str
    token: Token
    pay_to: str
    # None: the site's own facilitator.
    facilitator_url: str | None

    @property
    def network(self) -> str:
        return self.token.network


@dataclass(frozen=True)
class LessonOffer:
    """An offer with the price of what is sold in it: one lesson, or the
    lessons of a path, each price in the token's smallest unit."""

    offer: Offer
    prices: tuple[int, ...]
    # Who is paid: the offer's payee, or the lesson's author.
    pay_to: str

    @property
    def amount(self) -> int:
        return sum(self.prices)


def site_pay_to() -> str:
    """The site's wallet, checksummed; a bad setting fails loudly."""
    try:
        return address_parse(settings.X402_SITE_PAY_TO, field="X402_SITE_PAY_TO")
    except MalformedField as error:
        raise ImproperlyConfigured(str(error)) from None


# The settings offers are made from. Offers are read on every sale and 402
# answer, so they are built once per distinct value of these.
OFFER_SETTINGS = (
    "X402_OFFERS", "X402_SITE_PAY_TO", "X402_NETWORK", "X402_ASSET",
    "X402_ASSET_ADDRESS", "X402_ASSET_NAME", "X402_ASSET_VERSION",
    "X402_ASSET_DECIMALS",
)  # fmt: skip


def offers_configured() -> tuple[Offer, ...]:
    """Every offer from the settings, checked: a bad one fails loudly."""
    key = tuple(repr(getattr(settings, name)) for name in OFFER_SETTINGS)
    return _offers_built(key)


@functools.lru_cache(maxsize=8)
def _offers_built(settings_key: tuple[str, ...]) -> tuple[Offer, ...]:
    entries = settings.X402_OFFERS
    if not isinstance(entries, list | tuple) or not entries:
        raise ImproperlyConfigured("X402_OFFERS must be a non-empty list of offers.")
    offers = tuple(
        offer_from_setting(entry, index=index) for index, entry in enumerate(entries)
    )
    _one_facilitator_per_kind(offers)
    return offers


def offer_from_setting(entry: Any, *, index: int) -> Offer:
    """One entry of ``X402_OFFERS``.

    ``{"scheme": "exact"}`` is the site's own offer: its token, its wallet
    (``pay_to`` may name another) and its facilitator. An offer with a
    ``facilitator_url`` is settled by that facilitator over HTTP and must
    name its token in full: ``network`` (CAIP-2), ``asset`` (the contract),
    ``symbol``, ``name`` and ``version`` (the EIP-712 domain), ``decimals``,
    and its ``pay_to``.
    """
    where = f"X402_OFFERS[{index}]"
    if not isinstance(entry, dict):
        raise ImproperlyConfigured(f"{where} must be a dict.")
    unknown = sorted(set(entry) - OFFER_KEYS)
    if unknown:
        raise ImproperlyConfigured(f"{where} has unknown keys: {', '.join(unknown)}.")
    if entry.get("scheme") != SCHEME:
        # The extra fields, the signature checks and the receipts here are
        # the "exact" EVM scheme's.
        raise ImproperlyConfigured(
            f"{where}: scheme must be {SCHEME!r}, got {entry.get('scheme')!r}."
        )

    facilitator_url = entry.get("facilitator_url") or None
    if facilitator_url is None:
        token = _site_token(entry, where)
    else:
        if not isinstance(facilitator_url, str) or not facilitator_url.startswith(
            ("http://", "https://")
        ):
            raise ImproperlyConfigured(
                f"{where}: facilitator_url must be an http(s) URL."
            )
        token = _token_from_setting(entry, where)

    pay_to = entry.get("pay_to")
    if pay_to is None and facilitator_url is not None:
        raise ImproperlyConfigured(f"{where}: an external offer must name its pay_to.")
    try:
        payee = (
            site_pay_to()
            if pay_to is None
            else address_parse(pay_to, field=f"{where}.pay_to")
        )
    except MalformedField as error:
        raise ImproperlyConfigured(str(error)) from None
    if payee == MINT_ADDRESS:
        raise ImproperlyConfigured(f"{where}: nothing can be paid to the zero address.")
    return Offer(
        scheme=SCHEME, token=token, pay_to=payee, facilitator_url=facilitator_url
    )


def offers_for(
    *,
    asset: str,
    prices: Sequence[str],
    offers: tuple[Offer, ...],
    author_pay_to: str | None = None,
) -> list[LessonOffer]:
    """The offers that sell lessons priced ``prices`` (decimal strings) of
    ``asset``, each lesson's price in the token's smallest unit.

    An offer settled by the site's own facilitator pays ``author_pay_to``
    when given: the wallet of the author of a lesson sold on its own. An
    offer settled elsewhere pays its configured payee, the only address
    the operator knows that facilitator can pay.

    An offer whose token cannot hold a price exactly (more decimal places
    than the token has) is left out and logged.
    """
    if not prices:
        return []
    priced = []
    for offer in offers:
        if offer.token.symbol != asset:
            continue
        try:
            units = tuple(offer.token.units_from_text(price) for price in prices)
        except ValueError as error:
            logger.warning(
                "Offer on %s cannot carry a price of %s %s: %s",
                offer.network,
                " + ".join(prices),
                asset,
                error,
            )
            continue
        pay_to = offer.pay_to
        if author_pay_to is not None and offer.facilitator_url is None:
            pay_to = author_pay_to
        priced.append(LessonOffer(offer=offer, prices=units, pay_to=pay_to))
    return priced


def _site_token(entry: dict[str, Any], where: str) -> Token:
    token = token_configured()
    differing = [
        key
        for key in TOKEN_KEYS
        if key in entry and entry[key] != _token_field(token, key)
    ]
    if differing:
        # Our facilitator settles the site's token and nothing else.
        raise ImproperlyConfigured(
            f"{where}: an offer settled by the site's own facilitator is in the "
            f"site's token; {', '.join(differing)} differ. Give a facilitator_url "
            "for another token."
        )
    return token


def _token_field(token: Token, key: str) -> object:
    return {
        "network": token.network,
        "asset": token.address,
        "symbol": token.symbol,
        "name": token.name,
        "version": token.version,
        "decimals": token.decimals,
    }[key]


def _token_from_setting(entry: dict[str, Any], where: str) -> Token:
    missing = [key for key in TOKEN_KEYS if key not in entry]
    if missing:
        raise ImproperlyConfigured(
            f"{where}: an external offer must name {', '.join(missing)}."
        )
    match = NETWORK_RE.fullmatch(str(entry["network"]))
    if match is None:
        raise ImproperlyConfigured(
            f"{where}: network must be a CAIP-2 EVM network such as eip155:8453."
        )
    decimals = entry["decimals"]
    if type(decimals) is not int or not 0 <= decimals <= 36:
        raise ImproperlyConfigured(f"{where}: decimals must be an integer, 0 to 36.")
    for key in ("symbol", "name", "version"):
        if not isinstance(entry[key], str) or not entry[key]:
            raise ImproperlyConfigured(f"{where}: {key} must be a non-empty string.")
    try:
        address = address_parse(entry["asset"], field=f"{where}.asset")
    except MalformedField as error:
        raise ImproperlyConfigured(str(error)) from None
    return Token(
        symbol=entry["symbol"],
        network=entry["network"],
        chain_id=int(match.group("chain_id")),
        address=address,
        name=entry["name"],
        version=entry["version"],
        decimals=decimals,
    )


def _one_facilitator_per_kind(offers: tuple[Offer, ...]) -> None:
    # The package's x402ResourceServerSync keeps one facilitator per
    # (network, scheme): the first whose /supported lists the pair wins and
    # later ones are silently never asked. Two offers of one kind settled
    # by different facilitators would quietly go to the same one.
    chosen: dict[tuple[str, str], str | None] = {}
    for offer in offers:
        kind = (offer.network, offer.scheme)
        if kind in chosen and chosen[kind] != offer.facilitator_url:
            raise ImproperlyConfigured(
                f"X402_OFFERS: offers of scheme {offer.scheme!r} on {offer.network} "
                "must share one facilitator."
            )
        chosen[kind] = offer.facilitator_url
