"""Segmentation training with patient-level k-fold cross-validation, then a final fit on all data.

Mammography: lesion-centred tiles (+ shifted copies + background tiles) for training; every fold's
validation images are then segmented WHOLE through the engine's own sliding window, so the
cross-validated FROC and Dice measure what ships. Ultrasound: the whole canonical image is the input.
The operating threshold is chosen on the pooled out-of-fold probability maps, by the recipe's rule
(`choose_threshold`); the final fit runs the folds' budget (`loop.final_fit_epochs`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from breastapp.ml.datasets.prepare import CanonicalSample, CanonicalSpec
from breastapp.ml.datasets.splits import kfold_indices
from breastapp.ml.evaluate.scoring import operating_points, score_segmentation
from breastapp.ml.evaluate.segmentation import OverlapSums
from breastapp.ml.lesions import DEFAULT_REGION_THRESHOLDS, canonical_min_region_px

from .augment import AugmentSettings
from .folds import check_folds, summarise
from .loop import (
    FitSettings,
    final_fit_epochs,
    finished_fit,
    finished_fold,
    fit,
    fit_is_finished,
    kept_epoch,
    set_seeds,
)
from .losses import dice_metric, make_loss
from .tiles import TileSettings, build_tile_set

logger = logging.getLogger(__name__)
THRESHOLD_GRID = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2))


@dataclass(frozen=True)
class SegmentationConfig:
    name: str
    architecture: str
    build_kwargs: dict
    spec: CanonicalSpec
    tiles: TileSettings | None  # None: the whole canonical image is the network input (ultrasound)
    fit: FitSettings = field(default_factory=FitSettings)
    cv_epochs: int = 10  # epoch budget of each cross-validation fold
    folds: int = 5
    loss: str = "bce_dice"
    positive_weight: float = 3.0
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    overlap: int = 32  # sliding-window overlap used for whole-image validation
    # Average each map with the mirrored image's (mirrored back): cross-validation scores it, and the card
    # tells the engine to do the same (`inference.flip_tta`), so what ships is what was measured.
    flip_tta: bool = False
    # Transfer learning: the name of a shipped network of the same architecture and widths whose weights
    # start every fit (each fold and the final fit) instead of a random initialisation. The runner loads it
    # from the models folder, checking its sha256, and the card names it (`StartingWeights`).
    initial_weights: str | None = None
    # Threshold rule. None: the grid threshold with the highest whole-set Dice (seed 003's outlines). A
    # number: the lowest grid threshold whose reported regions carry at most that many false positives per
    # image, pooled over the out-of-fold maps - a screening aid's operating point (most lesions found
    # within a reading budget), where maximum Dice favours clean outlines of the masses it already finds.
    fp_budget_per_image: float | None = None
    # Seed of the patient folds when it differs from the training seed (None: fit.seed). Holding the folds
    # while the training seeds change is how a trial is rerun: same held-out patients, other tiles,
    # augmentations and order. Fold k trains with seed fit.seed + k either way.
    split_seed: int | None = None


@dataclass(frozen=True)
class StartingWeights:
    """The weights every fit of a recipe starts from (`SegmentationConfig.initial_weights`)."""

    name: str
    sha256: str
    weights: list  # keras Model.get_weights() of that network

    def describe(self) -> dict:
        return {"name": self.name, "sha256": self.sha256}


def training_arrays(samples: list[CanonicalSample], config: SegmentationConfig, seed: int):
    """(images, masks) float32 (N, H, W, 1): tiles for mammography, whole images for ultrasound."""
    if config.tiles is not None:
        return build_tile_set(samples, config.tiles, seed)
    images = np.stack([sample.pixels for sample in samples])[..., None].astype(np.float32)
    masks = np.stack([sample.lesion_mask for sample in samples])[..., None].astype(np.float32)
    return images, masks


def predict_probability(model, sample: CanonicalSample, config: SegmentationConfig) -> np.ndarray:
    """Probability map of one canonical image over its whole breast (kept as is in runs/<name>/oof.npz, so
    an ablation can still score the pectoral muscle); `searched` then cuts it as the engine does."""
    if config.tiles is None:
        from breastapp.ml.pipeline import whole_image_map

        return whole_image_map(model, sample.pixels, config.flip_tta)
    from breastapp.ml.sliding_window import TileSettings as WindowSettings
    from breastapp.ml.sliding_window import mirrored_mean_predict, sliding_window_predict

    window = WindowSettings(tile=config.tiles.tile, overlap=config.overlap, batch_size=8)
    predict = mirrored_mean_predict if config.flip_tta else sliding_window_predict  # as ensemble_map
    probability, _ = predict(model, sample.pixels, window, mask=sample.breast_mask)
    return np.where(sample.breast_mask, probability, 0.0).astype(np.float32)


def searched(probability: np.ndarray, sample: CanonicalSample) -> np.ndarray:
    """The map the engine reports for this image: zero outside its lesion search region (the breast
    without its pectoral muscle; ml/pipeline.ensemble_map does the same). Every figure is scored on it."""
    return np.where(sample.search_mask, probability, 0.0).astype(np.float32)


def new_model(config: SegmentationConfig, start: StartingWeights | None = None):
    """A freshly built network: randomly initialised, or holding `start`'s weights."""
    from breastapp.ml.architectures import build

    model = build(config.architecture, **config.build_kwargs)
    if start is not None:
        model.set_weights(start.weights)
    return model


