"""Recompute a segmentation card's cross-validated metrics from the kept out-of-fold maps.

When a metric's definition changes (the FROC hit rule did once; the pectoral muscle left out of the
search region and the engine's minimum region size did later), retraining for an hour is not needed: every
fold's out-of-fold probability maps and fold assignment are kept in `runs/<name>/`, so the per-fold
figures can be recomputed and the card rewritten. The weights file stays; the operating threshold is
chosen again by the recipe's rule on the refreshed maps, as a retrain would choose it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from breastapp.ml.datasets import load_dataset
from breastapp.ml.datasets.prepare import load_samples
from breastapp.ml.datasets.records import MASS

from .folds import summarise
from .recipes import DATASET_OF, RECIPES, select_records
from .segmentation import score_out_of_fold, threshold_rule_text

logger = logging.getLogger(__name__)


def refresh_segmentation_card(
    name: str, data_root: Path, models_dir: Path, runs_dir: Path, *, config=None, dataset: str | None = None
) -> dict:
    """Rewrite `models_dir/<name>` with per-fold metrics recomputed by the current metric code.

    `config` and `dataset` default to the shipped recipe's (as in runner.train_recipe)."""
    from breastapp.ml.evaluate.run import card_min_area_px, out_of_fold_maps
    from breastapp.ml.registry import load_weights, save_weights

    from .runner import dataset_path

    config, dataset = config or RECIPES[name], dataset or DATASET_OF[name]
    records = select_records(name, load_dataset(dataset, dataset_path(data_root, dataset)))
    kinds = (MASS,) if config.spec.modality == "MG" else ("lesion",)
    samples = load_samples(records, config.spec, runs_dir / "cache", kinds=kinds)
    maps = out_of_fold_maps(runs_dir / name, samples)
    fold_index = np.load(runs_dir / name / "oof_index.npy")
    loaded = load_weights(models_dir, name)
    card = {key: value for key, value in loaded.card.items() if key not in ("sha256", "name", "created_at")}
    cv = card["metrics"]["cross_validation"]
    threshold, per_fold = score_out_of_fold(
        maps, samples, fold_index, card_min_area_px(card), config.fp_budget_per_image
    )
    cv.update(
        per_fold=per_fold, summary=summarise(per_fold), threshold=threshold, candidate_threshold=threshold
    )
    card["thresholds"].update(segmentation=threshold, froc_candidate=threshold)
    card["threshold_rule"] = threshold_rule_text(config)
    save_weights(loaded.model, card, models_dir, name)
    logger.info("%s: cross-validated metrics recomputed from %d out-of-fold maps", name, len(maps))
    return card
