"""Importing our own lesson files: front matter and Markdown."""

import itertools
import textwrap
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from lessons.models import Edge, Lesson

pytestmark = pytest.mark.django_db


def lesson_file(
    folder: Path, slug: str, front_matter: str = "", body: str = "## Start\n\nText.\n"
) -> Path:
    header = textwrap.dedent(front_matter).strip()
    defaults = {
        "slug": slug,
        "title": f'"Title of {slug}"',
        "summary": '"A summary."',
        "topic": "containers/builds",
        "depth": "2",
    }
    lines = [
        f"{key}: {value}" for key, value in defaults.items() if f"{key}:" not in header
    ]
    path = folder / f"{slug}.md"
    path.write_text("---\n" + "\n".join([*lines, header]).strip() + "\n---\n" + body)
    return path


def run_import(*paths: Path) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("import_lessons", *map(str, paths), stdout=out, stderr=err)
    except CommandError as error:
        err.write(f"CommandError: {error}\n")
    return out.getvalue(), err.getvalue()


def test_front_matter_gives_every_field_and_edge(tmp_path):
    base = lesson_file(tmp_path, "base")
    path = lesson_file(
        tmp_path,
        "advanced",
        """
        depth: 4
        price: "0.01 AIN"
        gated: true
        created: "2026-03-01T10:00:00Z"
        tags: [buildah, secrets, "arxiv:2506.06478v1", "doi:10.1000/xyz"]
        edges:
          - {kind: prerequisite, to: base, note: "Read the basics first."}
          - {kind: related, to: base}
        """,
    )

    out, err = run_import(base, path)

    lesson = Lesson.objects.get(slug="advanced")
    assert "2 created" in out, err
    assert lesson.depth == 4
    assert lesson.price_display == "0.01 AIN"
    assert lesson.gated
    assert lesson.created.isoformat() == "2026-03-01T10:00:00+00:00"
    assert list(lesson.lesson_tags.values_list("tag__name", flat=True)) == [
        "buildah", "secrets", "arxiv:2506.06478v1", "doi:10.1000/xyz",
    ]  # fmt: skip
    assert list(lesson.citations.values_list("paper__arxiv_id", "version")) == [
        ("2506.06478", 1)
    ]
    assert sorted(lesson.edges_out.values_list("kind", "target__slug", "note")) == [
        ("prerequisite", "base", "Read the basics first."),
        ("related", "base", ""),
    ]


def test_reimport_counts_created_updated_and_unchanged(tmp_path):
    first = lesson_file(tmp_path, "first")
    second = lesson_file(tmp_path, "second")
    run_import(first, second)
    lesson_file(tmp_path, "second", "depth: 3")

    out, _ = run_import(first, second)

    assert "0 created, 1 updated, 1 unchanged, 0 failed" in out
    assert Lesson.objects.count() == 2
    assert Lesson.objects.get(slug="second").depth == 3


def test_reimport_of_a_time_in_another_zone_is_unchanged(tmp_path):
    path = lesson_file(tmp_path, "zoned", 'created: "2026-03-01T10:00:00+02:00"')
    run_import(path)
    first = Lesson.objects.get(slug="zoned")

    out, _ = run_import(path)

    assert "0 created, 0 updated, 1 unchanged, 0 failed" in out
    assert Lesson.objects.get(slug="zoned").updated == first.updated


def test_progress_is_shown_for_many_files(tmp_path):
    paths = [lesson_file(tmp_path, f"lesson-{n}") for n in range(3)]

    out, _ = run_import(*paths)

    assert "[1/3]" in out
    assert "[3/3]" in out


def test_edges_may_point_at_lessons_later_in_the_batch(tmp_path):
    early = lesson_file(
        tmp_path, "a-needs-b", "edges: [{kind: prerequisite, to: z-basics}]"
    )
    late = lesson_file(tmp_path, "z-basics")

    out, err = run_import(early, late)

    assert "2 created" in out, err
    assert Edge.objects.filter(
        source__slug="a-needs-b", target__slug="z-basics"
    ).exists()


def test_related_edge_declared_on_both_sides_is_stored_once(tmp_path):
    one = lesson_file(tmp_path, "one", "edges: [{kind: related, to: two}]")
    two = lesson_file(tmp_path, "two", "edges: [{kind: related, to: one}]")

    run_import(one, two)
    out, _ = run_import(one, two)

    assert Edge.objects.filter(kind="related").count() == 1
    assert "2 unchanged" in out


