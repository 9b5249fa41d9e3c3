from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from deployments import registry
from deployments.engine import engine_missing
from deployments.references import reference_parse


class Command(BaseCommand):
    help = (
        "What `make run` does for deployments: start the registry and make the "
        "base image when the engine is there; otherwise say what is missing. "
        "Never fails, so that the site serves either way."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        missing = engine_missing()
        if missing:
            self.stdout.write(
                "Deployments are off on this machine; missing: "
                + "; ".join(missing)
                + ". `make provision` installs them on Debian."
            )
            return
        try:
            registry.registry_start()
            base = reference_parse(settings.DEPLOYMENTS_BASE_IMAGE)
            present = registry.manifest_digest(base.repository, base.tag)
        except registry.RegistryError as error:
            self.stdout.write(f"Deployments are off: {error}")
            return
        if present is None:
            call_command("base_image", stdout=self.stdout)
        self.stdout.write(
            f"Deployments are on: the registry answers at {registry.registry_url()}"
        )
