from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lessons.importing import ImportProblem, LessonDraft, read_lesson_file
from lessons.models import Tag
from lessons.services import MissingLessons, Outcome, lesson_import, lessons_import

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
        self.total = len(files)
        self.counts: Counter[str] = Counter()
        self.problems: list[ImportProblem] = []

        waiting: list[LessonDraft] = []
        for path in files:
            try:
                draft = read_lesson_file(path, vocabulary=vocabulary, timezone=timezone)
                self.done(path, lesson_import(draft=draft))
            except MissingLessons:
                waiting.append(draft)
            except ImportProblem as problem:
                self.fail(problem)
        self.import_together(waiting)

        for reported in self.problems:
            self.stderr.write(str(reported))
        names = ("created", "updated", "unchanged", "failed")
        self.stdout.write(", ".join(f"{self.counts[name]} {name}" for name in names))
        if self.counts["failed"]:
            raise CommandError(f"{self.counts['failed']} of {self.total} files failed.")

    def import_together(self, drafts: list[LessonDraft]) -> None:
        """Import drafts that wait on each other's lessons in one go. A draft
        that fails leaves the group, and the rest try again without it."""
        while drafts:
            try:
                outcomes = lessons_import(drafts=drafts)
            except ImportProblem as problem:
                self.fail(problem)
                drafts = [draft for draft in drafts if draft.path != problem.path]
                continue
            for draft, outcome in zip(drafts, outcomes, strict=True):
                self.done(draft.path, outcome)
            return

    def done(self, path: Path, outcome: Outcome) -> None:
        self.counts[outcome] += 1
        self.report(path, outcome)

    def fail(self, problem: ImportProblem) -> None:
        self.counts["failed"] += 1
        self.problems.append(problem)
        self.report(problem.path, "failed")

    def report(self, path: Path, outcome: str) -> None:
        if self.verbosity >= 1 and self.total > 1:
            done = sum(self.counts.values())
            self.stdout.write(f"[{done}/{self.total}] {path}: {outcome}")


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
