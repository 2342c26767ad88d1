"""Train one recipe end to end: records -> canonical samples (cached) -> CV + final fit -> weights + card."""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from breastapp.ml.datasets import load_dataset
from breastapp.ml.datasets.prepare import load_samples
from breastapp.ml.datasets.records import MASS

from . import classification, segmentation
from .classification import ClassificationConfig, Guide
from .folds import check_folds, log_cross_validation
from .loop import device_name, final_fit_rule
from .recipes import DATASET_OF, RECIPES, select_records
from .segmentation import SegmentationConfig, StartingWeights

logger = logging.getLogger(__name__)
DATA_FOLDER = {"mias": "mini-mias", "busi": "busi"}
DATASET_CITATION = {
    "mias": "mini-MIAS (Suckling et al. 1994), research use only",
    "busi": "BUSI (Al-Dhabyani et al. 2020), research use only",
}


def quick(config, epochs: int = 1, folds: int = 2):
    """A few-step version of a recipe (tests and smoke runs): tiny epochs and two folds."""
    fit = replace(config.fit, epochs=epochs, steps_per_epoch=2, batch_size=4)
    return replace(config, fit=fit, cv_epochs=epochs, folds=folds)


def dataset_path(data_root: Path, dataset: str) -> Path:
    """`data_root/<dataset's folder>` when data_root is ../shared/data-like, else data_root itself."""
    folder = DATA_FOLDER.get(dataset)
    return Path(data_root) / folder if folder and (Path(data_root) / folder).is_dir() else Path(data_root)


def train_recipe(
    name: str,
    data_root: Path,
    models_dir: Path,
    run_dir: Path,
    *,
    config=None,
    dataset: str | None = None,
    limit: int | None = None,
    resume: bool = False,
    cv_only: bool = False,
) -> dict:
    """Train recipe `name` (or `config`) on `data_root` and save `models_dir/<name>.keras` + card.

    The cross-validation's out-of-fold predictions and figures are kept under `run_dir` before the final
    fit starts (`keep_cross_validation`), so a run stopped during it, or a trial run with `cv_only` (no
    final fit, no weights), can still be reported by `evaluate --out-of-fold`. Returns the card, or with
    `cv_only` the run's cross-validation record."""
    from breastapp.ml.registry import save_weights

    config = config or RECIPES[name]
    dataset = dataset or DATASET_OF[name]
    samples = recipe_samples(name, config, data_root, run_dir, dataset, limit)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    is_classifier = isinstance(config, ClassificationConfig)
    if is_classifier:
        guide = load_guide(run_dir.parent / config.guide) if config.guide else None
        cv = classification.cross_validate(samples, config, run_dir, guide.maps if guide else None, resume)
        classification.log_classifier_cross_validation(config, cv)
        decided = classification.cross_validation_fields(config, cv)
    else:
        start = starting_weights(models_dir, config) if config.initial_weights else None
        cv = segmentation.cross_validate(samples, config, run_dir, resume, start)
        log_cross_validation(config.name, cv["summary"])
        decided = segmentation.cross_validation_fields(config, cv)
    record = keep_cross_validation(run_dir, name, samples, cv, decided, is_classifier)
    if cv_only:
        logger.info(
            "%s: cross-validation kept in %s (oof.npz, cross_validation.json); no final fit, no weights",
            name,
            run_dir,
        )
        return record
    if is_classifier:
        model, card_fields = classification.train_classifier(samples, config, run_dir, cv, guide, started)
    else:
        model, card_fields = segmentation.train_segmentation(
            samples, config, run_dir, cv, resume, start, started
        )
    card = build_card(name, config, card_fields, dataset, samples, is_classifier)
    saved = save_weights(without_training_state(model), card, models_dir, name)
    # The run folder names the weights it produced, so a classifier guided by this run's out-of-fold
    # maps can record exactly which segmentation weights it must be paired with.
    (run_dir / WEIGHTS_RECORD).write_text(json.dumps({"name": name, "sha256": saved.sha256}))
    (run_dir / "card.json").write_text(json.dumps(card, indent=2, default=str))
    return card


