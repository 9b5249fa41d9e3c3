import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("lessongraph")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def schedule_papers_refresh(sender: Celery, **kwargs: Any) -> None:
    """Celery beat refreshes every paper from arXiv, daily by default."""
    from django.conf import settings

    sender.add_periodic_task(
        settings.PAPERS_REFRESH_SECONDS,
        sender.signature("lessons.tasks.papers_refresh"),
        name="papers-refresh",
    )
