import logging
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from lessons.importing import ImportProblem, LessonDraft, read_lesson_file
from lessons.models import Lesson, Tag
from lessons.services import MissingLessons, Outcome, lesson_import, lessons_import

LESSON_SUFFIXES = {".md", ".markdown", ".txt"}
logger = logging.getLogger(__name__)


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
            "--keep-existing",
            action="store_true",
            help="Only add lessons the site does not have; never change one it has.",
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
        self.failed_slugs: set[str] = set()

        drafts = self.read_all(files, vocabulary, timezone, options["keep_existing"])
        waiting: list[LessonDraft] = []
        for draft in drafts:
            try:
                self.done(draft.path, lesson_import(draft=draft))
            except MissingLessons:
                waiting.append(draft)
            except ImportProblem as problem:
                self.fail(problem, draft)
            except DatabaseError as error:
                self.fail(database_problem(draft, error), draft)
        self.import_together(waiting)

        for reported in self.problems:
            self.stderr.write(str(reported))
        names = ["created", "updated", "unchanged", "failed"]
        if options["keep_existing"]:
            names.insert(3, "kept")
        self.stdout.write(", ".join(f"{self.counts[name]} {name}" for name in names))
        if self.counts["failed"]:
            raise CommandError(f"{self.counts['failed']} of {self.total} files failed.")

    def read_all(
        self, files: list[Path], vocabulary: set[str], timezone: ZoneInfo, keep: bool
    ) -> list[LessonDraft]:
        """Parse every file; refuse a slug that an earlier file of the run
        already uses, and with ``keep`` pass over lessons the site has."""
        drafts: list[LessonDraft] = []
        first_file: dict[str, Path] = {}
        existing = set(Lesson.objects.values_list("slug", flat=True)) if keep else set()
        for path in files:
            try:
                draft = read_lesson_file(path, vocabulary=vocabulary, timezone=timezone)
            except ImportProblem as problem:
                self.fail(problem)
                # A page's slug is its file name, and our files are named
                # after theirs: edges to it are then explained by this
                # failure, not called unknown.
                self.failed_slugs.add(path.stem)
                continue
            if draft.slug in first_file:
                line = draft.lines.get("slug", 1)
                self.fail(
                    ImportProblem(
                        path,
                        line,
                        f"slug {draft.slug!r} is already used by {first_file[draft.slug]}",
                    )
                )
                continue
            first_file[draft.slug] = path
            if draft.slug in existing:
                self.counts["kept"] += 1
                self.report(path, "kept (the site has this lesson)")
                continue
            drafts.append(draft)
        return drafts

    def import_together(self, drafts: list[LessonDraft]) -> None:
        """Import drafts that wait on each other's lessons in one go. A draft
        that fails leaves the group, and the rest try again without it."""
        while drafts:
            try:
                outcomes = lessons_import(drafts=drafts)
            except DatabaseError as error:
                for draft in drafts:
                    self.fail(database_problem(draft, error), draft)
                return
            except ImportProblem as problem:
                failed = next(draft for draft in drafts if draft.path == problem.path)
                self.fail(self.explained(problem), failed)
                drafts = [draft for draft in drafts if draft is not failed]
                continue
            for draft, outcome in zip(drafts, outcomes, strict=True):
                self.done(draft.path, outcome)
            return

    def explained(self, problem: ImportProblem) -> ImportProblem:
        """Edges to lessons whose own files failed in this run: say so,
        rather than calling those lessons unknown."""
        if (
            isinstance(problem, MissingLessons)
            and set(problem.slugs) <= self.failed_slugs
        ):
            names = ", ".join(repr(slug) for slug in problem.slugs)
            return ImportProblem(
                problem.path,
                problem.line,
                f"edges point at lessons whose files failed in this run: {names}",
            )
        return problem

    def done(self, path: Path, outcome: Outcome) -> None:
        self.counts[outcome] += 1
        self.report(path, outcome)

    def fail(self, problem: ImportProblem, draft: LessonDraft | None = None) -> None:
        if draft is not None:
            self.failed_slugs.add(draft.slug)
        self.counts["failed"] += 1
        self.problems.append(problem)
        self.report(problem.path, "failed")

    def report(self, path: Path, outcome: str) -> None:
        if self.verbosity >= 1 and self.total > 1:
            done = sum(self.counts.values())
            self.stdout.write(f"[{done}/{self.total}] {path}: {outcome}")


def database_problem(draft: LessonDraft, error: DatabaseError) -> ImportProblem:
    logger.exception("The database refused lesson %s from %s", draft.slug, draft.path)
    reason = (
        str(error).strip().splitlines()[0]
        if str(error).strip()
        else type(error).__name__
    )
    return ImportProblem(draft.path, 1, f"the database refused the lesson: {reason}")


def lesson_files(paths: list[Path]) -> list[Path]:
    """The files named, and in folders (with their subfolders) every file
    ending in .md, .markdown or .txt, in any case."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and p.suffix.lower() in LESSON_SUFFIXES
                )
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
