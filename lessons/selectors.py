from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import QueryDict
from django.shortcuts import get_object_or_404

from config.errors import ApplicationError
from config.parsing import is_whole_number
from lessons.graph import LearningPath, Neighbourhood, learning_path, neighbourhood
from lessons.models import (
    MAX_DEPTH,
    MIN_DEPTH,
    Citation,
    Lesson,
    LessonTag,
    Paper,
    Topic,
    split_arxiv_id,
)

# Tags one catalogue query may require at once; no reader narrows further.
MAX_CATALOGUE_TAGS = 20


class WholeNumberField(forms.IntegerField):
    """An integer in the digits 0-9: int(), and so IntegerField, also read
    other scripts' digits (U+0661, an Arabic-Indic one, is 1)."""

    def to_python(self, value: Any) -> int | None:
        if value not in self.empty_values and not is_whole_number(str(value).strip()):
            raise forms.ValidationError("Give a number in digits 0-9.", code="invalid")
        return super().to_python(value)


class CatalogueFilters(forms.Form):
    """The catalogue's query parameters, shared by the page and the API.
    ``tag`` may be given several times; every tag must match."""

    search = forms.CharField(required=False, max_length=200, strip=True)
    topic = forms.CharField(required=False, max_length=200)
    depth = WholeNumberField(required=False, min_value=MIN_DEPTH, max_value=MAX_DEPTH)
    price = forms.ChoiceField(
        required=False, choices=[("", "Any price"), ("free", "Free"), ("paid", "Paid")]
    )

    def first_error(self) -> str:
        name, errors = next(iter(self.errors.items()))
        return f"{name}: {' '.join(str(error) for error in errors)}"


def catalogue_filters(params: QueryDict) -> dict[str, Any]:
    repeated = sorted(
        name for name in params if name != "tag" and len(params.getlist(name)) > 1
    )
    if repeated:
        raise ApplicationError(f"Bad query parameter {repeated[0]}: give it only once.")
    form = CatalogueFilters(params)
    if not form.is_valid():
        raise ApplicationError(f"Bad query parameter {form.first_error()}")
    filters = dict(form.cleaned_data)

    tags = [tag.strip() for tag in params.getlist("tag") if tag.strip()]
    if any(len(tag) > 200 for tag in tags):
        raise ApplicationError("Bad query parameter tag: at most 200 characters.")
    if len(set(tags)) > MAX_CATALOGUE_TAGS:
        raise ApplicationError(
            f"Bad query parameter tag: at most {MAX_CATALOGUE_TAGS} tags at once."
        )
    filters["tags"] = list(dict.fromkeys(tags))

    topic = filters["topic"].strip().strip("/").lower()
    if topic and not Topic.objects.filter(path=topic).exists():
        raise ApplicationError(
            f"Bad query parameter topic: there is no topic {topic!r}; "
            "the topics are listed at /topics/."
        )
    filters["topic"] = topic
    return filters


def lesson_catalogue(
    *,
    search: str = "",
    tags: Sequence[str] = (),
    topic: str = "",
    depth: int | None = None,
    price: str = "",
) -> QuerySet[Lesson]:
    """Lessons matching every given filter, newest first. A topic includes
    its subtopics; every word of ``search`` must appear in the title, summary
    or body.

    The bodies of gated lessons are not searched: matching substrings one
    character at a time would read them out without paying.
    """
    lessons = Lesson.objects.with_listing()
    for word in search.split():
        lessons = lessons.filter(
            Q(title__icontains=word)
            | Q(summary__icontains=word)
            | Q(gated=False, body__icontains=word)
        )
    if tags:
        # One subquery however many tags: a join per tag would pass SQLite's
        # limit of 64 tables in a query, and slow PostgreSQL's planner long
        # before that.
        lessons = lessons.filter(
            pk__in=LessonTag.objects.filter(tag__name__in=tags)
            .values("lesson")
            .annotate(matched=Count("tag"))
            .filter(matched=len(set(tags)))
            .values("lesson")
        )
    if topic:
        lessons = lessons.filter(
            Q(topic__path=topic) | Q(topic__path__startswith=f"{topic}/")
        )
    if depth is not None:
        lessons = lessons.filter(depth=depth)
    if price == "free":
        lessons = lessons.free()
    elif price == "paid":
        lessons = lessons.paid()
    return lessons.order_by("-created", "slug")


