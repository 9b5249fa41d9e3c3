from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.errors import ApplicationError
from payments.services import wallet_fund
from payments.token import token_configured


class Command(BaseCommand):
    help = (
        "Mint tokens into a wallet, for development and tests; refused in "
        "production. AMOUNT is in whole tokens, such as 1.5."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("address")
        parser.add_argument("amount", help="Whole tokens, such as 1.5 or 0.005.")

    def handle(self, *args: Any, **options: Any) -> None:
        token = token_configured()
        try:
            units = token.units_from_text(options["amount"])
            transfer = wallet_fund(address=options["address"], amount=units)
        except ValueError as error:
            raise CommandError(str(error)) from None
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            f"Funded {transfer.payee} with {token.text_from_units(units)} "
            f"in transfer {transfer.transaction}."
        )
