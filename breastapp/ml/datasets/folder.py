"""A plain folder for a user's own data: `images/`, optional `masks/`, and `labels.csv`.

labels.csv columns: `image` (file name in images/), `label` (normal / benign / malignant), and
optionally `patient` (defaults to the image stem: give it, or splits may put one woman's two views
on both sides), `modality` (MG / US, default MG), `spacing_mm` and `density` (any label, e.g. "BI-RADS 3":
the evaluation counts lesions found per density). A mask `masks/<stem>.png` (any
non-zero pixel is lesion) is used when present. On a mammogram the mask is taken as a MASS: the
mammography networks are mass networks, and their recipes train and score masses only (an unspecified
kind would leave every lesion image of a user's mammography folder out).
"""

from __future__ import annotations

import csv
from pathlib import Path

from .records import BENIGN, DENSITY, LESION, MALIGNANT, MASS, NORMAL, ImageRecord, LesionAnnotation

VALID_LABELS = (NORMAL, BENIGN, MALIGNANT)


def load_folder(root: Path) -> list[ImageRecord]:
    """Records for every row of labels.csv; raises ValueError naming the first bad row."""
    root = Path(root)
    records = []
    with open(root / "labels.csv", newline="", encoding="utf-8") as handle:
        for line_number, row in enumerate(csv.DictReader(handle), start=2):
            records.append(_record(root, row, line_number))
    return records


def _record(root: Path, row: dict, line_number: int) -> ImageRecord:
    image_path = root / "images" / row["image"].strip()
    label = row["label"].strip().lower()
    if label not in VALID_LABELS:
        raise ValueError(f"labels.csv line {line_number}: label {label!r} is not one of {VALID_LABELS}")
    if not image_path.exists():
        raise ValueError(f"labels.csv line {line_number}: {image_path} does not exist")
    mask_path = _find_mask(root / "masks", image_path.stem)
    modality = (row.get("modality") or "MG").strip().upper()
    lesions = ()
    if mask_path is not None and label != NORMAL:
        kind = MASS if modality == "MG" else LESION
        lesions = (LesionAnnotation(kind=kind, pathology=label, mask_path=mask_path),)
    spacing = row.get("spacing_mm", "").strip() if row.get("spacing_mm") else ""
    density = (row.get("density") or "").strip()
    return ImageRecord(
        image_id=image_path.stem,
        patient_id=(row.get("patient") or "").strip() or image_path.stem,
        image_path=image_path,
        modality=modality,
        label=label,
        lesions=lesions,
        spacing_mm=float(spacing) if spacing else None,
        metadata={DENSITY: density} if density else {},
    )


def _find_mask(mask_dir: Path, stem: str) -> Path | None:
    for suffix in (".png", ".PNG", ".dcm"):
        candidate = mask_dir / f"{stem}{suffix}"
        if candidate.exists():
            return candidate
    return None
