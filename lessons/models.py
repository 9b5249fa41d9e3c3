import hashlib
import re
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxLengthValidator,
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
)
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from config.parsing import direction_control_in
from lessons.markdown import BodyTooDeep, render_markdown

MIN_DEPTH = 1
MAX_DEPTH = 5

# Chips that set a field of the lesson instead of being tags.
FLAG_TAGS = {"x402_gated": "gated"}

TOPIC_PATH_RE = re.compile(r"^[a-z0-9][a-z0-9-]*(/[a-z0-9][a-z0-9-]*)*$")

# New-style ids (0704.0001 onwards) and old-style ids (hep-th/9901001, or
# math.GT/0309136 with a subject class), each with an optional version suffix.
# ASCII digits only: \d would take other scripts' digits, which arXiv refuses.
ARXIV_ID_PATTERN = r"(?:[0-9]{4}\.[0-9]{4,5}|[a-z][a-z-]{0,19}(?:\.[A-Z]{2})?/[0-9]{7})"
ARXIV_ID_RE = re.compile(
    rf"^(?P<base>{ARXIV_ID_PATTERN})(?:v(?P<version>[0-9]{{1,4}}))?$"
)
# The archives old-style ids were issued under, until March 2007. arXiv
# refuses ids it deems malformed for the whole batch they come in.
OLD_STYLE_ARCHIVES = frozenset((
    "acc-phys", "adap-org", "alg-geom", "ao-sci", "astro-ph", "atom-ph",
    "bayes-an", "chao-dyn", "chem-ph", "cmp-lg", "comp-gas", "cond-mat", "cs",
    "dg-ga", "funct-an", "gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th",
    "math", "math-ph", "mtrl-th", "nlin", "nucl-ex", "nucl-th", "patt-sol",
    "physics", "plasm-ph", "q-alg", "q-bio", "quant-ph", "solv-int", "supr-con",
))  # fmt: skip


DIRECTION_CONTROL_REASON = (
    "a mark turning the direction of the text after it, the page's own words "
    "too; take it out."
)


def refuse_direction_controls(field: str, text: str) -> None:
    """Refuse a title, summary, tag or note holding a mark that turns the
    direction of the text after it: on a page it would reverse the site's
    own words beside it (a price, a depth)."""
    mark = direction_control_in(text)
    if mark is not None:
        raise ValidationError({field: f"It holds {mark}, {DIRECTION_CONTROL_REASON}"})


def split_arxiv_id(value: str) -> tuple[str, int | None]:
    """Split ``2506.06478v2`` into ``("2506.06478", 2)``; refuse a bad id.
    The subject class of an old-style id is dropped, as arXiv does:
    ``math.GT/0309136`` is the paper arXiv lists as ``math/0309136``."""
    match = ARXIV_ID_RE.fullmatch(value)
    if match is None:
        # An address or a tag of any length may land here; say enough of it.
        shown = value if len(value) <= 60 else f"{value[:60]}…"
        raise ValidationError(f"{shown!r} is not an arXiv identifier.")
    base, version = match.group("base"), match.group("version")
    if "/" in base:
        archive, number = base.split("/")
        base = f"{archive.split('.')[0]}/{number}"
    problem = _arxiv_id_problem(base)
    if problem is None and version is not None and int(version) == 0:
        problem = "versions count from 1"
    if problem:
        raise ValidationError(f"{value!r} is not an arXiv identifier: {problem}.")
    return base, int(version) if version else None


def _arxiv_id_problem(base: str) -> str | None:
    """What makes a base id of the right shape impossible, or None. New-style
    ids began in April 2007 with four-digit numbers, five from January 2015;
    old-style ids ran from August 1991 to March 2007; none is dated after the
    current month."""
    if "/" in base:
        archive, number = base.split("/")
        if archive not in OLD_STYLE_ARCHIVES:
            return f"there is no archive {archive!r}"
        stamp, number = number[:4], number[4:]
        year, month = int(stamp[:2]), int(stamp[2:])
        full_year = 1900 + year if year >= 91 else 2000 + year
        earliest, latest = (1991, 8), (2007, 3)
    else:
        stamp, number = base.split(".")
        year, month = int(stamp[:2]), int(stamp[2:])
        full_year = 2000 + year
        # arXiv numbers a paper in the month it is announced, in New York;
        # that month has begun in UTC by then, so no real id is newer.
        now = timezone.now()
        earliest, latest = (2007, 4), (now.year, now.month)
    if not 1 <= month <= 12:
        return f"there is no month {month:02d}"
    if not earliest <= (full_year, month) <= latest:
        style = "old-style" if "/" in base else "new-style"
        return f"no {style} ids are dated {stamp}"
    if "/" not in base:
        digits = 5 if full_year >= 2015 else 4
        if len(number) != digits:
            return f"ids of {stamp} have {digits}-digit numbers"
    if int(number) == 0:
        return "papers are numbered from 1"
    return None


