"""Error pages: a clean HTML page or a JSON body, never a traceback."""

from __future__ import annotations

import logging

from flask import jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from breastapp.extensions import db
from breastapp.web.common import wants_json

log = logging.getLogger(__name__)

HANDLED = (400, 401, 403, 404, 405, 413, 415, 422, 429, 500)

SENTENCES = {
    400: "The request could not be understood.",
    401: "Please log in.",
    403: "You are not allowed to do this.",
    404: "There is nothing here.",
    405: "This address does not accept that method.",
    413: "The upload is too large.",
    415: "This file type is not supported.",
    422: "The request was understood but cannot be processed.",
    429: "Too many attempts. Please wait a minute and try again.",
    500: "Something went wrong on our side. The error has been logged.",
}


def register(app) -> None:
    for code in HANDLED:
        app.register_error_handler(code, render_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(Exception, _unexpected)


def render_error(error: HTTPException):
    code = error.code or 500
    message = SENTENCES.get(code, error.name)
    if code == 413:
        limit = request.max_content_length
        if limit:
            message = f"The upload is too large: the limit is {limit // 2**20} MB per request."
    if code == 429:
        message = f"Too many attempts ({error.description}). Please wait and try again."
    return _respond(code, error.name if code != 500 else "Internal Server Error", message)


def _csrf_error(error: CSRFError):
    return _respond(
        400, "Bad Request", "The form expired or was not sent from this site; reload the page and try again."
    )


def _unexpected(error: Exception):
    if isinstance(error, HTTPException):
        return render_error(error)
    log.exception("unhandled error on %s %s", request.method, request.path)
    db.session.rollback()
    return render_error(InternalServerError())


def _respond(code: int, title: str, message: str):
    if wants_json() or request.path.endswith("/status"):
        return jsonify(error={"code": code, "title": title, "message": message}), code
    return render_template("errors/error.html", code=code, title=title, message=message), code
