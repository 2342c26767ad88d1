"""Pixel-level segmentation metrics, aggregated the way the sliding-window seed (003) does.

Equation 4 of seed 003 sums areas over the whole set before dividing:

    Dice = 2 * sum(intersection) / (sum(intersection) + sum(union)),   IoU = sum(intersection) / sum(union)

so large lesions weigh more than small ones and an image with no lesion and no prediction adds nothing.
Table I of the seed reports it twice, and so do we:
- "whole set": every pixel of every image (false positives far from any lesion count);
- "true-positive lesions only": only ground-truth lesions that were detected (see `froc.hits`), each
  compared with the predicted regions that touch it, so the line measures outline quality where the
  network found the lesion, not detection.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class OverlapSums:
    """Running sums of intersection and union areas (pixels) over a set of images."""

    intersection: int = 0
    union: int = 0

    def add(self, predicted: np.ndarray, truth: np.ndarray) -> None:
        predicted, truth = predicted.astype(bool), truth.astype(bool)
        self.intersection += int(np.count_nonzero(predicted & truth))
        self.union += int(np.count_nonzero(predicted | truth))

    @property
    def dice(self) -> float:
        """Equation 4; 1.0 when nothing was predicted and nothing was there (perfect agreement)."""
        denominator = self.intersection + self.union
        return 1.0 if denominator == 0 else 2.0 * self.intersection / denominator

    @property
    def iou(self) -> float:
        return 1.0 if self.union == 0 else self.intersection / self.union


def label_components(mask: np.ndarray) -> tuple[int, np.ndarray]:
    """(number of 8-connected components, int32 label image with 0 = background)."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return count - 1, labels


def components(mask: np.ndarray) -> list[np.ndarray]:
    """Bool masks of the 8-connected components of `mask` (for ground truth: a few lesions per image)."""
    count, labels = label_components(mask)
    return [labels == index for index in range(1, count + 1)]


def add_true_positive_overlap(sums: OverlapSums, predicted: np.ndarray, truth: np.ndarray) -> None:
    """Add each detected truth lesion and the predicted components touching it to `sums`.

    Works on one label image of the prediction: a low threshold can leave hundreds of small regions,
    and one boolean image per region would cost gigabytes on a whole set.
    """
    _, predicted_labels = label_components(predicted)
    for lesion in components(truth):
        touching = np.unique(predicted_labels[lesion])
        touching = touching[touching > 0]
        if touching.size == 0:
            continue  # a missed lesion: counted by the FROC, not by the outline-quality line
        sums.add(np.isin(predicted_labels, touching), lesion)


def segmentation_table(pairs) -> dict:
    """Both lines of seed 003's Table I for an iterable of (predicted bool mask, truth bool mask)."""
    whole, true_positive = OverlapSums(), OverlapSums()
    for predicted, truth in pairs:
        whole.add(predicted, truth)
        add_true_positive_overlap(true_positive, predicted.astype(bool), truth.astype(bool))
    # No detected lesion leaves the outline-quality line with nothing to measure: NaN (left out of fold
    # means), not the 1.0 of "nothing predicted, nothing there", which would reward a fold that found none.
    detected_none = true_positive.union == 0
    return {
        "whole_set": {"dice": whole.dice, "iou": whole.iou},
        "true_positive_lesions": {
            "dice": float("nan") if detected_none else true_positive.dice,
            "iou": float("nan") if detected_none else true_positive.iou,
        },
    }


def per_image_dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Dice of one image (for ultrasound, where each image holds one lesion region)."""
    sums = OverlapSums()
    sums.add(predicted, truth)
    return sums.dice
