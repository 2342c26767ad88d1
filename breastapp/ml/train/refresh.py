"""Recompute a segmentation card's cross-validated metrics from the kept out-of-fold maps.

When a metric's definition changes (the FROC hit rule did once), retraining for an hour is not needed:
every fold's out-of-fold probability maps and fold assignment are kept in `runs/<name>/`, so the
per-fold figures can be recomputed and the card rewritten (same weights file, same threshold).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from breastapp.ml.datasets import load_dataset
from breastapp.ml.datasets.prepare import load_samples
from breastapp.ml.datasets.records import MASS

from .recipes import DATASET_OF, RECIPES, select_records
from .segmentation import fold_metrics, summarise

logger = logging.getLogger(__name__)


def refresh_segmentation_card(name: str, data_root: Path, models_dir: Path, runs_dir: Path) -> dict:
    """Rewrite `models_dir/<name>` with per-fold metrics recomputed by the current metric code."""
    from breastapp.ml.evaluate.run import out_of_fold_maps
    from breastapp.ml.registry import load_weights, save_weights

    from .runner import DATA_FOLDER

    config, dataset = RECIPES[name], DATASET_OF[name]
    records = select_records(name, load_dataset(dataset, Path(data_root) / DATA_FOLDER[dataset]))
    kinds = (MASS,) if config.spec.modality == "MG" else ("lesion",)
    samples = load_samples(records, config.spec, runs_dir / "cache", kinds=kinds)
    maps = out_of_fold_maps(runs_dir / name, samples)
    fold_of = np.load(runs_dir / name / "oof_index.npy")
    loaded = load_weights(models_dir, name)
    card = {key: value for key, value in loaded.card.items() if key not in ("sha256", "name", "created_at")}
    cv = card["metrics"]["cross_validation"]
    threshold = float(cv["threshold"])
    per_fold = []
    for fold in range(int(fold_of.max()) + 1):
        members = np.flatnonzero(fold_of == fold)
        per_fold.append(
            fold_metrics([maps[i] for i in members], [samples[i] for i in members], threshold, threshold)
        )
    cv.update(per_fold=per_fold, summary=summarise(per_fold), candidate_threshold=threshold)
    card["thresholds"]["froc_candidate"] = threshold
    save_weights(loaded.model, card, models_dir, name)
    logger.info("%s: cross-validated metrics recomputed from %d out-of-fold maps", name, len(maps))
    return card
