"""Read lesson files into drafts; ``lessons.services.lesson_import`` writes them.

Two formats are read:

1. Our own lesson files: YAML front matter between ``---`` lines giving every
   field and edge, then the Markdown body.
2. Published lesson pages as a browser shows their text: navigation lines,
   title, summary, ``Depth``, ``Price``, the tag chips run together on one
   line, ``Created`` with a US-style local time, ``Content``, the body, and a
   trailing ``Graph Neighborhood`` heading.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from django.core.exceptions import ValidationError
from django.utils.text import slugify

from config.parsing import direction_control_in, is_whole_number
from lessons.models import (
    ARXIV_ID_PATTERN,
    DIRECTION_CONTROL_REASON,
    FLAG_TAGS,
    MAX_DEPTH,
    MIN_DEPTH,
    TOPIC_PATH_RE,
    Edge,
    split_arxiv_id,
)

FRONT_MATTER_KEYS = {
    "slug", "title", "summary", "topic", "depth", "price", "gated", "created",
    "tags", "edges", "author",
}  # fmt: skip
REQUIRED_KEYS = ("slug", "title", "summary", "topic", "depth")

PRICE_RE = re.compile(r"^(?P<amount>\d+(\.\d{1,18})?) (?P<asset>[A-Z][A-Z0-9]{1,15})$")
ARXIV_CHIP_RE = re.compile(rf"arxiv:{ARXIV_ID_PATTERN}(?:v\d{{1,4}})?")
PAGE_CREATED_FORMAT = "%m/%d/%Y, %I:%M:%S %p"
PAGE_TOPIC_PREFIX = "← Back to lessons|"
PAGE_TRAILER = "Graph Neighborhood"
MAX_FILE_BYTES = 1_000_000
MAX_NOTE_LENGTH = 300


class ImportProblem(Exception):
    """A file that cannot be imported, with the line to look at."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


@dataclass(frozen=True)
class EdgeDraft:
    kind: str
    target: str
    note: str = ""
    line: int = 1


@dataclass
class LessonDraft:
    path: Path
    slug: str
    title: str
    summary: str
    body: str
    topic: str
    depth: int
    price: Decimal | None
    asset: str | None
    gated: bool
    tags: list[str]
    created: datetime | None = None
    author: str | None = None
    edges: list[EdgeDraft] = field(default_factory=list)
    # The line of each field in the file, for messages about it.
    lines: dict[str, int] = field(default_factory=dict)

    @property
    def citations(self) -> list[tuple[str, int | None]]:
        """(base id, version) of each ``arxiv:`` tag, in tag order."""
        return [
            split_arxiv_id(tag[len("arxiv:") :])
            for tag in self.tags
            if tag.startswith("arxiv:")
        ]


def read_lesson_file(
    path: Path, *, vocabulary: Iterable[str] = (), timezone: ZoneInfo | None = None
) -> LessonDraft:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImportProblem(
                path,
                1,
                f"the file has {size:,} bytes; a lesson has at most {MAX_FILE_BYTES:,}",
            )
        # utf-8-sig: editors on some systems start files with a byte order mark.
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportProblem(path, 1, f"not UTF-8 text ({error.reason})") from error
    except OSError as error:
        raise ImportProblem(
            path, 1, f"cannot read the file: {error.strerror}"
        ) from error
    if not text.strip():
        raise ImportProblem(path, 1, "the file is empty")
    if text.startswith("---"):
        return parse_lesson_file(path, text)
    return parse_lesson_page(
        path, text, vocabulary=set(vocabulary), timezone=timezone or ZoneInfo("UTC")
    )


# Our own lesson files ------------------------------------------------------


