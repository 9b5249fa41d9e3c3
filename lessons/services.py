import enum
import itertools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from lessons.arxiv_client import (
    ArxivId,
    ArxivIdError,
    ArxivUnavailable,
    FetchResult,
    PaperRecord,
    arxiv_id_parse,
    papers_fetch,
)
from lessons.graph import describe_cycle, prerequisite_cycle
from lessons.importing import ImportProblem, LessonDraft
from lessons.models import (
    PAPER_UNKNOWN_TO_ARXIV,
    Citation,
    Edge,
    Lesson,
    LessonTag,
    Paper,
    Tag,
    Topic,
    format_decimal,
    split_arxiv_id,
)

logger = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class MissingLessons(ImportProblem):
    """Edges point at lessons the site does not hold (yet)."""

    def __init__(self, draft: LessonDraft, slugs: list[str], line: int) -> None:
        names = ", ".join(repr(slug) for slug in slugs)
        super().__init__(draft.path, line, f"edges point at unknown lessons: {names}")
        self.slugs = slugs


def topic_ensure(*, path: str) -> Topic:
    """The topic at ``path``, created with its ancestors when missing."""
    parent = None
    for ancestor in path.split("/"):
        ancestor_path = f"{parent.path}/{ancestor}" if parent else ancestor
        topic = Topic.objects.filter(path=ancestor_path).first()
        if topic is None:
            topic = Topic(path=ancestor_path, parent=parent)
            topic.full_clean()
            topic.save()
        parent = topic
    assert parent is not None
    return parent


def lesson_import(*, draft: LessonDraft) -> Outcome:
    """Create or update the lesson a draft describes, all or nothing."""
    return lessons_import(drafts=[draft])[0]


def lessons_import(*, drafts: list[LessonDraft]) -> list[Outcome]:
    """Create or update the lessons of several drafts together, all or
    nothing; drafts whose edges point at each other go in one call.

    1. Write every lesson with its tags and citations, then every lesson's
       outgoing edges, so edges may point anywhere in the group.
    2. Refuse the group if the prerequisites close a cycle, blaming the
       draft that declared an edge of it.
    3. Put back the update time of lessons that did not change.
    """
    with transaction.atomic():
        _lock_graph()
        existing = Lesson.objects.in_bulk([d.slug for d in drafts], field_name="slug")
        before = {slug: lesson_snapshot(lesson) for slug, lesson in existing.items()}
        stamps = {slug: lesson.updated for slug, lesson in existing.items()}

        lessons = []
        for draft in drafts:
            try:
                lessons.append(_write_lesson(draft, existing.get(draft.slug)))
            except ValidationError as error:
                raise _validation_problem(draft, error) from error
        for draft, lesson in zip(drafts, lessons, strict=True):
            _write_edges(lesson, draft)
        cycle = prerequisite_cycle()
        if cycle:
            raise _cycle_problem(drafts, cycle)

        outcomes = []
        for draft, lesson in zip(drafts, lessons, strict=True):
            if draft.slug not in before:
                outcomes.append(Outcome.CREATED)
            elif lesson_snapshot(lesson) == before[draft.slug]:
                Lesson.objects.filter(pk=lesson.pk).update(updated=stamps[draft.slug])
                outcomes.append(Outcome.UNCHANGED)
            else:
                outcomes.append(Outcome.UPDATED)

    for draft, outcome in zip(drafts, outcomes, strict=True):
        if outcome != Outcome.UNCHANGED:
            logger.info("Lesson %s %s from %s", draft.slug, outcome, draft.path)
    return outcomes


def _cycle_problem(drafts: list[LessonDraft], cycle: list[str]) -> ImportProblem:
    links = set(itertools.pairwise(cycle))
    for draft in drafts:
        for edge in draft.edges:
            if (
                edge.kind == Edge.Kind.PREREQUISITE
                and (draft.slug, edge.target) in links
            ):
                return ImportProblem(draft.path, edge.line, describe_cycle(cycle))
    return ImportProblem(drafts[0].path, 1, describe_cycle(cycle))


