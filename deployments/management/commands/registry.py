from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from deployments import registry


class Command(BaseCommand):
    help = (
        "Start or stop the site's private registry on 127.0.0.1 (configuration "
        "and bcrypt htpasswd under DEPLOYMENTS_DIR/registry), or say if it answers."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("action", choices=["start", "stop", "status"])

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "start":
                pid = registry.registry_start()
                self.stdout.write(
                    f"The registry answers at {registry.registry_url()}"
                    + (f" (pid {pid})" if pid else "")
                )
            elif action == "stop":
                stopped = registry.registry_stop()
                self.stdout.write(
                    "The registry stopped." if stopped else "No registry of ours ran."
                )
            elif registry.registry_answers():
                self.stdout.write(f"The registry answers at {registry.registry_url()}")
            else:
                raise CommandError(f"No registry answers at {registry.registry_url()}")
        except registry.RegistryError as error:
            raise CommandError(str(error)) from None
