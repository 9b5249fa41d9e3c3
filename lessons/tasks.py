from celery import shared_task
from django.db import OperationalError

from lessons import services


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
