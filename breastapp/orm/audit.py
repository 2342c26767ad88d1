"""Who did what to which study, when, and whether it was allowed. Never patient names."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from breastapp.extensions import db
from breastapp.orm.types import UTCDateTime, new_uuid, utcnow, uuid_column_type


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_user_at", "user_id", "at"),)

    id: Mapped[str] = mapped_column(uuid_column_type(), primary_key=True, default=new_uuid)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))  # None: anonymous / command line
    action: Mapped[str] = mapped_column(String(48))  # upload, view_result, download, admin.create_user, ...
    target_type: Mapped[str | None] = mapped_column(String(24))
    target_id: Mapped[str | None] = mapped_column(String(64))
    study_id: Mapped[str | None] = mapped_column(String(36), index=True)
    allowed: Mapped[bool]
    detail: Mapped[str | None] = mapped_column(String(255))  # codes and counts only, no identifiers
    ip: Mapped[str | None] = mapped_column(String(45))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