def recipe_samples(name: str, config, data_root: Path, run_dir: Path, dataset: str, limit: int | None):
    """The canonical samples a recipe trains on (prepared once, cached beside the run folder)."""
    records = select_records(name, load_dataset(dataset, dataset_path(data_root, dataset)))
    if limit:
        records = records[:limit]
    kinds = (MASS,) if config.spec.modality == "MG" else ("lesion",)
    return load_samples(records, config.spec, run_dir.parent / "cache", kinds=kinds, progress=True)


def train_some_folds(
    name: str,
    data_root: Path,
    models_dir: Path,
    run_dir: Path,
    folds,
    *,
    config=None,
    dataset: str | None = None,
    limit: int | None = None,
) -> None:
    """Fit only cross-validation folds `folds` of a recipe under `run_dir` (no final fit, no card);
    `train_recipe(..., resume=True)` gathers them once every fold has finished."""
    config = config or RECIPES[name]
    check_folds(config, folds)  # before minutes of image preparation
    is_classifier = isinstance(config, ClassificationConfig)
    # A guided classifier's missing guide run is named before the preparation too.
    guide = load_guide(run_dir.parent / config.guide) if is_classifier and config.guide else None
    samples = recipe_samples(name, config, data_root, run_dir, dataset or DATASET_OF[name], limit)
    if is_classifier:
        classification.fit_folds(samples, config, run_dir, folds, guide.maps if guide else None)
    else:
        start = starting_weights(models_dir, config) if config.initial_weights else None
        segmentation.fit_folds(samples, config, run_dir, folds, start)


def without_training_state(model):
    """A copy of `model` with its weights but no optimizer: the shipped file holds only what inference
    needs (Adam's two moment tensors would triple it; models/ must stay under 40 MB in all)."""
    import keras

    # from_config, not clone_model: cloning a compiled model also re-compiles it, which needs the loss
    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def compact_saved_weights(models_dir: Path, name: str) -> None:
    """Re-save `models_dir/<name>` without training state, keeping its card (new sha256)."""
    from breastapp.ml.registry import load_weights, save_weights

    loaded = load_weights(models_dir, name)
    card = {key: value for key, value in loaded.card.items() if key not in ("sha256", "name", "created_at")}
    save_weights(without_training_state(loaded.model), card, models_dir, name)


def load_guide(guide_run_dir: Path) -> Guide:
    """A segmentation run's out-of-fold maps (as `save_out_of_fold` kept them) and its weights' sha256."""
    import numpy as np

    path, sha256 = guide_run_dir / "oof.npz", run_weights_sha256(guide_run_dir)
    if not path.is_file() or sha256 is None:
        raise FileNotFoundError(
            f"{path} or weights.json is missing: train the guide network {guide_run_dir.name} first "
            "with the same --runs"
        )
    with np.load(path) as data:
        ids = [str(image_id) for image_id in data["image_ids"]]
        maps = {image_id: data[f"map_{i}"].astype(np.float32) for i, image_id in enumerate(ids)}
    return Guide(maps=maps, segmenter_sha256=sha256)


def run_weights_sha256(run_dir: Path) -> str | None:
    """sha256 of the weights a training run's final fit saved (`weights.json`), None when it saved none."""
    record = Path(run_dir) / WEIGHTS_RECORD
    return json.loads(record.read_text())["sha256"] if record.is_file() else None


def starting_weights(models_dir: Path, config: SegmentationConfig) -> StartingWeights:
    """The shipped network a recipe starts from (`initial_weights`), checked against its card's sha256
    and required to have the recipe's architecture and widths, so its weights fit layer for layer."""
    from breastapp.ml.registry import load_weights

    name = config.initial_weights
    if not (Path(models_dir) / f"{name}.keras").is_file():
        raise FileNotFoundError(
            f"{config.name} starts from the weights of {name}, and {models_dir}/{name}.keras is missing: "
            f"train {name} first into the same --models-dir"
        )
    loaded = load_weights(models_dir, name)
    card = loaded.card
    if card["architecture"] != config.architecture or card.get("build_kwargs") != config.build_kwargs:
        raise ValueError(
            f"{config.name} cannot start from {name}: it is a {card['architecture']} with "
            f"{card.get('build_kwargs')}, the recipe builds a {config.architecture} with "
            f"{config.build_kwargs}"
        )
    return StartingWeights(name=name, sha256=card["sha256"], weights=loaded.model.get_weights())


