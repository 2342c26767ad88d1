"""Dataset parsers (mini-MIAS, BUSI, CBIS-DDSM TCIA layout, a plain folder), patient-level splits,
and the bridge to canonical arrays through the engine's own preprocessing."""

from __future__ import annotations

from pathlib import Path

from .busi import load_busi
from .cbis import load_cbis
from .folder import load_folder
from .mias import load_mias
from .records import ImageRecord, LesionAnnotation

DATASETS = ("mias", "busi", "cbis", "folder")


def load_dataset(kind: str, path: Path, csv_dir: Path | None = None) -> list[ImageRecord]:
    """Records of a dataset by name: one entry point for the train and evaluate commands."""
    path = Path(path)
    if kind == "mias":
        return load_mias(path)
    if kind == "busi":
        return load_busi(path)
    if kind == "cbis":
        return load_cbis(path, csv_dir)
    if kind == "folder":
        return load_folder(path)
    raise ValueError(f"unknown dataset {kind!r}; known: {DATASETS}")


__all__ = ["DATASETS", "ImageRecord", "LesionAnnotation", "load_dataset"]
