"""The official package's resource server, shared by every sale, and the
adapter through which it reads a Django request."""

import logging
import math
import time

import httpx
from django.conf import settings
from django.http import HttpRequest
from x402.http.constants import PAYMENT_SIGNATURE_HEADER, X_PAYMENT_HEADER
from x402.schemas import FacilitatorCapabilityError
from x402.server import FacilitatorClientSync, x402ResourceServerSync

from payments.facilitators import facilitator_for
from payments.offers import Offer

logger = logging.getLogger(__name__)


class SaleUnavailable(Exception):
    """Nothing can be sold now: no offer takes the lesson's asset, or no
    facilitator answers."""


class DjangoRequestAdapter:
    """The package's HTTPAdapter over a Django request.

    The payment it shows the package is the one read and checked here, as a
    version-2 PAYMENT-SIGNATURE, whatever header and version it came in.
    """

    def __init__(self, request: HttpRequest, *, payment: str | None) -> None:
        self._request = request
        self._payment = payment

    def get_header(self, name: str) -> str | None:
        if name.upper() == PAYMENT_SIGNATURE_HEADER:
            return self._payment
        if name.upper() == X_PAYMENT_HEADER:
            return None
        return self._request.headers.get(name)

    def get_method(self) -> str:
        return self._request.method or "GET"

    def get_path(self) -> str:
        return self._request.path

    def get_url(self) -> str:
        return self._request.build_absolute_uri()

    def get_accept_header(self) -> str:
        # The package answers browsers with its own HTML paywall, which
        # assumes USDC: it divides every amount by 10**6 and shows dollars,
        # so 0.005 AIN would read "$5000000000.00". Our 402 is JSON always.
        return "application/json"

    def get_user_agent(self) -> str:
        return self._request.headers.get("User-Agent", "")

    def get_query_params(self) -> dict[str, str | list[str]]:
        return {key: self._request.GET.getlist(key) for key in self._request.GET}

    def get_query_param(self, name: str) -> str | None:
        return self._request.GET.get(name)

    def get_body(self) -> None:
        return None


# The resource server is shared by all requests: building it imports web3
# and asks each facilitator's /supported once. Rebuilt when the settings it
# was built from change, and, when a facilitator did not answer /supported,
# after ASK_AGAIN_SECONDS. Two requests may both build it at first; the
# later one is kept, harmlessly.
_cached_server: tuple[object, x402ResourceServerSync, float] | None = None
ASK_AGAIN_SECONDS = 30.0


def resource_server(offers: tuple[Offer, ...]) -> x402ResourceServerSync:
    """The package's resource server for ``offers``, initialized, or
    SaleUnavailable when a facilitator does not support what it is to
    settle."""
    global _cached_server
    key = (
        offers,
        _site_facilitator_url(),
        settings.X402_FACILITATOR_TIMEOUT_SECONDS,
    )
    cached = _cached_server
    if cached is not None and cached[0] == key and time.monotonic() < cached[2]:
        return cached[1]
    server, answered = _resource_server_build(offers)
    # A facilitator that did not answer is asked again soon, not at every
    # request: a slow one would hold each request for its timeout.
    expires = math.inf if answered else time.monotonic() + ASK_AGAIN_SECONDS
    _cached_server = (key, server, expires)
    return server


def _resource_server_build(
    offers: tuple[Offer, ...],
) -> tuple[x402ResourceServerSync, bool]:
    """The resource server, and whether every facilitator answered its
    /supported."""
    # Imported here: x402.mechanisms.evm imports web3, about a second, paid
    # once, at the first sale, and not by every management command.
    from x402.mechanisms.evm.exact import ExactEvmServerScheme

    kinds: dict[str | None, set[tuple[str, str]]] = {}
    for offer in offers:
        url = offer.facilitator_url or _site_facilitator_url()
        kinds.setdefault(url, set()).add((offer.network, offer.scheme))
    edges = [
        facilitator_for(
            url,
            timeout=settings.X402_FACILITATOR_TIMEOUT_SECONDS,
            kinds=frozenset(served),
        )
        for url, served in kinds.items()
    ]
    clients: list[FacilitatorClientSync] = list(edges)
    server = x402ResourceServerSync(clients)
    for network in sorted({offer.network for offer in offers}):
        # For a token it does not know, the package's exact EVM scheme keeps
        # the amount (already in the smallest unit) and the EIP-712 name and
        # version we put in extra.
        # (Its payment_flows table does not type-check against the package's
        # own SchemeNetworkServer protocol.)
        server.register(network, ExactEvmServerScheme())  # type: ignore[arg-type]
    try:
        server.initialize()
    except (
        httpx.HTTPError,
        ValueError,
        RuntimeError,
        FacilitatorCapabilityError,
    ) as error:
        # A facilitator that does not answer is taken to support our kinds
        # (FacilitatorEdge.get_supported); what is left is a facilitator
        # that answers without them (RuntimeError) or whose capabilities
        # the package refuses: the operator's to fix.
        logger.warning("No facilitator for sales: %s", error)
        raise SaleUnavailable(
            "The payment facilitator does not settle the payments lessons are "
            "offered in; lessons cannot be bought now."
        ) from None
    return server, all(edge.answered for edge in edges)


def _site_facilitator_url() -> str | None:
    return settings.X402_FACILITATOR_URL or None
