from django.conf import settings
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse

from config.errors import ApplicationError
from config.parsing import is_whole_number
from lessons import caching, picture, selectors
from lessons.graph import LearningPath
from lessons.models import Tag
from payments.models import Purchase


def catalogue(request: HttpRequest) -> HttpResponse:
    filters = selectors.catalogue_filters(request.GET)
    lessons = selectors.lesson_catalogue(**filters)
    paginator = Paginator(lessons, settings.LESSONS_CATALOGUE_PAGE_SIZE)
    number = request.GET.get("page") or "1"
    if not is_whole_number(number):
        # The paginator's int() would read U+0661 (an Arabic-Indic one) as 1.
        raise ApplicationError("Bad query parameter page: give a number in digits 0-9.")
    try:
        page = paginator.page(number)
    except (PageNotAnInteger, EmptyPage) as error:
        raise ApplicationError(f"Bad query parameter page: {error}") from error

    query = request.GET.copy()
    query.pop("page", None)
    tag_removals = []
    for tag in filters["tags"]:
        without = query.copy()
        without.setlist("tag", [other for other in filters["tags"] if other != tag])
        tag_removals.append((tag, without.urlencode()))
    return render(
        request,
        "lessons/catalogue.html",
        {
            "page": page,
            "filters": filters,
            "query": query.urlencode(),
            "tag_removals": tag_removals,
            "topics": caching.cached("topics", selectors.topic_list),
            "depths": range(1, 6),
        },
    )


def lesson_detail(request: HttpRequest, slug: str) -> HttpResponse:
    page = caching.cached(f"lesson-page:{slug}", lambda: lesson_page_parts(slug))
    # Per visitor, so never cached: whether this account wrote the lesson,
    # which it reads without buying, or bought it.
    authored = (
        request.user.is_authenticated and page.get("author_id") == request.user.pk
    )
    purchase = (
        Purchase.objects.of_account(request.user).filter(lesson__slug=slug).first()
        if page["gated"] and not authored
        else None
    )
    response = render(
        request,
        "lessons/lesson_detail.html",
        {"page": page, "slug": slug, "purchase": purchase, "authored": authored},
    )
    if authored or purchase is not None:
        # The sold body, for this account alone.
        response["Cache-Control"] = "private, no-store"
    return response


def lesson_page_parts(slug: str) -> dict[str, object]:
    """What a lesson page shows to everyone alike, rendered once per content
    version. Whatever depends on the visitor stays out of it."""
    lesson = selectors.lesson_get(slug=slug)
    hood = selectors.lesson_neighbourhood(lesson=lesson, depth=1)
    tags = [row.tag for row in lesson.lesson_tags.all()]
    context = {
        "lesson": lesson,
        "chips": [tag for tag in tags if tag.kind == Tag.Kind.PLAIN],
        "links": [tag for tag in tags if tag.link],
        "citations": lesson.citations.all(),
        "hood": hood,
        "relations": relations(hood),
        "picture": picture.layout(hood, settings.LESSONS_NEIGHBOURHOOD_PICTURE_LIMIT),
    }
    return {
        "title": lesson.title,
        "gated": lesson.gated,
        "author_id": lesson.author_id,
        "price_display": lesson.price_display,
        "body_html": lesson.body_html,
        "content_url": reverse(
            "payments-api:lesson-content", kwargs={"slug": lesson.slug}
        ),
        "head": render_to_string("lessons/_lesson_head.html", context),
        "tail": render_to_string("lessons/_lesson_tail.html", context),
    }


def relations(hood: selectors.Neighbourhood) -> list[tuple[str, list[object]]]:
    """The centre's direct neighbours grouped by how they relate to it."""
    center = hood.center.pk
    groups: dict[str, list[object]] = {
        "Read first": [],
        "Leads on to": [],
        "Builds on": [],
        "Built on by": [],
        "Related": [],
    }
    for edge in hood.edges:
        if center not in (edge.source_id, edge.target_id):
            continue
        outgoing = edge.source_id == center
        other = hood.lessons[edge.target_id if outgoing else edge.source_id]
        if edge.kind == "prerequisite":
            group = "Read first" if outgoing else "Leads on to"
        elif edge.kind == "extends":
            group = "Builds on" if outgoing else "Built on by"
        else:
            group = "Related"
        groups[group].append({"lesson": other, "note": edge.note})
    return [(name, members) for name, members in groups.items() if members]


def lesson_path(request: HttpRequest, slug: str) -> HttpResponse:
    lesson = selectors.lesson_get(slug=slug)
    path = selectors.lesson_learning_path(lesson=lesson)
    # Per visitor: which lessons of the path this account owns, and what the
    # rest costs as one bundle.
    owned = set(
        Purchase.objects.of_account(request.user)
        .filter(lesson__in=[step.pk for step in path.steps])
        .values_list("lesson_id", flat=True)
    ) | {
        # An author reads their own lessons without buying them.
        step.pk
        for step in path.steps
        if request.user.is_authenticated and step.author_id == request.user.pk
    }
    unowned = [step for step in path.steps if step.gated and step.pk not in owned]
    remaining = LearningPath(lesson=lesson, steps=unowned) if unowned else None
    return render(
        request,
        "lessons/lesson_path.html",
        {"lesson": lesson, "path": path, "owned": owned, "remaining": remaining},
    )


def topic_detail(request: HttpRequest, path: str) -> HttpResponse:
    # Topic paths are lowercase, as the catalogue's ?topic= already reads them.
    overview = selectors.topic_overview(path=path.strip("/").lower())
    if request.path != overview.topic.get_absolute_url():
        return redirect(overview.topic, permanent=True)
    return render(request, "lessons/topic_detail.html", {"overview": overview})


def topic_index(request: HttpRequest) -> HttpResponse:
    return render(
        request, "lessons/topic_index.html", {"topics": selectors.topic_list()}
    )
