"""Login and logout. Sessions hold the user id AND a per-user token rotated at logout."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from breastapp.extensions import db, limiter
from breastapp.services import users
from breastapp.web.common import record
from breastapp.web.forms import LoginForm, LogoutForm

blueprint = Blueprint("auth", __name__)


def load_user(session_value: str):
    """Flask-Login's user loader: the user only while the session's token is still the user's current one."""
    user_id, _, token = session_value.partition(":")
    user = users.get(user_id) if token else None
    if user is None or not user.active or user.session_token != token:
        return None
    return user


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@blueprint.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("studies.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = users.authenticate(form.login.data, form.password.data)
        if user is not None:
            login_user(user)
            record("login", target_type="user", target_id=user.id)
            db.session.commit()
            return redirect(_safe_next() or url_for("studies.index"))
        record("login", allowed=False, detail="bad credentials")
        db.session.commit()
        flash("Unknown user or wrong password.", "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form), 400 if form.errors else 200


def _safe_next() -> str | None:
    """Only same-site paths: an open redirect would help phishing."""
    target = request.args.get("next", "")
    return target if target.startswith("/") and not target.startswith("//") else None


@blueprint.route("/logout", methods=["POST"])
@login_required
def logout():
    form = LogoutForm()
    if not form.validate_on_submit():
        return redirect(url_for("studies.index"))
    current_user.rotate_session_token()  # every copy of the old cookie stops working
    record("logout", target_type="user", target_id=current_user.id)
    db.session.commit()
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
