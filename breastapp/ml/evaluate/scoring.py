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
    reported = [candidates(m, candidate_threshold, min_area_px, MAX_REGIONS) for m in maps]
    matched = [match_image(c, lesions) for c, lesions in zip(reported, truth_components, strict=True)]
    lesion_counts = [len(lesions) for lesions in truth_components]
    curve = froc_curve(matched, lesion_counts)
    # NaN for an image without a lesion: it has no outline to score (the mean leaves it out)
    image_dice = [
        per_image_dice(m > threshold, g) if g.any() else float("nan")
        for m, g in zip(maps, truths, strict=True)
    ]
    return {
        "table": table,
        "froc": curve,
        "sensitivity_at": sensitivity_at(curve, FPPI_POINTS),
        "mean_lesion_image_dice": mean_lesion_image_dice(image_dice, np.arange(len(image_dice))),
        "lesions": int(sum(lesion_counts)),
        # per image, for paired comparisons (compare.py): matched candidates, lesion count, Dice
        "matched": matched,
        "lesion_counts": lesion_counts,
        "image_dice": image_dice,
        # every lesion's area (pixels) and whether a candidate hit it: what `found_by_size` bins
        "lesion_hits": [
            (int(np.count_nonzero(lesion)), any(index == i for _, index in found))
            for lesions, found in zip(truth_components, matched, strict=True)
            for i, lesion in enumerate(lesions)
        ],
        # the image of each entry of "lesion_hits": what `found_by_group` groups by
        "lesion_images": [image for image, lesions in enumerate(truth_components) for _ in lesions],
        "missed": missed_lesions(maps, truth_components, reported, matched, candidate_threshold),
    }


# Why a lesion was missed, in the words the report uses (`missed_lesions`).
NO_RESPONSE = "no response: nothing inside it reaches the threshold"
SPILLED_OVER = "a reported region overlaps it, but that region's centroid lies outside it"
REGION_DROPPED = "above the threshold, but only in a region too small or not among the largest reported"


def missed_lesions(
    maps, truth_components, reported_per_image, matched, candidate_threshold: float
) -> list[dict]:
    """One dict per lesion no candidate hit: image index, lesion index, area (pixels), the highest
    probability inside it and why it was missed (NO_RESPONSE, SPILLED_OVER or REGION_DROPPED).

    The reasons point at different remedies: a lesion the network does not respond to needs a better
    network or more data; one only overlapped by a region that spreads into the tissue around it, or sits
    mostly beside it, is lost to the hit rule (froc.hits), which a tighter outline can fix.
    """
    missed = []
    for image, (probability, lesions, reported, hit) in enumerate(
        zip(maps, truth_components, reported_per_image, matched, strict=True)
    ):
        detected = {index for _, index in hit if index is not None}
        for index, lesion in enumerate(lesions):
            if index in detected:
                continue
            highest = float(probability[lesion].max())
            if highest <= candidate_threshold:
                reason = NO_RESPONSE
            elif overlaps_a_reported_region(lesion, reported):
                reason = SPILLED_OVER
            else:
                reason = REGION_DROPPED
            missed.append(
                {
                    "image": image,
                    "lesion": index,
                    "area_px": int(np.count_nonzero(lesion)),
                    "max_probability": highest,
                    "reason": reason,
                }
            )
    return missed


def overlaps_a_reported_region(lesion: np.ndarray, reported) -> bool:
    """True when any reported candidate covers a pixel of `lesion`; one lookup in the label image the
    candidates share, instead of a full-image mask per candidate (this runs at every swept threshold)."""
    if not reported:
        return False
    labels_under_lesion = reported[0].labels[lesion]
    return bool(np.isin(labels_under_lesion, [candidate.label for candidate in reported]).any())


def mean_lesion_image_dice(image_dice, index) -> float:
    """Mean per-image Dice over the images of `index` that hold a lesion (NaN entries: no lesion);
    `index` may repeat an image (a bootstrap draw)."""
    values = np.asarray(image_dice, dtype=float)[np.asarray(index, dtype=int)]
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


