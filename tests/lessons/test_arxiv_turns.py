"""Every worker of the site takes turns asking arXiv: one request per
interval from all of them together, through a lock in the database."""

import itertools
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from lessons.arxiv_client import papers_fetch
from tests.lessons.arxiv_server import Answer, Version

ROOT = Path(__file__).resolve().parents[2]
PAPER = Version(title="A paper", date="2025-06-06T19:06:59Z")
IDS = [
    "2506.06478",
    "2506.06479",
    "2506.06480",
    "2506.06481",
    "2506.06482",
    "2506.06483",
]


@pytest.fixture
def server(arxiv_server):
    for arxiv_id in IDS:
        arxiv_server.add(arxiv_id, PAPER)
    return arxiv_server


def gaps(server) -> list[float]:
    times = sorted(seen.at for seen in server.requests)
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def test_the_interval_is_three_seconds_unless_configured():
    assert django_settings.ARXIV_REQUEST_INTERVAL_SECONDS == 3


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="worker processes share the test database only on PostgreSQL",
)
def test_two_worker_processes_keep_one_request_per_interval(server, transactional_db):
    """Two ``refresh_papers`` processes, three one-id batches each, started
    together: their six requests reach arXiv at least a second apart."""
    database = connection.settings_dict
    credentials = ":".join(filter(None, [database["USER"], database["PASSWORD"]]))
    environment = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{credentials}@{database['HOST']}:{database['PORT']}/"
            f"{database['NAME']}"
        ),
        "ARXIV_API_URL": server.url,
        "ARXIV_REQUEST_INTERVAL_SECONDS": "1",
        "ARXIV_BATCH_SIZE": "1",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "refresh_papers", *ids],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for ids in (IDS[:3], IDS[3:])
    ]
    outputs = [worker.communicate(timeout=60) for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert len(server.requests) == 6
    assert min(gaps(server)) >= 0.95


def test_two_workers_at_the_real_interval_are_three_seconds_apart(
    server, settings, transactional_db
):
    settings.ARXIV_REQUEST_INTERVAL_SECONDS = 3
    results = []

    def worker(arxiv_id: str) -> None:
        try:
            results.append(papers_fetch([arxiv_id]))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in IDS[:2]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(server.requests) == 2
    assert gaps(server)[0] >= 3
    assert sum(len(result.found) for result in results) == 2


def test_a_pause_arxiv_asks_of_one_worker_holds_back_the_others(
    server, transactional_db
):
    server.queued = [Answer(429, b"Rate exceeded.", "text/plain", {"Retry-After": "1"})]
    results = []

    def worker(arxiv_id: str) -> None:
        try:
            results.append(papers_fetch([arxiv_id]))
        finally:
            connection.close()

    first = threading.Thread(target=worker, args=(IDS[0],))
    first.start()
    while not server.requests:
        time.sleep(0.01)
    time.sleep(0.2)  # the first worker has had its 429 and is pausing
    second = threading.Thread(target=worker, args=(IDS[1],))
    second.start()
    for thread in (first, second):
        thread.join(timeout=30)

    refused_at = server.requests[0].at
    assert len(server.requests) == 3
    assert all(seen.at - refused_at >= 1 for seen in server.requests[1:])
    assert sum(len(result.found) for result in results) == 2
