"""Classifier training (lesion crops for mammography, whole images for ultrasound) with patient-level
k-fold cross-validation, out-of-fold metrics, and a final fit on all data.

Operating threshold rule (stored in the card): the HIGHEST malignancy threshold whose pooled
out-of-fold sensitivity still reaches `target_sensitivity` (0.90): a screening aid should miss few
cancers, and among thresholds that miss few it should raise the fewest false alarms.

A whole-image classifier may be GUIDED by a segmentation network (`ClassificationConfig.guide`): its
lesion probability map is a second input channel, so the classifier sees where the lesion is and what
shape it has (and that there is none on a normal scan). Training uses the segmentation recipe's
OUT-OF-FOLD maps (`runs/<guide>/oof.npz`, same patient folds): every map comes from a network that never
saw that image, as a map of a new upload will; in cross-validation a held-out image's map comes from the
segmentation fold that trained on exactly the classifier's training images.

A guided classifier may also get a LESION VIEW (`ClassificationConfig.lesion_view`): the square crop
around the guide's most probable lesion, cut from the classifier's own canonical image (which may be
finer than the segmenter's) together with the map, as two more channels for a two-view network. At 64x64
the whole image leaves a lesion a few pixels across; the crop shows its margin and echo pattern.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from breastapp.ml.datasets.prepare import CanonicalSample, CanonicalSpec
from breastapp.ml.datasets.splits import holdout_indices, kfold_indices
from breastapp.ml.evaluate.classification import (
    auc,
    bootstrap_auc_ci,
    confusion_matrix,
    per_class_report,
    sensitivity_specificity,
    threshold_for_sensitivity,
)
from breastapp.ml.lesions import MIN_CROP_PX, guided_lesion_view, lesion_crop  # the engine's own crops

from .augment import AugmentSettings
from .folds import check_folds, log_cross_validation, summarise
from .loop import FitSettings, final_fit_epochs, finished_fold, fit, kept_epoch, set_seeds

logger = logging.getLogger(__name__)

LOSS = "sparse_categorical_crossentropy"  # class indices as targets; recorded in the card


@dataclass(frozen=True)
class LesionView:
    """How the lesion view is cut: the component of the guide map >= `threshold` with the most
    probability, framed like a lesion crop with `margin` (ml/lesions.py `guided_lesion_view`)."""

    threshold: float = 0.5
    margin: float = 0.5


@dataclass(frozen=True)
class ClassificationConfig:
    name: str
    architecture: str
    build_kwargs: dict
    spec: CanonicalSpec
    classes: tuple[str, ...]
    input_size: int
    crop_margin: float | None  # None: whole canonical image; else lesion crops (see lesion_crop)
    fit: FitSettings = field(default_factory=FitSettings)
    cv_epochs: int = 15
    folds: int = 5
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    target_sensitivity: float = 0.9
    guide: str | None = None  # segmentation recipe whose probability map is a 2nd channel (whole images)
    # Share of each fold's TRAINING patients set aside to early-stop on; the held-out fold only scores.
    # May be 0 under the cosine schedule, which stops on nothing: every training patient is then fitted on.
    stopping_fraction: float = 0.125
    lesion_view: LesionView | None = None  # guided only: the crop around the guided lesion, channels 3-4
    # Score every input also mirrored left-right and average the two passes' probabilities; the card then
    # tells the engine to do the same (`inference.flip_tta`), so what ships is what was measured.
    flip_tta: bool = False

    def __post_init__(self):
        if self.fit.schedule == "constant" and not 0 < self.stopping_fraction < 1:
            raise ValueError(
                f"{self.name}: a constant-rate fit early-stops, so it needs a stopping_fraction "
                "between 0 and 1"
            )

    @property
    def input_channels(self) -> int:
        return (2 if self.guide else 1) * (2 if self.lesion_view else 1)


GuideMaps = dict[str, np.ndarray]  # image id -> lesion probability map of the guide network


@dataclass(frozen=True)
class Guide:
    """What a guided classifier trains on: its guide run's out-of-fold maps, and the sha256 of the
    segmentation weights that run shipped (the only weights whose maps the classifier may be fed)."""

    maps: GuideMaps
    segmenter_sha256: str


def examples(
    samples: list[CanonicalSample], config: ClassificationConfig, guide_maps: GuideMaps | None = None
):
    """(images (N, s, s, channels), class indices (N,), patient ids (N,)) for the given samples."""
    if config.guide and config.crop_margin is not None:
        raise ValueError(f"{config.name}: a guide map needs a whole-image classifier (crop_margin=None)")
    if config.lesion_view and not config.guide:
        raise ValueError(f"{config.name}: a lesion view is cut around the guide's lesion; set a guide")
    images, labels, groups = [], [], []
    for sample in samples:
        if config.crop_margin is None:
            if sample.label in config.classes:
                images.append(whole_image_input(sample, config, guide_maps))
                labels.append(config.classes.index(sample.label))
                groups.append(sample.patient_id)
            continue
        for box, pathology in zip(sample.lesion_boxes, sample.lesion_pathologies, strict=True):
            if pathology in config.classes:
                images.append(lesion_crop(sample.pixels, box, config.crop_margin, config.input_size))
                labels.append(config.classes.index(pathology))
                groups.append(sample.patient_id)
    stacked = np.stack(images).astype(np.float32)
    return (
        stacked if stacked.ndim == 4 else stacked[..., None],
        np.array(labels, dtype=np.int64),
        np.array(groups),
    )


def whole_image_input(sample: CanonicalSample, config: ClassificationConfig, guide_maps: GuideMaps | None):
    """The canonical image at the classifier's size, with the guide's map as channel 2 when guided, and
    the lesion view as channels 3-4 when the config has one."""
    size = (config.input_size, config.input_size)
    image = cv2.resize(sample.pixels, size, interpolation=cv2.INTER_AREA)
    if not config.guide:
        return image
    if guide_maps is None or sample.image_id not in guide_maps:
        raise ValueError(
            f"{config.name} is guided by {config.guide} but has no out-of-fold map for image "
            f"{sample.image_id}: train {config.guide} first, with the same data and --runs folder"
        )
    prob = guide_maps[sample.image_id].astype(np.float32)
    whole = np.stack([image, cv2.resize(prob, size, interpolation=cv2.INTER_AREA)], axis=-1)
    if not config.lesion_view:
        return whole
    view = config.lesion_view
    lesion = guided_lesion_view(sample.pixels, prob, view.threshold, view.margin, config.input_size)
    return np.concatenate([whole, lesion], axis=-1)


def new_model(config: ClassificationConfig):
    from breastapp.ml.architectures import build

    return build(config.architecture, **config.build_kwargs)


def train_and_predict(train, validation, config: ClassificationConfig, epochs: int, out_dir: Path, seed: int):
    """Fit on `train` arrays (early-stopped on `validation` when given); return (model, best epoch)."""
    set_seeds(seed)
    model = new_model(config)
    settings = replace(config.fit, epochs=epochs, seed=seed)
    history = fit(
        model,
        train,
        validation,
        LOSS,
        ["accuracy"],
        settings,
        config.augment,
        out_dir,
        seg=False,
        monitor="val_loss" if validation is not None else "loss",
    )
    losses = history.get("val_loss") or history["loss"]
    return model, kept_epoch(losses, settings)


def malignant_index(config: ClassificationConfig) -> int:
    return config.classes.index("malignant")


def oof_metrics(probabilities, labels, groups, config: ClassificationConfig) -> dict:
    """Pooled out-of-fold metrics: accuracy, per-class table, malignant AUC with patient bootstrap CI."""
    predicted = probabilities.argmax(axis=1)
    counts = confusion_matrix(
        [config.classes[i] for i in labels], [config.classes[i] for i in predicted], config.classes
    )
    is_malignant = (labels == malignant_index(config)).astype(int)
    score = probabilities[:, malignant_index(config)]
    threshold = threshold_for_sensitivity(is_malignant, score, config.target_sensitivity)
    sensitivity, specificity = sensitivity_specificity(is_malignant, score, threshold)
    low, high, used = bootstrap_auc_ci(is_malignant, score, groups, seed=config.fit.seed)
    return {
        "n": int(len(labels)),
        "accuracy": float((predicted == labels).mean()),
        "per_class": per_class_report(counts, config.classes),
        "confusion_matrix": counts.tolist(),
        "malignant_auc": auc(is_malignant, score),
        "malignant_auc_ci95": [low, high],
        "bootstrap_resamples_used": used,
        "malignancy_threshold": threshold,
        "sensitivity_at_threshold": sensitivity,
        "specificity_at_threshold": specificity,
    }


def cross_validate(
    samples,
    config: ClassificationConfig,
    out_dir: Path,
    guide_maps: GuideMaps | None = None,
    resume: bool = False,
):
    """k-fold by patient; returns pooled OOF metrics, per-fold accuracy/AUC, best epochs and how many
    folds were reused (`resume`: a fold whose fit finished under `out_dir/fold<k>` is not fitted again).

    Each fold early-stops on a share of its own training patients (`early_stopping_patients`), never on
    the held-out fold: a checkpoint chosen on the images it is scored on would flatter the score. Under
    the cosine schedule nothing is set aside: each fold fits all its training patients for the full budget.
    """
    from breastapp.ml.pipeline import class_probability_passes

    images, labels, groups = examples(samples, config, guide_maps)
    probabilities = np.zeros((len(labels), len(config.classes)), dtype=np.float64)
    single_pass = np.zeros_like(probabilities)  # the inputs as given only: what flip_tta changed
    folds_held, best_epochs, reused_folds = [], [], 0
    splits = kfold_indices(samples, config.folds, seed=config.fit.seed)
    for fold in range(config.folds):
        fitting, stopping, held = fold_examples(samples, groups, splits, config, fold)
        logger.info(
            "%s: fold %d/%d (%d train / %d early-stopping / %d held-out examples)",
            config.name,
            fold + 1,
            config.folds,
            int(fitting.sum()),
            int(stopping.sum()),
            int(held.sum()),
        )
        fold_dir = out_dir / f"fold{fold}"
        finished = resume and finished_fold(fold_dir, config.fit)
        if finished:
            logger.info("%s: reusing the finished fold in %s", config.name, fold_dir)
            model, best = finished
            reused_folds += 1
        else:
            model, best = fit_fold(images, labels, (fitting, stopping), config, fold_dir, fold)
        passes = class_probability_passes(model, images[held], config.flip_tta)
        single_pass[held] = passes[0]
        probabilities[held] = np.mean(passes, axis=0)
        best_epochs.append(best)
        folds_held.append(held)
    cv = {
        "pooled_out_of_fold": oof_metrics(probabilities, labels, groups, config),
        "summary": fold_summary(probabilities, labels, folds_held, config),
        "best_epochs": best_epochs,
        "oof_probabilities": probabilities,
        "labels": labels,
        "groups": groups,
        "reused_folds": reused_folds,
    }
    if config.flip_tta:
        cv["single_pass"] = single_pass_figures(single_pass, labels, groups, folds_held, config)
    return cv


def fold_summary(probabilities, labels, folds_held, config: ClassificationConfig) -> dict:
    """Mean ± sd over the folds of accuracy and malignant-vs-rest AUC (NaN for a fold without both)."""
    return summarise([fold_figures(probabilities[held], labels[held], config) for held in folds_held])


def fold_figures(fold_probabilities, fold_labels, config: ClassificationConfig) -> dict:
    """One held-out fold's accuracy and malignant-vs-rest AUC (NaN for a fold without both)."""
    is_malignant = (fold_labels == malignant_index(config)).astype(int)
    fold_auc = (
        auc(is_malignant, fold_probabilities[:, malignant_index(config)])
        if 0 < is_malignant.sum() < len(fold_labels)
        else float("nan")
    )
    accuracy = float((fold_probabilities.argmax(1) == fold_labels).mean())
    return {"accuracy": accuracy, "malignant_auc": fold_auc}


