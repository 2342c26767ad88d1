"""Audit trail rows. Added to the caller's transaction: the request or task commits them."""

from __future__ import annotations

from breastapp.extensions import db
from breastapp.orm import AuditEvent


def record(
    action: str,
    *,
    user_id: str | None,
    allowed: bool = True,
    target_type: str | None = None,
    target_id: str | None = None,
    study_id: str | None = None,
    detail: str | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Add one audit row (who, what, which study, allowed or denied). `detail` holds codes and counts only."""
    event = AuditEvent(
        action=action,
        user_id=user_id,
        allowed=allowed,
        target_type=target_type,
        target_id=target_id,
        study_id=study_id,
        detail=detail[:255] if detail else None,
        ip=ip,
    )
    db.session.add(event)
    return event
