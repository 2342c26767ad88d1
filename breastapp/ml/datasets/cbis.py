"""CBIS-DDSM in the layout TCIA distributes, described by its four case-description CSVs.

Each CSV row is one abnormality: patient, breast, view, pathology and three DICOM paths (full
mammogram, cropped ROI, ROI mask). Two known quirks of the real download are handled:
- the NBIA downloader renames the folders under each top-level case folder, so a path from the CSV
  is tried literally first, then the DICOM files under its top-level folder are used;
- in many rows the crop and the mask paths are swapped; the mask is recognised by content (it has
  the full image's shape), never by its position in the CSV.
Full images are 0.05 mm film scans (reduced by 4 to the working 0.2 mm, as in the sliding-window seed).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from .records import (
    BENIGN,
    CALCIFICATION,
    DENSITY,
    MALIGNANT,
    MASS,
    ImageRecord,
    LesionAnnotation,
    worst_pathology,
)

logger = logging.getLogger(__name__)

CBIS_SPACING_MM = 0.05
CSV_NAMES = (
    "mass_case_description_train_set.csv",
    "mass_case_description_test_set.csv",
    "calc_case_description_train_set.csv",
    "calc_case_description_test_set.csv",
)
PATHOLOGY = {"MALIGNANT": MALIGNANT, "BENIGN": BENIGN, "BENIGN_WITHOUT_CALLBACK": BENIGN}


def read_case_rows(csv_dir: Path) -> list[dict]:
    """All rows of whichever of the four description CSVs exist, paths stripped of stray newlines."""
    rows = []
    for name in CSV_NAMES:
        path = Path(csv_dir) / name
        if not path.exists():
            continue
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                rows.append({key.strip(): (value or "").strip() for key, value in row.items()})
    return rows


def load_cbis(image_root: Path, csv_dir: Path | None = None, kinds=(MASS,)) -> list[ImageRecord]:
    """One record per full mammogram present under `image_root`, with its lesions of `kinds`.

    csv_dir defaults to image_root (where a user usually keeps the CSVs beside the DICOM folders).
    """
    image_root = Path(image_root)
    rows = read_case_rows(Path(csv_dir) if csv_dir else image_root)
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row["image file path"].split("/")[0], []).append(row)
    records = []
    for case_folder, case_rows in sorted(grouped.items()):
        record = _image_record(image_root, case_folder, case_rows, kinds)
        if record is not None:
            records.append(record)
    logger.info("CBIS-DDSM: %d of %d full images present under %s", len(records), len(grouped), image_root)
    return records


def _image_record(image_root: Path, case_folder: str, rows: list[dict], kinds) -> ImageRecord | None:
    image_path = resolve_dicom(image_root, rows[0]["image file path"])
    if image_path is None:
        return None
    lesions = []
    for row in rows:
        kind = MASS if row["abnormality type"].lower() == "mass" else CALCIFICATION
        if kind not in kinds:
            continue
        mask_path = find_roi_mask(image_root, row, image_path)
        lesions.append(
            LesionAnnotation(kind=kind, pathology=PATHOLOGY.get(row["pathology"]), mask_path=mask_path)
        )
    if not lesions:
        return None
    first = rows[0]
    # the mass CSVs spell the column "breast_density", the calcification CSVs "breast density"
    stated = (first.get("breast_density") or first.get("breast density") or "").strip()
    density = {DENSITY: f"BI-RADS {stated}"} if stated else {}
    return ImageRecord(
        image_id=case_folder,
        patient_id=first["patient_id"],
        image_path=image_path,
        modality="MG",
        label=worst_pathology(lesion.pathology for lesion in lesions),
        lesions=tuple(lesions),
        spacing_mm=CBIS_SPACING_MM,
        metadata={"laterality": first["left or right breast"][:1], "view": first["image view"], **density},
    )


def resolve_dicom(image_root: Path, csv_path: str) -> Path | None:
    """The file a CSV path names: literally if present, else the first DICOM under its top folder."""
    literal = image_root / csv_path
    if literal.exists():
        return literal
    candidates = dicoms_under(image_root / csv_path.split("/")[0])
    return candidates[0] if candidates else None


def dicoms_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.dcm")) if folder.is_dir() else []


def find_roi_mask(image_root: Path, row: dict, image_path: Path) -> Path | None:
    """The ROI mask of one abnormality: among the crop/mask files, the one with the full image's shape."""
    import pydicom

    full_shape = _dicom_shape(pydicom, image_path)
    folders = {
        row[key].split("/")[0] for key in ("cropped image file path", "ROI mask file path") if row[key]
    }
    candidates = [path for folder in sorted(folders) for path in dicoms_under(image_root / folder)]
    for path in candidates:
        if _dicom_shape(pydicom, path) == full_shape:
            return path
    logger.warning(
        "CBIS-DDSM: no ROI mask of the full image's shape for one abnormality of %s", row["patient_id"]
    )
    return None


def _dicom_shape(pydicom, path: Path) -> tuple[int, int]:
    dataset = pydicom.dcmread(path, stop_before_pixels=True)
    return int(dataset.Rows), int(dataset.Columns)