def parse_lesson_file(path: Path, text: str) -> LessonDraft:
    lines = text.splitlines()
    try:
        end = lines.index("---", 1)
    except ValueError:
        raise ImportProblem(
            path, 1, "the front matter has no closing '---' line"
        ) from None
    header = "\n".join(lines[1:end])
    body = "\n".join(lines[end + 1 :]).strip("\n") + "\n"

    def line_of(needle: str) -> int:
        """The line of a key (``"depth:"``), an edge target (``"to: slug"``)
        or a tag, for messages; 1 when it cannot be told."""
        if needle.startswith("to: "):
            target = re.escape(needle[4:])
            pattern = rf"\bto:\s*['\"]?{target}(?![\w./-])"
        elif needle.endswith(":"):
            pattern = rf"^\s*{re.escape(needle)}"
        else:
            pattern = rf"(?<![\w./:-]){re.escape(needle)}(?![\w./:-])"
        for number, line in enumerate(lines[1:end], start=2):
            if re.search(pattern, line):
                return number
        return 1

    try:
        meta = yaml.safe_load(header)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(error, "problem", None) or str(error)
        raise ImportProblem(
            path, line, f"the front matter is not valid YAML: {problem}"
        ) from error
    if not isinstance(meta, dict):
        raise ImportProblem(
            path, 1, "the front matter must be a mapping of keys to values"
        )

    unknown = sorted(set(meta) - FRONT_MATTER_KEYS)
    if unknown:
        raise ImportProblem(
            path, line_of(f"{unknown[0]}:"), f"unknown key {unknown[0]!r}"
        )
    for key in REQUIRED_KEYS:
        if meta.get(key) in (None, ""):
            raise ImportProblem(path, 1, f"the front matter has no {key!r}")
    if not body.strip():
        raise ImportProblem(
            path, end + 1, "the lesson has no body after the front matter"
        )

    def text_field(key: str) -> str:
        value = meta[key]
        if not isinstance(value, str):
            raise ImportProblem(path, line_of(f"{key}:"), f"{key!r} must be text")
        return value.strip()

    slug = text_field("slug")
    if slugify(slug) != slug:
        raise ImportProblem(path, line_of("slug:"), f"{slug!r} is not a valid slug")

    price, asset = None, None
    if meta.get("price") not in (None, "", "Free"):
        try:
            price, asset = parse_price(str(meta["price"]))
        except ValueError as error:
            raise ImportProblem(path, line_of("price:"), str(error)) from None

    gated = meta.get("gated", False)
    if not isinstance(gated, bool):
        raise ImportProblem(path, line_of("gated:"), "'gated' must be true or false")
    if gated and price is None:
        raise ImportProblem(path, line_of("gated:"), "a gated lesson needs a price")

    tags = meta.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ImportProblem(path, line_of("tags:"), "'tags' must be a list of text")
    tags = [tag.strip() for tag in tags]
    for tag in tags:
        if tag in FLAG_TAGS:
            raise ImportProblem(
                path,
                line_of(tag),
                f"{tag!r} is a flag, not a tag: set '{FLAG_TAGS[tag]}: true' instead",
            )
        check_tag(tag, path=path, line=line_of(tag))
    check_one_citation_per_paper(tags, path=path, line_of=line_of)

    created = meta.get("created")
    if created is not None:
        created = parse_front_matter_time(created, path=path, line=line_of("created:"))

    author = meta.get("author")
    if author is not None and not isinstance(author, str):
        raise ImportProblem(path, line_of("author:"), "'author' must be a user name")
    topic = text_field("topic")
    check_topic(topic, path=path, line=line_of("topic:"))

    return LessonDraft(
        path=path,
        slug=slug,
        title=text_field("title"),
        summary=text_field("summary"),
        body=body,
        topic=topic,
        depth=parse_depth(meta["depth"], path=path, line=line_of("depth:")),
        price=price,
        asset=asset,
        gated=gated,
        tags=list(dict.fromkeys(tags)),
        created=created,
        author=author,
        edges=parse_edges(meta.get("edges") or [], path=path, line_of=line_of),
        lines={key: line_of(f"{key}:") for key in FRONT_MATTER_KEYS},
    )


