"""Benchmark selling a lesson's body against serving a free one.

1. Drop and recreate the bench database named by DATABASE_URL, migrate it,
   load the bundled lessons and fund a few payer wallets from the mint.
2. Start gunicorn with two sync workers on a free port of 127.0.0.1.
3. Ask the server for a gated lesson's offer and sign, before any timing,
   one fresh payment for every paid request with the official x402 client,
   spread over the payers.
4. After a warm-up, request each row once per round, in a shuffled order,
   round after round, so that noise on the machine falls on all of them
   alike: a free lesson's body, a gated one's 402 answer, and a paid request
   that settles its own payment.
5. Print requests per second, p50 and p95 per row with the ratios to the
   free body, the verdicts on the targets, the database queries of each row
   (in-process) and how many signatures the verification path recovers per
   second.

Run it with ``make bench-payments``. It measures and does not fail when a
target is missed; it exits non-zero only when the setup fails.
"""

# Django has to be configured before the app's modules are imported, so most
# imports come after the setup block below.
# ruff: noqa: E402

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, Python puts bench/ first on the path, where this very file
# would shadow the payments app.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lessongraph_bench_pay"
os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# The in-process query counts should see what the server runs; funding
# wallets from the mint is refused in production.
os.environ["DJANGO_ENV"] = "development"
os.environ["DEBUG"] = "false"

import django

from bench.server import (
    SetupFailed,
    database_reset,
    free_port,
    log_tail,
    server_start,
    server_stop,
    server_wait,
)

django.setup()

import logging

# Loading and funding log every lesson and wallet, and django.request logs
# every 402 as a warning; the bench prints what matters, and errors.
logging.disable(logging.WARNING)

import http.client
import io
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from http import HTTPStatus

from django.core.management import call_command
from django.db import DatabaseError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from eth_account import Account
from eth_account.signers.local import LocalAccount
from x402 import x402ClientSync
from x402.http.constants import PAYMENT_REQUIRED_HEADER, PAYMENT_SIGNATURE_HEADER
from x402.http.utils import (
    decode_payment_required_header,
    decode_payment_signature_header,
    encode_payment_signature_header,
)
from x402.schemas import PaymentPayload, PaymentRequired

from config.errors import ApplicationError
from lessons.models import Lesson
from payments import eip3009
from payments.clients import paying_client
from payments.eip3009 import MalformedField, SignedAuthorization
from payments.services import wallet_fund
from payments.token import token_configured

SEED = 402
WARMUP_ROUNDS = 20
REQUESTS_PER_ROW = 300
# Payments are spread over several payers, so that no two requests in a
# row wait on the same balance's lock.
PAYER_COUNT = 8
# Each payer also pays for the in-process query count of the paid row.
SPARE_PAYMENTS_PER_PAYER = 2
BENCH_CACHE_URL = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/10")
QUERY_COUNT_REQUESTS = 5

FREE = "free lesson body"
OFFER = "402 answer, gated lesson"
PAID = "paid request, settled"
# The targets: each row's requests per second against the free body's.
TARGETS = {OFFER: 0.8, PAID: 0.3}


@dataclass(frozen=True)
class Row:
    """One kind of request: a path, the status it must answer, and for paid
    requests one payment header per request, in order."""

    name: str
    path: str
    status: HTTPStatus
    payments: tuple[str, ...] = ()

    def headers(self, index: int) -> dict[str, str]:
        if not self.payments:
            return {}
        return {PAYMENT_SIGNATURE_HEADER: self.payments[index]}


@dataclass(frozen=True)
class Figures:
    row: Row
    timings_ms: list[float]

    def percentile(self, rank: int) -> float:
        cuts = statistics.quantiles(self.timings_ms, n=100, method="inclusive")
        return cuts[rank - 1]

    @property
    def per_second(self) -> float:
        """Requests per second of one sequential client."""
        return len(self.timings_ms) / (sum(self.timings_ms) / 1000)


@dataclass(frozen=True)
class Sale:
    """What the bench sells: a free and a gated lesson, and who pays."""

    free: Lesson
    gated: Lesson
    payers: list[LocalAccount]


def main() -> int:
    try:
        bench(random.Random(SEED), os.environ["DATABASE_URL"])
    except SetupFailed as error:
        print(f"bench: setup failed: {error}", file=sys.stderr)
        return 1
    return 0


