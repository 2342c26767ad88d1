"""Studies: the list, the upload page, the upload itself, the study page."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from breastapp.extensions import db
from breastapp.services import studies as study_service
from breastapp.services import uploads
from breastapp.services.storage import Storage
from breastapp.tasks.analysis import enqueue
from breastapp.web.common import deny, record, wants_json
from breastapp.web.forms import UploadForm

log = logging.getLogger(__name__)
blueprint = Blueprint("studies", __name__)


@blueprint.route("/")
def home():
    return redirect(url_for("studies.index"))


@blueprint.route("/studies")
@login_required
def index():
    found = study_service.list_studies(current_user)
    counts = study_service.image_counts([study.id for study in found])
    return render_template("studies/index.html", studies=found, counts=counts)


@blueprint.route("/studies/new")
@login_required
def new():
    return render_template("studies/new.html", form=UploadForm(), max_mb=current_app.config["MAX_UPLOAD_MB"])


@blueprint.route("/studies", methods=["POST"])
@login_required
def create():
    """Validate each file, store the good ones, commit, THEN enqueue their analysis ids."""
    form = UploadForm()
    if not form.validate():
        return _form_refusal(form)
    files = _uploaded_files()
    if not files:
        return _refusal_response(form, "no_files", "Choose at least one DICOM, PNG or JPEG file.", 400)
    if len(files) > current_app.config["MAX_FILES_PER_STUDY"]:
        message = f"At most {current_app.config['MAX_FILES_PER_STUDY']} files per study."
        return _refusal_response(form, "too_many_files", message, 413)
    outcome = uploads.create_study(
        current_user,
        files,
        uploads.PlainImageChoices(
            form.modality.data or None,
            form.view.data or None,
            form.laterality.data or None,
            form.spacing_mm.data,
        ),
        Storage(current_app.config["UPLOAD_DIR"]),
        uploads.decode_limits(current_app.config),
        label=form.label.data,
    )
    _audit_upload(outcome)
    db.session.commit()
    not_sent = enqueue(outcome.analysis_ids)
    return _upload_response(form, outcome, not_sent)


def _uploaded_files() -> list[uploads.UploadedFile]:
    """Every non-empty file part named `files` (the file name is kept only to label the answer)."""
    found = []
    for storage in request.files.getlist("files"):
        if storage and storage.filename:
            found.append(uploads.UploadedFile(_display_name(storage.filename), storage.read()))
    return found


def _display_name(filename: str) -> str:
    return filename.replace("\\", "/").rsplit("/", 1)[-1][:120]


def _audit_upload(outcome: uploads.UploadOutcome) -> None:
    study_id = outcome.study.id if outcome.study else None
    for item in outcome.accepted:
        record("upload", target_type="image", target_id=item.image_id, study_id=study_id)
    for item in outcome.refused:
        record("upload", allowed=False, target_type="image", study_id=study_id, detail=item.code)


def _upload_response(form, outcome: uploads.UploadOutcome, not_sent: list[str]):
    if not_sent:
        log.error("%d analyses stay queued until the broker is reachable", len(not_sent))
    if wants_json():
        return jsonify(_outcome_json(outcome)), outcome.http_status
    if not outcome.refused:
        return redirect(url_for("studies.show", study_id=outcome.study.id), code=303)
    return (
        render_template(
            "studies/new.html", form=form, outcome=outcome, max_mb=current_app.config["MAX_UPLOAD_MB"]
        ),
        outcome.http_status,
    )


def _outcome_json(outcome: uploads.UploadOutcome) -> dict:
    return {
        "study_id": outcome.study.id if outcome.study else None,
        "images": [
            {"filename": a.filename, "image_id": a.image_id, "analysis_id": a.analysis_id}
            for a in outcome.accepted
        ],
        "errors": [{"filename": r.filename, "code": r.code, "message": r.message} for r in outcome.refused],
    }


def _refusal_response(form, code: str, message: str, status: int):
    outcome = uploads.UploadOutcome(study=None, refused=[uploads.Refused("", code, message, status)])
    return _upload_response(form, outcome, [])


def _form_refusal(form):
    message = "; ".join(
        f"{form[name].label.text}: {' '.join(errors)}" for name, errors in form.errors.items()
    )
    return _refusal_response(form, "invalid_form", message, 400)


@blueprint.route("/studies/<study_id>")
@login_required
def show(study_id: str):
    study = study_service.get_study(current_user, study_id)
    if study is None:
        deny("view_study", "study", study_id)
    record("view_study", target_type="study", target_id=study.id, study_id=study.id)
    db.session.commit()
    return render_template(
        "studies/show.html",
        study=study,
        breasts=study_service.breast_summaries(study),
        cautions=study_service.study_cautions(study),
    )
