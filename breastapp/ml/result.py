"""What one analysis produces: plain dataclasses, JSON-serialisable through `to_dict`.

This module must not import TensorFlow: services and the web tier read these objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class WeightsInfo:
    """Which trained network produced a result (shown to the user next to every result)."""

    name: str  # file stem under models/, e.g. "mg_seg_bcir"
    sha256: str
    architecture: str
    role: str  # "segmentation" or "classification"
    # How good the network was when validated (its card's cross-validated figures, one line), and a
    # warning when they do not show it beating chance: see ml/validation_summary.py.
    validation: str = ""
    caution: str = ""


@dataclass(frozen=True)
class Lesion:
    """One suspected lesion, in ORIGINAL image pixel coordinates (row/col of the uploaded file)."""

    index: int  # 1-based, ordered by malignancy probability then size
    box: tuple[int, int, int, int]  # (row0, col0, row1, col1), end-exclusive
    centroid: tuple[float, float]  # (row, col)
    area_px: int
    area_mm2: float | None  # None when the file gave no pixel spacing and none was supplied
    max_diameter_mm: float | None
    seg_prob_max: float
    seg_prob_mean: float
    malignancy_prob: float  # classifier probability of malignant
    label: str  # "benign" / "malignant"
    class_probs: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AnalysisResult:
    """Everything the product shows and stores about one analysed image."""

    modality: str
    verdict: str  # see breastapp.constants.VERDICTS
    image_malignancy_prob: float  # max over lesions (mammography) or classifier output (ultrasound)
    lesions: tuple[Lesion, ...]
    image_shape: tuple[int, int]  # original (rows, cols)
    spacing_mm: tuple[float, float] | None
    laterality: str | None
    view: str | None
    weights: tuple[WeightsInfo, ...]
    timings_s: dict[str, float]  # per stage: decode, preprocess, segment, classify, draw
    thresholds: dict[str, float]
    class_probs: dict[str, float] = field(default_factory=dict)  # image-level (ultrasound)
    notes: tuple[str, ...] = ()
    disclaimer: str = "Research use only — not for clinical use"

    def to_dict(self) -> dict:
        return asdict(self)
