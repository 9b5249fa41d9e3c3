import argparse
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
            type=_address,
            default="127.0.0.1:8402",
            help="host:port to listen on (default 127.0.0.1:8402).",
        )
        parser.add_argument(
            "--workers",
            type=_workers,
            default=2,
            help="gunicorn workers, at least 1 (default 2).",
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
            # gunicorn 27 opens one control socket per user by default
            # (~/.gunicorn/gunicorn.ctl), which every instance would share.
            "--no-control-socket",
            "config.wsgi:application",
        ]
        self.stdout.write(f"The facilitator is at http://{options['bind']}/")
        self.stdout.flush()
        # gunicorn takes this process's place, so that signals sent to it
        # (Ctrl-C, a supervisor's TERM) reach gunicorn itself.
        os.execve(sys.executable, command, environment)


def _address(text: str) -> str:
    """HOST:PORT, checked before gunicorn starts: it would fail later with
    a traceback (a port past 65535) or retry a name that does not resolve,
    after this command had said where the facilitator is."""
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isascii() or not port.isdigit():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not HOST:PORT, such as 127.0.0.1:8402."
        )
    if not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} names port {int(port)}; a port is 1 to 65535."
        )
    return text


def _workers(text: str) -> int:
    # gunicorn with no workers listens and never answers: a site pointed at
    # it would only ever time out.
    try:
        workers = int(text)
    except ValueError:
        workers = 0
    if workers < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of workers; at least 1 answers requests."
        )
    return workers