def parse_edges(value: Any, *, path: Path, line_of: Any) -> list[EdgeDraft]:
    if not isinstance(value, list):
        raise ImportProblem(path, line_of("edges:"), "'edges' must be a list")
    kinds = set(Edge.Kind.values)
    edges = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("to"), str):
            raise ImportProblem(
                path,
                line_of("edges:"),
                "each edge needs 'kind' and 'to' (a lesson slug)",
            )
        line = line_of(f"to: {entry['to']}")
        extra = sorted(set(entry) - {"kind", "to", "note"})
        if extra:
            raise ImportProblem(path, line, f"unknown edge key {extra[0]!r}")
        if entry.get("kind") not in kinds:
            raise ImportProblem(
                path,
                line,
                f"edge kind {entry.get('kind')!r} is not one of {', '.join(sorted(kinds))}",
            )
        note = entry.get("note") or ""
        if not isinstance(note, str):
            raise ImportProblem(path, line, "an edge's 'note' must be text")
        mark = direction_control_in(note)
        if mark is not None:
            raise ImportProblem(
                path, line, f"an edge's note holds {mark}, {DIRECTION_CONTROL_REASON}"
            )
        if len(note.strip()) > MAX_NOTE_LENGTH:
            raise ImportProblem(
                path, line, f"an edge's note has at most {MAX_NOTE_LENGTH} characters"
            )
        edges.append(
            EdgeDraft(
                kind=entry["kind"], target=entry["to"], note=note.strip(), line=line
            )
        )
    return edges


def parse_front_matter_time(value: Any, *, path: Path, line: int) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ImportProblem(
                path, line, f"'created' {value!r} is not an ISO 8601 time"
            ) from None
    if not isinstance(value, datetime):
        raise ImportProblem(path, line, "'created' must be a date and time")
    if value.tzinfo is None:
        raise ImportProblem(path, line, "'created' must give its time zone, e.g. 'Z'")
    return value


# Published lesson pages ----------------------------------------------------


def parse_lesson_page(
    path: Path, text: str, *, vocabulary: set[str], timezone: ZoneInfo
) -> LessonDraft:
    lines = text.splitlines()
    try:
        depth_at = lines.index("Depth")
    except ValueError:
        raise ImportProblem(
            path, 1, "no 'Depth' line: this is not a lesson page"
        ) from None

    paragraphs = _paragraphs(lines[:depth_at])
    if len(paragraphs) < 2:
        raise ImportProblem(
            path, depth_at + 1, "a title and a summary must come before 'Depth'"
        )
    (title_line, title_lines), (summary_line, summary_lines) = paragraphs[-2:]
    if len(title_lines) != 1:
        raise ImportProblem(path, title_line, "the title must be a single line")
    topic, topic_line = None, 1
    for first_line, paragraph in paragraphs[:-2]:
        for offset, nav in enumerate(paragraph):
            if nav.startswith(PAGE_TOPIC_PREFIX):
                topic = nav[len(PAGE_TOPIC_PREFIX) :].strip()
                topic_line = first_line + offset
    if not topic:
        raise ImportProblem(path, 1, f"no topic line ('{PAGE_TOPIC_PREFIX}<topic>')")
    check_topic(topic, path=path, line=topic_line)

    cursor = _Cursor(path, lines, depth_at + 1)
    depth = parse_depth(
        cursor.next_value("a depth after 'Depth'"), path=path, line=cursor.line
    )
    cursor.expect("Price")
    try:
        price, asset = parse_price(cursor.next_value("a price after 'Price'"))
    except ValueError as error:
        raise ImportProblem(path, cursor.line, str(error)) from None
    price_line = cursor.line

    chip_line = cursor.next_value("the tags and a 'Created' line")
    if chip_line.startswith("Created "):
        chips, created_text = [], chip_line
    else:
        try:
            chips = split_chips(chip_line, vocabulary)
        except ValueError as error:
            raise ImportProblem(path, cursor.line, str(error)) from None
        created_text = cursor.next_value("a 'Created' line")
    if not created_text.startswith("Created "):
        raise ImportProblem(
            path, cursor.line, f"expected 'Created <time>', found {created_text!r}"
        )
    try:
        created = datetime.strptime(
            created_text[len("Created ") :], PAGE_CREATED_FORMAT
        )
    except ValueError:
        raise ImportProblem(
            path,
            cursor.line,
            f"{created_text!r} is not like 'Created 2/20/2026, 2:05:09 AM'",
        ) from None
    cursor.expect("Content")

    body_lines = lines[cursor.index :]
    while body_lines and not body_lines[-1].strip():
        body_lines.pop()
    if body_lines and body_lines[-1].strip() == PAGE_TRAILER:
        body_lines.pop()
    body = "\n".join(body_lines).strip("\n") + "\n"
    if not body.strip():
        raise ImportProblem(
            path, cursor.line, "the page has no content after 'Content'"
        )

    gated = any(FLAG_TAGS.get(chip) == "gated" for chip in chips)
    if gated and price is None:
        raise ImportProblem(
            path, price_line, "the page is gated but its price is 'Free'"
        )
    return LessonDraft(
        path=path,
        slug=slugify(path.stem),
        title=title_lines[0].strip(),
        summary=" ".join(line.strip() for line in summary_lines),
        body=body,
        topic=topic,
        depth=depth,
        price=price,
        asset=asset,
        gated=gated,
        tags=[chip for chip in chips if chip not in FLAG_TAGS],
        created=created.replace(tzinfo=timezone),
        lines={
            "title": title_line,
            "summary": summary_line,
            "topic": topic_line,
            "depth": depth_at + 1,
            "price": price_line,
        },
    )


