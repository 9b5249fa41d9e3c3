from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lessons.arxiv_client import ArxivIdError
from lessons.services import papers_refresh


class Command(BaseCommand):
    help = (
        "Fetch papers' metadata from arXiv (ARXIV_API_URL): the ids given, "
        "or every paper the site holds. An id with a version also records "
        "that version's title and date. Exits non-zero when an id is unknown "
        "to arXiv or could not be fetched; the metadata held is kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "ids", nargs="*", metavar="ID", help="e.g. 2506.06478v2, hep-th/9901001"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = papers_refresh(arxiv_ids=options["ids"] or None)
        except ArxivIdError as error:
            raise CommandError(f"{error} Nothing was fetched.") from None

        self.stdout.write(
            f"Papers: {len(report.updated)} updated, {len(report.unchanged)} "
            f"unchanged, {len(report.unknown)} unknown, {len(report.failed)} failed"
        )
        for arxiv_id in report.unknown:
            self.stderr.write(f"{arxiv_id}: arXiv does not know this id")
        for arxiv_id, reason in report.failed.items():
            self.stderr.write(f"{arxiv_id}: {reason}")
        if report.unknown or report.failed:
            raise CommandError("Some papers were not refreshed; see above.")
