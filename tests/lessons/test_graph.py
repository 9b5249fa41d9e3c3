from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from lessons.graph import learning_path, neighbourhood
from lessons.models import Edge
from tests.lessons.factories import EdgeFactory, LessonFactory

pytestmark = pytest.mark.django_db


def test_admin_validation_refuses_a_prerequisite_cycle_naming_it():
    a, b, c = (LessonFactory(slug=slug) for slug in ("a", "b", "c"))
    EdgeFactory(source=a, target=b)
    EdgeFactory(source=b, target=c)
    closing = Edge(source=c, target=a, kind=Edge.Kind.PREREQUISITE)

    with pytest.raises(ValidationError, match=r"Prerequisite cycle: .*a → b → c"):
        closing.full_clean()


def test_cycles_through_other_kinds_are_allowed():
    a, b = LessonFactory.create_batch(2)
    EdgeFactory(source=a, target=b)

    Edge(source=b, target=a, kind=Edge.Kind.EXTENDS).full_clean()


def test_related_is_symmetric_so_the_reverse_is_refused():
    a, b = LessonFactory.create_batch(2)
    EdgeFactory(source=a, target=b, kind=Edge.Kind.RELATED)

    with pytest.raises(ValidationError, match="related links go both ways"):
        Edge(source=b, target=a, kind=Edge.Kind.RELATED).full_clean()


def test_an_edge_to_itself_is_refused():
    a = LessonFactory()

    with pytest.raises(ValidationError, match="cannot link to itself"):
        Edge(source=a, target=a, kind=Edge.Kind.EXTENDS).full_clean()


def test_related_edges_are_followed_from_either_end():
    a, b = LessonFactory.create_batch(2)
    EdgeFactory(source=a, target=b, kind=Edge.Kind.RELATED)

    assert neighbourhood(b, 1).neighbours() == [a]


def test_neighbourhood_includes_edges_between_outer_neighbours():
    center, left, right = LessonFactory.create_batch(3)
    EdgeFactory(source=center, target=left)
    EdgeFactory(source=center, target=right)
    between = EdgeFactory(source=left, target=right, kind=Edge.Kind.RELATED)

    hood = neighbourhood(center, 1)

    assert between in hood.edges


def test_learning_path_puts_every_lesson_after_its_prerequisites():
    basics = LessonFactory(title="Basics", depth=1)
    digests = LessonFactory(title="Digests", depth=2)
    registry = LessonFactory(title="Registry", depth=2)
    secrets = LessonFactory(title="Secrets", depth=3)
    goal = LessonFactory(title="Goal", depth=4)
    for source, target in [
        (goal, registry), (goal, secrets), (registry, digests),
        (digests, basics), (secrets, basics),
    ]:  # fmt: skip
        EdgeFactory(source=source, target=target)

    steps = [lesson.title for lesson in learning_path(goal).steps]

    assert steps[0] == "Basics"
    assert steps[-1] == "Goal"
    assert steps.index("Digests") < steps.index("Registry")
    assert sorted(steps) == ["Basics", "Digests", "Goal", "Registry", "Secrets"]


def test_learning_path_totals_each_asset_apart():
    usd = LessonFactory(price=Decimal("1.50"), asset="USDC")
    ain = LessonFactory(price=Decimal("0.005"))
    goal = LessonFactory(price=Decimal("0.001"))
    EdgeFactory(source=goal, target=usd)
    EdgeFactory(source=goal, target=ain)

    assert learning_path(goal).totals() == {"AIN": "0.006", "USDC": "1.5"}


def test_lesson_without_prerequisites_is_its_own_path():
    lesson = LessonFactory()

    assert learning_path(lesson).steps == [lesson]
    assert learning_path(lesson).totals_display == "Free"