class _Cursor:
    """Walks the non-blank lines of a page's header."""

    def __init__(self, path: Path, lines: list[str], index: int) -> None:
        self.path, self.lines, self.index = path, lines, index
        self.line = index

    def next_value(self, wanted: str) -> str:
        while self.index < len(self.lines) and not self.lines[self.index].strip():
            self.index += 1
        if self.index >= len(self.lines):
            raise ImportProblem(
                self.path, len(self.lines), f"the page ends before {wanted}"
            )
        self.line = self.index + 1
        self.index += 1
        return self.lines[self.index - 1].strip()

    def expect(self, label: str) -> None:
        found = self.next_value(f"a {label!r} line")
        if found != label:
            raise ImportProblem(
                self.path, self.line, f"expected {label!r}, found {found!r}"
            )


def _paragraphs(lines: list[str]) -> list[tuple[int, list[str]]]:
    """Runs of non-blank lines, each with the number of its first line."""
    paragraphs: list[tuple[int, list[str]]] = []
    current: list[str] = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            if not current:
                paragraphs.append((number, current))
            current.append(line)
        else:
            current = []
    return paragraphs


def split_chips(line: str, vocabulary: set[str]) -> list[str]:
    """Split tag chips printed without separators, in order of first
    appearance without repeats.

    Only known words are recognised: ``vocabulary``, the flags and arXiv ids.
    Text that no split covers, or that splits in more than one way, is an
    error naming its column; nothing is guessed.
    """
    words = vocabulary | set(FLAG_TAGS)
    size = len(line)

    def candidates(start: int) -> list[int]:
        ends = {
            start + len(word) for word in words if word and line.startswith(word, start)
        }
        if line.startswith("arxiv:", start):
            ends.update(
                end
                for end in range(start + 7, min(size, start + 48) + 1)
                if ARXIV_CHIP_RE.fullmatch(line, start, end)
            )
        return sorted(ends)

    # ways[i]: how many splits line[i:] has, counted up to 2.
    ways = [0] * (size + 1)
    ways[size] = 1
    options: list[list[int]] = [[] for _ in range(size + 1)]
    for start in range(size - 1, -1, -1):
        options[start] = [end for end in candidates(start) if ways[end]]
        ways[start] = min(2, sum(ways[end] for end in options[start]))

    if ways[0] == 0:
        stuck = _furthest_reach(size, candidates)
        raise ValueError(
            f"cannot split the tags at column {stuck + 1}: {line[stuck : stuck + 40]!r} "
            "starts with no known tag; add the tags to a --vocabulary file"
        )
    chips, start = [], 0
    while start < size:
        if len(options[start]) > 1:
            found = ", ".join(repr(line[start:end]) for end in options[start])
            raise ValueError(
                f"the tags split in more than one way at column {start + 1} "
                f"({found}); a vocabulary with fewer overlapping tags is needed"
            )
        end = options[start][0]
        chips.append(line[start:end])
        start = end
    return list(dict.fromkeys(chips))


