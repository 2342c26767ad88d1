"""Files on disk: originals byte for byte, results beside them, every write atomic.

Layout (outside static/, never served directly):
    <upload dir>/<study id>/<image id>.<ext>               the upload, unchanged
    <upload dir>/<study id>/<analysis id>/<kind>    original.png overlay.png heatmap.png mask.png result.json

Names are server-chosen UUIDs: a client's file name may carry a patient's name and is never used.
A write goes to a temporary file in the same folder, is fsync'd, then os.replace'd, so a crash leaves
either the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

RESULT_KINDS = ("original.png", "overlay.png", "heatmap.png", "mask.png", "result.json")
EXTENSIONS = {"DICOM": "dcm", "PNG": "png", "JPEG": "jpg"}


class Storage:
    """Paths and atomic writes under one root folder."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def original_path(self, study_id: str, image_id: str, source_format: str) -> Path:
        return self.root / study_id / f"{image_id}.{EXTENSIONS[source_format]}"

    def result_path(self, study_id: str, analysis_id: str, kind: str) -> Path:
        if kind not in RESULT_KINDS:
            raise ValueError(f"unknown result kind {kind!r}")
        return self.root / study_id / analysis_id / kind

    def save_original(self, study_id: str, image_id: str, source_format: str, data: bytes) -> Path:
        path = self.original_path(study_id, image_id, source_format)
        write_atomic(path, data)
        return path

    def save_result(self, study_id: str, analysis_id: str, kind: str, data: bytes) -> Path:
        path = self.result_path(study_id, analysis_id, kind)
        write_atomic(path, data)
        return path


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers and crashes see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(folder: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
