"""TensorFlow process settings, applied once before the first network is built or loaded.

Threads come from BREASTAPP_TF_THREADS (default: every core the process may use), because a worker
that shares a small machine with the web server must be able to leave it some CPU. GPUs get memory
growth so one process does not grab all GPU memory at start.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

_configured = False
_lock = threading.Lock()


def thread_count() -> int:
    """Threads TensorFlow may use: BREASTAPP_TF_THREADS, else the cores available to this process."""
    value = os.environ.get("BREASTAPP_TF_THREADS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            log.warning("ignoring BREASTAPP_TF_THREADS=%r (not an integer)", value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configure() -> None:
    """Set thread pools and GPU memory growth once per process (later calls do nothing)."""
    global _configured
    with _lock:
        if _configured:
            return
        import tensorflow as tf

        threads = thread_count()
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
            for gpu in tf.config.list_physical_devices("GPU"):
                tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError as exc:  # TensorFlow already initialised by someone else: keep its settings
            log.warning("TensorFlow runtime already initialised, settings unchanged: %s", exc)
        _configured = True
        log.info("TensorFlow configured: %d threads, device %s", threads, device_name())


def device_name() -> str:
    """ "GPU" when TensorFlow sees a GPU, else "CPU" (shown in timings and the bench report)."""
    import tensorflow as tf

    return "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