WEIGHTS_RECORD = "weights.json"  # the weights a run's final fit saved: its out-of-fold files are theirs
CROSS_VALIDATION_RECORD = "cross_validation.json"  # the run's own thresholds and figures, final fit or not


def keep_cross_validation(
    run_dir: Path, name: str, samples, cv: dict, fields: dict, is_classifier: bool
) -> dict:
    """Keep a finished cross-validation under `run_dir`: its out-of-fold predictions (`oof.npz`) and a
    record of what it decided (`cross_validation.json`: thresholds, their rule, the figures); returns the
    record.

    The run's `weights.json` and `card.json` are removed first: they describe the weights of an earlier
    final fit, and until this run's own final fit saves its weights the new predictions belong to none.
    Without that, `evaluate --out-of-fold` would score a rejected trial's predictions as if they were the
    shipped weights' own and a guided classifier would pair its maps with the wrong segmenter."""
    for stale in (WEIGHTS_RECORD, "card.json"):
        (run_dir / stale).unlink(missing_ok=True)
    save_out_of_fold(run_dir, samples, cv, is_classifier)
    record = {
        "name": name,
        "role": "classification" if is_classifier else "segmentation",
        "images": len(samples),
        "patients": len({sample.patient_id for sample in samples}),
        "thresholds": fields["thresholds"],
        "threshold_rule": fields["threshold_rule"],
        "cross_validation": fields["cv"],
        "reused_folds": cv["reused_folds"],
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (run_dir / CROSS_VALIDATION_RECORD).write_text(json.dumps(record, indent=2, default=str))
    return record


def run_cross_validation_record(run_dir: Path) -> dict | None:
    """A run's `cross_validation.json` (what its cross-validation decided), None when it kept none."""
    path = Path(run_dir) / CROSS_VALIDATION_RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def save_out_of_fold(run_dir: Path, samples, cv: dict, is_classifier: bool) -> None:
    """Keep the out-of-fold predictions: the ensemble comparison and re-plots need them, not a rerun."""
    import numpy as np

    ids = np.array([sample.image_id for sample in samples])
    if is_classifier:
        np.savez_compressed(
            run_dir / "oof.npz",
            probabilities=cv["oof_probabilities"],
            labels=cv["labels"],
            groups=cv["groups"],
        )
    else:
        np.savez_compressed(
            run_dir / "oof.npz",
            image_ids=ids,
            **{f"map_{i}": m.astype(np.float16) for i, m in enumerate(cv["oof_maps"])},
        )


def build_card(name, config, fields: dict, dataset: str, samples, is_classifier: bool) -> dict:
    """The model card: registry keys plus data, split, preprocessing, hyper-parameters, CV metrics."""
    cv = fields["cv"]
    patients = {sample.patient_id for sample in samples}
    card = {
        "architecture": config.architecture,
        "build_kwargs": config.build_kwargs,
        "role": "classification" if is_classifier else "segmentation",
        "modality": config.spec.modality,
        "input": {"channels": 1, **fields["input"]},
        "thresholds": fields["thresholds"],
        "threshold_rule": fields["threshold_rule"],
        "classes": list(config.classes) if is_classifier else ["lesion"],
        "training_data": {
            "dataset": dataset,
            "citation": DATASET_CITATION.get(dataset, dataset),
            "images": len(samples),
            "patients": len(patients),
            "lesions": int(sum(len(s.lesion_boxes) for s in samples)),
        },
        "split": {
            "kind": f"{config.folds}-fold cross-validation by patient, stratified by worst label",
            "final_fit": final_fit_rule(config.fit),
        },
        "hyperparameters": fields["hyperparameters"],
        "metrics": {"cross_validation": cv},
        "training_time_s": fields["training_time_s"],
        "training_device": f"{device_name()} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs)",
        "trained": True,
    }
    if "inference" in fields:  # how the engine must run a segmentation network (its mirrored pass)
        card["inference"] = fields["inference"]
    if "resumed" in fields:  # fits reused from an earlier run: training_time_s leaves them out
        card["resumed"] = fields["resumed"]
    return card
