"""BUSI breast ultrasound: `benign/`, `malignant/`, `normal/`, each `NAME.png` + `NAME_mask.png`.

BUSI publishes no patient identifiers, so each image is its own "patient" for splitting. Some women
contributed several images, so a split of BUSI can still leak a little; the model cards say so.
"""

from __future__ import annotations

from pathlib import Path

from .records import BENIGN, LESION, MALIGNANT, NORMAL, ImageRecord, LesionAnnotation

BUSI_CLASSES = (BENIGN, MALIGNANT, NORMAL)


def load_busi(root: Path) -> list[ImageRecord]:
    """Every image with its union mask; normal images carry no lesion."""
    root = Path(root)
    records = []
    for label in BUSI_CLASSES:
        folder = root / label
        if not folder.is_dir():
            continue
        for image_path in sorted(folder.glob("*.png")):
            if "_mask" in image_path.stem:
                continue
            mask_path = image_path.with_name(f"{image_path.stem}_mask.png")
            lesions = ()
            if label != NORMAL and mask_path.exists():
                lesions = (LesionAnnotation(kind=LESION, pathology=label, mask_path=mask_path),)
            image_id = f"busi_{label}_{_number(image_path.stem)}"
            records.append(
                ImageRecord(
                    image_id=image_id,
                    patient_id=image_id,
                    image_path=image_path,
                    modality="US",
                    label=label,
                    lesions=lesions,
                )
            )
    return records


def _number(stem: str) -> str:
    """'benign (12)' -> '12' (an identifier without spaces for logs and file names)."""
    return "".join(character for character in stem if character.isdigit()) or stem.replace(" ", "_")