def _furthest_reach(size: int, candidates: Any) -> int:
    reached, frontier = {0}, [0]
    while frontier:
        start = frontier.pop()
        for end in candidates(start):
            if end not in reached and end <= size:
                reached.add(end)
                frontier.append(end)
    return max(reached)


# Fields shared by both formats ---------------------------------------------


def parse_price(text: str) -> tuple[Decimal | None, str | None]:
    """``"0.005 AIN"`` to ``(Decimal("0.005"), "AIN")``; ``"Free"`` to Nones."""
    text = text.strip()
    if text == "Free":
        return None, None
    match = PRICE_RE.match(text)
    if match is None:
        raise ValueError(
            f"price {text!r} is not an amount and an asset such as '0.005 AIN', or 'Free'"
        )
    try:
        amount = Decimal(match.group("amount"))
    except InvalidOperation:
        raise ValueError(f"price {text!r} is not a decimal amount") from None
    if amount <= 0:
        raise ValueError(
            f"price {text!r} must be above zero; leave it out for a free lesson"
        )
    return amount, match.group("asset")


def parse_depth(value: Any, *, path: Path, line: int) -> int:
    if isinstance(value, bool) or not (
        isinstance(value, int)
        or (isinstance(value, str) and is_whole_number(value.strip()))
    ):
        raise ImportProblem(path, line, f"depth {value!r} is not a whole number")
    depth = int(value)
    if not MIN_DEPTH <= depth <= MAX_DEPTH:
        raise ImportProblem(
            path, line, f"depth {depth} is outside {MIN_DEPTH} to {MAX_DEPTH}"
        )
    return depth


def check_topic(topic: str, *, path: Path, line: int) -> None:
    if len(topic) > 200 or not TOPIC_PATH_RE.match(topic):
        raise ImportProblem(
            path,
            line,
            f"topic {topic!r} is not lowercase words and hyphens joined by '/', "
            "such as 'security/ci-cd'",
        )


def check_one_citation_per_paper(
    tags: list[str], *, path: Path, line_of: Callable[[str], int]
) -> None:
    """A lesson cites a paper once, at one version."""
    named: dict[str, str] = {}
    for tag in tags:
        if not tag.startswith("arxiv:"):
            continue
        base, _version = split_arxiv_id(tag[len("arxiv:") :])
        if base in named:
            raise ImportProblem(
                path,
                line_of(tag),
                f"{named[base]!r} and {tag!r} name the same paper; "
                "a lesson cites a paper once, at one version",
            )
        named[base] = tag


def check_tag(tag: str, *, path: Path, line: int) -> None:
    if not tag or len(tag) > 200 or tag != tag.strip():
        raise ImportProblem(path, line, f"tag {tag!r} is empty, too long or padded")
    if tag.startswith("arxiv:"):
        try:
            split_arxiv_id(tag[len("arxiv:") :])
        except ValidationError:
            raise ImportProblem(
                path, line, f"{tag!r} does not hold a valid arXiv id"
            ) from None
    mark = direction_control_in(tag)
    if mark is not None:
        raise ImportProblem(
            path, line, f"tag {tag!r} holds {mark}, {DIRECTION_CONTROL_REASON}"
        )
