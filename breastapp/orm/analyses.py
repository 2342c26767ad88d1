"""One run of the engine on one image, and the lesions it found.

The row is the job's source of truth: the broker carries only its id, the result page polls it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from breastapp.extensions import db
from breastapp.orm.types import UTCDateTime, new_uuid, utcnow, uuid_column_type

STATUS_QUEUED = "queued"
STATUS_RUNNING = "running"
STATUS_DONE = "done"
STATUS_FAILED = "failed"
STATUSES = (STATUS_QUEUED, STATUS_RUNNING, STATUS_DONE, STATUS_FAILED)
FINISHED_STATUSES = (STATUS_DONE, STATUS_FAILED)


class Analysis(db.Model):
    __tablename__ = "analyses"
    __table_args__ = (
        Index("ix_analyses_status_created", "status", "created_at"),
        Index("ix_analyses_verdict_created", "verdict", "created_at"),
        Index("ix_analyses_user_created", "user_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(uuid_column_type(), primary_key=True, default=new_uuid)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"), index=True)
    # Who asked for it; denormalised from the study so the admin history filters on one table.
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16), default=STATUS_QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    timings: Mapped[dict] = mapped_column(JSON, default=dict)
    weights: Mapped[list] = mapped_column(
        JSON, default=list
    )  # [{name, sha256, architecture, role, validation, caution}]
    thresholds: Mapped[dict] = mapped_column(JSON, default=dict)
    notes: Mapped[list] = mapped_column(JSON, default=list)
    verdict: Mapped[str | None] = mapped_column(String(32))
    image_malignancy_prob: Mapped[float | None] = mapped_column(Float)
    class_probs: Mapped[dict] = mapped_column(JSON, default=dict)
    processing_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    image = relationship("Image", back_populates="analyses", lazy="joined")
    user = relationship("User", lazy="joined")
    lesions = relationship(
        "Lesion",
        back_populates="analysis",
        order_by="Lesion.index",
        lazy="selectin",
        cascade="all, delete-orphan",
    )

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    def status_dict(self) -> dict:
        """The small JSON the result page polls."""
        return {
            "id": self.id,
            "status": self.status,
            "attempts": self.attempts,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "verdict": self.verdict,
            "image_malignancy_prob": self.image_malignancy_prob,
            "lesion_count": len(self.lesions) if self.status == STATUS_DONE else None,
            "processing_s": self.processing_s,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


class Lesion(db.Model):
    """One suspected lesion, in original image pixel coordinates."""

    __tablename__ = "lesions"

    id: Mapped[str] = mapped_column(uuid_column_type(), primary_key=True, default=new_uuid)
    analysis_id: Mapped[str] = mapped_column(ForeignKey("analyses.id"), index=True)
    index: Mapped[int]
    row0: Mapped[int]
    col0: Mapped[int]
    row1: Mapped[int]
    col1: Mapped[int]
    centroid_row: Mapped[float] = mapped_column(Float)
    centroid_col: Mapped[float] = mapped_column(Float)
    area_px: Mapped[int]
    area_mm2: Mapped[float | None] = mapped_column(Float)
    max_diameter_mm: Mapped[float | None] = mapped_column(Float)
    seg_prob_max: Mapped[float] = mapped_column(Float)
    seg_prob_mean: Mapped[float] = mapped_column(Float)
    malignancy_prob: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(16))
    class_probs: Mapped[dict] = mapped_column(JSON, default=dict)

    analysis = relationship("Analysis", back_populates="lesions")
