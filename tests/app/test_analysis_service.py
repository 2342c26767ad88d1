"""The analysis service run in-process against a real Engine on initialised (untrained) weights.

This is the service, not the worker: the worker, stack and browser tests run it through Celery.
"""

from __future__ import annotations

import json
import os

import pytest

from breastapp.extensions import db
from breastapp.orm import Analysis, Lesion
from breastapp.services import analysis as analysis_service
from breastapp.services.storage import RESULT_KINDS, Storage
from tests.app.helpers import upload

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def initialised_models(tmp_path_factory):
    """Every shipped network, freshly initialised, written once per test session."""
    from breastapp.ml.registry import write_initialised_weights

    folder = tmp_path_factory.mktemp("models")
    write_initialised_weights(folder)
    return folder


@pytest.fixture
def engine_app(make_app, initialised_models):
    app = make_app(MODELS_DIR=str(initialised_models), TASK_MAX_ATTEMPTS=2)
    with app.app_context():
        yield app
        db.session.remove()


def uploaded_analysis(app, client_files) -> Analysis:
    from breastapp.services import users
    from tests.app.conftest import login

    users.create("w@example.org", "worker", "radiologist", "correct horse battery staple")
    db.session.commit()
    client = app.test_client()
    login(client, "worker")
    response = upload(
        client, client_files, json_api=True, modality="MG", view="CC", laterality="L", spacing_mm="0.2"
    )
    analysis_id = response.get_json()["images"][0]["analysis_id"]
    return db.session.get(Analysis, analysis_id), client


@pytest.mark.slow
def test_run_writes_files_lesions_and_done_in_one_go(engine_app, mias_png):
    analysis, client = uploaded_analysis(engine_app, [("m.png", mias_png)])
    outcome = analysis_service.run(analysis.id)
    assert outcome.status == "done"
    db.session.expire_all()
    row = db.session.get(Analysis, analysis.id)
    assert (row.status, row.attempts, row.error_code) == ("done", 1, None)
    assert row.verdict and 0.0 <= row.image_malignancy_prob <= 1.0
    assert {w["name"] for w in row.weights} >= {"mg_seg_unet", "mg_cls"}
    assert row.processing_s > 0 and row.started_at <= row.finished_at
    assert "untrained weights" in " ".join(row.notes)
    storage = Storage(engine_app.config["UPLOAD_DIR"])
    for kind in RESULT_KINDS:
        assert storage.result_path(row.image.study_id, row.id, kind).stat().st_size > 0
    document = json.loads(storage.result_path(row.image.study_id, row.id, "result.json").read_text())
    assert document["analysis_id"] == row.id and len(document["lesions"]) == len(row.lesions)
    assert db.session.scalar(db.select(db.func.count(Lesion.id))) == len(row.lesions)
    assert document["spacing_mm"] == [0.2, 0.2]  # the user's spacing reached the engine

    # The result page, status JSON and downloads now show it.
    page = client.get(f"/analyses/{row.id}").get_data(as_text=True)
    assert "Research use only — not for clinical use" in page and "mg_seg_unet" in page
    assert "Outlines" in page and "Heatmap" in page and "Original" in page
    assert "alert-untrained" in page  # initialised weights: the page must say the result means nothing
    # ...and claims no validated figures for them
    assert all(w["validation"] == "" and w["caution"] == "" for w in row.weights)
    assert "Validated on" not in page and "alert-caution" not in page
    assert client.get(f"/analyses/{row.id}/status").get_json()["status"] == "done"
    overlay = client.get(f"/analyses/{row.id}/files/overlay.png?download=1")
    assert overlay.status_code == 200 and overlay.data.startswith(b"\x89PNG")
    assert overlay.headers["Cache-Control"] == "no-store"
    assert "attachment" in overlay.headers["Content-Disposition"]
    # A second delivery of the same message does nothing.
    assert analysis_service.run(row.id).status == "done"
    assert db.session.get(Analysis, row.id).attempts == 1