def single_pass_figures(probabilities, labels, groups, folds_held, config: ClassificationConfig) -> dict:
    """The same folds scored without the mirrored pass, for the card: what flip_tta bought."""
    pooled = oof_metrics(probabilities, labels, groups, config)
    headline = ("accuracy", "malignant_auc", "malignant_auc_ci95")
    return {
        "summary": fold_summary(probabilities, labels, folds_held, config),
        "pooled_out_of_fold": {key: pooled[key] for key in headline},
    }


def fold_examples(samples, groups: np.ndarray, splits, config: ClassificationConfig, fold: int):
    """Boolean masks over the examples of fold `fold`: (fitted on, early-stopped on, held out)."""
    train_index, validation_index = splits[fold]
    held = np.isin(groups, [samples[i].patient_id for i in validation_index])
    stopping = np.zeros_like(held)
    if config.stopping_fraction > 0:
        stopping_patients = early_stopping_patients([samples[i] for i in train_index], config, fold)
        stopping = np.isin(groups, list(stopping_patients))
    return ~held & ~stopping, stopping, held


def fit_fold(images, labels, masks, config: ClassificationConfig, fold_dir: Path, fold: int):
    """Fit fold `fold` on its `(fitting, stopping)` masks, seeded as every run seeds it.

    Returns (model, best epoch)."""
    fitting, stopping = masks
    return train_and_predict(
        (images[fitting], labels[fitting]),
        (images[stopping], labels[stopping]) if stopping.any() else None,
        config,
        config.cv_epochs,
        fold_dir,
        config.fit.seed + fold,
    )