def run_fold(
    samples,
    train_index,
    validation_index,
    config: SegmentationConfig,
    fold_dir: Path,
    seed: int,
    resume=False,
    start: StartingWeights | None = None,
):
    """Train on one fold (or, with `resume`, reuse its finished checkpoint); return
    (validation probability maps, best epoch, whether the fold was reused)."""
    validation = [samples[i] for i in validation_index]
    finished = resume and finished_fold(fold_dir, config.fit)
    if finished:
        model, best_epoch = finished
        logger.info("%s: reusing the finished fold in %s", config.name, fold_dir)
    else:
        train = [samples[i] for i in train_index]
        model, best_epoch = fit_fold(train, validation, config, fold_dir, seed, start)
    maps = [predict_probability(model, sample, config) for sample in validation]
    return maps, best_epoch, bool(finished)


def fit_fold(
    train, validation, config: SegmentationConfig, fold_dir: Path, seed: int, start: StartingWeights | None
):
    set_seeds(seed)
    train_arrays = training_arrays(train, config, seed)
    validation_arrays = training_arrays(validation, config, seed + 1)
    model = new_model(config, start)
    settings = replace(config.fit, epochs=config.cv_epochs, seed=seed)
    loss = make_loss(config.loss, config.positive_weight)
    history = fit(
        model,
        train_arrays,
        validation_arrays,
        loss,
        [dice_metric()],
        settings,
        config.augment,
        fold_dir,
        seg=True,
    )
    return model, kept_epoch(history["val_loss"], settings)


def choose_threshold(
    maps, truths, fp_budget_per_image: float | None = None, min_area_px: float = 1.0
) -> float:
    """The operating threshold of out-of-fold maps, by the rule `SegmentationConfig.fp_budget_per_image`
    names: maximum whole-set Dice when None, else the lowest grid threshold within that budget."""
    if fp_budget_per_image is None:
        return max_dice_threshold(maps, truths)
    return lowest_threshold_within_budget(maps, truths, fp_budget_per_image, min_area_px)


def max_dice_threshold(maps, truths) -> float:
    """The grid threshold maximising whole-set Dice (equation 4)."""
    scores = []
    for threshold in THRESHOLD_GRID:
        sums = OverlapSums()
        for probability, truth in zip(maps, truths, strict=True):
            sums.add(probability > threshold, truth)
        scores.append(sums.dice)
    return float(THRESHOLD_GRID[int(np.argmax(scores))])


def lowest_threshold_within_budget(maps, truths, fp_budget_per_image: float, min_area_px: float) -> float:
    """The lowest grid threshold whose regions (those of at least `min_area_px`, as the engine reports
    them) hold at most `fp_budget_per_image` false positives per image. Every grid threshold is scored:
    false positives need not fall monotonically, since a lower threshold can merge two regions into one.
    No threshold within the budget: the one with the fewest false positives (the highest, on a tie)."""
    points = operating_points(maps, truths, THRESHOLD_GRID, min_area_px)
    within = [p["threshold"] for p in points if p["false_positives_per_image"] <= fp_budget_per_image]
    if within:
        return float(min(within))
    fewest = min(p["false_positives_per_image"] for p in points)
    return float(max(p["threshold"] for p in points if p["false_positives_per_image"] == fewest))


