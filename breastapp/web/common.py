"""Small helpers the views share: audit with the request's address, the uniform 404, JSON detection."""

from __future__ import annotations

from flask import abort, request
from flask_login import current_user

from breastapp.extensions import db
from breastapp.services import audit


def record(action: str, *, allowed: bool = True, **fields) -> None:
    """An audit row for the current user and request (committed by the caller, or by `deny`)."""
    user_id = current_user.id if current_user.is_authenticated else None
    audit.record(action, user_id=user_id, allowed=allowed, ip=request.remote_addr, **fields)


def deny(action: str, target_type: str, target_id: str):
    """Audit a refused access and answer 404 — the same page as an id that does not exist."""
    record(action, allowed=False, target_type=target_type, target_id=str(target_id)[:64])
    db.session.commit()
    abort(404)


def wants_json() -> bool:
    """True for API clients (Accept prefers JSON, or the request itself is JSON)."""
    if request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return (
        best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )
