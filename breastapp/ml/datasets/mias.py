"""mini-MIAS: `Info.txt` parsed exactly as its authors describe it.

Each line is `REFNUM BG CLASS [SEVERITY X Y RADIUS]`. X and Y have their ORIGIN AT THE BOTTOM-LEFT
of the 1024x1024 image, so the array row is `1024 - Y` and the column is `X`. Some lines have a
severity but no coordinates (mdb059, and the `*NOTE 3*` widespread calcifications); those lesions
are kept (the image is abnormal) but marked unlocatable. Consecutive references are the two breasts
of one woman (mdb001+mdb002, ...), so the patient of mdbN is `(N + 1) // 2`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from .records import (
    ASYMMETRY,
    BENIGN,
    CALCIFICATION,
    DENSITY,
    DISTORTION,
    MALIGNANT,
    MASS,
    MIAS_DENSITIES,
    ImageRecord,
    LesionAnnotation,
    worst_pathology,
)

logger = logging.getLogger(__name__)

MIAS_SIZE = 1024
MIAS_SPACING_MM = 0.2
CLASS_TO_KIND = {
    "CIRC": MASS,
    "SPIC": MASS,
    "MISC": MASS,
    "CALC": CALCIFICATION,
    "ARCH": DISTORTION,
    "ASYM": ASYMMETRY,
}
SEVERITY = {"B": BENIGN, "M": MALIGNANT}
_LINE = re.compile(r"^(mdb\d{3})\s+([FGD])\s+([A-Z]+)\s*(.*)$")


def mias_row(y: float) -> float:
    """Array row of a mini-MIAS Y coordinate (origin bottom-left)."""
    return MIAS_SIZE - y


def mias_patient(reference: str) -> str:
    """Patient of a reference: consecutive pairs mdb001+mdb002, mdb003+mdb004, ... are one woman."""
    number = int(reference[3:])
    return f"mias_p{(number + 1) // 2:03d}"


def parse_info_line(line: str) -> tuple[str, str, str, LesionAnnotation | None] | None:
    """(reference, background tissue, class, lesion or None for NORM); None for non-data lines."""
    match = _LINE.match(line.strip())
    if not match:
        return None
    reference, tissue, abnormality, rest = match.groups()
    if abnormality == "NORM":
        return reference, tissue, abnormality, None
    if abnormality not in CLASS_TO_KIND:
        raise ValueError(f"unknown mini-MIAS class {abnormality!r} in line {line.strip()!r}")
    fields = rest.split()
    pathology = SEVERITY.get(fields[0]) if fields else None
    numbers = (
        [float(value) for value in fields[1:4]] if len(fields) >= 4 and _all_numbers(fields[1:4]) else None
    )
    if numbers is None:
        lesion = LesionAnnotation(kind=CLASS_TO_KIND[abnormality], pathology=pathology)
    else:
        x, y, radius = numbers
        lesion = LesionAnnotation(
            kind=CLASS_TO_KIND[abnormality], pathology=pathology, center_rc=(mias_row(y), x), radius_px=radius
        )
    return reference, tissue, abnormality, lesion


def _all_numbers(values) -> bool:
    try:
        [float(value) for value in values]
    except ValueError:
        return False
    return True


def load_mias(root: Path) -> list[ImageRecord]:
    """Every image of `root/images` with its lesions from `root/Info.txt` (several lines per image)."""
    root = Path(root)
    lesions: dict[str, list[LesionAnnotation]] = {}
    tissue_of: dict[str, str] = {}
    classes_of: dict[str, list[str]] = {}
    for line in (root / "Info.txt").read_text(encoding="latin-1").splitlines():
        parsed = parse_info_line(line)
        if parsed is None:
            continue
        reference, tissue, abnormality, lesion = parsed
        tissue_of[reference] = tissue
        classes_of.setdefault(reference, []).append(abnormality)
        lesions.setdefault(reference, [])
        if lesion is not None:
            lesions[reference].append(lesion)
    records = []
    for reference in sorted(lesions):
        path = root / "images" / f"{reference}.png"
        if not path.exists():
            logger.info("mini-MIAS image %s listed in Info.txt is absent (sequestered?)", reference)
            continue
        found = tuple(lesions[reference])
        records.append(
            ImageRecord(
                image_id=reference,
                patient_id=mias_patient(reference),
                image_path=path,
                modality="MG",
                label=worst_pathology(lesion.pathology for lesion in found),
                lesions=found,
                spacing_mm=MIAS_SPACING_MM,
                metadata={
                    "background_tissue": tissue_of[reference],
                    DENSITY: MIAS_DENSITIES.get(tissue_of[reference], tissue_of[reference]),
                    "classes": classes_of[reference],
                },
            )
        )
    return records