def test_removed_edges_are_removed_on_reimport(tmp_path):
    base = lesson_file(tmp_path, "base")
    path = lesson_file(tmp_path, "top", "edges: [{kind: extends, to: base}]")
    run_import(base, path)
    lesson_file(tmp_path, "top")

    run_import(path)

    assert not Edge.objects.exists()


def test_prerequisite_cycle_is_refused_naming_the_cycle(tmp_path):
    a = lesson_file(tmp_path, "a", "edges: [{kind: prerequisite, to: b}]")
    b = lesson_file(tmp_path, "b", "edges: [{kind: prerequisite, to: c}]")
    c = lesson_file(tmp_path, "c")
    run_import(a, b, c)
    lesson_file(tmp_path, "c", "title: Changed\nedges: [{kind: prerequisite, to: a}]")

    out, err = run_import(c)

    assert "1 failed" in out
    cycle = err.split("Prerequisite cycle: ")[1].split(".")[0].split(" → ")
    assert set(itertools.pairwise(cycle)) == {
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
    }
    assert f"{c}:7: " in err  # the line of the edge that closes it
    # All or nothing: neither the edge nor the new title was written.
    assert Lesson.objects.get(slug="c").title == "Title of c"
    assert not Edge.objects.filter(source__slug="c").exists()


@pytest.mark.parametrize(
    ("front_matter", "line", "message"),
    [
        ("depth: 7", 6, "depth 7 is outside 1 to 5"),
        ("depth: deep", 6, "depth 'deep' is not a whole number"),
        ('price: "5 dollars"', 7, "price '5 dollars' is not an amount and an asset"),
        ('price: "0 AIN"', 7, "must be above zero"),
        ('price: "0.0000000000000000001 AIN"', 7, "is not an amount"),
        ("colour: blue", 7, "unknown key 'colour'"),
        ("tags: [x402_gated]", 7, "'x402_gated' is a flag, not a tag"),
        ('tags: ["arxiv:not-an-id"]', 7, "does not hold a valid arXiv id"),
        (
            'tags: ["arxiv:2506.06478v1", "arxiv:2506.06478v2"]',
            7,
            "name the same paper; a lesson cites a paper once",
        ),
        ("gated: true", 7, "a gated lesson needs a price"),
        ("edges: [{kind: needs, to: x}]", 7, "edge kind 'needs' is not one of"),
        (
            "edges: [{kind: related, to: ghost}]",
            7,
            "edges point at unknown lessons: 'ghost'",
        ),
        ("slug: Not A Slug", 6, "'Not A Slug' is not a valid slug"),
        ('created: "yesterday"', 7, "'created' 'yesterday' is not an ISO 8601 time"),
        ('created: "2026-01-01T00:00:00"', 7, "'created' must give its time zone"),
        ("title: [unclosed", 6, "the front matter is not valid YAML"),
    ],
)
def test_bad_file_gets_one_message_with_name_and_line(
    tmp_path, front_matter, line, message
):
    path = lesson_file(tmp_path, "broken", front_matter)

    out, err = run_import(path)

    assert "0 created, 0 updated, 0 unchanged, 1 failed" in out
    assert f"{path}:{line}: " in err
    assert message in err
    assert not Lesson.objects.exists()


def test_file_without_closing_front_matter_is_refused(tmp_path):
    path = tmp_path / "open.md"
    path.write_text("---\nslug: open\n")

    _, err = run_import(path)

    assert f"{path}:1: the front matter has no closing '---' line" in err


def test_file_without_body_is_refused(tmp_path):
    path = lesson_file(tmp_path, "empty", body="\n")

    _, err = run_import(path)

    assert "the lesson has no body" in err


def test_one_bad_file_does_not_stop_the_others_and_exit_is_non_zero(tmp_path):
    good = lesson_file(tmp_path, "good")
    bad = lesson_file(tmp_path, "bad", "depth: 9")

    with pytest.raises(CommandError, match="1 of 2 files failed"):
        call_command(
            "import_lessons", str(good), str(bad), stdout=StringIO(), stderr=StringIO()
        )

    assert list(Lesson.objects.values_list("slug", flat=True)) == ["good"]


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="no such file or folder"):
        call_command("import_lessons", str(tmp_path / "nowhere.md"))


def test_text_that_is_neither_format_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Just some notes.\n")

    _, err = run_import(path)

    assert f"{path}:1: no 'Depth' line: this is not a lesson page" in err


def test_two_files_with_one_slug_are_refused_naming_the_first(tmp_path):
    first = lesson_file(tmp_path, "dup-a", "slug: same")
    second = lesson_file(tmp_path, "dup-b", "slug: same")

    out, err = run_import(first, second)

    assert "1 created, 0 updated, 0 unchanged, 1 failed" in out
    assert f"{second}:6: slug 'same' is already used by {first}" in err