def _lock_graph() -> None:
    """Serialise graph writers so two imports cannot close a cycle between
    them. SQLite already allows one writer at a time."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext('lessongraph.edges'))"
            )


def _write_lesson(draft: LessonDraft, existing: Lesson | None) -> Lesson:
    lesson = existing or Lesson(slug=draft.slug)
    lesson.title = draft.title
    lesson.summary = draft.summary
    lesson.body = draft.body
    lesson.topic = topic_ensure(path=draft.topic)
    lesson.depth = draft.depth
    lesson.price = draft.price
    lesson.asset = draft.asset or settings.LESSONS_DEFAULT_ASSET
    lesson.gated = draft.gated
    if draft.created is not None:
        lesson.created = draft.created
    if draft.author is not None:
        lesson.author = _author(draft)
    lesson.full_clean(exclude=["body_html", "body_sha256"])
    lesson.save()

    _write_tags(lesson, draft.tags)
    _write_citations(lesson, draft.citations)
    return lesson


def _author(draft: LessonDraft) -> Any:
    user = get_user_model().objects.filter(username=draft.author).first()
    if user is None:
        raise ImportProblem(
            draft.path,
            draft.lines.get("author", 1),
            f"no user named {draft.author!r} for 'author'",
        )
    return user


def _write_tags(lesson: Lesson, names: list[str]) -> None:
    current = list(lesson.lesson_tags.select_related("tag"))
    if [row.tag.name for row in current] == names:
        return
    lesson.lesson_tags.all().delete()
    for position, name in enumerate(names):
        tag, _ = Tag.objects.get_or_create(name=name)
        LessonTag.objects.create(lesson=lesson, tag=tag, position=position)


def lesson_citations_sync(*, lesson: Lesson) -> None:
    """Make a lesson's citations those its ``arxiv:`` tags name, as an
    import does; the admin calls this after tags are edited."""
    names = lesson.lesson_tags.values_list("tag__name", flat=True)
    cited = [
        split_arxiv_id(name[len("arxiv:") :])
        for name in names
        if name.startswith("arxiv:")
    ]
    _write_citations(lesson, cited)


def _write_citations(lesson: Lesson, cited: list[tuple[str, int | None]]) -> None:
    # A lesson cites a paper once. The admin and the importer refuse two
    # tags naming one paper; should any reach here, the first one counts.
    first: dict[str, int | None] = {}
    for arxiv_id, version in cited:
        first.setdefault(arxiv_id, version)
    cited = list(first.items())
    current = [
        (c.paper.arxiv_id, c.version) for c in lesson.citations.select_related("paper")
    ]
    if current == cited:
        return
    # A citation without a version keeps the version it was first seen
    # with, or a revision made since would stop showing as newer.
    seen = dict(
        lesson.citations.filter(version__isnull=True).values_list(
            "paper__arxiv_id", "version_seen"
        )
    )
    lesson.citations.all().delete()
    for position, (arxiv_id, version) in enumerate(cited):
        # Metadata of a paper the site has not seen yet is fetched later;
        # until then the citation shows its id.
        paper, _ = Paper.objects.get_or_create(arxiv_id=arxiv_id)
        Citation.objects.create(
            lesson=lesson,
            paper=paper,
            version=version,
            # Without a version: the one seen before, or the newest known now.
            version_seen=(seen.get(arxiv_id) or paper.version)
            if version is None
            else None,
            position=position,
        )


def _write_edges(lesson: Lesson, draft: LessonDraft) -> None:
    """Make the lesson's outgoing edges exactly those of the draft. A related
    edge already declared by the other lesson stands for both."""
    targets = Lesson.objects.in_bulk(
        [edge.target for edge in draft.edges], field_name="slug"
    )
    missing = [edge for edge in draft.edges if edge.target not in targets]
    if missing:
        raise MissingLessons(draft, [edge.target for edge in missing], missing[0].line)
    if any(edge.target == lesson.slug for edge in draft.edges):
        line = next(edge.line for edge in draft.edges if edge.target == lesson.slug)
        raise ImportProblem(draft.path, line, "a lesson cannot link to itself")

    related_back = set(
        Edge.objects.filter(target=lesson, kind=Edge.Kind.RELATED).values_list(
            "source__slug", flat=True
        )
    )
    wanted = {
        (edge.kind, edge.target): edge.note
        for edge in draft.edges
        if not (edge.kind == Edge.Kind.RELATED and edge.target in related_back)
    }
    for edge in lesson.edges_out.select_related("target"):
        key = (edge.kind, edge.target.slug)
        if key not in wanted:
            edge.delete()
        elif edge.note != wanted[key]:
            edge.note = wanted.pop(key)
            edge.save(update_fields=["note"])
        else:
            wanted.pop(key)
    Edge.objects.bulk_create(
        Edge(source=lesson, target=targets[slug], kind=kind, note=note)
        for (kind, slug), note in wanted.items()
    )


def _validation_problem(draft: LessonDraft, error: ValidationError) -> ImportProblem:
    """One message naming the first field refused, at that field's line."""
    if not hasattr(error, "message_dict"):
        return ImportProblem(draft.path, 1, " ".join(error.messages))
    name, messages = next(iter(error.message_dict.items()))
    line = draft.lines.get(name, 1)
    return ImportProblem(draft.path, line, f"{name}: {' '.join(messages)}")


