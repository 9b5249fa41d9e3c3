"""Importing a published lesson page, read from the shared inputs as is."""

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from lessons.importing import split_chips
from lessons.models import Lesson, Tag

PAGE = "lesson-pages/secure-cicd-avoiding-dind.txt"
PAGE_TAGS = [
    "lesson_learned", "ci-cd", "security", "docker", "deployment",
    "containerization", "github actions", "ghcr", "ain-js", "educational",
]  # fmt: skip
CHIPS_IN_ORDER = [
    *PAGE_TAGS[:10],
    "x402_gated",
    "arxiv:2506.06478",
    "arxiv:2511.05720",
    "arxiv:2507.17852",
]


@pytest.fixture
def page(shared_inputs: Path) -> Path:
    return shared_inputs / PAGE


@pytest.fixture
def vocabulary(tmp_path: Path) -> Path:
    path = tmp_path / "vocabulary.txt"
    path.write_text("# tags of the published page\n" + "\n".join(PAGE_TAGS) + "\n")
    return path


def run_import(*args: str) -> str:
    out = StringIO()
    call_command("import_lessons", *args, stdout=out, stderr=out)
    return out.getvalue()


def chip_line(page: Path) -> str:
    return next(
        line
        for line in page.read_text().splitlines()
        if line.startswith("lesson_learned")
    )


def test_chips_split_into_fourteen_distinct_tags_in_order(page, vocabulary):
    chips = split_chips(chip_line(page), set(PAGE_TAGS))

    assert chips == CHIPS_IN_ORDER
    assert len(chips) == 14


@pytest.mark.django_db
def test_page_import_reads_every_field(page, vocabulary):
    output = run_import(str(page), "--vocabulary", str(vocabulary))

    lesson = Lesson.objects.get()
    assert "1 created, 0 updated, 0 unchanged, 0 failed" in output
    assert lesson.slug == "secure-cicd-avoiding-dind"
    assert (
        lesson.title == "Secure CI/CD Container Deployment: Avoiding Docker-in-Docker"
    )
    assert lesson.summary.startswith(
        "Docker-in-Docker (DinD) introduces security risks"
    )
    assert lesson.summary.endswith("grounded in recent academic research.")
    assert lesson.topic.path == "architecture"
    assert lesson.depth == 4
    assert lesson.price == Decimal("0.005")
    assert lesson.asset == "AIN"
    assert lesson.price_display == "0.005 AIN"
    assert lesson.gated is True
    assert lesson.created == datetime(2026, 2, 20, 2, 5, 9, tzinfo=UTC)
    tags = list(lesson.lesson_tags.values_list("tag__name", flat=True))
    assert tags == [chip for chip in CHIPS_IN_ORDER if chip != "x402_gated"]
    assert not Tag.objects.filter(name="x402_gated").exists()
    cited = list(lesson.citations.values_list("paper__arxiv_id", flat=True))
    assert cited == ["2506.06478", "2511.05720", "2507.17852"]


@pytest.mark.django_db
def test_page_body_starts_at_first_heading_and_drops_page_chrome(page, vocabulary):
    run_import(str(page), "--vocabulary", str(vocabulary))

    body = Lesson.objects.get().body
    assert body.startswith(
        "## Secure CI/CD Container Deployment: Avoiding Docker-in-Docker\n"
    )
    assert "← Back to lessons" not in body
    assert "Passkeys not supported in this browser" not in body
    assert "Graph Neighborhood" not in body
    assert "\nContent\n" not in body
    assert body.rstrip().endswith("both efficient and secure.")


@pytest.mark.django_db
def test_page_body_keeps_the_javascript_block_intact(page, vocabulary):
    source = page.read_text()
    start = source.index("```javascript")
    block = source[start : source.index("```", start + 3) + 3]

    run_import(str(page), "--vocabulary", str(vocabulary))

    lesson = Lesson.objects.get()
    assert block in lesson.body
    assert "deployContainer(imageName, containerName);" in lesson.body
    assert 'class="language-javascript"' in lesson.body_html


@pytest.mark.django_db
def test_reimporting_the_page_changes_nothing(page, vocabulary):
    run_import(str(page), "--vocabulary", str(vocabulary))
    first = Lesson.objects.get()

    output = run_import(str(page), "--vocabulary", str(vocabulary))

    again = Lesson.objects.get()
    assert "0 created, 0 updated, 1 unchanged, 0 failed" in output
    assert again.pk == first.pk
    assert again.updated == first.updated


@pytest.mark.django_db
def test_site_tags_serve_as_vocabulary_on_a_later_import(page, vocabulary):
    run_import(str(page), "--vocabulary", str(vocabulary))

    output = run_import(str(page))

    assert "1 unchanged" in output


@pytest.mark.django_db
def test_created_time_is_read_in_the_given_time_zone(page, vocabulary):
    run_import(
        str(page), "--vocabulary", str(vocabulary), "--timezone", "America/New_York"
    )

    assert Lesson.objects.get().created == datetime(2026, 2, 20, 7, 5, 9, tzinfo=UTC)


@pytest.mark.django_db
def test_unknown_time_zone_is_refused(page, vocabulary):
    with pytest.raises(CommandError, match="Unknown time zone 'Mars/Olympus'"):
        run_import(
            str(page), "--vocabulary", str(vocabulary), "--timezone", "Mars/Olympus"
        )


@pytest.mark.django_db
def test_chips_that_cannot_be_split_are_reported_with_file_and_line(
    page, tmp_path, capsys
):
    partial = tmp_path / "partial.txt"
    partial.write_text("\n".join(PAGE_TAGS[:3]) + "\n")
    err = StringIO()

    with pytest.raises(CommandError, match="1 of 1 files failed"):
        call_command(
            "import_lessons",
            str(page),
            "--vocabulary",
            str(partial),
            stderr=err,
            stdout=StringIO(),
        )

    assert (
        f"{page}:12: cannot split the tags at column 28: 'dockerdeployment"
        in err.getvalue()
    )
    assert not Lesson.objects.exists()


def test_ambiguous_chips_are_reported_not_guessed():
    with pytest.raises(ValueError, match="more than one way at column 1"):
        split_chips("cicdsecurity", {"ci", "cd", "cicd", "security"})


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("dockerarxiv:2506.06478", ["docker", "arxiv:2506.06478"]),
        ("arxiv:2506.06478v2docker", ["arxiv:2506.06478v2", "docker"]),
        ("arxiv:hep-th/9901001docker", ["arxiv:hep-th/9901001", "docker"]),
        ("x402_gateddocker", ["x402_gated", "docker"]),
        ("dockerdocker", ["docker"]),
    ],
)
def test_arxiv_ids_and_flags_are_always_recognised(line, expected):
    assert split_chips(line, {"docker"}) == expected