def bench(rng: random.Random, database_url: str) -> None:
    started = time.monotonic()
    database_reset(database_url)
    try:
        call_command("migrate", verbosity=0, interactive=False)
        call_command("load_bundled", verbosity=0, stdout=io.StringIO())
        sale = sale_prepare()
    except (DatabaseError, ApplicationError) as error:
        raise SetupFailed(f"cannot fill the bench database: {error}") from error
    print(
        f"Loaded {Lesson.objects.count()} bundled lessons and funded "
        f"{len(sale.payers)} payers in {time.monotonic() - started:.1f} s; "
        f"free lesson {sale.free.slug!r}, gated lesson {sale.gated.slug!r} "
        f"({sale.gated.price_display})."
    )

    port = free_port()
    with tempfile.TemporaryFile() as server_log:
        server = server_start(port, database_url, BENCH_CACHE_URL, server_log)
        try:
            server_wait(server, port, server_log)
            try:
                offer = offer_fetch(port, sale.gated)
                payments = payments_sign(
                    offer, sale.payers, WARMUP_ROUNDS + REQUESTS_PER_ROW
                )
                rows = bench_rows(sale, payments)
                figures = measure(port, rows, rng)
            except SetupFailed as error:
                raise SetupFailed(f"{error}\n{log_tail(server_log)}") from error
        finally:
            server_stop(server)
    report_timings(figures)
    report_queries(sale, rows)
    report_verifications(payments)


