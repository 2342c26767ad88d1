"""A study is one upload session by one user; it groups the images of (usually) one woman's exam.

No patient identifiers are stored: the optional label is free text the form warns about, and client
file names are never kept.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from breastapp.extensions import db
from breastapp.orm.types import UTCDateTime, new_uuid, utcnow, uuid_column_type


class Study(db.Model):
    __tablename__ = "studies"
    __table_args__ = (Index("ix_studies_owner_created", "owner_id", "created_at"),)

    id: Mapped[str] = mapped_column(uuid_column_type(), primary_key=True, default=new_uuid)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    label: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    owner = relationship("User", lazy="joined")
    images = relationship("Image", back_populates="study", order_by="Image.created_at", lazy="selectin")


class Image(db.Model):
    """One uploaded file, kept byte for byte at uploads/<study id>/<image id>.<ext>."""

    __tablename__ = "images"

    id: Mapped[str] = mapped_column(uuid_column_type(), primary_key=True, default=new_uuid)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    stored_name: Mapped[str] = mapped_column(String(64))  # server-chosen, never the client's name
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    format: Mapped[str] = mapped_column(String(8))  # DICOM / PNG / JPEG, decided by content
    modality: Mapped[str] = mapped_column(String(4), index=True)
    view: Mapped[str | None] = mapped_column(String(8))
    laterality: Mapped[str | None] = mapped_column(String(1))
    rows: Mapped[int]
    cols: Mapped[int]
    spacing_row_mm: Mapped[float | None] = mapped_column(Float)
    spacing_col_mm: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    study = relationship("Study", back_populates="images")
    analyses = relationship(
        "Analysis", back_populates="image", order_by="Analysis.created_at", lazy="selectin"
    )

    @property
    def latest_analysis(self):
        return self.analyses[-1] if self.analyses else None