def lesson_snapshot(lesson: Lesson) -> dict[str, Any]:
    """What an import can change about a lesson, in comparable form."""
    return {
        "title": lesson.title,
        "summary": lesson.summary,
        "body": lesson.body,
        "topic": lesson.topic.path,
        "depth": lesson.depth,
        "price": format_decimal(lesson.price) if lesson.price is not None else None,
        "asset": lesson.asset,
        "gated": lesson.gated,
        # The instant, whatever zone it was written in: a file's
        # "+02:00" and the database's UTC are the same time.
        "created": lesson.created,
        "author": lesson.author_id,
        "tags": list(lesson.lesson_tags.values_list("tag__name", flat=True)),
        "citations": list(lesson.citations.values_list("paper__arxiv_id", "version")),
        "edges": sorted(lesson.edges_out.values_list("kind", "target__slug", "note")),
    }


PAPER_FIELDS = (
    "version", "title", "authors", "abstract", "published", "updated",
    "primary_category", "categories", "comment", "journal_ref", "doi",
)  # fmt: skip


def paper_upsert(
    *, arxiv_id: str, fetched: datetime | None, **metadata: Any
) -> Outcome:
    """Store the metadata of one paper, keyed by its base arXiv id."""
    unknown = set(metadata) - set(PAPER_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown paper fields: {', '.join(sorted(unknown))}.")
    for name in ("published", "updated"):
        if isinstance(metadata.get(name), str):
            metadata[name] = parse_datetime(metadata[name])
    # Missing metadata arrives as null; the columns hold empty values.
    for name in (
        "title",
        "abstract",
        "primary_category",
        "comment",
        "journal_ref",
        "doi",
    ):
        metadata[name] = metadata.get(name) or ""
    for name in ("authors", "categories"):
        metadata[name] = metadata.get(name) or []

    with transaction.atomic():
        paper = Paper.objects.select_for_update().filter(arxiv_id=arxiv_id).first()
        created = paper is None
        paper = paper or Paper(arxiv_id=arxiv_id)
        changed = created or any(
            getattr(paper, name) != metadata[name] for name in metadata
        )
        if not changed:
            return Outcome.UNCHANGED
        for name, value in metadata.items():
            setattr(paper, name, value)
        paper.fetched = fetched
        paper.full_clean()
        paper.save()
    return Outcome.CREATED if created else Outcome.UPDATED


def lesson_rerender(*, lesson_id: int) -> bool:
    """Render the stored HTML of a lesson again; True when it changed."""
    with transaction.atomic():
        lesson = Lesson.objects.select_for_update().get(pk=lesson_id)
        before = lesson.body_html
        lesson.save(update_fields=["body_html", "body_sha256"])
    changed = lesson.body_html != before
    if changed:
        logger.info("Lesson %s re-rendered", lesson.slug)
    return changed


# Papers ---------------------------------------------------------------------

# arXiv has no withdrawn flag: a withdrawal is a new version whose comment
# says so, or whose abstract is replaced by a sentence that opens with it.
# An abstract may well speak of other work withdrawn.
WITHDRAWN_RE = re.compile(
    r"\b(?:has|have|was|been) (?:been )?withdrawn\b|^\s*withdrawn\b", re.IGNORECASE
)
WITHDRAWN_ABSTRACT_RE = re.compile(
    r"^\W*(?:(?:this|the) (?:paper|article|submission|manuscript|preprint|work)"
    r" (?:has been |is |was )?)?withdrawn\b",
    re.IGNORECASE,
)


@dataclass
class PapersRefresh:
    """What a refresh did, by arXiv id (with a version where one was
    asked for)."""

    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unavailable: list[str] = field(default_factory=list)


def papers_refresh(*, arxiv_ids: Sequence[str] | None = None) -> PapersRefresh:
    """Fetch papers from arXiv and store what it says, keeping the metadata
    the site has when arXiv cannot be asked.

    1. Check every id; ``ArxivIdError`` before any request if one is bad.
       Without ids, every paper the site holds, leaving out (and marking)
       any held under an id that is no longer valid.
    2. Fetch the newest version of each paper.
    3. Fetch the older versions asked for, and those lessons cite, whose
       title and date the site has not seen yet. A version past the newest
       is not asked for: arXiv cannot have it.
    4. Store each paper found. Mark each paper arXiv did not know or could
       not be asked about with the time and the reason.
    """
    refused: dict[str, str] = {}
    if arxiv_ids is None:
        asked = []
        for stored in Paper.objects.values_list("arxiv_id", flat=True):
            problem = _stored_id_problem(stored)
            if problem:
                refused[stored] = problem
            else:
                asked.append(ArxivId(stored))
    else:
        asked = [arxiv_id_parse(value) for value in arxiv_ids]
    bases = list(dict.fromkeys(ArxivId(arxiv_id.base) for arxiv_id in asked))
    newest = papers_fetch(bases)
    older_wanted, beyond = _older_versions_wanted(asked, newest)
    older = papers_fetch(older_wanted)

    report = PapersRefresh()
    fetched = timezone.now()
    unstored: dict[str, str] = {}
    for base in bases:
        record = newest.found.get(base)
        if record is None:
            continue
        versions = [
            found
            for arxiv_id, found in older.found.items()
            if arxiv_id.base == base.base
        ]
        try:
            outcome = paper_refresh_store(
                record=record, older=versions, fetched=fetched
            )
        except ValidationError as misfit:
            # One paper whose details do not fit stops no other.
            logger.warning("arXiv's details of %s do not fit: %s", base, misfit)
            unstored[base.base] = (
                f"arXiv's details do not fit: {' '.join(misfit.messages)}"
            )
            continue
        if outcome == Outcome.UNCHANGED:
            report.unchanged.append(base.base)
        else:
            report.updated.append(base.base)
    for arxiv_id in [*newest.unknown, *beyond, *older.unknown]:
        report.unknown.append(str(arxiv_id))
    report.failed.update(refused)
    report.failed.update(unstored)
    for arxiv_id, error in [*newest.failed.items(), *older.failed.items()]:
        report.failed[str(arxiv_id)] = str(error)
        if isinstance(error, ArxivUnavailable):
            report.unavailable.append(str(arxiv_id))

    problems = {str(i): PAPER_UNKNOWN_TO_ARXIV for i in newest.unknown}
    problems.update({str(i): str(e) for i, e in newest.failed.items()})
    problems.update(refused)
    problems.update(unstored)
    paper_refresh_failed(problems=problems, when=fetched)
    logger.info(
        "Papers refreshed: %d updated, %d unchanged, %d unknown, %d failed",
        len(report.updated),
        len(report.unchanged),
        len(report.unknown),
        len(report.failed),
    )
    return report


def _stored_id_problem(stored: str) -> str:
    """Why a paper held under ``stored`` cannot be asked about, or "". A row
    written before the rules of ids were what they are now must not make
    arXiv refuse the whole batch it would travel in."""
    try:
        arxiv_id = arxiv_id_parse(stored)
    except ArxivIdError as error:
        return str(error)
    if str(arxiv_id) != stored:
        return f"Held as {stored!r}, an id arXiv lists as {arxiv_id}."
    return ""


def _older_versions_wanted(
    asked: list[ArxivId], newest: FetchResult
) -> tuple[list[ArxivId], list[ArxivId]]:
    """Versions asked for or cited, older than the newest, not yet seen; and
    the versions asked for past the newest, which arXiv cannot have. A cited
    version past the newest costs no request: its citation is marked."""
    found = {arxiv_id.base: record for arxiv_id, record in newest.found.items()}
    wanted = {arxiv_id for arxiv_id in asked if arxiv_id.version is not None}
    beyond = sorted(
        (
            arxiv_id
            for arxiv_id in wanted
            if arxiv_id.base in found
            and arxiv_id.version is not None
            and arxiv_id.version > found[arxiv_id.base].version
        ),
        key=str,
    )
    citations = Citation.objects.filter(paper__arxiv_id__in=found).select_related(
        "paper"
    )
    for citation in citations:
        version = citation.cited_version
        if version is not None and str(version) not in citation.paper.versions:
            wanted.add(ArxivId(citation.paper.arxiv_id, version))
    older = sorted(
        (
            arxiv_id
            for arxiv_id in wanted
            if arxiv_id.base in found
            and arxiv_id.version is not None
            and arxiv_id.version < found[arxiv_id.base].version
        ),
        key=str,
    )
    return older, beyond


def paper_refresh_store(
    *, record: PaperRecord, older: Sequence[PaperRecord], fetched: datetime
) -> Outcome:
    """Store the newest version of a paper as fetched from arXiv, with the
    title and date of any older versions fetched with it. Citations without
    a version record the newest version they are seen with."""
    with transaction.atomic():
        # Made first, then locked: two refreshes meeting a paper new to the
        # site both end up storing it, one after the other.
        _made, created = Paper.objects.get_or_create(arxiv_id=record.base)
        paper = Paper.objects.select_for_update().get(arxiv_id=record.base)
        metadata = {
            "version": record.version,
            "title": record.title,
            "authors": record.authors,
            "abstract": record.abstract,
            "published": record.published,
            "updated": record.updated,
            "primary_category": record.primary_category,
            "categories": record.categories,
            "comment": record.comment,
            "journal_ref": record.journal_ref,
            "doi": record.doi,
            "withdrawn": bool(
                WITHDRAWN_RE.search(record.comment)
                or WITHDRAWN_ABSTRACT_RE.search(record.abstract)
            ),
        }
        changed = created or any(
            getattr(paper, name) != value for name, value in metadata.items()
        )
        for name, value in metadata.items():
            setattr(paper, name, value)
        paper.versions = {
            **paper.versions,
            **{
                str(seen.version): {
                    "title": seen.title,
                    "date": seen.updated.isoformat(),
                }
                for seen in [*older, record]
            },
        }
        paper.fetched = fetched
        paper.refresh_failed = None
        paper.refresh_error = ""
        paper.full_clean()
        paper.save()
        Citation.objects.filter(
            paper=paper, version__isnull=True, version_seen__isnull=True
        ).update(version_seen=record.version)
    if changed:
        logger.info("Paper %s updated to v%d from arXiv", record.base, record.version)
    return (
        Outcome.CREATED
        if created
        else Outcome.UPDATED
        if changed
        else Outcome.UNCHANGED
    )


def paper_refresh_failed(*, problems: dict[str, str], when: datetime) -> None:
    """Note on each paper held that its refresh failed, and why; its
    metadata stays as it was."""
    for paper in Paper.objects.filter(arxiv_id__in=problems):
        paper.refresh_failed = when
        paper.refresh_error = problems[paper.arxiv_id][:300]
        paper.save(update_fields=["refresh_failed", "refresh_error"])
