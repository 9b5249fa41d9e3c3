"""Refreshing papers on a real Celery worker, and the beat schedule."""

import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app
from lessons.models import Paper
from lessons.tasks import papers_refresh
from tests.lessons.arxiv_server import Version


@pytest.fixture
def worker(transactional_db):
    with start_worker(app, perform_ping_check=False, shutdown_timeout=30):
        yield


def test_the_worker_refreshes_the_papers_named(worker, arxiv_server):
    arxiv_server.add(
        "hep-th/9901001", Version(title="Strings", date="1999-01-04T00:00:00Z")
    )
    Paper.objects.create(arxiv_id="hep-th/9901001")

    report = papers_refresh.delay(["hep-th/9901001"]).get(timeout=30)

    assert report["updated"] == ["hep-th/9901001"]
    assert Paper.objects.get().title == "Strings"


def test_beat_refreshes_every_paper_daily():
    app.finalize(auto=True)

    entry = app.conf.beat_schedule["papers-refresh"]

    assert entry["task"] == "lessons.tasks.papers_refresh"
    assert entry["schedule"] == 24 * 60 * 60
    assert entry["task"] in app.tasks