class Topic(models.Model):
    """A node of the topic tree, named by its path: ``security/ci-cd``."""

    path = models.CharField(
        max_length=200,
        unique=True,
        validators=[
            RegexValidator(
                TOPIC_PATH_RE,
                "A topic path is lowercase words and hyphens joined by '/', "
                "such as 'security/ci-cd'.",
            )
        ],
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return self.path

    def get_absolute_url(self) -> str:
        return reverse("lessons:topic", kwargs={"path": self.path})

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def parent_path(self) -> str | None:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else None

    def ancestor_paths(self) -> list[str]:
        parts = self.path.split("/")
        return ["/".join(parts[: index + 1]) for index in range(len(parts))]

    def clean(self) -> None:
        expected_parent = self.parent_path
        actual_parent = self.parent.path if self.parent else None
        if expected_parent != actual_parent:
            raise ValidationError(
                {"parent": f"The parent of {self.path!r} must be {expected_parent!r}."}
            )


class Tag(models.Model):
    """A label on lessons. ``arxiv:``, ``doi:`` and ``code:`` tags are
    references rather than chips."""

    class Kind(models.TextChoices):
        PLAIN = "plain"
        ARXIV = "arxiv"
        DOI = "doi"
        CODE = "code"

    name = models.CharField(max_length=200, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        refuse_direction_controls("name", self.name)
        if self.name in FLAG_TAGS:
            raise ValidationError(
                {
                    "name": f"{self.name!r} is a flag: set the lesson's '{FLAG_TAGS[self.name]}' field instead."
                }
            )
        if self.kind == Tag.Kind.ARXIV:
            split_arxiv_id(self.reference)

    @property
    def kind(self) -> "Tag.Kind":
        prefix, _, rest = self.name.partition(":")
        if rest and prefix in {Tag.Kind.ARXIV, Tag.Kind.DOI, Tag.Kind.CODE}:
            return Tag.Kind(prefix)
        return Tag.Kind.PLAIN

    @property
    def reference(self) -> str:
        return self.name.partition(":")[2]

    @property
    def link(self) -> str | None:
        if self.kind == Tag.Kind.DOI:
            return f"https://doi.org/{self.reference}"
        if self.kind == Tag.Kind.CODE and self.reference.startswith("https://"):
            return self.reference
        return None


# What a paper's refresh_error says when arXiv did not know its id.
PAPER_UNKNOWN_TO_ARXIV = "arXiv does not know this id."


class Paper(models.Model):
    """An arXiv paper. ``version`` is the newest version known to the site;
    the metadata is that version's. ``versions`` keeps the title and date of
    each version the site has seen, by number, so that a lesson citing an
    older version can name what it cited."""

    arxiv_id = models.CharField("arXiv id", max_length=40, unique=True)
    version = models.PositiveIntegerField(null=True, blank=True)
    title = models.CharField(max_length=500, blank=True)
    authors = models.JSONField(default=list, blank=True)
    abstract = models.TextField(blank=True)
    published = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(null=True, blank=True)
    primary_category = models.CharField(max_length=40, blank=True)
    categories = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True)
    journal_ref = models.CharField(max_length=500, blank=True)
    doi = models.CharField("DOI", max_length=200, blank=True)
    fetched = models.DateTimeField(
        null=True, blank=True, help_text="Empty: bundled metadata, never fetched."
    )
    versions = models.JSONField(default=dict, blank=True)
    withdrawn = models.BooleanField(default=False)
    # The last refresh that failed, when it came after the last success: the
    # metadata above stays as it was.
    refresh_failed = models.DateTimeField(null=True, blank=True)
    refresh_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["arxiv_id"]

    def __str__(self) -> str:
        return f"arXiv:{self.arxiv_id}"

    def get_absolute_url(self) -> str:
        return reverse("lessons:paper", kwargs={"arxiv_id": self.arxiv_id})

    def clean(self) -> None:
        base, version = split_arxiv_id(self.arxiv_id)
        if version is not None:
            raise ValidationError(
                {"arxiv_id": "Store the base id; the version goes in its own field."}
            )
        if base != self.arxiv_id:
            raise ValidationError(
                {"arxiv_id": f"Store the id as arXiv lists it: {base}."}
            )

    @property
    def unknown_to_arxiv(self) -> bool:
        """arXiv did not know the paper at the last refresh, as opposed to
        the refresh failing for a while (arXiv down, a bad answer)."""
        return self.refresh_error == PAPER_UNKNOWN_TO_ARXIV

    @property
    def refresh_problem(self) -> str:
        """Why the last refresh failed, as a sentence."""
        text = self.refresh_error.strip()
        return text if text.endswith((".", "!", "?")) else f"{text}."

    @property
    def abs_url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv_id}"

    @property
    def pdf_url(self) -> str:
        return f"https://arxiv.org/pdf/{self.arxiv_id}"

    @property
    def authors_display(self) -> str:
        if len(self.authors) > 3:
            return f"{self.authors[0]} et al."
        return ", ".join(self.authors)

    def version_abs_url(self, version: int) -> str:
        return f"https://arxiv.org/abs/{self.arxiv_id}v{version}"

    def version_seen(self, version: int) -> dict[str, str]:
        """Title and date (ISO 8601) of one version, as far as known."""
        seen: dict[str, str] = self.versions.get(str(version), {})
        return seen