def fit_folds(
    samples, config: ClassificationConfig, out_dir: Path, folds, guide_maps: GuideMaps | None = None
):
    """Fit only the cross-validation folds `folds` (each as `cross_validate` would; a finished one is
    skipped) under `out_dir/fold<k>`, for a later resumed run to gather: an ImageNet-started classifier
    takes about ten minutes a fold on two cores, so a run can be split across processes or sessions.
    Each fold's held-out figures are logged as `cross_validate` scores them, finished folds' too."""
    from breastapp.ml.pipeline import class_probability_passes

    check_folds(config, folds)
    images, labels, groups = examples(samples, config, guide_maps)
    splits = kfold_indices(samples, config.folds, seed=config.fit.seed)
    for fold in folds:
        fold_dir = out_dir / f"fold{fold}"
        fitting, stopping, held = fold_examples(samples, groups, splits, config, fold)
        finished = finished_fold(fold_dir, config.fit)
        if finished:
            logger.info("%s: fold %d already finished in %s", config.name, fold, fold_dir)
            model, best = finished
        else:
            logger.info("%s: fitting fold %d only", config.name, fold)
            model, best = fit_fold(images, labels, (fitting, stopping), config, fold_dir, fold)
        probabilities = np.mean(class_probability_passes(model, images[held], config.flip_tta), axis=0)
        figures = fold_figures(probabilities, labels[held], config)
        logger.info(
            "%s: fold %d (%d held-out examples), kept epoch %d: accuracy %.3f, malignant AUC %.3f",
            config.name,
            fold,
            int(held.sum()),
            best,
            figures["accuracy"],
            figures["malignant_auc"],
        )


