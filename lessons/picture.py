"""Lay a neighbourhood out as a picture: the centre in the middle, each hop
on its own ring. The template ``lessons/_neighbourhood.svg`` draws it."""

import math
from dataclasses import dataclass, field

from lessons.graph import Neighbourhood
from lessons.models import Edge, Lesson, Paper

WIDTH = 960
HEIGHT = 500
MARGIN_X = 215
MARGIN_Y = 50
LABEL_LENGTH = 28
# The shortest label worth showing, and the width of one character of the
# labels' 12px font, about, for a label's room on a crowded ring.
LABEL_LENGTH_MIN = 6
CHARACTER_WIDTH = 7.0
# How much further out every other label above and below the centre goes,
# so that neighbours' labels there take two rows.
STAGGER = 15


@dataclass(frozen=True)
class PlacedLesson:
    lesson: Lesson
    x: float
    y: float
    hop: int
    angle: float = 0.0
    # Characters a label centred above or below may take; outer, one pushed
    # further out than its neighbours'; reach, how far the ring reaches above
    # and below the centre.
    room: int = LABEL_LENGTH
    outer: bool = False
    reach: float = 0.0

    @property
    def label_position(self) -> tuple[float, float, str]:
        return label_position(
            self.x, self.y, self.hop, self.angle, self.outer, self.reach
        )

    @property
    def label(self) -> str:
        return label_of(self.lesson.title, self.angle, self.hop, self.room)


@dataclass(frozen=True)
class PlacedPaper:
    """A cited paper, on the ring past the nearest lesson citing it."""

    paper: Paper
    x: float
    y: float
    hop: int
    angle: float = 0.0
    room: int = LABEL_LENGTH
    outer: bool = False
    reach: float = 0.0

    @property
    def label_position(self) -> tuple[float, float, str]:
        return label_position(
            self.x, self.y, self.hop, self.angle, self.outer, self.reach
        )

    @property
    def label(self) -> str:
        return label_of(
            self.paper.title or str(self.paper), self.angle, self.hop, self.room
        )

    @property
    def corner(self) -> tuple[float, float]:
        """The top left corner of its square."""
        return round(self.x - 9, 1), round(self.y - 9, 1)


def centred(hop: int, angle: float) -> bool:
    """Whether a node's label is centred above or below it (near the top or
    the bottom of its ring) rather than beside it."""
    return hop > 0 and abs(math.cos(angle)) <= 0.35


def label_position(
    x: float,
    y: float,
    hop: int,
    angle: float,
    outer: bool = False,
    reach: float = 0.0,
) -> tuple[float, float, str]:
    """Where a label goes: away from the centre, so that labels of one ring
    spread outward instead of over the edges. Those centred above (below)
    their nodes stand in two rows past the ring's top (bottom), every other
    one in the outer row."""
    if hop == 0:
        return x, y + 30, "middle"
    cos, sin = math.cos(angle), math.sin(angle)
    if cos > 0.35:
        return x + 15, y + 4, "start"
    if cos < -0.35:
        return x - 15, y + 4, "end"
    further = STAGGER if outer else 0
    if sin > 0:
        return x, max(y, HEIGHT / 2 + reach) + 26 + further, "middle"
    return x, min(y, HEIGHT / 2 - reach) - 16 - further, "middle"


def label_of(title: str, angle: float, hop: int, room: int) -> str:
    """A label beside its node has up to LABEL_LENGTH characters; one
    centred above or below, what its ring leaves it."""
    return shortened(title, room if centred(hop, angle) else LABEL_LENGTH)


def shortened(title: str, length: int = LABEL_LENGTH) -> str:
    if len(title) <= length:
        return title
    return title[: length - 1].rstrip() + "…"