def threshold_rule_text(config: SegmentationConfig) -> str:
    """The card's sentence for how its threshold was chosen."""
    if config.fp_budget_per_image is None:
        return "grid 0.05..0.95 maximising whole-set Dice (seed 003 eq. 4) on pooled out-of-fold maps"
    return (
        f"lowest of grid 0.05..0.95 with at most {config.fp_budget_per_image:g} false-positive regions per "
        "image (regions the engine reports, scored as the FROC scores them) on pooled out-of-fold maps"
    )


def fold_metrics(
    maps, samples, threshold: float, candidate_threshold: float, min_area_px: float = 1.0
) -> dict:
    """Table I lines, FROC points and mean per-image lesion Dice of one fold's validation images."""
    truths = [sample.lesion_mask for sample in samples]
    scores = score_segmentation(maps, truths, threshold, candidate_threshold, min_area_px)
    table = scores["table"]
    return {
        "dice_whole_set": table["whole_set"]["dice"],
        "iou_whole_set": table["whole_set"]["iou"],
        "dice_true_positive_lesions": table["true_positive_lesions"]["dice"],
        "iou_true_positive_lesions": table["true_positive_lesions"]["iou"],
        "mean_lesion_image_dice": scores["mean_lesion_image_dice"],
        **{f"sensitivity_at_{p:g}_fppi": v for p, v in scores["sensitivity_at"].items()},
    }


def cross_validate(
    samples,
    config: SegmentationConfig,
    out_dir: Path,
    resume: bool = False,
    start: StartingWeights | None = None,
) -> dict:
    """k-fold patient-level CV: per-fold metrics, the chosen threshold and the median best epoch."""
    splits = cross_validation_splits(samples, config)
    oof_maps: list = [None] * len(samples)
    best_epochs, fold_of, reused_folds = [], {}, 0
    for fold, (train_index, validation_index) in enumerate(splits):
        logger.info(
            "%s: fold %d/%d (%d train / %d validation images)",
            config.name,
            fold + 1,
            config.folds,
            len(train_index),
            len(validation_index),
        )
        maps, best_epoch, reused = run_fold(
            samples,
            train_index,
            validation_index,
            config,
            out_dir / f"fold{fold}",
            config.fit.seed + fold,
            resume,
            start,
        )
        best_epochs.append(best_epoch)
        reused_folds += reused
        for i, probability in zip(validation_index, maps, strict=True):
            oof_maps[i], fold_of[i] = probability, fold
    fold_index = np.array([fold_of[i] for i in range(len(samples))])
    # The smallest region the engine will show with the card defaults these weights will carry.
    min_area_px = canonical_min_region_px(
        DEFAULT_REGION_THRESHOLDS, config.spec.modality, config.spec.spacing_mm
    )
    threshold, per_fold = score_out_of_fold(
        oof_maps, samples, fold_index, min_area_px, config.fp_budget_per_image
    )
    candidate_threshold = threshold  # FROC candidates: the regions the engine would report
    np.save(out_dir / "oof_index.npy", fold_index)
    return {
        "threshold": threshold,
        "best_epochs": best_epochs,
        "per_fold": per_fold,
        "summary": summarise(per_fold),
        "oof_maps": oof_maps,
        "candidate_threshold": candidate_threshold,
        "reused_folds": reused_folds,
    }


def cross_validation_splits(samples, config: SegmentationConfig):
    """The recipe's patient folds: (train indices, validation indices) per fold, seeded by `split_seed`
    (the training seed when unset), so a run with other training seeds can keep the same folds."""
    split_seed = config.fit.seed if config.split_seed is None else config.split_seed
    return kfold_indices(samples, config.folds, seed=split_seed)


def fit_folds(
    samples, config: SegmentationConfig, out_dir: Path, folds, start: StartingWeights | None = None
):
    """Fit only the cross-validation folds `folds` (each as `cross_validate` would, with the same split and
    seed; a finished one is skipped), leaving them under `out_dir/fold<k>` for a later resumed run to
    gather. Separate processes can each take some folds: on a machine with few cores two fits side by side
    do more work per hour than one."""
    check_folds(config, folds)
    splits = cross_validation_splits(samples, config)
    for fold in folds:
        train_index, validation_index = splits[fold]
        fold_dir = out_dir / f"fold{fold}"
        if fit_is_finished(fold_dir):  # no need to load its checkpoint: `--resume` will
            logger.info("%s: fold %d already finished in %s", config.name, fold, fold_dir)
            continue
        logger.info("%s: fitting fold %d only", config.name, fold)
        train = [samples[i] for i in train_index]
        validation = [samples[i] for i in validation_index]
        fit_fold(train, validation, config, fold_dir, config.fit.seed + fold, start)