def early_stopping_patients(
    train_samples: list[CanonicalSample], config: ClassificationConfig, fold: int
) -> set[str]:
    """The patients of one fold's training samples that the fold early-stops on: `stopping_fraction` of
    them, a patient-level split stratified like the folds (a different draw for each fold)."""
    _, stopping_index = holdout_indices(train_samples, config.stopping_fraction, seed=config.fit.seed + fold)
    return {train_samples[i].patient_id for i in stopping_index}


def guide_card(config: ClassificationConfig, guide: Guide | None) -> dict:
    """The card's note of the guide network: the engine feeds that network's map as channel 2, and the
    production check (config.guide_mismatch) refuses any other segmentation weights."""
    if not config.guide:
        return {}
    return {
        "guide": {
            "segmenter": config.guide,
            "segmenter_sha256": guide.segmenter_sha256,
            "trained_on": "its out-of-fold probability maps",
        }
    }


def canonical_size_card(config: ClassificationConfig) -> dict:
    """A whole-image classifier's canonical image size, when its recipe names one: the engine must
    canonicalise the upload at that size (not the segmenter's) before resizing it to the input size."""
    if config.crop_margin is not None or config.spec.size is None:
        return {}
    return {"canonical_size": config.spec.size}


def lesion_view_card(config: ClassificationConfig) -> dict:
    """The card's note of the lesion view: what the engine must cut, and from which canonical image."""
    if not config.lesion_view:
        return {}
    return {
        "lesion_view": {
            **asdict(config.lesion_view),
            "rule": "channels 3-4: image and guide map cropped around the component of the guide map >= "
            "threshold with the largest probability sum (square, side = max(h, w) * (1 + 2 * margin), at "
            f"least {MIN_CROP_PX} px, zero-padded), cut from the canonical image of canonical_size; the "
            "whole image when no component",
        },
    }