def sale_prepare() -> Sale:
    """Pick a free and a gated bundled lesson and fund the payers with what
    all their payments need."""
    free = Lesson.objects.free().order_by("slug").first()
    gated = Lesson.objects.paid().order_by("slug").first()
    if free is None or gated is None:
        raise SetupFailed("the bundled lessons lack a free or a gated lesson")
    if gated.price_amount is None:
        raise SetupFailed(f"the gated lesson {gated.slug!r} has no price")
    price = token_configured().units_from_text(gated.price_amount)

    payments_per_payer = -(-(WARMUP_ROUNDS + REQUESTS_PER_ROW) // PAYER_COUNT)
    payers: list[LocalAccount] = [Account.create() for _ in range(PAYER_COUNT)]
    for payer in payers:
        wallet_fund(
            address=payer.address,
            amount=price * (payments_per_payer + SPARE_PAYMENTS_PER_PAYER),
        )
    return Sale(free=free, gated=gated, payers=payers)


def content_path(lesson: Lesson) -> str:
    return f"/api/lessons/{lesson.slug}/content"


def offer_fetch(port: int, lesson: Lesson) -> PaymentRequired:
    """The version-2 offer the server makes for ``lesson``."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        client.request("GET", content_path(lesson))
        response = client.getresponse()
        response.read()
    except (http.client.HTTPException, ConnectionError) as error:
        raise SetupFailed(f"cannot fetch the offer: {error}") from error
    finally:
        client.close()
    header = response.getheader(PAYMENT_REQUIRED_HEADER)
    if response.status != HTTPStatus.PAYMENT_REQUIRED or header is None:
        raise SetupFailed(
            f"GET {content_path(lesson)} answered {response.status} without an offer"
        )
    return offer_decode(header)


def offer_decode(header: str) -> PaymentRequired:
    offer = decode_payment_required_header(header)
    if not isinstance(offer, PaymentRequired):
        raise SetupFailed("the server made a version-1 offer")
    return offer


def payment_clients(
    offer: PaymentRequired, payers: list[LocalAccount]
) -> list[x402ClientSync]:
    """One official client per payer, as a paying program sets it up."""
    accepted = offer.accepts[0]
    return [
        paying_client(payer, network=accepted.network, asset=accepted.asset)
        for payer in payers
    ]


def payments_sign(
    offer: PaymentRequired, payers: list[LocalAccount], count: int
) -> list[str]:
    """``count`` fresh payment headers for ``offer``, taking the payers in
    turn. Signed before the timing starts; each stays valid for the offer's
    maxTimeoutSeconds."""
    clients = payment_clients(offer, payers)
    started = time.perf_counter()
    headers = [
        encode_payment_signature_header(
            payment_create(clients[index % len(clients)], offer)
        )
        for index in range(count)
    ]
    elapsed = time.perf_counter() - started
    print(
        f"Signed {count} payments with the official client in {elapsed:.2f} s "
        f"({count / elapsed:.0f} per second); each is valid for "
        f"{offer.accepts[0].max_timeout_seconds} s."
    )
    return headers


def payment_create(client: x402ClientSync, offer: PaymentRequired) -> PaymentPayload:
    payload = client.create_payment_payload(offer)
    if not isinstance(payload, PaymentPayload):
        raise SetupFailed("the official client made a version-1 payment")
    return payload


def bench_rows(sale: Sale, payments: list[str]) -> list[Row]:
    """The baseline first, then the rows it is compared with."""
    return [
        Row(FREE, content_path(sale.free), HTTPStatus.OK),
        Row(OFFER, content_path(sale.gated), HTTPStatus.PAYMENT_REQUIRED),
        Row(PAID, content_path(sale.gated), HTTPStatus.OK, tuple(payments)),
    ]


def measure(port: int, rows: list[Row], rng: random.Random) -> list[Figures]:
    """Time sequential GETs from one client, one per row per round; the
    warm-up rounds also start the resource server in both workers."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    timings: dict[str, list[float]] = {row.name: [] for row in rows}
    order = list(rows)
    try:
        for index in range(WARMUP_ROUNDS + REQUESTS_PER_ROW):
            rng.shuffle(order)
            for row in order:
                elapsed = timed_get(client, row, index)
                if index >= WARMUP_ROUNDS:
                    timings[row.name].append(elapsed)
    finally:
        client.close()
    return [Figures(row, timings[row.name]) for row in rows]


def timed_get(client: http.client.HTTPConnection, row: Row, index: int) -> float:
    """Milliseconds from sending the request to reading the whole answer.

    gunicorn's sync workers close the connection after every answer, so each
    request opens a new one; that cost is the same for every row. A request
    is retried once only if the connection broke before an answer came.
    """
    for attempt in range(2):
        started = time.perf_counter()
        try:
            client.request("GET", row.path, headers=row.headers(index))
            response = client.getresponse()
            content = response.read()
        except (http.client.RemoteDisconnected, ConnectionError) as error:
            client.close()
            if attempt:
                raise SetupFailed(f"GET {row.path} failed: {error}") from error
            continue
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != row.status:
            raise SetupFailed(
                f"{row.name}: GET {row.path} answered {response.status}, not "
                f"{row.status.value}: {content[:300]!r}"
            )
        return elapsed
    raise AssertionError("unreachable")


def report_timings(figures: list[Figures]) -> None:
    baseline = figures[0]
    width = max(len(row.row.name) for row in figures)
    print()
    print(
        f"{'request':<{width}}  {'n':>4}  {'req/s':>7}  {'p50 ms':>7}  "
        f"{'p95 ms':>7}  {'max ms':>7}  {'req/s ratio':>11}"
    )
    for row in figures:
        print(
            f"{row.row.name:<{width}}  {len(row.timings_ms):>4}  "
            f"{row.per_second:>7.1f}  {row.percentile(50):>7.2f}  "
            f"{row.percentile(95):>7.2f}  {max(row.timings_ms):>7.2f}  "
            f"{row.per_second / baseline.per_second:>11.2f}"
        )

    print()
    labels = {
        OFFER: "402 answer at least {:g}x the ungated request",
        PAID: "paid request at least {:g}x",
    }
    for name, target in TARGETS.items():
        row = next(row for row in figures if row.row.name == name)
        ratio = row.per_second / baseline.per_second
        verdict = "MET" if ratio >= target else "NOT MET"
        print(f'Target "{labels[name].format(target)}": {verdict} (ratio {ratio:.3f})')


def report_queries(sale: Sale, rows: list[Row]) -> None:
    """Count the queries of each row in-process, against the same database,
    with payments of its own for the paid row."""
    client = Client(headers={"host": "127.0.0.1"})
    unpaid = client.get(content_path(sale.gated))
    if unpaid.status_code != HTTPStatus.PAYMENT_REQUIRED:
        raise SetupFailed(f"in-process offer answered {unpaid.status_code}")
    offer = offer_decode(unpaid[PAYMENT_REQUIRED_HEADER])
    clients = payment_clients(offer, sale.payers)

    print()
    print(f"Database queries per request (in-process, {QUERY_COUNT_REQUESTS} each):")
    for row in rows:
        counts = []
        for index in range(QUERY_COUNT_REQUESTS):
            headers = {}
            if row.payments:
                payment = payment_create(clients[index % len(clients)], offer)
                headers[PAYMENT_SIGNATURE_HEADER] = encode_payment_signature_header(
                    payment
                )
            counts.append(query_count(client, row, headers))
        counts.sort()
        spread = (
            str(counts[0]) if counts[0] == counts[-1] else f"{counts[0]}-{counts[-1]}"
        )
        print(f"  {row.name}: {spread}")


def query_count(client: Client, row: Row, headers: dict[str, str]) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(row.path, headers=headers)
    if response.status_code != row.status:
        raise SetupFailed(
            f"in-process GET {row.path} answered {response.status_code}, not "
            f"{row.status.value}"
        )
    return len(queries)


def report_verifications(payments: list[str]) -> None:
    """Time the signature check of the verification path
    (payments/verification.py: ``eip3009.signer_recover``) in-process, over
    the payments the paid row sent, parsed beforehand."""
    domain = token_configured().domain
    signed: list[SignedAuthorization] = []
    for header in payments:
        payload = decode_payment_signature_header(header)
        try:
            signed.append(eip3009.signed_authorization_parse(payload.payload))
        except MalformedField as error:
            raise SetupFailed(f"a signed payment cannot be parsed: {error}") from error

    # Uncached: the memo of eip3009.signer_recover would time dictionary
    # lookups for payments already checked by the query count.
    recover = eip3009.signer_recover.__wrapped__
    started = time.perf_counter()
    signers = [recover(payment, domain) for payment in signed]
    elapsed = time.perf_counter() - started

    wrong = sum(
        signer != payment.authorization.payer
        for signer, payment in zip(signers, signed, strict=True)
    )
    if wrong:
        raise SetupFailed(f"{wrong} signatures did not recover their payer")
    print()
    print(
        f"Signature verifications (eip3009.signer_recover, in-process): "
        f"{len(signed) / elapsed:.0f} per second "
        f"({elapsed / len(signed) * 1000:.2f} ms each over {len(signed)})."
    )


if __name__ == "__main__":
    sys.exit(main())