def score_out_of_fold(
    maps, samples, fold_index: np.ndarray, min_area_px: float, fp_budget_per_image: float | None = None
) -> tuple[float, list[dict]]:
    """(threshold, per-fold metrics) of whole-breast out-of-fold maps: each map cut as the engine cuts it
    (`searched`), the threshold chosen on the pooled cut maps by the recipe's rule (`choose_threshold`),
    every fold scored at it with FROC candidates at the same threshold. `fold_index[i]` is the fold that
    held image i out."""
    scored = [searched(probability, sample) for probability, sample in zip(maps, samples, strict=True)]
    truths = [sample.lesion_mask for sample in samples]
    threshold = choose_threshold(scored, truths, fp_budget_per_image, min_area_px)
    per_fold = []
    for fold in range(int(fold_index.max()) + 1):
        members = np.flatnonzero(fold_index == fold)
        fold_maps, fold_samples = [scored[i] for i in members], [samples[i] for i in members]
        per_fold.append(fold_metrics(fold_maps, fold_samples, threshold, threshold, min_area_px))
    return threshold, per_fold


def final_fit(
    samples, config: SegmentationConfig, epochs: int, out_dir: Path, start: StartingWeights | None = None
):
    """Fit on every sample for a fixed number of epochs (no validation data left to stop on)."""
    set_seeds(config.fit.seed)
    model = new_model(config, start)
    arrays = training_arrays(samples, config, config.fit.seed)
    settings = replace(config.fit, epochs=epochs)
    fit(
        model,
        arrays,
        None,
        make_loss(config.loss, config.positive_weight),
        [dice_metric()],
        settings,
        config.augment,
        out_dir / "final",
        seg=True,
        monitor="loss",
    )
    return model


def cross_validation_fields(config: SegmentationConfig, cv: dict) -> dict:
    """What the cross-validation decided, as the card (and a run's cross_validation.json) records it: the
    operating thresholds (the engine's region defaults beside the chosen one), their rule, the figures."""
    return {
        "thresholds": {
            "segmentation": cv["threshold"],
            **DEFAULT_REGION_THRESHOLDS,
            "froc_candidate": cv["candidate_threshold"],
        },
        "threshold_rule": threshold_rule_text(config),
        "cv": {k: cv[k] for k in ("threshold", "best_epochs", "per_fold", "summary", "candidate_threshold")},
    }


def train_segmentation(
    samples,
    config: SegmentationConfig,
    out_dir: Path,
    cv: dict,
    resume: bool = False,
    start: StartingWeights | None = None,
    started: float | None = None,
):
    """The final fit of a cross-validated network (`cv`, from `cross_validate`); returns (model, card
    fields). `started`: when the run began (the card's training time)."""
    started = time.time() if started is None else started
    epochs = final_fit_epochs(config.fit, config.cv_epochs, cv["best_epochs"])
    # A resumed run reuses a finished cosine final fit of the same length: its checkpoint is its last
    # epoch, which is what final_fit returns (a constant-rate checkpoint is the lowest training loss).
    finished = resume and config.fit.schedule == "cosine" and finished_fit(out_dir / "final")
    reused_final = bool(finished) and len(finished[1]) == epochs
    if reused_final:
        logger.info("%s: reusing the finished final fit in %s", config.name, out_dir / "final")
        model = finished[0]
    else:
        model = final_fit(samples, config, epochs, out_dir, start)
    card = {
        "input": {**asdict(config.spec), "tile": config.tiles.tile if config.tiles else config.spec.size},
        "hyperparameters": {
            "loss": config.loss,
            "positive_weight": config.positive_weight,
            "optimizer": "adam",
            **asdict(config.fit),
            "cv_epochs": config.cv_epochs,
            "final_epochs": epochs,
            "build_kwargs": config.build_kwargs,
            "augment": asdict(config.augment),
            "tiles": asdict(config.tiles) if config.tiles else None,
            "initial_weights": start.describe() if start else None,
            "fp_budget_per_image": config.fp_budget_per_image,
            "split_seed": config.split_seed,
        },
        "inference": {"flip_tta": config.flip_tta},
        **cross_validation_fields(config, cv),
        "training_time_s": round(time.time() - started, 1),
    }
    if cv["reused_folds"] or reused_final:  # training_time_s then covers only the fits this run made
        card["resumed"] = {"reused_folds": cv["reused_folds"], "reused_final_fit": reused_final}
    return model, card