@pytest.mark.slow
def test_a_result_says_how_well_each_shipped_network_did_when_it_was_validated(make_app, mias_png):
    """The shipped weights' cross-validated figures travel with the result (row, result.json, page), and a
    classifier whose malignancy AUC was not shown to beat chance is flagged beside the result."""
    from html import escape

    from breastapp.ml.registry import read_card
    from breastapp.ml.validation_summary import chance_caution, validation_line
    from tests.support.paths import REPO_ROOT

    app = make_app(MODELS_DIR=str(REPO_ROOT / "models"))
    with app.app_context():
        analysis, client = uploaded_analysis(app, [("m.png", mias_png)])
        assert analysis_service.run(analysis.id).status == "done"
        db.session.expire_all()
        row = db.session.get(Analysis, analysis.id)
        page = client.get(f"/analyses/{row.id}").get_data(as_text=True)
        storage = Storage(app.config["UPLOAD_DIR"])
        document = json.loads(storage.result_path(row.image.study_id, row.id, "result.json").read_text())
        db.session.remove()
    assert {w["name"] for w in row.weights} >= {"mg_seg_unet", "mg_cls"}
    for entry, written in zip(row.weights, document["weights"], strict=True):
        card = read_card(REPO_ROOT / "models", entry["name"])
        assert entry["validation"] == written["validation"] == validation_line(card)
        assert entry["validation"].startswith("mini-MIAS, 5-fold cross-validation by patient: ")
        assert escape(f"Validated on {entry['validation']}", quote=False) in page
        assert entry["caution"] == written["caution"] == chance_caution(card)
        if entry["caution"]:
            assert escape(entry["caution"], quote=False) in page
    assert ("alert-caution" in page) is any(w["caution"] for w in row.weights)


def test_engine_refusal_fails_without_retry(engine_app, mias_png):
    analysis, _ = uploaded_analysis(engine_app, [("m.png", mias_png)])
    image = analysis.image
    # The stored original is replaced by bytes no decoder accepts (as if the file were damaged on disk).
    Storage(engine_app.config["UPLOAD_DIR"]).save_original(
        image.study_id, image.id, "PNG", b"\x89PNG\r\n\x1a\n"
    )
    outcome = analysis_service.run(analysis.id)
    db.session.expire_all()
    row = db.session.get(Analysis, analysis.id)
    assert outcome.status == row.status == "failed"
    assert row.error_code in ("corrupt_file", "truncated_pixel_data") and row.error_message
    assert row.attempts == 1


def test_transient_errors_retry_then_fail_with_a_reason(engine_app, mias_png):
    analysis, _ = uploaded_analysis(engine_app, [("m.png", mias_png)])
    image = analysis.image
    Storage(engine_app.config["UPLOAD_DIR"]).original_path(image.study_id, image.id, "PNG").unlink()
    with pytest.raises(analysis_service.RetryableAnalysisError, match="FileNotFoundError"):
        analysis_service.run(analysis.id)
    db.session.expire_all()
    assert (db.session.get(Analysis, analysis.id).status, db.session.get(Analysis, analysis.id).attempts) == (
        "queued",
        1,
    )
    outcome = analysis_service.run(analysis.id)  # attempt 2 of 2: no more retries
    db.session.expire_all()
    row = db.session.get(Analysis, analysis.id)
    assert outcome.status == row.status == "failed"
    assert row.error_code == "analysis_error" and "failed 2 times" in row.error_message


def test_worker_killed_on_every_attempt_is_bounded(engine_app, mias_png):
    """A message redelivered after the worker died leaves the row 'running'; the counter stops it."""
    analysis, _ = uploaded_analysis(engine_app, [("m.png", mias_png)])
    analysis.status, analysis.attempts = "running", 2  # two workers died mid-job
    db.session.commit()
    outcome = analysis_service.run(analysis.id)
    db.session.expire_all()
    row = db.session.get(Analysis, analysis.id)
    assert outcome.status == row.status == "failed"
    assert row.error_code == "too_many_attempts"


def test_unknown_id_is_skipped(engine_app):
    assert analysis_service.run("00000000-0000-4000-8000-000000000000").status == "skipped"
