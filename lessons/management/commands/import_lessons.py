from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lessons.importing import ImportProblem, read_lesson_file
from lessons.models import Tag
from lessons.services import MissingLessons, lesson_import

LESSON_SUFFIXES = {".md", ".txt"}


class Command(BaseCommand):
    help = (
        "Import lessons from our own Markdown files (front matter) and from "
        "published lesson pages saved as text. Re-importing updates in place."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path, help="Files or folders.")
        parser.add_argument(
            "--vocabulary",
            type=Path,
            help="A file of known tags, one a line, for splitting a page's tag chips.",
        )
        parser.add_argument(
            "--timezone",
            default="UTC",
            help="Time zone of a page's 'Created' time (default UTC).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = options["verbosity"]
        try:
            timezone = ZoneInfo(options["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise CommandError(f"Unknown time zone {options['timezone']!r}.") from None
        vocabulary = set(Tag.objects.values_list("name", flat=True))
        if options["vocabulary"]:
            vocabulary |= read_vocabulary(options["vocabulary"])
        files = lesson_files(options["paths"])

        counts: Counter[str] = Counter()
        problems: dict[Path, ImportProblem] = {}
        pending = files
        # Files whose edges point at lessons later in the batch wait for
        # those; a round that imports nothing ends the waiting.
        while pending:
            waiting = []
            for path in pending:
                try:
                    draft = read_lesson_file(
                        path, vocabulary=vocabulary, timezone=timezone
                    )
                    outcome = lesson_import(draft=draft)
                except MissingLessons as problem:
                    waiting.append(path)
                    problems[path] = problem
                    continue
                except ImportProblem as problem:
                    problems[path] = problem
                    counts["failed"] += 1
                    self.report(sum(counts.values()), len(files), path, "failed")
                    continue
                problems.pop(path, None)
                counts[outcome] += 1
                self.report(sum(counts.values()), len(files), path, outcome)
            if len(waiting) == len(pending):
                for path in waiting:
                    counts["failed"] += 1
                    self.report(sum(counts.values()), len(files), path, "failed")
                break
            pending = waiting

        for reported in problems.values():
            self.stderr.write(str(reported))
        summary = ", ".join(
            f"{counts[name]} {name}"
            for name in ("created", "updated", "unchanged", "failed")
        )
        self.stdout.write(summary)
        if counts["failed"]:
            raise CommandError(f"{counts['failed']} of {len(files)} files failed.")

    def report(self, done: int, total: int, path: Path, outcome: str) -> None:
        if self.verbosity >= 1 and total > 1:
            self.stdout.write(f"[{done}/{total}] {path}: {outcome}")


def lesson_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(p for p in path.iterdir() if p.suffix in LESSON_SUFFIXES)
            )
        elif path.is_file():
            files.append(path)
        else:
            raise CommandError(f"{path}: no such file or folder.")
    if not files:
        raise CommandError("No lesson files (.md or .txt) found.")
    return files


def read_vocabulary(path: Path) -> set[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise CommandError(f"{path}: cannot read the vocabulary: {error}") from None
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}