def log_pooled(name: str, pooled: dict) -> None:
    """Log the pooled out-of-fold accuracy and malignant AUC before the final fit (log_cross_validation)."""
    low, high = pooled["malignant_auc_ci95"]
    logger.info(
        "%s: pooled out-of-fold accuracy %.3f, malignant AUC %.3f (95%% CI %.3f-%.3f)",
        name,
        pooled["accuracy"],
        pooled["malignant_auc"],
        low,
        high,
    )


def early_stopping_card(config: ClassificationConfig) -> str:
    """How the card's fits decided when to stop, in words."""
    if config.fit.schedule == "cosine":
        fitted_on = (
            "all of its training patients"
            if config.stopping_fraction == 0
            else f"its training patients, {config.stopping_fraction} of them only watched"
        )
        return (
            f"none: every fit runs the full budget under the cosine schedule on {fitted_on} and keeps its "
            "last weights; the final fit is the procedure the folds scored"
        )
    return (
        f"each fold stops on {config.stopping_fraction} of its own training patients (never the held-out "
        "fold); the final fit runs the median of the folds' best epochs"
    )


def log_classifier_cross_validation(config: ClassificationConfig, cv: dict) -> None:
    """Log the cross-validated figures (both passes under flip_tta) as soon as the folds are scored."""
    log_cross_validation(config.name, cv["summary"])
    log_pooled(config.name, cv["pooled_out_of_fold"])
    if "single_pass" in cv:
        log_cross_validation(f"{config.name} without the mirrored pass", cv["single_pass"]["summary"])
        log_pooled(f"{config.name} without the mirrored pass", cv["single_pass"]["pooled_out_of_fold"])


def cross_validation_fields(config: ClassificationConfig, cv: dict) -> dict:
    """What the cross-validation decided, as the card (and a run's cross_validation.json) records it: the
    operating threshold, the rule that chose it, and the figures."""
    return {
        "thresholds": {"malignancy": cv["pooled_out_of_fold"]["malignancy_threshold"]},
        "threshold_rule": "highest threshold with pooled out-of-fold malignant sensitivity >= "
        f"{config.target_sensitivity}",
        "cv": {k: cv[k] for k in ("pooled_out_of_fold", "summary", "best_epochs", "single_pass") if k in cv},
    }


def train_classifier(
    samples, config: ClassificationConfig, out_dir: Path, cv: dict, guide: Guide | None = None, started=None
):
    """The final fit of a cross-validated classifier (`cv`, from `cross_validate`): all examples for the
    median best epoch (the whole budget under the cosine schedule: `kept_epoch`); returns (model, card).
    The final fit always runs: its constant-rate checkpoint is the lowest training loss, not the last
    epoch's weights the fit returns. `started`: when the run began (the card's training time)."""
    started = time.time() if started is None else started
    guide_maps = guide.maps if guide else None
    epochs = final_fit_epochs(config.fit, config.cv_epochs, cv["best_epochs"])
    images, labels, _ = examples(samples, config, guide_maps)
    model, _ = train_and_predict((images, labels), None, config, epochs, out_dir / "final", config.fit.seed)
    card = {
        "input": {
            **asdict(config.spec),
            "size": config.input_size,
            "crop_margin": config.crop_margin,
            "crop_rule": None
            if config.crop_margin is None
            else "square centred on the lesion box, side = max(h, w) * (1 + 2 * crop_margin), at least "
            f"{MIN_CROP_PX} canonical px, zero-padded, resized to size x size",
            "channels": config.input_channels,
            **canonical_size_card(config),
            **guide_card(config, guide),
            **lesion_view_card(config),
        },
        **cross_validation_fields(config, cv),
        "hyperparameters": {
            "optimizer": "adam",
            "loss": LOSS,
            **asdict(config.fit),
            "cv_epochs": config.cv_epochs,
            "final_epochs": epochs,
            "early_stopping": early_stopping_card(config),
            "stopping_fraction": config.stopping_fraction,
            "build_kwargs": config.build_kwargs,
            "augment": asdict(config.augment),
        },
        "inference": {"flip_tta": config.flip_tta},
        "training_time_s": round(time.time() - started, 1),
    }
    if cv["reused_folds"]:  # training_time_s then covers only the fits this run made
        card["resumed"] = {"reused_folds": cv["reused_folds"], "reused_final_fit": False}
    return model, card
