"""The common shape every dataset parser returns: one `ImageRecord` per image.

Parsers only read annotations; pixels are decoded later (and cached) so that listing a dataset,
splitting it by patient and testing the parsers stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Lesion kinds, spelled once. Only masses are segmented by the shipped mammography networks.
MASS = "mass"
CALCIFICATION = "calcification"
DISTORTION = "distortion"
ASYMMETRY = "asymmetry"
LESION = "lesion"  # a pixel-mask lesion of unspecified kind (ultrasound, user folders)

# Image metadata key: the breast's density as the dataset states it (mini-MIAS background tissue, CBIS-DDSM's
# BI-RADS density, a folder's optional `density` column). The evaluation counts lesions found per density:
# dense tissue hides masses from readers and networks alike.
DENSITY = "density"
# mini-MIAS background tissue codes, named so that they sort from least to most dense.
MIAS_DENSITIES = {"F": "1 fatty", "G": "2 fatty-glandular", "D": "3 dense-glandular"}

# Image-level labels.
NORMAL = "normal"
BENIGN = "benign"
MALIGNANT = "malignant"


@dataclass(frozen=True)
class LesionAnnotation:
    """One annotated abnormality in ORIGINAL image pixel coordinates.

    A circle (mini-MIAS) has `center_rc` and `radius_px`; a pixel mask (BUSI, CBIS-DDSM, folders)
    has `mask_path`. mini-MIAS rows without coordinates have neither: the lesion is known to exist
    but cannot be located, so it cannot be used for segmentation.
    """

    kind: str
    pathology: str | None  # BENIGN / MALIGNANT / None when unknown
    center_rc: tuple[float, float] | None = None
    radius_px: float | None = None
    mask_path: Path | None = None

    @property
    def locatable(self) -> bool:
        return self.mask_path is not None or (self.center_rc is not None and self.radius_px is not None)


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset with its patient, labels and annotations."""

    image_id: str
    patient_id: str  # splits are made on this, never on image_id
    image_path: Path
    modality: str  # "MG" or "US"
    label: str  # NORMAL / BENIGN / MALIGNANT (image level: the worst lesion)
    lesions: tuple[LesionAnnotation, ...] = ()
    spacing_mm: float | None = None  # the dataset's known pixel spacing, when the file lacks one
    metadata: dict = field(default_factory=dict)

    def lesions_of(self, kind: str) -> tuple[LesionAnnotation, ...]:
        return tuple(lesion for lesion in self.lesions if lesion.kind == kind)

    @property
    def has_unlocatable_lesion(self) -> bool:
        return any(not lesion.locatable for lesion in self.lesions)


def worst_pathology(pathologies) -> str:
    """Image label from its lesions' pathologies: malignant beats benign beats normal."""
    found = set(pathologies)
    if MALIGNANT in found:
        return MALIGNANT
    if BENIGN in found:
        return BENIGN
    return NORMAL
