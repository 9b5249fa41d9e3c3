"""The neighbourhood picture's layout: where nodes and labels go."""

import itertools

import pytest

from lessons.graph import neighbourhood
from lessons.models import Edge
from lessons.picture import CHARACTER_WIDTH, LABEL_LENGTH, layout
from tests.lessons.factories import EdgeFactory, LessonFactory

pytestmark = pytest.mark.django_db

LONG_TITLE = "A rather long title about container images, number {}"


def crowded(count: int):
    center = LessonFactory.create(title="Centre")
    for number in range(count):
        EdgeFactory(
            source=center,
            target=LessonFactory(title=LONG_TITLE.format(number)),
            kind=Edge.Kind.RELATED,
        )
    return layout(neighbourhood(center, 1), limit=40)


def centred_labels(picture) -> list[tuple[float, float, float]]:
    """Each label centred above or below its node: its row, and where it
    starts and ends across, at the labels' character width."""
    spans = []
    for node in picture.lessons:
        x, y, anchor = node.label_position
        if anchor == "middle" and node.hop > 0:
            half = len(node.label) * CHARACTER_WIDTH / 2
            spans.append((y, x - half, x + half))
    return spans


@pytest.mark.parametrize("count", [12, 30, 39])
def test_labels_above_and_below_a_crowded_ring_do_not_overlap(count):
    spans = centred_labels(crowded(count))

    assert spans
    for (row, start, end), (
        other_row,
        other_start,
        other_end,
    ) in itertools.combinations(spans, 2):
        if abs(row - other_row) < 13:  # the labels are 12px high
            assert end <= other_start or other_end <= start


def test_a_sparse_ring_keeps_whole_labels():
    picture = crowded(4)

    assert all(len(node.label) <= LABEL_LENGTH for node in picture.lessons)
    assert any(
        node.label == LONG_TITLE.format(number)[: LABEL_LENGTH - 1].rstrip() + "…"
        for node in picture.lessons
        for number in range(4)
    )


def test_labels_beside_a_crowded_ring_keep_their_length():
    picture = crowded(30)

    beside = [
        node for node in picture.lessons if node.label_position[2] in {"start", "end"}
    ]
    assert beside
    assert all(len(node.label) == LABEL_LENGTH for node in beside)
