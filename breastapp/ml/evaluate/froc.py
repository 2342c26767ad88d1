"""Lesion-level detection: candidates from a probability map, hits, and the FROC curve.

Candidates: the connected components of the probability map above `candidate_threshold`; each one's
score is its highest probability. Sweeping a score threshold over the candidates traces the FROC. As in
the engine (ml/lesions.find_regions), components smaller than the card's minimum lesion area are not
candidates and at most the `max_candidates` largest count: a speck the product never shows is no false
positive, and one it does show always is.

Hit definition (documented in docs/TRAINING.md): a candidate detects a ground-truth lesion when the
candidate's centroid lies inside the lesion mask. mini-MIAS lesions are circles that enclose the
abnormality, so centre-in-circle is the usual test. Deliberately NOT "the lesion's centre lies in the
candidate" or any pixel-overlap rule: those reward one huge region that covers the breast (our first
mammography run scored 0.95 sensitivity at 1 FPPI that way while its Dice was 0.07). A lesion counts once;
further candidates on an already-detected lesion are neither hits nor false positives (the
convention of most FROC studies); every other candidate is a false positive.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from breastapp.ml.lesions import largest_components

FPPI_POINTS = (0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class Candidate:
    """One candidate region: its score, centroid, and its number in the image's shared label map."""

    score: float
    centroid: tuple[int, int]  # (row, col), rounded
    label: int
    labels: np.ndarray  # the label image all candidates of one image share (never copied per candidate)

    @property
    def mask(self) -> np.ndarray:
        return self.labels == self.label


def candidates(
    probability: np.ndarray,
    candidate_threshold: float = 0.1,
    min_area_px: float = 1.0,
    max_candidates: int | None = None,
) -> list[Candidate]:
    """Connected regions of `probability > candidate_threshold` of at least `min_area_px` pixels (the
    `max_candidates` largest when given), scored by their maximum."""
    from scipy import ndimage

    count, labels, stats, centroids = cv2.connectedComponentsWithStats(
        (probability > candidate_threshold).astype(np.uint8), connectivity=8
    )
    if count <= 1:
        return []
    index = largest_components(stats[:, cv2.CC_STAT_AREA], min_area_px, max_candidates)
    if index.size == 0:
        return []
    scores = ndimage.maximum(probability, labels, index)
    return [
        Candidate(float(score), (int(round(centroids[i][1])), int(round(centroids[i][0]))), int(i), labels)
        for i, score in zip(index, scores, strict=True)
    ]


def hits(candidate: Candidate, lesion: np.ndarray) -> bool:
    """The hit rule of the module docstring: the candidate's centroid lies inside the lesion."""
    row, col = candidate.centroid
    return bool(lesion[row, col])


def match_image(found: list[Candidate], lesions: list[np.ndarray]) -> list[tuple[float, int | None]]:
    """(score, index of the lesion it detects or None for a false positive) per candidate."""
    matched = []
    for candidate in found:
        target = next((i for i, lesion in enumerate(lesions) if hits(candidate, lesion)), None)
        matched.append((candidate.score, target))
    return matched


def froc_curve(per_image: list[list[tuple[float, int | None]]], lesion_counts: list[int]) -> dict:
    """FROC over images: arrays `fppi`, `sensitivity`, `thresholds` (one point per distinct score).

    per_image[i] is `match_image`'s output for image i; lesion_counts[i] its number of lesions.
    """
    n_images, n_lesions = len(per_image), int(sum(lesion_counts))
    events = [(score, image, lesion) for image, matched in enumerate(per_image) for score, lesion in matched]
    events.sort(key=lambda event: -event[0])
    detected: set[tuple[int, int]] = set()
    false_positives = 0
    fppi, sensitivity, thresholds = [0.0], [0.0], [float("inf")]
    for index, (score, image, lesion) in enumerate(events):
        if lesion is None:
            false_positives += 1
        else:
            detected.add((image, lesion))
        last_of_score = index + 1 == len(events) or events[index + 1][0] != score
        if last_of_score:
            fppi.append(false_positives / max(n_images, 1))
            sensitivity.append(len(detected) / n_lesions if n_lesions else 0.0)
            thresholds.append(score)
    return {"fppi": np.array(fppi), "sensitivity": np.array(sensitivity), "thresholds": np.array(thresholds)}


def sensitivity_at(curve: dict, fppi_points=FPPI_POINTS) -> dict[float, float]:
    """Highest sensitivity reached with at most each given number of false positives per image."""
    result = {}
    for point in fppi_points:
        allowed = curve["fppi"] <= point + 1e-12
        result[point] = float(curve["sensitivity"][allowed].max()) if allowed.any() else 0.0
    return result
