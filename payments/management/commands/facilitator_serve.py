import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

SETTINGS_MODULE = "config.settings_facilitator"


class Command(BaseCommand):
    help = (
        "Serve the site's facilitator as its own process with gunicorn: "
        "POST /verify, POST /settle and GET /supported at the root, settling "
        "on the site's ledger (the same database). Point a site's "
        "X402_FACILITATOR_URL at it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--bind",
            default="127.0.0.1:8402",
            help="host:port to listen on (default 127.0.0.1:8402).",
        )
        parser.add_argument(
            "--workers", type=int, default=2, help="gunicorn workers (default 2)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        environment = {**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE}
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            options["bind"],
            "--workers",
            str(options["workers"]),
            "--access-logfile",
            "-",
            "config.wsgi:application",
        ]
        self.stdout.write(f"The facilitator is at http://{options['bind']}/")
        self.stdout.flush()
        # gunicorn takes this process's place, so that signals sent to it
        # (Ctrl-C, a supervisor's TERM) reach gunicorn itself.
        os.execve(sys.executable, command, environment)
