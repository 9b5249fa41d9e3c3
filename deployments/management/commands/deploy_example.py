import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from config.errors import ApplicationError
from config.parsing import positive_seconds
from deployments import services
from deployments.models import Run, Step

POLL_SECONDS = 0.3


class Command(BaseCommand):
    help = (
        "Run a lesson's worked example (build, leak gate, push, sign, deploy, "
        "verify) on the Celery worker, as an instructor; --follow prints each "
        "step as it goes."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("slug", help="the lesson whose worked example runs")
        parser.add_argument(
            "--as", dest="account", required=True, help="the instructor's name"
        )
        parser.add_argument("--target", default="local")
        parser.add_argument(
            "--builder",
            choices=[choice.value for choice in Run.Builder],
            default="buildah",
        )
        parser.add_argument("--follow", action="store_true")
        parser.add_argument(
            "--timeout",
            type=positive_seconds,
            default=600,
            help="seconds --follow waits",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        account = User.objects.filter(username__iexact=options["account"]).first()
        if account is None:
            raise CommandError(f"There is no account {options['account']!r}.")
        try:
            run = services.run_start(
                account=account,
                kind=Run.Kind.EXAMPLE,
                subject=options["slug"],
                example=options["slug"],
                target=options["target"],
                builder=options["builder"],
            )
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"Run {run.pk} queued")
        if options["follow"]:
            self._follow(run, timeout=options["timeout"])

    def _follow(self, run: Run, *, timeout: float) -> None:
        """Print log lines and each step's outcome until the run ends."""
        shown: dict[int, int] = {}
        ended: set[int] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run.refresh_from_db()
            for step in run.steps.all():
                lines = step.log.splitlines()
                for line in lines[shown.get(step.pk, 0) :]:
                    self.stdout.write(f"[{step.name}] {line}")
                shown[step.pk] = len(lines)
                done = step.status in {Step.Status.SUCCEEDED, Step.Status.FAILED}
                if done and step.pk not in ended:
                    ended.add(step.pk)
                    seconds = (step.duration_ms or 0) / 1000
                    self.stdout.write(
                        f"== {step.name}: {step.status} in {seconds:.2f} s"
                    )
                    if step.proof:
                        self.stdout.write(f"   proved: {step.proof}")
            if not run.active:
                break
            time.sleep(POLL_SECONDS)
        else:
            raise CommandError(
                f"Run {run.pk} is still {run.status} after {timeout:.0f} s; is a "
                "Celery worker running?"
            )
        if run.status != Run.Status.SUCCEEDED:
            raise CommandError(f"Run {run.pk} failed: {run.error}")
        self.stdout.write(self.style.SUCCESS(f"Run {run.pk} succeeded"))
