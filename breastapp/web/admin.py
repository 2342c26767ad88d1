"""Admin pages: prediction history (filters, sort, pages, CSV, summary), one analysis in detail, users."""

from __future__ import annotations

from datetime import date
from functools import wraps

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user, login_required

from breastapp.constants import MODALITIES, VERDICTS
from breastapp.extensions import db
from breastapp.orm import ROLES, STATUSES, User
from breastapp.services import history, users
from breastapp.services.history import HistoryFilters
from breastapp.web.common import record
from breastapp.web.forms import CreateUserForm

blueprint = Blueprint("admin", __name__, url_prefix="/admin")


def admin_required(view):
    """Admins only; anyone else gets the same 404 as a page that does not exist (and an audit row)."""

    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            record(f"admin.{view.__name__}", allowed=False, target_type="page", target_id=request.path[:64])
            db.session.commit()
            abort(404)
        return view(*args, **kwargs)

    return wrapper


def filters_from_request() -> HistoryFilters:
    """HistoryFilters from the query string; unknown values are ignored rather than erroring."""
    args = request.args
    return HistoryFilters(
        date_from=_parse_date(args.get("from")),
        date_to=_parse_date(args.get("to")),
        user_id=args.get("user") or None,
        modality=args.get("modality") if args.get("modality") in MODALITIES else None,
        verdict=args.get("verdict") if args.get("verdict") in VERDICTS else None,
        status=args.get("status") if args.get("status") in STATUSES else None,
    )


def _parse_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _page_number() -> int:
    try:
        return max(1, int(request.args.get("page", 1)))
    except ValueError:
        return 1


@blueprint.route("/history")
@admin_required
def history_page():
    filters = filters_from_request()
    sort = request.args.get("sort", history.DEFAULT_SORT)
    page = history.query(filters, sort, _page_number(), current_app.config["HISTORY_PER_PAGE"])
    record("admin.history", target_type="history")
    db.session.commit()
    return render_template(
        "admin/history.html",
        page=page,
        summary=history.summary(filters),
        filters=filters,
        sort=sort,
        users=history.user_choices(),
        modalities=MODALITIES,
        verdicts=VERDICTS,
        statuses=STATUSES,
        args=request.args,
    )


@blueprint.route("/history.csv")
@admin_required
def history_csv():
    filters = filters_from_request()
    sort = request.args.get("sort", history.DEFAULT_SORT)
    record("admin.export_csv", target_type="history")
    db.session.commit()
    response = Response(stream_with_context(history.export_csv(filters, sort)), mimetype="text/csv")
    response.headers["Content-Disposition"] = "attachment; filename=prediction-history.csv"
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.route("/analyses/<analysis_id>")
@admin_required
def analysis_detail(analysis_id: str):
    from breastapp.services import studies as study_service

    analysis = study_service.get_analysis(current_user, analysis_id)
    if analysis is None:
        abort(404)
    record(
        "admin.view_analysis", target_type="analysis", target_id=analysis.id, study_id=analysis.image.study_id
    )
    db.session.commit()
    return render_template("admin/analysis.html", analysis=analysis, image=analysis.image)


@blueprint.route("/users", methods=["GET", "POST"])
@admin_required
def users_page():
    """List users and create one; a generated password is shown once on the answer page."""
    form = CreateUserForm()
    new_password = None
    if form.validate_on_submit():
        try:
            user, password = users.create(
                form.email.data, form.username.data, form.role.data, form.password.data
            )
        except users.AccountError as exc:
            flash(str(exc), "error")
            record("admin.create_user", allowed=False, target_type="user", detail=str(exc))
            db.session.commit()
            return _users_response(form, None, 400)
        record("admin.create_user", target_type="user", target_id=user.id, detail=f"role={user.role}")
        db.session.commit()
        flash(f"User {user.username} created.", "info")
        new_password = password if not form.password.data else None
        form = CreateUserForm(formdata=None)
    elif form.errors:
        return _users_response(form, None, 400)
    return _users_response(form, new_password, 200)


def _users_response(form, new_password, status):
    all_users = db.session.scalars(db.select(User).order_by(User.username)).all()
    return (
        render_template(
            "admin/users.html", form=form, users=all_users, new_password=new_password, roles=ROLES
        ),
        status,
    )


@blueprint.route("/users/<user_id>", methods=["POST"])
@admin_required
def update_user(user_id: str):
    """Change a role, deactivate or reactivate (one submit button per action)."""
    user = users.get(user_id)
    if user is None:
        abort(404)
    action = request.form.get("action", "")
    try:
        if action == "set_role":
            users.set_role(user, request.form.get("role", ""))
        elif action in ("deactivate", "activate"):
            users.set_active(user, action == "activate")
        else:
            abort(400)
    except users.AccountError as exc:
        db.session.rollback()
        record(f"admin.{action}", allowed=False, target_type="user", target_id=user_id, detail=str(exc))
        db.session.commit()
        flash(str(exc), "error")
        return redirect(url_for("admin.users_page"), code=303)
    record(
        f"admin.{action}",
        target_type="user",
        target_id=user.id,
        detail=f"role={user.role} active={user.active}",
    )
    db.session.commit()
    flash(f"User {user.username} updated.", "info")
    return redirect(url_for("admin.users_page"), code=303)