class LessonQuerySet(models.QuerySet["Lesson"]):
    def with_listing(self) -> "LessonQuerySet":
        """What a list of lessons shows: topic, tags and papers, in a fixed
        number of queries."""
        return self.select_related("topic").prefetch_related(
            models.Prefetch(
                "lesson_tags", queryset=LessonTag.objects.select_related("tag")
            ),
        )

    def free(self) -> "LessonQuerySet":
        return self.filter(gated=False)

    def paid(self) -> "LessonQuerySet":
        return self.filter(gated=True)


class Lesson(models.Model):
    slug = models.SlugField(max_length=120, unique=True)
    title = models.CharField(max_length=200)
    summary = models.TextField(max_length=1000, validators=[MaxLengthValidator(1000)])
    body = models.TextField(help_text="Markdown.")
    body_html = models.TextField(editable=False)
    body_sha256 = models.CharField(max_length=64, editable=False)
    depth = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(MIN_DEPTH), MaxValueValidator(MAX_DEPTH)],
        help_text="1 (introductory) to 5 (expert).",
    )
    price = models.DecimalField(
        max_digits=38,
        decimal_places=18,
        null=True,
        blank=True,
        validators=[
            MinValueValidator(
                Decimal("0.000000000000000001"),
                message="A price is above zero; leave it empty for a free lesson.",
            )
        ],
        help_text="Exact amount of the asset; empty means free.",
    )
    asset = models.CharField(max_length=16, default=settings.LESSONS_DEFAULT_ASSET)
    gated = models.BooleanField(
        default=False, help_text="The body is sold per lesson through x402."
    )
    topic = models.ForeignKey(Topic, on_delete=models.PROTECT, related_name="lessons")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="lessons",
    )
    tags = models.ManyToManyField(Tag, through="LessonTag", related_name="lessons")
    papers = models.ManyToManyField(Paper, through="Citation", related_name="lessons")
    created = models.DateTimeField(default=timezone.now, db_index=True)
    updated = models.DateTimeField(auto_now=True)

    objects = LessonQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(depth__gte=MIN_DEPTH) & Q(depth__lte=MAX_DEPTH),
                name="lesson_depth_1_to_5",
            ),
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gt=0),
                name="lesson_price_positive",
            ),
            models.CheckConstraint(
                condition=Q(gated=False) | Q(price__isnull=False),
                name="lesson_gated_has_price",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: object, **kwargs: object) -> None:
        self.body_html = self.body_rendered()
        self.body_sha256 = hashlib.sha256(self.body.encode()).hexdigest()
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def get_absolute_url(self) -> str:
        return reverse("lessons:detail", kwargs={"slug": self.slug})

    def clean(self) -> None:
        if self.gated and self.price is None:
            raise ValidationError({"gated": "A gated lesson needs a price."})
        for name in ("title", "summary"):
            refuse_direction_controls(name, getattr(self, name))
        try:
            self.body_rendered()
        except BodyTooDeep as error:
            raise ValidationError({"body": str(error)}) from None

    def body_rendered(self) -> str:
        """The body as safe HTML, rendered once for clean() and save() alike
        while the body stays the same."""
        rendered: tuple[str, str] | None = getattr(self, "_rendered", None)
        if rendered is None or rendered[0] != self.body:
            rendered = (self.body, render_markdown(self.body))
            self._rendered = rendered
        return rendered[1]

    @property
    def is_free(self) -> bool:
        return not self.gated

    @property
    def price_amount(self) -> str | None:
        """What a reader pays, as a plain decimal string without trailing
        zeros; None when the lesson is free to read. A price on a lesson
        that is not gated is kept for when it is, and charged to nobody."""
        if not self.gated or self.price is None:
            return None
        return format_decimal(self.price)

    @property
    def price_display(self) -> str:
        if self.price_amount is None:
            return "Free"
        return f"{self.price_amount} {self.asset}"


