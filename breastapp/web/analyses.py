"""One analysis: its result page, the status JSON the page polls, and its files (owner-checked, no-store)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, render_template, request, send_file
from flask_login import current_user, login_required

from breastapp.extensions import db
from breastapp.orm import STATUS_DONE
from breastapp.services import studies as study_service
from breastapp.services.storage import RESULT_KINDS, Storage
from breastapp.web.common import deny, record

blueprint = Blueprint("analyses", __name__)

MIMETYPES = {"png": "image/png", "json": "application/json"}


def _visible_or_404(analysis_id: str, action: str):
    analysis = study_service.get_analysis(current_user, analysis_id)
    if analysis is None:
        deny(action, "analysis", analysis_id)
    return analysis


@blueprint.route("/analyses/<analysis_id>")
@login_required
def show(analysis_id: str):
    analysis = _visible_or_404(analysis_id, "view_result")
    study_id = analysis.image.study_id
    record("view_result", target_type="analysis", target_id=analysis.id, study_id=study_id)
    db.session.commit()
    return render_template(
        "analyses/show.html", analysis=analysis, image=analysis.image, study=analysis.image.study
    )


@blueprint.route("/analyses/<analysis_id>/status")
@login_required
def status(analysis_id: str):
    """The row as JSON; read on every poll, so it must stay a primary-key lookup."""
    analysis = study_service.get_analysis(current_user, analysis_id)
    if analysis is None:
        abort(404)  # polling is not audited row by row; the page view was
    response = jsonify(analysis.status_dict())
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.route("/analyses/<analysis_id>/files/<kind>")
@login_required
def file(analysis_id: str, kind: str):
    """Result files through the ownership check; never cached by browsers or proxies."""
    download = request.args.get("download") == "1"
    action = "download" if download else "view_file"
    analysis = _visible_or_404(analysis_id, action)
    if kind not in RESULT_KINDS or analysis.status != STATUS_DONE:
        abort(404)
    image = analysis.image
    path = Storage(current_app.config["UPLOAD_DIR"]).result_path(image.study_id, analysis.id, kind)
    if not path.is_file():
        abort(404)
    if download or kind == "result.json":
        record(action, target_type="analysis", target_id=analysis.id, study_id=image.study_id, detail=kind)
        db.session.commit()
    response = send_file(
        path,
        mimetype=MIMETYPES[kind.rsplit(".", 1)[1]],
        as_attachment=download,
        download_name=f"analysis-{analysis.id[:8]}-{kind}",
        max_age=0,
        conditional=False,
        etag=False,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
