from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from payments import selectors
from payments.eip3009 import MalformedField, address_parse
from payments.token import token_configured


class Command(BaseCommand):
    help = "Show a wallet's balance and its transfers, oldest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("address")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            address = address_parse(options["address"], field="The address")
        except MalformedField as error:
            raise CommandError(str(error)) from None
        token = token_configured()

        balance = selectors.balance_of(token=token, address=address)
        self.stdout.write(f"{address} on {token.network}")
        self.stdout.write(f"Balance: {token.text_from_units(balance)} ({balance})")
        for transfer in selectors.transfers_of(token=token, address=address):
            received = transfer.payee == address
            sign = "+" if received else "-"
            other = transfer.payer if received else transfer.payee
            self.stdout.write(
                f"{transfer.created:%Y-%m-%d %H:%M:%S} {transfer.kind:<10} "
                f"{sign}{token.text_from_units(transfer.units)} "
                f"{'from' if received else 'to'} {other} {transfer.transaction}"
            )
