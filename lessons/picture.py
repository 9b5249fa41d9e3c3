"""Lay a neighbourhood out as a picture: the centre in the middle, each hop
on its own ring. The template ``lessons/_neighbourhood.svg`` draws it."""

import math
from dataclasses import dataclass

from lessons.graph import Neighbourhood
from lessons.models import Edge, Lesson

WIDTH = 960
HEIGHT = 500
MARGIN_X = 215
MARGIN_Y = 50
LABEL_LENGTH = 28


@dataclass(frozen=True)
class PlacedLesson:
    lesson: Lesson
    x: float
    y: float
    hop: int
    angle: float = 0.0

    @property
    def label_position(self) -> tuple[float, float, str]:
        """Where the label goes: away from the centre, so that labels of
        one ring spread outward instead of over the edges."""
        if self.hop == 0:
            return self.x, self.y + 30, "middle"
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        if cos > 0.35:
            return self.x + 15, self.y + 4, "start"
        if cos < -0.35:
            return self.x - 15, self.y + 4, "end"
        return self.x, self.y + (26 if sin > 0 else -16), "middle"

    @property
    def label(self) -> str:
        title = self.lesson.title
        if len(title) <= LABEL_LENGTH:
            return title
        return title[: LABEL_LENGTH - 1].rstrip() + "…"


@dataclass(frozen=True)
class PlacedEdge:
    kind: str
    note: str
    # Arrows point onward: from the lesson to read first to the one that
    # builds on it. Related edges have no arrow.
    start: PlacedLesson
    end: PlacedLesson

    @property
    def directed(self) -> bool:
        return self.kind != Edge.Kind.RELATED

    def trimmed(self) -> tuple[float, float, float, float]:
        """End points pulled back from the node circles so arrows show."""
        dx, dy = self.end.x - self.start.x, self.end.y - self.start.y
        length = math.hypot(dx, dy) or 1.0
        pull = 16 / length
        return (
            round(self.start.x + dx * pull, 1),
            round(self.start.y + dy * pull, 1),
            round(self.end.x - dx * pull, 1),
            round(self.end.y - dy * pull, 1),
        )


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    lessons: list[PlacedLesson]
    edges: list[PlacedEdge]
    left_out: int


def layout(hood: Neighbourhood, limit: int) -> Picture:
    shown = [hood.center, *hood.neighbours()[: max(limit - 1, 0)]]
    rings: dict[int, list[Lesson]] = {}
    for lesson in shown:
        rings.setdefault(hood.hops[lesson.pk], []).append(lesson)

    # Rings fill the picture: the outermost touches its margins.
    outermost = max(rings) or 1
    step_x = (WIDTH / 2 - MARGIN_X) / outermost
    step_y = (HEIGHT / 2 - MARGIN_Y) / outermost
    placed: dict[int, PlacedLesson] = {}
    for hop, members in rings.items():
        turn = hop * 0.5  # turn each ring a little so labels don't stack
        for index, lesson in enumerate(members):
            angle = turn + 2 * math.pi * index / len(members)
            placed[lesson.pk] = PlacedLesson(
                lesson=lesson,
                x=round(WIDTH / 2 + hop * step_x * math.cos(angle), 1),
                y=round(HEIGHT / 2 + hop * step_y * math.sin(angle), 1),
                hop=hop,
                angle=angle,
            )

    edges = []
    for edge in hood.edges:
        if edge.source_id not in placed or edge.target_id not in placed:
            continue
        source, target = placed[edge.source_id], placed[edge.target_id]
        edges.append(
            PlacedEdge(kind=edge.kind, note=edge.note, start=target, end=source)
        )
    return Picture(
        width=WIDTH,
        height=HEIGHT,
        lessons=list(placed.values()),
        edges=edges,
        left_out=len(hood.hops) - len(placed),
    )
