"""Run one queued analysis: the whole job behind the Celery task, callable in-process by tests and commands.

Commit points (this function is the transaction boundary of a background job, like a request is for views):
  1. claim: attempts + 1, status running, started_at — committed BEFORE the engine runs, so the page shows
     "running" and a worker killed mid-job still leaves a counted attempt behind;
  2. finish: result files (each written atomically) first, then Lesion rows + verdict + status done committed
     together in ONE transaction; or status failed with a code and a sentence.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from flask import current_app

from breastapp.extensions import db
from breastapp.imaging.errors import ImagingError
from breastapp.orm import STATUS_DONE, STATUS_FAILED, STATUS_QUEUED, STATUS_RUNNING, Analysis, Lesion
from breastapp.orm.types import utcnow
from breastapp.services.storage import Storage

log = logging.getLogger(__name__)


class RetryableAnalysisError(RuntimeError):
    """The job failed for a reason that may pass (out of memory, a flaky disk); attempts remain."""


@dataclass(frozen=True)
class RunOutcome:
    analysis_id: str
    status: str  # done / failed / skipped
    error_code: str | None = None


def run(analysis_id: str, engine=None, storage: Storage | None = None) -> RunOutcome:
    """Analyse one image; raises RetryableAnalysisError when the caller should try again later."""
    config = current_app.config
    storage = storage or Storage(config["UPLOAD_DIR"])
    analysis = _claim(analysis_id, int(config["TASK_MAX_ATTEMPTS"]))
    if analysis is None or analysis.finished:
        return RunOutcome(analysis_id, "skipped" if analysis is None else analysis.status, None)
    image = analysis.image
    started = time.perf_counter()
    try:
        data = storage.original_path(image.study_id, image.id, image.format).read_bytes()
        if engine is None:
            from breastapp.services.engine import get_engine

            engine = get_engine(config)
        output = engine.analyze_bytes(
            data,
            modality=image.modality,
            view=image.view,
            laterality=image.laterality,
            spacing_mm=image.spacing_row_mm,  # the user's choice; DICOM tags win in the engine
        )
        _write_results(storage, analysis, output)
        _mark_done(analysis, output.result, time.perf_counter() - started)
        db.session.commit()
        log.info("analysis %s done in %.2f s", analysis_id, analysis.processing_s)
        return RunOutcome(analysis_id, STATUS_DONE)
    except ImagingError as refusal:  # the file itself is unusable: retrying cannot help
        db.session.rollback()
        return _fail(analysis_id, refusal.code, refusal.message, started)
    except Exception as exc:
        db.session.rollback()
        return _retry_or_fail(analysis_id, exc, started, int(config["TASK_MAX_ATTEMPTS"]))


def _claim(analysis_id: str, max_attempts: int) -> Analysis | None:
    """Count the attempt and mark the row running (committed); fail it when the attempts are used up."""
    # Lock only the analysis row: PostgreSQL refuses FOR UPDATE on the outer-joined relationships.
    analysis = db.session.get(Analysis, analysis_id, with_for_update={"of": Analysis})
    if analysis is None:
        log.warning("analysis %s does not exist; message dropped", analysis_id)
        return None
    if analysis.finished:
        log.info("analysis %s already %s; duplicate message ignored", analysis_id, analysis.status)
        return analysis
    if analysis.attempts >= max_attempts:
        # A redelivered message after the worker died on each attempt (killed, out of memory).
        _set_failed(
            analysis,
            "too_many_attempts",
            f"Gave up after {analysis.attempts} attempts; the worker stopped before finishing each time.",
        )
        db.session.commit()
        return analysis
    analysis.attempts += 1
    analysis.status = STATUS_RUNNING
    analysis.started_at = utcnow()
    db.session.commit()
    return analysis


def _write_results(storage: Storage, analysis: Analysis, output) -> None:
    """PNGs and result.json beside the original; each written atomically before the row says done."""
    study_id = analysis.image.study_id
    for kind, data in (
        ("original.png", output.original_png),
        ("overlay.png", output.overlay_png),
        ("heatmap.png", output.heatmap_png),
        ("mask.png", output.mask_png),
    ):
        storage.save_result(study_id, analysis.id, kind, data)
    document = {"analysis_id": analysis.id, "image_id": analysis.image_id, **output.result.to_dict()}
    storage.save_result(study_id, analysis.id, "result.json", json.dumps(document, indent=2).encode())


def _mark_done(analysis: Analysis, result, elapsed_s: float) -> None:
    analysis.lesions = [_lesion_row(lesion) for lesion in result.lesions]
    analysis.verdict = result.verdict
    analysis.image_malignancy_prob = float(result.image_malignancy_prob)
    analysis.class_probs = {k: float(v) for k, v in result.class_probs.items()}
    analysis.timings = {k: round(float(v), 4) for k, v in result.timings_s.items()}
    analysis.thresholds = {k: float(v) for k, v in result.thresholds.items()}
    analysis.weights = [
        {
            "name": w.name,
            "sha256": w.sha256,
            "architecture": w.architecture,
            "role": w.role,
            "validation": w.validation,
            "caution": w.caution,
        }
        for w in result.weights
    ]
    analysis.notes = list(result.notes)
    analysis.status = STATUS_DONE
    analysis.error_code = analysis.error_message = None
    analysis.finished_at = utcnow()
    analysis.processing_s = round(elapsed_s, 4)


def _lesion_row(lesion) -> Lesion:
    row0, col0, row1, col1 = (int(v) for v in lesion.box)
    return Lesion(
        index=int(lesion.index),
        row0=row0,
        col0=col0,
        row1=row1,
        col1=col1,
        centroid_row=float(lesion.centroid[0]),
        centroid_col=float(lesion.centroid[1]),
        area_px=int(lesion.area_px),
        area_mm2=None if lesion.area_mm2 is None else float(lesion.area_mm2),
        max_diameter_mm=None if lesion.max_diameter_mm is None else float(lesion.max_diameter_mm),
        seg_prob_max=float(lesion.seg_prob_max),
        seg_prob_mean=float(lesion.seg_prob_mean),
        malignancy_prob=float(lesion.malignancy_prob),
        label=lesion.label,
        class_probs={k: float(v) for k, v in lesion.class_probs.items()},
    )


def _retry_or_fail(analysis_id: str, exc: Exception, started: float, max_attempts: int) -> RunOutcome:
    analysis = db.session.get(Analysis, analysis_id)
    log.error(
        "analysis %s attempt %d failed: %s", analysis_id, analysis.attempts, type(exc).__name__, exc_info=exc
    )
    if analysis.attempts < max_attempts:
        analysis.status = STATUS_QUEUED  # waiting for the retry; the counter keeps the attempts bounded
        db.session.commit()
        raise RetryableAnalysisError(f"{type(exc).__name__}: {exc}") from exc
    reason = f"The analysis failed {analysis.attempts} times; last error: {type(exc).__name__}."
    return _fail(analysis_id, "analysis_error", reason, started)


def _fail(analysis_id: str, code: str, message: str, started: float) -> RunOutcome:
    analysis = db.session.get(Analysis, analysis_id)
    _set_failed(analysis, code, message)
    analysis.processing_s = round(time.perf_counter() - started, 4)
    db.session.commit()
    log.info("analysis %s failed: %s", analysis_id, code)
    return RunOutcome(analysis_id, STATUS_FAILED, code)


def _set_failed(analysis: Analysis, code: str, message: str) -> None:
    analysis.status = STATUS_FAILED
    analysis.error_code = code
    analysis.error_message = message
    analysis.finished_at = utcnow()
