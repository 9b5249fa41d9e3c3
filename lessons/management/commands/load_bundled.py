import json
from collections import Counter
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lessons.models import Paper
from lessons.services import paper_upsert


class Command(BaseCommand):
    help = (
        "Load the bundled papers and lessons the site does not have yet. "
        "Safe to run again: what the site has, including edits made on the "
        "site, is kept unless --update is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--update",
            action="store_true",
            help="Also overwrite bundled papers and lessons the site already has.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        content = settings.LESSONS_BUNDLED_DIR
        papers_file = content / "papers.json"
        try:
            papers = json.loads(papers_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise CommandError(f"{papers_file}: {error}") from None

        counts: Counter[str] = Counter()
        known = set(Paper.objects.values_list("arxiv_id", flat=True))
        for paper in papers:
            if paper["arxiv_id"] in known and not options["update"]:
                counts["kept"] += 1
                continue
            # Bundled metadata was not fetched by this site: its fetch time
            # stays empty until the papers are refreshed from arXiv.
            counts[paper_upsert(fetched=None, **paper)] += 1
        self.stdout.write(
            "Papers: " + ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
        )
        flags = [] if options["update"] else ["--keep-existing"]
        call_command(
            "import_lessons",
            str(content / "lessons"),
            *flags,
            verbosity=0,
            stdout=self.stdout,
        )