def lesson_get(*, slug: str) -> Lesson:
    return get_object_or_404(
        Lesson.objects.select_related("topic", "author").prefetch_related(
            "lesson_tags__tag", "citations__paper"
        ),
        slug=slug,
    )


def neighbourhood_depth(raw: str | None) -> int:
    if raw is None or raw == "":
        return 1
    limit = settings.LESSONS_NEIGHBOURHOOD_MAX_DEPTH
    if not is_whole_number(raw) or not 1 <= int(raw) <= limit:
        raise ApplicationError(
            f"Bad query parameter depth: a whole number from 1 to {limit}."
        )
    return int(raw)


def lesson_neighbourhood(*, lesson: Lesson, depth: int = 1) -> Neighbourhood:
    return neighbourhood(lesson, depth)


def lesson_learning_path(*, lesson: Lesson) -> LearningPath:
    return learning_path(lesson)


@dataclass
class TopicOverview:
    topic: Topic
    ancestors: list[Topic]
    children: list[Topic]
    by_depth: dict[int, list[Lesson]]

    @property
    def frontier(self) -> list[Lesson]:
        """The deepest lessons of the topic: where it currently ends."""
        if not self.by_depth:
            return []
        return self.by_depth[max(self.by_depth)]


def topic_overview(*, path: str) -> TopicOverview:
    topic = get_object_or_404(Topic, path=path)
    lessons = lesson_catalogue(topic=path).order_by("depth", "title")
    by_depth: dict[int, list[Lesson]] = {}
    for lesson in lessons:
        by_depth.setdefault(lesson.depth, []).append(lesson)
    return TopicOverview(
        topic=topic,
        ancestors=list(Topic.objects.filter(path__in=topic.ancestor_paths()[:-1])),
        children=list(topic.children.all()),
        by_depth=by_depth,
    )


def topic_list() -> list[Topic]:
    """Every topic with ``lesson_count``: its lessons and its subtopics'."""
    topics: list[Topic] = list(
        Topic.objects.annotate(own=Count("lessons")).order_by("path")
    )
    totals = dict.fromkeys((topic.path for topic in topics), 0)
    for topic in topics:
        for path in topic.ancestor_paths():
            if path in totals:
                totals[path] += topic.own  # type: ignore[attr-defined]
    for topic in topics:
        topic.lesson_count = totals[topic.path]  # type: ignore[attr-defined]
    return topics


# Papers ---------------------------------------------------------------------


def paper_get(*, arxiv_id: str) -> Paper:
    """The paper held under a base id; 404 with the reason for an id that
    is malformed or not held. The ``arXiv:`` arXiv prints before its ids, and
    the site too beside a citation, is taken off."""
    if arxiv_id[:6].lower() == "arxiv:":
        arxiv_id = arxiv_id[6:]
    try:
        base, _version = split_arxiv_id(arxiv_id)
    except ValidationError as error:
        raise ApplicationError(error.messages[0], status=HTTPStatus.NOT_FOUND) from None
    paper = Paper.objects.filter(arxiv_id=base).first()
    if paper is None:
        raise ApplicationError(
            f"No lesson cites arXiv:{base}, so the site holds no page for it.",
            status=HTTPStatus.NOT_FOUND,
        )
    return paper


def paper_citations(*, paper: Paper) -> QuerySet[Citation]:
    return (
        paper.citations.select_related("lesson", "paper")
        .defer("lesson__body", "lesson__body_html")
        .order_by("lesson__title")
    )


def citations_needing_attention(*, author: Any | None) -> list[Citation]:
    """Citations of a paper since revised, withdrawn, or that arXiv did not
    know at the last refresh (the paper, or the version cited); of
    ``author``'s lessons, or of every lesson when ``author`` is None. Most
    urgent first: withdrawn, then by paper."""
    citations = Citation.objects.select_related("lesson", "paper").defer(
        "lesson__body", "lesson__body_html"
    )
    if author is not None:
        citations = citations.filter(lesson__author=author)
    flagged = [
        citation
        for citation in citations.order_by("paper__arxiv_id", "lesson__title")
        if citation.paper.withdrawn
        or citation.newer_version
        or citation.missing_version
        # A refresh that failed while arXiv was down changed nothing cited.
        or citation.paper.unknown_to_arxiv
    ]
    return sorted(flagged, key=lambda citation: not citation.paper.withdrawn)
