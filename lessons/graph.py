"""Graph work on lessons with networkx.

The whole graph is never loaded for a page: a neighbourhood is grown from
its centre one hop per query, and a learning path one prerequisite level per
query, so the number of queries depends on the depth asked for, not on how
many lessons the site holds.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import networkx as nx
from django.db.models import Q

from config.errors import ApplicationError
from lessons.models import Citation, Edge, Lesson, Paper, format_decimal


def prerequisite_cycle(
    *, extra: Iterable[tuple[str, str]] = (), exclude_pk: int | None = None
) -> list[str] | None:
    """The slugs of a prerequisite cycle that the stored edges plus ``extra``
    would make, first slug repeated at the end; None when there is none.
    Edges are (source, target) slugs."""
    rows = Edge.objects.filter(kind=Edge.Kind.PREREQUISITE)
    if exclude_pk is not None:
        rows = rows.exclude(pk=exclude_pk)
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_edges_from(rows.values_list("source__slug", "target__slug"))
    graph.add_edges_from(extra)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return None
    return [source for source, _target in cycle] + [cycle[0][0]]


def describe_cycle(slugs: list[str]) -> str:
    return "Prerequisite cycle: " + " → ".join(slugs) + "."


@dataclass
class Neighbourhood:
    center: Lesson
    depth: int
    graph: "nx.MultiDiGraph[int]"
    lessons: dict[int, Lesson]
    hops: dict[int, int]
    edges: list[Edge] = field(default_factory=list)
    # Papers cited by the lessons within reach, one hop past the nearest
    # lesson citing them, and the citations that reach them.
    citations: list[Citation] = field(default_factory=list)
    paper_hops: dict[int, int] = field(default_factory=dict)

    def neighbours(self) -> list[Lesson]:
        """Every lesson but the centre, nearest first, then by title."""
        others = [pk for pk in self.hops if pk != self.center.pk]
        others.sort(key=lambda pk: (self.hops[pk], self.lessons[pk].title))
        return [self.lessons[pk] for pk in others]

    def papers(self) -> list[Paper]:
        """Every paper reached, nearest first, then by id."""
        papers = {citation.paper.pk: citation.paper for citation in self.citations}
        return sorted(
            papers.values(),
            key=lambda paper: (self.paper_hops[paper.pk], paper.arxiv_id),
        )


def neighbourhood(center: Lesson, depth: int) -> Neighbourhood:
    """The lessons within ``depth`` hops of ``center``, edges in any
    direction, with every edge between them."""
    graph: nx.MultiDiGraph[int] = nx.MultiDiGraph()
    graph.add_node(center.pk)
    edges: dict[int, Edge] = {}
    frontier = {center.pk}

    for _hop in range(depth):
        found = Edge.objects.filter(
            Q(source_id__in=frontier) | Q(target_id__in=frontier)
        ).only("id", "source_id", "target_id", "kind", "note")
        reached = set(graph.nodes)
        for edge in found:
            edges[edge.pk] = edge
        frontier = {
            end
            for edge in found
            for end in (edge.source_id, edge.target_id)
            if end not in reached
        }
        graph.add_nodes_from(frontier)
        if not frontier:
            break
    else:
        # Edges between two lessons of the outermost ring were not met on
        # the way out.
        edges.update(
            (edge.pk, edge)
            for edge in Edge.objects.filter(
                source_id__in=frontier, target_id__in=frontier
            ).only("id", "source_id", "target_id", "kind", "note")
        )

    for edge in edges.values():
        graph.add_edge(edge.source_id, edge.target_id, key=edge.pk, kind=edge.kind)
    hops = nx.single_source_shortest_path_length(
        graph.to_undirected(as_view=True), center.pk, cutoff=depth
    )
    # Neighbours are shown by title and facts; their bodies are not needed.
    lessons = (
        Lesson.objects.select_related("topic")
        .defer("body", "body_html")
        .in_bulk(list(hops))
    )
    lessons[center.pk] = center

    # Papers are leaves: a lesson reaches the papers it cites, but the
    # neighbourhood does not grow through a paper to other lessons citing it.
    citing = [pk for pk, hop in hops.items() if hop < depth]
    citations = list(
        Citation.objects.filter(lesson_id__in=citing)
        .select_related("paper")
        .defer("paper__abstract")
        .order_by("lesson_id", "position", "id")
    )
    paper_hops: dict[int, int] = {}
    for citation in citations:
        hop = hops[citation.lesson_id] + 1
        paper_hops[citation.paper_id] = min(paper_hops.get(citation.paper_id, hop), hop)
    return Neighbourhood(
        center=center,
        depth=depth,
        graph=graph,
        lessons=lessons,
        hops=dict(hops),
        edges=sorted(edges.values(), key=lambda edge: edge.pk),
        citations=citations,
        paper_hops=paper_hops,
    )


@dataclass
class LearningPath:
    lesson: Lesson
    steps: list[Lesson]

    @property
    def prerequisites(self) -> list[Lesson]:
        return self.steps[:-1]

    def totals(self) -> dict[str, str]:
        """Total price of every step, per asset, as decimal strings."""
        sums: dict[str, Decimal] = {}
        for step in self.steps:
            if step.gated and step.price is not None:
                sums[step.asset] = sums.get(step.asset, Decimal(0)) + step.price
        return {asset: format_decimal(total) for asset, total in sorted(sums.items())}

    @property
    def totals_display(self) -> str:
        totals = self.totals()
        if not totals:
            return "Free"
        return " + ".join(f"{amount} {asset}" for asset, amount in totals.items())


def learning_path(lesson: Lesson) -> LearningPath:
    """Every prerequisite of ``lesson``, transitively, in an order where each
    lesson comes after all of its own prerequisites; ties go to the shallower
    lesson, then by title. The lesson itself is the last step."""
    order_graph: nx.DiGraph[int] = nx.DiGraph()
    order_graph.add_node(lesson.pk)
    frontier = {lesson.pk}
    while frontier:
        found = Edge.objects.filter(
            kind=Edge.Kind.PREREQUISITE, source_id__in=frontier
        ).values_list("source_id", "target_id")
        known = set(order_graph.nodes)
        frontier = set()
        for needs, needed in found:
            order_graph.add_edge(needed, needs)
            if needed not in known:
                frontier.add(needed)

    lessons = (
        Lesson.objects.select_related("topic")
        .defer("body", "body_html")
        .in_bulk(list(order_graph.nodes))
    )
    lessons[lesson.pk] = lesson
    try:
        order = list(
            nx.lexicographical_topological_sort(
                order_graph,
                key=lambda pk: f"{lessons[pk].depth}:{lessons[pk].title}",
            )
        )
    except nx.NetworkXUnfeasible as error:
        raise ApplicationError(
            f"The prerequisites of {lesson.slug} form a cycle; "
            "an editor has to remove one of its edges."
        ) from error
    return LearningPath(lesson=lesson, steps=[lessons[pk] for pk in order])
