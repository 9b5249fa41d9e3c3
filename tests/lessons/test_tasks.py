"""Tasks run on a real Celery worker over the configured broker."""

import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app
from lessons.models import Lesson
from lessons.tasks import lesson_rerender
from tests.lessons.factories import LessonFactory


@pytest.fixture
def worker(transactional_db):
    with start_worker(app, perform_ping_check=False, shutdown_timeout=30):
        yield


def test_worker_renders_stale_lesson_html_again(worker):
    lesson = LessonFactory(body="## Fresh\n")
    Lesson.objects.filter(pk=lesson.pk).update(body_html="<p>stale</p>")

    changed = lesson_rerender.delay(lesson.pk).get(timeout=30)

    lesson.refresh_from_db()
    assert changed is True
    assert lesson.body_html == "<h2>Fresh</h2>\n"


def test_rendering_an_up_to_date_lesson_changes_nothing(worker):
    lesson = LessonFactory()

    assert lesson_rerender.delay(lesson.pk).get(timeout=30) is False
