"""Liveness and database check for load balancers and docker-compose health checks."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from breastapp.extensions import db

blueprint = Blueprint("health", __name__)


@blueprint.route("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return jsonify(status="error", database=type(exc).__name__), 503
    return jsonify(status="ok", database="ok")
