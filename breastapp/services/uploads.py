"""A new study from uploaded files: validate each by content, store the good ones, queue their analyses.

Each file is decoded once here (in the web process, without TensorFlow) so that an unreadable or
oversized file is refused at once, next to its name, while the other files of the study go through.
The caller commits and only THEN enqueues the analysis ids (`UploadOutcome.analysis_ids`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from breastapp.extensions import db
from breastapp.imaging.decode import DecodeLimits, decode, require_analysable_size
from breastapp.imaging.errors import ImagingError
from breastapp.orm import Analysis, Image, Study, User
from breastapp.orm.types import new_uuid
from breastapp.services.storage import Storage, sha256_bytes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlainImageChoices:
    """What the user said about PNG/JPEG files (DICOM tags win). None = let the engine decide."""

    modality: str | None = None
    view: str | None = None
    laterality: str | None = None
    spacing_mm: float | None = None  # mini-MIAS: 0.2; lets the engine report sizes in mm


@dataclass(frozen=True)
class UploadedFile:
    filename: str  # shown back to the user only; never stored
    data: bytes


@dataclass(frozen=True)
class Accepted:
    filename: str
    image_id: str
    analysis_id: str


@dataclass(frozen=True)
class Refused:
    filename: str
    code: str
    message: str
    http_status: int


@dataclass
class UploadOutcome:
    study: Study | None
    accepted: list[Accepted] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)

    @property
    def analysis_ids(self) -> list[str]:
        return [item.analysis_id for item in self.accepted]

    @property
    def http_status(self) -> int:
        """201 when everything went through; otherwise the first refusal's 4xx status."""
        return self.refused[0].http_status if self.refused else 201


def create_study(
    owner: User,
    files: list[UploadedFile],
    choices: PlainImageChoices,
    storage: Storage,
    limits: DecodeLimits,
    label: str | None = None,
) -> UploadOutcome:
    """Validate every file, store the good ones and add Study/Image/Analysis rows (flushed, not committed).

    No study row is created when every file is refused.
    """
    outcome = UploadOutcome(study=None)
    decoded = []
    for upload in files:
        try:
            frame = decode(
                upload.data,
                limits=limits,
                modality=choices.modality,
                view=choices.view,
                laterality=choices.laterality,
                spacing_mm=choices.spacing_mm,
            )
            require_analysable_size(frame)
        except ImagingError as refusal:
            outcome.refused.append(
                Refused(upload.filename, refusal.code, refusal.message, refusal.http_status)
            )
            continue
        decoded.append((upload, frame))
    if not decoded:
        return outcome
    study = Study(id=new_uuid(), owner_id=owner.id, label=(label or "").strip() or None)
    db.session.add(study)
    outcome.study = study
    for upload, frame in decoded:
        outcome.accepted.append(_store_image(study, owner, upload, frame, storage))
    log.info("study %s: %d accepted, %d refused", study.id, len(outcome.accepted), len(outcome.refused))
    return outcome


def _store_image(study: Study, owner: User, upload: UploadedFile, frame, storage: Storage) -> Accepted:
    """Write the original atomically under a fresh UUID, then add its Image and queued Analysis rows."""
    image_id = new_uuid()
    path = storage.save_original(study.id, image_id, frame.source_format, upload.data)
    spacing = frame.spacing_mm
    image = Image(
        id=image_id,
        study_id=study.id,
        stored_name=path.name,
        sha256=sha256_bytes(upload.data),
        size_bytes=len(upload.data),
        format=frame.source_format,
        modality=frame.modality,
        view=frame.view,
        laterality=frame.laterality,
        rows=int(frame.shape[0]),
        cols=int(frame.shape[1]),
        spacing_row_mm=float(spacing[0]) if spacing else None,
        spacing_col_mm=float(spacing[1]) if spacing else None,
    )
    analysis = Analysis(id=new_uuid(), image_id=image_id, user_id=owner.id)
    db.session.add_all([image, analysis])
    db.session.flush()
    return Accepted(upload.filename, image_id, analysis.id)


def decode_limits(config) -> DecodeLimits:
    """The decoded-size caps from the app configuration."""
    return DecodeLimits(
        max_pixels=int(config["MAX_PIXELS"]),
        max_decoded_bytes=int(config["MAX_DECODED_MB"]) * 2**20,
        max_file_bytes=int(config["MAX_UPLOAD_MB"]) * 2**20,
    )
