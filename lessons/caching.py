"""Cached lesson pages, kept correct by one content version number.

Every write to what a lesson page shows (lessons, edges, tags, citations,
papers, topics) moves ``ContentVersion`` in the same transaction. Cache keys
carry the number, so a page cached before a write is never served after it,
in any process, whatever the cache backend.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import F
from django.db.models.signals import post_delete, post_save

from lessons.models import (
    Citation,
    ContentVersion,
    Edge,
    Lesson,
    LessonTag,
    Paper,
    Tag,
    Topic,
)

COUNTER_ID = 1
WATCHED = (Lesson, Edge, LessonTag, Citation, Paper, Tag, Topic)


def content_version() -> int:
    # Plain SQL: this runs on every cached page view, and the ORM would
    # cost more than the query.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT number FROM {ContentVersion._meta.db_table} WHERE id = %s",
            [COUNTER_ID],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def content_changed(**signal: Any) -> None:
    moved = ContentVersion.objects.filter(pk=COUNTER_ID).update(number=F("number") + 1)
    if not moved:
        ContentVersion.objects.get_or_create(pk=COUNTER_ID, defaults={"number": 1})


def cached[T](key: str, make: Callable[[], T]) -> T:
    """The value under ``key`` for the current content, made when missing."""
    versioned = f"{key}:v{content_version()}"
    value = cache.get(versioned)
    if value is None:
        value = make()
        cache.set(versioned, value, settings.LESSONS_PAGE_CACHE_SECONDS)
    return value


def watch_content() -> None:
    """Move the version on every save and delete of what pages show. Bulk
    writes send no signals; the services that make them also save a lesson
    in the same transaction, which moves it."""
    for model in WATCHED:
        post_save.connect(
            content_changed, sender=model, dispatch_uid=f"content-{model.__name__}"
        )
        post_delete.connect(
            content_changed, sender=model, dispatch_uid=f"content-del-{model.__name__}"
        )
