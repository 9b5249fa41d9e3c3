"""Celery tasks: thin, with time limits. The worker is the only process
that talks to the engine, buildah and the registry."""

import logging
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import OperationalError

from deployments import services

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    soft_time_limit=settings.DEPLOYMENTS_RUN_TIME_LIMIT_SECONDS,
    time_limit=settings.DEPLOYMENTS_RUN_TIME_LIMIT_SECONDS + 60,
)
def run_execute(self: Task, run_id: int) -> str:
    return services.run_execute(run_id=run_id, worker=self.request.hostname or "")


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=100,
    time_limit=120,
)
def runs_reconcile(worker: str = "") -> list[int]:
    return services.runs_reconcile(worker=worker)


@shared_task(soft_time_limit=20, time_limit=30)
def deployment_logs(deployment_id: int, tail: int = 100) -> str:
    return services.deployment_logs(deployment_id=deployment_id, tail=tail)


@worker_ready.connect
def reconcile_on_start(sender: Any, **kwargs: Any) -> None:
    """A worker that starts fails the runs it had when it died."""
    hostname = getattr(sender, "hostname", "") or ""
    try:
        failed = services.runs_reconcile(worker=hostname)
    except Exception:
        logger.exception("Reconciling runs on worker start failed")
        return
    if failed:
        logger.info("Worker %s failed %s runs it had left", hostname, len(failed))
