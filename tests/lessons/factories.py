from decimal import Decimal

import factory

from lessons.models import Edge, Lesson, Topic
from lessons.services import topic_ensure


class TopicFactory(factory.django.DjangoModelFactory[Topic]):
    class Meta:
        model = Topic
        django_get_or_create = ["path"]

    path = factory.Sequence(lambda n: f"topic-{n}")


class LessonFactory(factory.django.DjangoModelFactory[Lesson]):
    class Meta:
        model = Lesson

    slug = factory.Sequence(lambda n: f"lesson-{n}")
    title = factory.Sequence(lambda n: f"Lesson number {n}")
    summary = "A short lesson used by the tests."
    body = "## Heading\n\nSome text.\n"
    depth = 2
    topic = factory.LazyFunction(lambda: topic_ensure(path="testing"))
    price = None
    # A priced lesson is sold, unless a test says otherwise.
    gated = factory.LazyAttribute(lambda lesson: lesson.price is not None)

    class Params:
        priced = factory.Trait(price=Decimal("0.005"), gated=True)


class EdgeFactory(factory.django.DjangoModelFactory[Edge]):
    class Meta:
        model = Edge

    source = factory.SubFactory(LessonFactory)
    target = factory.SubFactory(LessonFactory)
    kind = Edge.Kind.PREREQUISITE


def admin_change_form(lesson: Lesson, tags=()) -> dict[str, object]:
    """What the admin's change page for ``lesson`` posts, the lesson as it
    is, with ``tags`` (Tag rows) as its tag lines in order."""
    form: dict[str, object] = {
        "title": lesson.title, "slug": lesson.slug, "summary": lesson.summary,
        "topic": lesson.topic.pk, "depth": 2, "price": "", "asset": "AIN",
        "body": lesson.body, "created_0": "2026-01-01", "created_1": "00:00:00",
        "lesson_tags-TOTAL_FORMS": len(tags), "lesson_tags-INITIAL_FORMS": 0,
        "edges_out-TOTAL_FORMS": 0, "edges_out-INITIAL_FORMS": 0,
    }  # fmt: skip
    for position, tag in enumerate(tags):
        form[f"lesson_tags-{position}-tag"] = tag.pk
        form[f"lesson_tags-{position}-position"] = position
    return form
