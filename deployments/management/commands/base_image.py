from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from deployments import buildah, registry


class Command(BaseCommand):
    help = (
        "Make the worked examples' base image from a static busybox (no public "
        "registry is reachable) and push it to the site's registry."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--busybox",
            default="/bin/busybox",
            help="a statically linked busybox (Debian: busybox-static)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        busybox = Path(options["busybox"])
        if not busybox.is_file():
            raise CommandError(f"{busybox} is missing: apt-get install busybox-static")
        try:
            registry.registry_start()
            digest = buildah.base_image_build(
                busybox=busybox,
                destination=settings.DEPLOYMENTS_BASE_IMAGE,
                on_line=lambda line: None,
            )
        except (registry.RegistryError, buildah.BuildahError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"{settings.DEPLOYMENTS_BASE_IMAGE} is {digest}")