def label_room(members: int, hop: int, step_x: float) -> int:
    """Characters a centred label of a ring may take. Near the top and
    bottom, neighbours on a ring of ``members`` stand about
    2 pi hop step_x / members apart; every other label is pushed further
    out, so each has twice that."""
    spacing = 2 * math.pi * hop * step_x / max(members, 1)
    fits = int(2 * spacing / CHARACTER_WIDTH) - 1
    return max(LABEL_LENGTH_MIN, min(LABEL_LENGTH, fits))


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
        return trimmed(self.start, self.end)


def trimmed(
    start: "PlacedLesson | PlacedPaper", end: "PlacedLesson | PlacedPaper"
) -> tuple[float, float, float, float]:
    """End points pulled back from the node circles so arrows show."""
    dx, dy = end.x - start.x, end.y - start.y
    length = math.hypot(dx, dy) or 1.0
    pull = 16 / length
    return (
        round(start.x + dx * pull, 1),
        round(start.y + dy * pull, 1),
        round(end.x - dx * pull, 1),
        round(end.y - dy * pull, 1),
    )


@dataclass(frozen=True)
class PlacedCitation:
    """A lesson citing a paper: a line without an arrow."""

    start: PlacedLesson
    end: PlacedPaper
    version: int | None

    def trimmed(self) -> tuple[float, float, float, float]:
        return trimmed(self.start, self.end)


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    lessons: list[PlacedLesson]
    edges: list[PlacedEdge]
    left_out: int
    papers: list[PlacedPaper] = field(default_factory=list)
    citations: list[PlacedCitation] = field(default_factory=list)


def layout(hood: Neighbourhood, limit: int) -> Picture:
    shown = [hood.center, *hood.neighbours()[: max(limit - 1, 0)]]
    papers = hood.papers()[: max(limit - len(shown), 0)]
    rings: dict[int, list[Lesson | Paper]] = {}
    for lesson in shown:
        rings.setdefault(hood.hops[lesson.pk], []).append(lesson)
    for paper in papers:
        rings.setdefault(hood.paper_hops[paper.pk], []).append(paper)

    # Rings fill the picture: the outermost touches its margins.
    outermost = max(rings) or 1
    step_x = (WIDTH / 2 - MARGIN_X) / outermost
    step_y = (HEIGHT / 2 - MARGIN_Y) / outermost
    placed: dict[int, PlacedLesson] = {}
    placed_papers: dict[int, PlacedPaper] = {}
    for hop, members in rings.items():
        turn = hop * 0.5  # turn each ring a little so labels don't stack
        room = label_room(len(members), hop, step_x)
        for index, member in enumerate(members):
            angle = turn + 2 * math.pi * index / len(members)
            x = round(WIDTH / 2 + hop * step_x * math.cos(angle), 1)
            y = round(HEIGHT / 2 + hop * step_y * math.sin(angle), 1)
            outer = index % 2 == 1
            if isinstance(member, Paper):
                placed_papers[member.pk] = PlacedPaper(
                    member, x, y, hop, angle, room, outer, hop * step_y
                )
            else:
                placed[member.pk] = PlacedLesson(
                    member, x, y, hop, angle, room, outer, hop * step_y
                )

    edges = []
    for edge in hood.edges:
        if edge.source_id not in placed or edge.target_id not in placed:
            continue
        source, target = placed[edge.source_id], placed[edge.target_id]
        edges.append(
            PlacedEdge(kind=edge.kind, note=edge.note, start=target, end=source)
        )
    citations = [
        PlacedCitation(
            start=placed[citation.lesson_id],
            end=placed_papers[citation.paper_id],
            version=citation.cited_version,
        )
        for citation in hood.citations
        if citation.lesson_id in placed and citation.paper_id in placed_papers
    ]
    return Picture(
        width=WIDTH,
        height=HEIGHT,
        lessons=list(placed.values()),
        edges=edges,
        left_out=len(hood.hops) + len(hood.paper_hops) - len(placed) - len(papers),
        papers=list(placed_papers.values()),
        citations=citations,
    )
