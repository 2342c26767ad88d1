"""Cross-validation bookkeeping shared by segmentation and classifier training: which folds a recipe
has, each metric's mean and spread over folds, and the log lines that report them."""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)


def check_folds(config, folds) -> None:
    """ValueError naming the recipe's folds when `folds` asks for one it does not have."""
    for fold in folds:
        if not 0 <= fold < config.folds:
            raise ValueError(f"fold {fold} does not exist: {config.name} has folds 0 to {config.folds - 1}")


def mean_and_spread(values) -> dict:
    """Mean, standard deviation and the values themselves, ignoring NaN (a fold without lesions)."""
    array = np.asarray(values, dtype=float)
    finite = array[np.isfinite(array)]
    mean, std = (float(finite.mean()), float(finite.std())) if finite.size else (float("nan"), float("nan"))
    return {"mean": mean, "std": std, "folds": [float(value) for value in array]}


def summarise(per_fold: list[dict]) -> dict:
    """Mean and standard deviation of every metric across folds, plus the per-fold values."""
    return {key: mean_and_spread([fold[key] for fold in per_fold]) for key in per_fold[0]}


def log_cross_validation(name: str, summary: dict) -> None:
    """Log every cross-validated metric (mean ± sd over folds, and each fold) as soon as the folds are
    scored: the final fit on all data takes about as long as a fold again, and a trial can be judged
    without waiting for it."""
    for metric, spread in summary.items():
        folds = " ".join(f"{value:.3f}" for value in spread["folds"])
        logger.info(
            "%s: cross-validated %s %.3f ± %.3f (folds %s)",
            name,
            metric,
            spread["mean"],
            spread["std"],
            folds,
        )
