from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.errors import ApplicationError
from payments.services import wallet_create


class Command(BaseCommand):
    help = (
        "Make a wallet: write a new private key to FILE (mode 0600, never over "
        "an existing file) and print its address."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--key-file", type=Path, required=True, help="Where to write the key."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            address = wallet_create(key_file=options["key_file"])
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(address)
