"""Worker-process signal handlers: load the networks once per worker process, after fork.

Loading TensorFlow before fork would share its threads and GPU context with the children, which
breaks; loading it per task would cost seconds each time. `worker_process_init` runs in each prefork
child (and once for the solo pool). With the threads pool the engine is built lazily by the first task.
"""

from __future__ import annotations

import logging

from celery import current_app as current_celery_app
from celery.signals import worker_process_init

log = logging.getLogger(__name__)


def warm_up_engine() -> None:
    """Build this process's Engine and load every network (one tiny predict)."""
    from breastapp.services.engine import get_engine

    flask_app = current_celery_app.flask_app
    with flask_app.app_context():
        try:
            get_engine(flask_app.config).warm_up()
            log.info("engine warmed up in worker process")
        except Exception:  # a missing weights file: tasks will fail with the engine's own message
            log.exception("engine warm-up failed")


@worker_process_init.connect
def _on_worker_process_init(**_kwargs) -> None:
    warm_up_engine()
