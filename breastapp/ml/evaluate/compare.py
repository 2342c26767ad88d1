"""Is one network better than another, and does their ensemble help? Paired differences with a
patient-resampled interval.

Networks evaluated together are scored on the same images, so the comparison is paired: each bootstrap
resample draws whole patients (two mammograms of one woman are not independent evidence, as in
`bootstrap_auc_ci`) and scores both on that same draw. The verdict reads the interval of the difference:
better when the whole interval lies above zero, worse when it lies below, and otherwise the data cannot
tell the two apart (with 40-odd lesions one lesion more is already +0.02 sensitivity).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .classification import patient_resamples, percentile_interval
from .froc import froc_curve, sensitivity_at
from .scoring import mean_lesion_image_dice

COMPARED_FPPI = 2.0  # the goal is stated at 2 false positives per image
BETTER, WORSE, UNCLEAR = "better", "worse", "no clear difference"


def sensitivity_at_fppi(matched, lesion_counts, index, fppi: float = COMPARED_FPPI) -> float:
    """FROC sensitivity at `fppi` over the images `index` (repeats allowed: a patient drawn twice)."""
    curve = froc_curve([matched[i] for i in index], [lesion_counts[i] for i in index])
    return sensitivity_at(curve, (fppi,))[fppi]


def paired_bootstrap(
    statistic_a: Callable,
    statistic_b: Callable,
    groups,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """b - a on all images, and its percentile interval over resamples of whole patients (`groups`).

    Each statistic takes an array of image indices. Resamples where either is NaN (no lesion drawn) are
    skipped; `resamples` says how many counted.
    """
    differences = []
    for index in patient_resamples(groups, n_resamples, seed):
        difference = statistic_b(index) - statistic_a(index)
        if np.isfinite(difference):
            differences.append(difference)
    low, high = percentile_interval(differences, level)
    everything = np.arange(len(groups))
    a, b = statistic_a(everything), statistic_b(everything)
    return {
        "a": a,
        "b": b,
        "difference": b - a,
        "low": low,
        "high": high,
        "resamples": len(differences),
    }


def verdict(low: float, high: float) -> str:
    """`BETTER` when the interval of the difference is above zero, `WORSE` below, else `UNCLEAR`."""
    if low > 0:
        return BETTER
    if high < 0:
        return WORSE
    return UNCLEAR


def detection(result: dict) -> Callable:
    """Sensitivity at COMPARED_FPPI of one network's (or the ensemble's) scored images."""
    return lambda index: sensitivity_at_fppi(result["matched"], result["lesion_counts"], index)


def outline_quality(result: dict) -> Callable:
    """Mean per-image Dice over the lesion images of one network's (or the ensemble's) scored images."""
    return lambda index: mean_lesion_image_dice(result["image_dice"], index)


COMPARED_METRICS = {
    f"sensitivity at {COMPARED_FPPI:g} FPPI": detection,
    "mean lesion-image Dice": outline_quality,
}


def compare_pair(
    results: dict, label: str, against: str, groups, n_resamples: int = 2000, seed: int = 0
) -> list[dict]:
    """One row per metric for `label` against `against`: their figures (b and a), the difference b - a,
    its 95% interval and the verdict. `results[label]` holds `score_segmentation`'s `matched`,
    `lesion_counts` and `image_dice` for the same images in the same order; `groups` their patients."""
    rows = []
    for metric, statistic in COMPARED_METRICS.items():
        compared = paired_bootstrap(
            statistic(results[against]), statistic(results[label]), groups, n_resamples, seed
        )
        verdict_text = verdict(compared["low"], compared["high"])
        rows.append(
            {"label": label, "against": against, "metric": metric, **compared, "verdict": verdict_text}
        )
    return rows


def compare_networks(
    results: dict, groups, ensemble: str | None = None, n_resamples: int = 2000, seed: int = 0
) -> list[dict]:
    """Every network after the first against the first (the engine's order: the first is the default),
    then the ensemble, when `results` holds one, against each network alone."""
    networks = [label for label in results if label != ensemble]
    rows = [
        row
        for label in networks[1:]
        for row in compare_pair(results, label, networks[0], groups, n_resamples, seed)
    ]
    if ensemble in results:
        rows += [
            row
            for against in networks
            for row in compare_pair(results, ensemble, against, groups, n_resamples, seed)
        ]
    return rows
