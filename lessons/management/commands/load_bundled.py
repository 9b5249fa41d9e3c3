import json
from collections import Counter
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from lessons.services import paper_upsert


class Command(BaseCommand):
    help = "Load the bundled paper metadata and lessons. Safe to run again."

    def handle(self, *args: Any, **options: Any) -> None:
        content = settings.LESSONS_BUNDLED_DIR
        papers_file = content / "papers.json"
        try:
            papers = json.loads(papers_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise CommandError(f"{papers_file}: {error}") from None

        counts: Counter[str] = Counter()
        # Bundled metadata was not fetched by this site: its fetch time
        # stays empty until the papers are refreshed from arXiv.
        for paper in papers:
            counts[paper_upsert(fetched=None, **paper)] += 1
        self.stdout.write(
            "Papers: " + ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
        )
        call_command(
            "import_lessons", str(content / "lessons"), verbosity=0, stdout=self.stdout
        )
