"""One Engine per process, built from the app configuration.

The worker builds and warms it once after fork (`breastapp.tasks.worker`); the web process never calls
this, so TensorFlow stays out of it. `breastapp.ml` is imported inside the functions for the same reason.
"""

from __future__ import annotations

import threading
from pathlib import Path

_lock = threading.Lock()
_engines: dict[tuple, object] = {}


def engine_settings(config):
    """EngineSettings from our configuration keys."""
    from breastapp.ml.engine import EngineSettings

    return EngineSettings(
        models_dir=Path(config["MODELS_DIR"]),
        mg_segmentation=tuple(config["MG_SEGMENTATION"]),
        mg_classifier=config["MG_CLASSIFIER"],
        us_segmentation=config["US_SEGMENTATION"],
        us_classifier=config["US_CLASSIFIER"],
    )


def get_engine(config):
    """The process's Engine for these settings (created on first use, reused after)."""
    from breastapp.ml.engine import Engine

    settings = engine_settings(config)
    key = (
        str(settings.models_dir),
        settings.mg_segmentation,
        settings.mg_classifier,
        settings.us_segmentation,
        settings.us_classifier,
    )
    with _lock:
        if key not in _engines:
            _engines[key] = Engine(settings)
        return _engines[key]
