"""The analysis task: takes an id, calls `services.analysis.run`, owns only retries.

Reliability comes from the Celery settings in `breastapp.config.celery_settings` (late acks, reject on
worker lost, prefetch 1, time limits) and from the attempt counter in the database row, which bounds
redeliveries after a worker is killed mid-job.
"""

from __future__ import annotations

import logging

from celery import shared_task

from breastapp.services import analysis as analysis_service

log = logging.getLogger(__name__)

TASK_NAME = "breastapp.analyze"
RETRY_DELAY_S = 5


@shared_task(name=TASK_NAME, bind=True, max_retries=None)
def analyze(self, analysis_id: str) -> str:
    """Run one analysis; on a transient error, retry until the row's attempt counter reaches the cap."""
    try:
        return analysis_service.run(analysis_id).status
    except analysis_service.RetryableAnalysisError as exc:
        log.warning("analysis %s will be retried in %d s", analysis_id, RETRY_DELAY_S)
        raise self.retry(exc=exc, countdown=RETRY_DELAY_S) from exc


def enqueue(analysis_ids: list[str]) -> list[str]:
    """Send each id to the broker (only after the rows are committed); returns the ids not sent.

    A failed send leaves the row queued; `flask requeue` sends it again once the broker is back.
    """
    failed = []
    for analysis_id in analysis_ids:
        try:
            analyze.apply_async(args=[analysis_id], ignore_result=True)
        except Exception:  # broker down: the row stays queued and can be requeued
            log.exception("could not enqueue analysis %s", analysis_id)
            failed.append(analysis_id)
    return failed