# Thresholds the evaluation report sweeps: enough to see the trade-off, few enough to read in one table.
SWEPT_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def operating_points(maps, truths, thresholds=SWEPT_THRESHOLDS, min_area_px: float = 1.0) -> list[dict]:
    """What the engine would report if a card's threshold were each of `thresholds`.

    At each threshold the outlines and the FROC candidates are cut at that same threshold, as the engine
    cuts them. The FROC of one threshold stops at that threshold's regions, so a researcher choosing an
    operating point needs this sweep: lowering the threshold adds regions but can also merge a mass with
    the tissue around it, moving the region's centroid off the mass.
    """
    points = []
    for threshold in thresholds:
        scores = score_segmentation(maps, truths, threshold, threshold, min_area_px)
        points.append(
            {
                "threshold": float(threshold),
                "dice_whole_set": scores["table"]["whole_set"]["dice"],
                "mean_lesion_image_dice": scores["mean_lesion_image_dice"],
                "sensitivity": float(scores["froc"]["sensitivity"][-1]),
                "false_positives_per_image": float(scores["froc"]["fppi"][-1]),
            }
        )
    return points


# Lesion diameters (mm) that split the by-size table: a screening aid is judged on the small masses.
SIZE_EDGES_MM = (10.0, 20.0, 30.0)


def size_bin_labels(edges_mm=SIZE_EDGES_MM) -> list[str]:
    """'< 10 mm', '10-20 mm', ..., '≥ 30 mm' for the bins `found_by_size` counts."""
    inner = [f"{low:g}-{high:g} mm" for low, high in zip(edges_mm, edges_mm[1:], strict=False)]
    return [f"< {edges_mm[0]:g} mm", *inner, f"≥ {edges_mm[-1]:g} mm"]


def found_by_size(lesion_hits, spacing_mm: float, edges_mm=SIZE_EDGES_MM) -> list[dict]:
    """Lesions found among the regions the engine reports, by lesion size.

    `lesion_hits` is `score_segmentation`'s (area in pixels, hit) per lesion, so "found" is the FROC's last
    point. Size is the diameter of the circle with the lesion's area (mini-MIAS lesions are circles). One
    dict per bin of `size_bin_labels(edges_mm)`: label, lesions, found.
    """
    labels = size_bin_labels(edges_mm)
    lesions, found = [0] * len(labels), [0] * len(labels)
    for area_px, hit in lesion_hits:
        diameter_mm = lesion_diameter_mm(area_px, spacing_mm)
        size_bin = int(np.searchsorted(edges_mm, diameter_mm, side="right"))
        lesions[size_bin] += 1
        found[size_bin] += hit
    return [
        {"label": label, "lesions": count, "found": hit}
        for label, count, hit in zip(labels, lesions, found, strict=True)
    ]


def found_by_group(lesion_hits, lesion_images, group_of_image) -> list[dict]:
    """Lesions found among the regions the engine reports, by a group each image belongs to (its breast
    density, say). `lesion_hits` and `lesion_images` are `score_segmentation`'s; `group_of_image` holds one
    label per image, None where the dataset does not say (those lesions are left out). One dict per group,
    in label order: label, lesions, found.
    """
    lesions: dict[str, int] = {}
    found: dict[str, int] = {}
    for (_, hit), image in zip(lesion_hits, lesion_images, strict=True):
        group = group_of_image[image]
        if group is None:
            continue
        lesions[group] = lesions.get(group, 0) + 1
        found[group] = found.get(group, 0) + hit
    return [{"label": group, "lesions": lesions[group], "found": found[group]} for group in sorted(lesions)]


def lesion_diameter_mm(area_px: int, spacing_mm: float) -> float:
    """Diameter of the circle with the lesion's area (mini-MIAS lesions are circles)."""
    return float(2.0 * np.sqrt(area_px / np.pi) * spacing_mm)
