from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import (
    BooleanField,
    ExpressionWrapper,
    ForeignKey,
    Q,
    QuerySet,
    Value,
)
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from lessons.arxiv_client import ArxivIdError, arxiv_id_parse
from lessons.models import Edge, Lesson, LessonTag, Paper, Tag, Topic, split_arxiv_id
from lessons.services import lesson_citations_sync
from lessons.tasks import lesson_rerender, papers_refresh


class LessonTagFormSet(forms.BaseInlineFormSet[LessonTag, Lesson, Any]):
    """A lesson cites a paper once: two ``arxiv:`` tags naming one paper,
    at two versions or with a subject class and without, are refused."""

    def clean(self) -> None:
        super().clean()
        named: dict[str, str] = {}
        for form in self.forms:
            cleaned = getattr(form, "cleaned_data", {})
            tag = cleaned.get("tag")
            if cleaned.get("DELETE") or tag is None or tag.kind != Tag.Kind.ARXIV:
                continue
            base, _version = split_arxiv_id(tag.reference)
            if base in named:
                raise forms.ValidationError(
                    f"{named[base]!r} and {tag.name!r} name the same paper, "
                    f"arXiv:{base}; a lesson cites a paper once, at one version."
                )
            named[base] = tag.name


class LessonTagInline(admin.TabularInline[LessonTag, Lesson]):
    model = LessonTag
    formset = LessonTagFormSet
    extra = 1
    autocomplete_fields = ["tag"]


class EdgeInline(admin.TabularInline[Edge, Lesson]):
    """Outgoing edges. Each row runs ``Edge.clean``, so a prerequisite cycle
    is refused here exactly as on import."""

    model = Edge
    fk_name = "source"
    extra = 1
    autocomplete_fields = ["target"]


def edits_every_lesson(request: HttpRequest) -> bool:
    """Superusers edit every lesson; an instructor only the lessons they author.
    Another author's lesson is theirs to sell: its body is what buyers pay
    for, its price and gated flag what they are charged, and its author
    the wallet sales pay."""
    return bool(request.user.is_superuser)


def authors_lesson(request: HttpRequest, lesson: Lesson | None) -> bool:
    return (
        lesson is None
        or edits_every_lesson(request)
        or (lesson.author_id is not None and lesson.author_id == request.user.pk)
    )


@admin.register(Lesson)
class LessonAdmin(admin.ModelAdmin[Lesson]):
    """Instructors list every lesson (the list shows what the catalogue
    shows), but open, change and delete only their own, and a lesson they
    add is theirs."""

    list_display = [
        "title",
        "slug",
        "topic",
        "depth",
        "price_shown",
        "gated",
        "created",
    ]
    list_filter = ["depth", "gated", "topic"]
    search_fields = ["title", "slug", "summary"]
    prepopulated_fields = {"slug": ["title"]}
    readonly_fields = ["body_sha256", "updated", "cited_papers"]
    autocomplete_fields = ["topic", "author"]
    inlines = [LessonTagInline, EdgeInline]
    actions = ["rerender"]
    fieldsets = [
        (None, {"fields": ["title", "slug", "summary", "topic", "author", "depth"]}),
        ("Price", {"fields": ["price", "asset", "gated"]}),
        ("Body", {"fields": ["body", "body_sha256"]}),
        ("Citations", {"fields": ["cited_papers"]}),
        ("Times", {"fields": ["created", "updated"]}),
    ]

    @admin.display(description="Price", ordering="price")
    def price_shown(self, lesson: Lesson) -> str:
        return lesson.price_display

    def get_queryset(self, request: HttpRequest) -> QuerySet[Lesson]:
        """Each lesson knows whether the viewer may open it, for its title."""
        opens = (
            Value(True)
            if edits_every_lesson(request)
            else ExpressionWrapper(
                Q(author_id=request.user.pk), output_field=BooleanField()
            )
        )
        return super().get_queryset(request).annotate(opens=opens)

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return ["title_opened", *self.list_display[1:]]

    def get_list_display_links(  # type: ignore[override]
        self, request: HttpRequest, list_display: Sequence[Any]
    ) -> None:
        # None: no column links by itself; the title links where it may.
        return None

    @admin.display(description="Title", ordering="title")
    def title_opened(self, lesson: Lesson) -> str:
        """A link to the lesson's page here where the viewer may open it;
        another author's lesson is named only."""
        if getattr(lesson, "opens", False):
            url = reverse("admin:lessons_lesson_change", args=[lesson.pk])
            return format_html('<a href="{}">{}</a>', url, lesson.title)
        return format_html("{} <small>(another author's)</small>", lesson.title)

    def has_view_permission(
        self, request: HttpRequest, obj: Lesson | None = None
    ) -> bool:
        return super().has_view_permission(request, obj) and authors_lesson(
            request, obj
        )

    def has_change_permission(
        self, request: HttpRequest, obj: Lesson | None = None
    ) -> bool:
        return super().has_change_permission(request, obj) and authors_lesson(
            request, obj
        )

    def has_delete_permission(
        self, request: HttpRequest, obj: Lesson | None = None
    ) -> bool:
        return super().has_delete_permission(request, obj) and authors_lesson(
            request, obj
        )

    def get_readonly_fields(
        self, request: HttpRequest, obj: Lesson | None = None
    ) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if not edits_every_lesson(request):
            fields.append("author")
        return fields

    def save_model(
        self, request: HttpRequest, obj: Lesson, form: Any, change: bool
    ) -> None:
        if not change and not edits_every_lesson(request):
            obj.author = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    @admin.display(description="Cited papers (from the arxiv: tags)")
    def cited_papers(self, lesson: Lesson) -> str:
        citations = lesson.citations.select_related("paper") if lesson.pk else []
        return ", ".join(str(citation.paper) for citation in citations) or "none"

    def save_related(
        self, request: HttpRequest, form: Any, formsets: Any, change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)
        lesson_citations_sync(lesson=form.instance)
        never_fetched = list(
            form.instance.papers.filter(fetched__isnull=True, title="").values_list(
                "arxiv_id", flat=True
            )
        )
        if never_fetched:
            # celery-types does not know delay_on_commit (Celery 5.4+).
            papers_refresh.delay_on_commit(never_fetched)  # type: ignore[attr-defined]

    @admin.action(description="Render the HTML of the selected lessons again")
    def rerender(self, request: HttpRequest, queryset: QuerySet[Lesson]) -> None:
        for lesson_id in queryset.values_list("pk", flat=True):
            # celery-types does not know delay_on_commit (Celery 5.4+).
            lesson_rerender.delay_on_commit(lesson_id)  # type: ignore[attr-defined]
        self.message_user(request, f"Queued {queryset.count()} lessons for rendering.")