def format_decimal(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


class LessonTag(models.Model):
    lesson = models.ForeignKey(
        Lesson, on_delete=models.CASCADE, related_name="lesson_tags"
    )
    tag = models.ForeignKey(Tag, on_delete=models.PROTECT, related_name="lesson_tags")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["lesson", "tag"], name="lesson_tag_once")
        ]

    def __str__(self) -> str:
        return f"{self.lesson.slug}: {self.tag.name}"


class Citation(models.Model):
    """A lesson citing a paper, at the version it was written against."""

    lesson = models.ForeignKey(
        Lesson, on_delete=models.CASCADE, related_name="citations"
    )
    paper = models.ForeignKey(Paper, on_delete=models.PROTECT, related_name="citations")
    version = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: the newest version when cited."
    )
    # For a citation without a version: the newest version the site knew
    # when it first saw the citation, recorded so that later versions show.
    version_seen = models.PositiveIntegerField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["lesson", "paper"], name="citation_once")
        ]

    def __str__(self) -> str:
        return f"{self.lesson.slug} cites {self.paper.arxiv_id}"

    @property
    def cited_version(self) -> int | None:
        return self.version or self.version_seen

    @property
    def newer_version(self) -> int | None:
        """The paper's newest version when it is newer than the one cited."""
        cited, newest = self.cited_version, self.paper.version
        if cited is not None and newest is not None and newest > cited:
            return newest
        return None

    @property
    def missing_version(self) -> int | None:
        """The version cited when arXiv had no such version at the last
        refresh: it is past the newest version fetched then."""
        cited, newest = self.version, self.paper.version
        if cited is None or newest is None or self.paper.fetched is None:
            return None
        return cited if cited > newest else None

    @property
    def cited_title(self) -> str:
        """The title of the version cited, when it differs from the newest."""
        if self.cited_version is None or self.newer_version is None:
            return ""
        title = self.paper.version_seen(self.cited_version).get("title", "")
        return title if title != self.paper.title else ""


class Edge(models.Model):
    """A typed, directed link declared by ``source`` about ``target``.

    ``prerequisite``: read the target before the source. ``extends``: the
    source goes further than the target. ``related``: symmetric; one row
    stands for both directions.
    """

    class Kind(models.TextChoices):
        PREREQUISITE = "prerequisite"
        EXTENDS = "extends"
        RELATED = "related"

    source = models.ForeignKey(
        Lesson, on_delete=models.CASCADE, related_name="edges_out"
    )
    target = models.ForeignKey(
        Lesson, on_delete=models.CASCADE, related_name="edges_in"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["kind", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "target", "kind"], name="edge_once"
            ),
            models.CheckConstraint(
                condition=~Q(source=models.F("target")),
                name="edge_not_to_itself",
                violation_error_message="A lesson cannot link to itself.",
            ),
        ]
        indexes = [models.Index(fields=["target", "kind"])]

    def __str__(self) -> str:
        return f"{self.source.slug} {self.kind} {self.target.slug}"

    def clean(self) -> None:
        from lessons.graph import describe_cycle, prerequisite_cycle

        refuse_direction_controls("note", self.note)
        if self.source_id is None or self.target_id is None:
            return
        if self.source_id == self.target_id:
            return  # the edge_not_to_itself constraint says so
        if self.kind == Edge.Kind.RELATED:
            reverse_exists = (
                Edge.objects.filter(
                    source_id=self.target_id,
                    target_id=self.source_id,
                    kind=Edge.Kind.RELATED,
                )
                .exclude(pk=self.pk)
                .exists()
            )
            if reverse_exists:
                raise ValidationError(
                    f"{self.target.slug} is already related to {self.source.slug}; "
                    "related links go both ways."
                )
        if self.kind == Edge.Kind.PREREQUISITE:
            cycle = prerequisite_cycle(
                extra=[(self.source.slug, self.target.slug)], exclude_pk=self.pk
            )
            if cycle:
                raise ValidationError(describe_cycle(cycle))


class ArxivTurn(models.Model):
    """When the next request to arXiv may start, as seconds since the epoch.
    One row, locked by every worker that asks arXiv anything
    (``lessons.arxiv_client``)."""

    next_at = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"next arXiv request at {self.next_at}"


class ContentVersion(models.Model):
    """One counter, moved by every write to what lesson pages show. Cached
    pages carry the number they were made at, so every process sees a write
    as soon as it is committed."""

    number = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"content version {self.number}"
