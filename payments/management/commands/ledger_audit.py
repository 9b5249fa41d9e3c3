from typing import Any

from django.core.management.base import BaseCommand, CommandError

from payments.selectors import ledger_findings


class Command(BaseCommand):
    help = (
        "Check the ledger: one transfer per settlement, no nonce spent twice, "
        "balances equal to the sum of their transfers, none negative. Exits "
        "non-zero on any breach."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        findings = ledger_findings()
        for finding in findings:
            self.stderr.write(finding)
        if findings:
            raise CommandError(f"The ledger audit found {len(findings)} breaches.")
        self.stdout.write("The ledger is sound.")
