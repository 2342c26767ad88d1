"""Every segmentation figure of a set of probability maps, computed once for training and evaluation.

Cross-validation (ml/train) and the evaluate command (ml/evaluate/run.py) report the same numbers, so they
share this function rather than two copies that could drift apart.
"""

from __future__ import annotations

import numpy as np

from breastapp.ml.lesions import MAX_REGIONS

from .froc import FPPI_POINTS, candidates, froc_curve, match_image, sensitivity_at
from .segmentation import components, per_image_dice, segmentation_table


def score_segmentation(
    maps, truths, threshold: float, candidate_threshold: float, min_area_px: float = 1.0
) -> dict:
    """Table I lines (eq. 4), the FROC curve, sensitivity at FPPI_POINTS and mean per-image lesion Dice.

    FROC candidates follow the engine's region rule: at least `min_area_px` canonical pixels (see
    ml/lesions.min_region_px), at most MAX_REGIONS per image.
    """
    table = segmentation_table((m > threshold, g) for m, g in zip(maps, truths, strict=True))
    truth_components = [components(g) for g in truths]
    matched = [
        match_image(candidates(m, candidate_threshold, min_area_px, MAX_REGIONS), lesions)
        for m, lesions in zip(maps, truth_components, strict=True)
    ]
    curve = froc_curve(matched, [len(lesions) for lesions in truth_components])
    lesion_dice = [per_image_dice(m > threshold, g) for m, g in zip(maps, truths, strict=True) if g.any()]
    return {
        "table": table,
        "froc": curve,
        "sensitivity_at": sensitivity_at(curve, FPPI_POINTS),
        "mean_lesion_image_dice": float(np.mean(lesion_dice)) if lesion_dice else float("nan"),
        "lesions": int(sum(len(lesions) for lesions in truth_components)),
    }
