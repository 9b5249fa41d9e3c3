import logging
from dataclasses import asdict
from typing import Any

from celery import Task, shared_task
from django.db import OperationalError

from lessons import services
from lessons.arxiv_client import arxiv_id_parse

logger = logging.getLogger(__name__)

# When arXiv is down, a refresh is tried again after 10, 20 and 40 minutes.
PAPERS_RETRIES = 3
PAPERS_RETRY_SECONDS = 600


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=50,
    time_limit=60,
)
def lesson_rerender(lesson_id: int) -> bool:
    """Render a lesson's stored HTML again, after the Markdown rules change."""
    return services.lesson_rerender(lesson_id=lesson_id)


@shared_task(
    bind=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=1500,
    time_limit=1800,
)
def papers_refresh(self: Task, arxiv_ids: list[str] | None = None) -> dict[str, Any]:
    """Refresh papers from arXiv: those named, or every paper the site holds.
    Ids arXiv could not be asked about are tried again later, up to three
    times; their metadata stays as it was meanwhile."""
    report = services.papers_refresh(arxiv_ids=arxiv_ids)
    if report.unavailable and self.request.retries < PAPERS_RETRIES:
        bases = sorted({arxiv_id_parse(i).base for i in report.unavailable})
        logger.warning("arXiv unavailable; refreshing %s again later", bases)
        raise self.retry(
            args=(bases,),
            countdown=PAPERS_RETRY_SECONDS * 2**self.request.retries,
            max_retries=PAPERS_RETRIES,
        )
    return asdict(report)
