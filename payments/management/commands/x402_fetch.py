import json
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pydantic
import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse
from eth_account import Account
from eth_account.signers.local import LocalAccount
from x402.http.clients.requests import PaymentError, wrapRequestsWithPayment
from x402.http.utils import (
    decode_payment_required_header,
    decode_payment_response_header,
)
from x402.schemas import PaymentRequirements

from config.parsing import positive_seconds
from payments.clients import paying_client
from payments.token import Token, token_configured

DEFAULT_MAX_AMOUNT = "0.01"


class Command(BaseCommand):
    help = (
        "Fetch URL, paying with x402 from the wallet in --key-file when it asks, "
        "at most --max-amount for the request. Prints the content on standard "
        "output and the receipt on standard error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("url")
        parser.add_argument(
            "--key-file", type=Path, required=True, help="The payer's private key."
        )
        parser.add_argument(
            "--max-amount",
            default=DEFAULT_MAX_AMOUNT,
            help=f"The most to pay for this request, in whole tokens (default "
            f"{DEFAULT_MAX_AMOUNT}).",
        )
        parser.add_argument(
            "--accept",
            # Markdown for a lesson's body, JSON for what has no Markdown
            # form, such as a learning path's bundle.
            default="text/markdown, application/json;q=0.5",
            help="The Accept header (default: Markdown, else JSON); "
            "text/markdown, text/html or application/json.",
        )
        parser.add_argument(
            "--timeout",
            type=positive_seconds,
            default=30.0,
            help="Seconds per HTTP request.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        token = token_configured()
        try:
            cap = token.units_from_text(options["max_amount"])
        except ValueError as error:
            raise CommandError(f"--max-amount: {error}") from None
        session = paying_session(_account_read(options["key_file"]), token, cap=cap)
        url = options["url"]

        try:
            # Closed at once: a refused payment leaves the offer unread on
            # a kept-alive connection, which the server would wait on.
            with session:
                response = session.get(
                    url,
                    headers={"Accept": options["accept"]},
                    timeout=options["timeout"],
                )
        except PaymentError as error:
            price = _price_above_cap(
                url, accept=options["accept"], timeout=options["timeout"], token=token
            )
            if price is not None and price > cap:
                suffix = f" {token.symbol}"
                raise CommandError(
                    f"Not paid: the price, {token.text_from_units(price)}, is above "
                    f"--max-amount {token.text_from_units(cap)}; nothing was paid. "
                    f"Pass --max-amount {token.text_from_units(price).removesuffix(suffix)} "
                    "to pay it."
                ) from None
            raise CommandError(f"Not paid: {_payment_error_text(error)}") from None
        except requests.RequestException as error:
            raise CommandError(f"Cannot fetch {url}: {error}") from None
        if response.status_code == 402:
            raise CommandError(f"Not paid: {_refusal_text(response)}")
        if not response.ok:
            raise CommandError(
                f"{url} answered {response.status_code}: {response.text[:300]}"
            )

        self.stdout.write(
            response.text, ending="" if response.text.endswith("\n") else "\n"
        )
        self._receipt_write(response, token, timeout=options["timeout"])

    def _receipt_write(
        self, response: requests.Response, token: Token, *, timeout: float
    ) -> None:
        header = response.headers.get("PAYMENT-RESPONSE") or response.headers.get(
            "X-PAYMENT-RESPONSE"
        )
        if not header:
            self.stderr.write("Nothing was paid: the content is free.")
            return
        settled = decode_payment_response_header(header)
        amount = int(settled.amount) if settled.amount else None
        paid = token.text_from_units(amount) if amount is not None else "the price"
        self.stderr.write(
            f"Paid {paid} from {settled.payer} on {settled.network} in "
            f"transaction {settled.transaction}."
        )
        # The site's own receipt, when the URL is this site's.
        receipt_url = urljoin(
            response.url,
            reverse(
                "payments-api:purchase-receipt",
                kwargs={"transaction": settled.transaction},
            ),
        )
        try:
            receipt = requests.get(receipt_url, timeout=timeout)
        except requests.RequestException:
            return
        if receipt.ok and receipt.headers.get("Content-Type", "").startswith(
            "application/json"
        ):
            self.stderr.write(f"Receipt {receipt_url}:")
            self.stderr.write(json.dumps(receipt.json(), indent=2))


def paying_session(
    account: LocalAccount, token: Token, *, cap: int
) -> requests.Session:
    """A requests session that pays x402 offers in ``token`` from
    ``account``, at most ``cap`` (smallest units) a request.

    The official client, unmodified apart from its configuration.
    """
    client = paying_client(account, network=token.network, asset=token.address, cap=cap)
    return wrapRequestsWithPayment(requests.Session(), client)


def _payment_error_text(error: PaymentError) -> str:
    """Why the official client did not pay; an offer it could not read is
    named as such, field by field, without pydantic's own wording around."""
    cause = error.__cause__
    if isinstance(cause, pydantic.ValidationError):
        problems = "; ".join(
            f"{'.'.join(map(str, problem['loc'])) or 'the offer'}: {problem['msg']}"
            for problem in cause.errors()[:5]
        )
        return (
            f"the server's payment offer (PAYMENT-REQUIRED) is malformed: {problems}."
        )
    return str(error)


def _account_read(key_file: Path) -> LocalAccount:
    try:
        key = key_file.read_text().strip()
    except OSError as error:
        raise CommandError(f"Cannot read {key_file}: {error.strerror}.") from None
    try:
        return Account.from_key(key)
    except ValueError:
        # Never the key itself in a message.
        raise CommandError(f"{key_file} does not hold a private key.") from None


def _price_above_cap(
    url: str, *, accept: str, timeout: float, token: Token
) -> int | None:
    """The lowest price the unpaid answer at ``url`` asks in ``token``, or
    None when it asks none: read again when the client refused to pay, so
    that the buyer is told the price and the option that caps it, not the
    client's own setting."""
    try:
        response = requests.get(url, headers={"Accept": accept}, timeout=timeout)
    except requests.RequestException:
        return None
    header = response.headers.get("PAYMENT-REQUIRED")
    if response.status_code != 402 or not header:
        return None
    try:
        offer = decode_payment_required_header(header)
    except ValueError:
        return None
    prices = [
        int(accepted.amount)
        for accepted in offer.accepts
        if isinstance(accepted, PaymentRequirements)
        and (accepted.network, accepted.asset.lower())
        == (token.network, token.address.lower())
        and accepted.amount.isdigit()
    ]
    return min(prices, default=None)


def _refusal_text(response: requests.Response) -> str:
    """Why a paid request still answered 402, from its headers."""
    settled = response.headers.get("PAYMENT-RESPONSE")
    if settled:
        answer = decode_payment_response_header(settled)
        return f"{answer.error_reason}: {answer.error_message or ''}".strip(": ")
    required = response.headers.get("PAYMENT-REQUIRED")
    if not required:
        return response.text[:300]
    error = decode_payment_required_header(required).error or "payment refused"
    try:
        reason = response.json().get("reason")
    except (ValueError, AttributeError):
        reason = None
    return f"{error} ({reason})" if reason else error
