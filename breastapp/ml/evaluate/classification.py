"""Classification metrics: ROC/AUC with a patient-resampled bootstrap interval, operating point,
confusion matrix and per-class precision / recall / F1 (the BUSI seed's table).

Written in numpy so that the numbers can be checked by hand on tiny cases (the tests do).
"""

from __future__ import annotations

import numpy as np


def roc_curve(labels, scores) -> dict:
    """ROC points (fpr, tpr, thresholds) for binary `labels` (1 = positive) and `scores`.

    One point per distinct score, starting at (0, 0) with threshold +inf; a case is called positive
    when its score >= threshold.
    """
    labels, scores = np.asarray(labels, dtype=int), np.asarray(scores, dtype=float)
    order = np.argsort(-scores, kind="mergesort")
    labels, scores = labels[order], scores[order]
    distinct = np.r_[np.flatnonzero(np.diff(scores)), labels.size - 1]
    true_positives = np.cumsum(labels)[distinct]
    false_positives = (distinct + 1) - true_positives
    positives, negatives = max(labels.sum(), 1), max((1 - labels).sum(), 1)
    return {
        "fpr": np.r_[0.0, false_positives / negatives],
        "tpr": np.r_[0.0, true_positives / positives],
        "thresholds": np.r_[np.inf, scores[distinct]],
    }


def auc(labels, scores) -> float:
    """Area under the ROC curve (trapezoids; equals the Mann-Whitney statistic with ties as 1/2)."""
    curve = roc_curve(labels, scores)
    return float(np.trapezoid(curve["tpr"], curve["fpr"]))


def patient_resamples(groups, n_resamples: int, seed: int):
    """Image indices of `n_resamples` bootstrap draws of whole PATIENTS (`groups`) with replacement.

    Two images of one woman are not independent evidence, so whole patients are drawn; a patient drawn
    twice brings her images twice."""
    groups = np.asarray(groups)
    patients = np.unique(groups)
    members = [np.flatnonzero(groups == patient) for patient in patients]
    rng = np.random.default_rng(seed)
    for _ in range(n_resamples):
        drawn = rng.integers(0, patients.size, size=patients.size)
        yield np.concatenate([members[patient] for patient in drawn])


def percentile_interval(values, level: float = 0.95) -> tuple[float, float]:
    """The central `level` percentile interval of bootstrap `values` (NaN, NaN when there are none)."""
    if len(values) == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_auc_ci(labels, scores, groups, n_resamples: int = 2000, seed: int = 0, level: float = 0.95):
    """Percentile bootstrap interval of the AUC, resampling patients (`patient_resamples`).

    Resamples that hold only one class have no AUC and are skipped; the number used is returned with the
    interval.
    """
    labels, scores = np.asarray(labels, dtype=int), np.asarray(scores, dtype=float)
    values = []
    for index in patient_resamples(groups, n_resamples, seed):
        if labels[index].min() == labels[index].max():
            continue
        values.append(auc(labels[index], scores[index]))
    return (*percentile_interval(values, level), len(values))


def sensitivity_specificity(labels, scores, threshold: float) -> tuple[float, float]:
    """Sensitivity and specificity when `score >= threshold` is called positive."""
    labels, called = np.asarray(labels, dtype=int), np.asarray(scores, dtype=float) >= threshold
    positives, negatives = labels == 1, labels == 0
    sensitivity = float(called[positives].mean()) if positives.any() else float("nan")
    specificity = float((~called[negatives]).mean()) if negatives.any() else float("nan")
    return sensitivity, specificity


def threshold_for_sensitivity(labels, scores, target: float = 0.9) -> float:
    """The HIGHEST threshold whose sensitivity still reaches `target` (fewest false alarms at that
    sensitivity): the card's documented rule for the malignancy operating point."""
    curve = roc_curve(labels, scores)
    reaching = np.flatnonzero(curve["tpr"] >= target)
    return float(curve["thresholds"][reaching[0]]) if reaching.size else float(np.min(scores))


def confusion_matrix(true, predicted, classes) -> np.ndarray:
    """counts[i, j] = cases of true class i predicted as class j."""
    index = {name: i for i, name in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)), dtype=int)
    for actual, guess in zip(true, predicted, strict=True):
        counts[index[actual], index[guess]] += 1
    return counts


def per_class_report(counts: np.ndarray, classes) -> dict:
    """Precision, recall, F1 and support per class, plus accuracy, from a confusion matrix."""
    report = {}
    for i, name in enumerate(classes):
        true_positive = counts[i, i]
        predicted, actual = counts[:, i].sum(), counts[i, :].sum()
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report[name] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": int(actual),
        }
    total = counts.sum()
    report["accuracy"] = float(np.trace(counts) / total) if total else float("nan")
    return report