@admin.register(Edge)
class EdgeAdmin(admin.ModelAdmin[Edge]):
    """An edge belongs to the lesson that declares it, its source: an
    instructor changes only the edges of their own lessons, since a
    prerequisite changes what a path's bundle sells."""

    list_display = ["source", "kind", "target", "note"]
    list_filter = ["kind"]
    search_fields = ["source__slug", "target__slug"]
    autocomplete_fields = ["source", "target"]

    def has_change_permission(
        self, request: HttpRequest, obj: Edge | None = None
    ) -> bool:
        return super().has_change_permission(request, obj) and authors_lesson(
            request, obj.source if obj is not None else None
        )

    def has_delete_permission(
        self, request: HttpRequest, obj: Edge | None = None
    ) -> bool:
        return super().has_delete_permission(request, obj) and authors_lesson(
            request, obj.source if obj is not None else None
        )

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> Any:
        if db_field.name == "source" and not edits_every_lesson(request):
            kwargs["queryset"] = Lesson.objects.filter(author=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin[Topic]):
    list_display = ["path", "parent"]
    search_fields = ["path"]
    autocomplete_fields = ["parent"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin[Tag]):
    search_fields = ["name"]


class PaperAddForm(forms.ModelForm[Paper]):
    """A paper is added by its arXiv id alone; its metadata is fetched in
    the background. A version given with the id is dropped: the site keeps
    the newest, and lessons name the version they cite."""

    class Meta:
        model = Paper
        fields = ["arxiv_id"]
        help_texts = {"arxiv_id": "Such as 2506.06478 or hep-th/9901001."}

    def clean_arxiv_id(self) -> str:
        try:
            return arxiv_id_parse(self.cleaned_data["arxiv_id"]).base
        except ArxivIdError as error:
            raise forms.ValidationError(str(error)) from None


@admin.register(Paper)
class PaperAdmin(admin.ModelAdmin[Paper]):
    list_display = [
        "arxiv_id",
        "version",
        "title",
        "primary_category",
        "withdrawn",
        "fetched",
        "refresh_failed",
    ]
    list_filter = ["withdrawn"]
    search_fields = ["arxiv_id", "title"]
    readonly_fields = ["fetched", "refresh_failed", "refresh_error"]
    actions = ["refresh"]

    def get_form(
        self,
        request: HttpRequest,
        obj: Paper | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[forms.ModelForm[Paper]]:
        if obj is None:
            kwargs["form"] = PaperAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Paper | None = None) -> Any:
        if obj is None:
            return ["arxiv_id"]
        return super().get_fields(request, obj)

    def save_model(
        self, request: HttpRequest, obj: Paper, form: Any, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            papers_refresh.delay_on_commit([obj.arxiv_id])  # type: ignore[attr-defined]
            self.message_user(
                request, f"Fetching the details of {obj} from arXiv in the background."
            )

    @admin.action(description="Fetch the selected papers from arXiv again")
    def refresh(self, request: HttpRequest, queryset: QuerySet[Paper]) -> None:
        arxiv_ids = list(queryset.values_list("arxiv_id", flat=True))
        papers_refresh.delay_on_commit(arxiv_ids)  # type: ignore[attr-defined]
        self.message_user(request, f"Queued {len(arxiv_ids)} papers for fetching.")