def test_cycle_across_files_blames_the_cycle_not_unknown_lessons(tmp_path):
    files = [
        lesson_file(tmp_path, "cyc-a", "edges: [{kind: prerequisite, to: cyc-b}]"),
        lesson_file(tmp_path, "cyc-b", "edges: [{kind: prerequisite, to: cyc-c}]"),
        lesson_file(tmp_path, "cyc-c", "edges: [{kind: prerequisite, to: cyc-a}]"),
    ]

    out, err = run_import(*files)

    assert "3 failed" in out
    assert "Prerequisite cycle:" in err
    assert "unknown lessons" not in err
    assert "whose files failed in this run" in err
    assert not Lesson.objects.exists()


def test_byte_order_mark_is_ignored(tmp_path):
    path = lesson_file(tmp_path, "bom")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())

    out, _ = run_import(path)

    assert "1 created" in out


def test_a_body_nesting_html_too_deep_is_refused(tmp_path):
    lesson_file(tmp_path, "deep", body="<div>" * 100_000)

    _out, err = run_import(tmp_path)

    assert "nests more than 100 elements deep" in err
    assert not Lesson.objects.exists()


@pytest.mark.parametrize(
    ("front_matter", "line"),
    [
        ('title: "Hub \\u202e evil"', 6),
        ('summary: "Text \\u2067 after"', 6),
        # The mark as pasted, not escaped.
        ('tags: ["a\u202db"]', 7),
        ('edges:\n  - {kind: related, to: base, note: "n\\u202e"}', 8),
    ],
)
def test_a_mark_turning_the_direction_of_the_text_after_it_is_refused(
    tmp_path, front_matter, line
):
    lesson_file(tmp_path, "base")
    lesson_file(tmp_path, "spoof", front_matter)

    _out, err = run_import(tmp_path)

    assert "a mark turning the direction of the text after it" in err
    assert f"spoof.md:{line}:" in err
    assert not Lesson.objects.filter(slug="spoof").exists()


def test_empty_file_is_refused_as_empty(tmp_path):
    path = tmp_path / "empty.md"
    path.write_text("\n\n")

    _, err = run_import(path)

    assert f"{path}:1: the file is empty" in err


def test_oversized_file_is_refused(tmp_path):
    path = lesson_file(tmp_path, "huge", body="x" * 1_000_001)

    _, err = run_import(path)

    assert "a lesson has at most 1,000,000" in err


@pytest.mark.parametrize(
    ("front_matter", "message"),
    [
        (
            "edges: [{kind: related, to: other, note: " + "n" * 301 + "}]",
            "at most 300 characters",
        ),
        ('tags: ["arxiv:' + "a" * 60 + '/1234567"]', "does not hold a valid arXiv id"),
        (
            'summary: "' + "s" * 1001 + '"',
            "summary: Ensure this value has at most 1000 characters",
        ),
        (
            'title: "' + "t" * 201 + '"',
            "title: Ensure this value has at most 200 characters",
        ),
        ("topic: Security/CI", "is not lowercase words and hyphens"),
        ("author: nobody", "no user named 'nobody'"),
    ],
)
def test_values_too_long_or_unknown_are_refused_at_their_line(
    tmp_path, front_matter, message
):
    lesson_file(tmp_path, "other")
    path = lesson_file(tmp_path, "long", front_matter)

    out, err = run_import(tmp_path / "other.md", path)

    assert "1 failed" in out
    assert message in err
    assert f"{path}:1:" not in err


def test_folders_are_searched_with_their_subfolders(tmp_path):
    (tmp_path / "deeper").mkdir()
    lesson_file(tmp_path, "top")
    lesson_file(tmp_path / "deeper", "inner")
    (tmp_path / "deeper" / "inner.md").rename(tmp_path / "deeper" / "inner.MARKDOWN")

    out, _ = run_import(tmp_path)

    assert "2 created" in out


def test_an_edge_to_a_file_that_failed_to_parse_names_that_failure(tmp_path):
    broken = lesson_file(tmp_path, "broken", "depth: seven")
    follower = lesson_file(
        tmp_path, "follower", "edges: [{kind: prerequisite, to: broken}]"
    )

    out, err = run_import(broken, follower)

    assert "2 failed" in out
    assert f"{follower}:" in err
    assert "lessons whose files failed in this run: 'broken'" in err
    assert "unknown lessons" not in err
