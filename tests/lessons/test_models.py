import hashlib
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from lessons.markdown import BodyTooDeep, html_nesting_check, render_markdown
from lessons.models import Tag, split_arxiv_id
from tests.lessons.factories import LessonFactory

pytestmark = pytest.mark.django_db


def test_saving_stores_rendered_html_and_the_body_hash():
    lesson = LessonFactory(body="## Title\n\nText with `code`.\n")

    assert "<h2>Title</h2>" in lesson.body_html
    assert "<code>code</code>" in lesson.body_html
    assert lesson.body_sha256 == hashlib.sha256(lesson.body.encode()).hexdigest()


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        "[click](javascript:alert(1))",
        '<a href="#" onclick="steal()">x</a>',
        "<iframe src='https://example.com'></iframe>",
    ],
)
def test_rendered_html_is_sanitised(markdown):
    html = render_markdown(markdown)

    for dangerous in (
        "<script",
        "onerror=",
        'href="javascript:',
        "onclick=",
        "<iframe",
    ):
        assert dangerous not in html


def test_code_blocks_are_highlighted():
    html = render_markdown("```dockerfile\nFROM busybox\n```\n")

    assert 'class="language-dockerfile"' in html
    assert '<span class="k">FROM</span>' in html


@pytest.mark.parametrize(
    ("price", "display"),
    [
        (None, "Free"),
        (Decimal("0.005"), "0.005 AIN"),
        (Decimal("2"), "2 AIN"),
        (Decimal("0.000000000000000001"), "0.000000000000000001 AIN"),
    ],
)
def test_price_is_displayed_exactly(price, display):
    assert LessonFactory(price=price).price_display == display


def test_depth_outside_1_to_5_is_refused_by_validation_and_the_database():
    lesson = LessonFactory.build(depth=6)

    with pytest.raises(ValidationError):
        lesson.full_clean()
    with pytest.raises(IntegrityError):
        lesson.save()


def test_gated_lesson_without_price_is_refused():
    with pytest.raises(IntegrityError):
        LessonFactory(gated=True, price=None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2506.06478", ("2506.06478", None)),
        ("2506.06478v3", ("2506.06478", 3)),
        ("0704.0001", ("0704.0001", None)),
        ("hep-th/9901001", ("hep-th/9901001", None)),
        ("math.GT/0309136v2", ("math/0309136", 2)),  # as arXiv lists it
    ],
)
def test_arxiv_ids_split_into_base_and_version(value, expected):
    assert split_arxiv_id(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "2506", "2506.064", "abc", "2506.06478v", "../etc/passwd", "2506.06478\n"],
)
def test_malformed_arxiv_ids_are_refused(value):
    with pytest.raises(ValidationError):
        split_arxiv_id(value)


@pytest.mark.parametrize(
    ("name", "kind", "link"),
    [
        ("docker", Tag.Kind.PLAIN, None),
        ("arxiv:2506.06478", Tag.Kind.ARXIV, None),
        ("doi:10.1000/xyz", Tag.Kind.DOI, "https://doi.org/10.1000/xyz"),
        ("code:https://example.org/repo", Tag.Kind.CODE, "https://example.org/repo"),
        ("code:javascript:alert(1)", Tag.Kind.CODE, None),
    ],
)
def test_tag_kinds_and_links(name, kind, link):
    tag = Tag(name=name)

    assert tag.kind == kind
    assert tag.link == link


def test_a_price_on_a_lesson_that_is_not_gated_charges_nobody():
    lesson = LessonFactory(price=Decimal("0.002"), gated=False)

    assert lesson.is_free
    assert lesson.price_display == "Free"
    assert lesson.price_amount is None


@pytest.mark.parametrize(
    "html",
    [
        "<div>" * 100 + "</div>" * 100,
        # Siblings do not nest, however many.
        "<div><span>x</span></div>" * 5000,
        # A closing tag closes what was left open inside it.
        ("<div><span>" + "</div>") * 5000,
        # Void and self-closing elements nest nothing.
        "<div>" * 99 + "<br><img src=x>" * 200 + "</div>" * 99,
    ],
)
def test_html_nested_up_to_the_limit_passes(html):
    html_nesting_check(html)


@pytest.mark.parametrize(
    "html", ["<div>" * 101 + "</div>" * 101, "<div><p>" * 40 + "<ul><li>" * 61]
)
def test_html_nested_deeper_than_the_limit_is_refused(html):
    with pytest.raises(BodyTooDeep, match="nests more than 100 elements deep"):
        html_nesting_check(html)


def test_a_body_cleaned_then_saved_is_rendered_once(monkeypatch):
    import lessons.models

    rendered: list[str] = []

    def counted(source: str) -> str:
        rendered.append(source)
        return render_markdown(source)

    monkeypatch.setattr(lessons.models, "render_markdown", counted)
    lesson = LessonFactory.build(body="First *body*.\n")
    lesson.topic.save()
    lesson.topic_id = lesson.topic.pk

    lesson.full_clean()
    lesson.save()
    lesson.body = "Second *body*.\n"
    lesson.save()

    assert rendered == ["First *body*.\n", "Second *body*.\n"]
    assert "<em>body</em>" in lesson.body_html and "Second" in lesson.body_html
