"""One Keras fit with the project's conventions: Adam preset, fixed seeds, early stopping on
validation with the best weights kept, a per-epoch CSV log, a progress bar, and a learning curve PNG.

Two learning-rate schedules (`FitSettings.schedule`):
- "constant": the Adam rate throughout; training stops early when the validation loss has not improved
  for `patience` epochs, and the best epoch's weights are kept.
- "cosine": the rate falls from `learning_rate` to zero over the whole epoch budget (cosine decay), and
  every fit runs the full budget and keeps its LAST weights. Nothing is chosen on the validation images,
  so the cross-validation scores exactly what the final fit on all data will do.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .augment import AugmentSettings, augment_batch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitSettings:
    epochs: int = 20
    batch_size: int = 16
    learning_rate: float = 2e-4  # B-Cir U-Net seed's Adam preset
    beta_1: float = 0.5
    patience: int = 5
    seed: int = 0
    steps_per_epoch: int | None = None  # None = one pass over the training arrays
    # Keras' default BatchNorm momentum (0.99) needs hundreds of steps before the inference statistics
    # match the data; our runs take ~30 steps per epoch for a few epochs, and with 0.99 the validation
    # Dice stayed near 0 while the training Dice reached 0.6. 0.9 settles within ~30 steps.
    batch_norm_momentum: float | None = 0.9
    schedule: str = "constant"  # "constant" (early stopping) or "cosine" (full budget); module docstring


SCHEDULES = ("constant", "cosine")


def kept_epoch(losses, settings: FitSettings) -> int:
    """The 1-based epoch whose weights a fit kept: the lowest loss, or the last under a cosine schedule."""
    if settings.schedule == "cosine":
        return len(losses)
    return int(np.argmin(losses)) + 1


def final_fit_epochs(settings: FitSettings, cv_epochs: int, best_epochs: list[int]) -> int:
    """How long the final fit on all images runs: the folds' own budget under the cosine schedule (the
    procedure they scored), else the median of their best epochs (at least 3). `final_fit_rule` says it in
    words for the card."""
    if settings.schedule == "cosine":
        return cv_epochs
    return max(3, int(np.median(best_epochs)))


def final_fit_rule(settings: FitSettings) -> str:
    """The card's words for how long the final fit on all images ran: the folds' kept epochs decide it, and
    under the cosine schedule every fold keeps its last epoch, so the final fit runs the whole budget."""
    if settings.schedule == "cosine":
        return "all images, the folds' whole epoch budget under the cosine schedule, last weights kept"
    return "all images, fixed epochs = median best epoch of the folds"


def finished_fold(fold_dir: Path, settings: FitSettings):
    """(best checkpoint, best epoch) of a cross-validation fold whose fit completed, else None: what
    `--resume` reuses instead of fitting the fold again."""
    finished = finished_fit(fold_dir)
    if finished is None:
        return None
    model, rows = finished
    return model, kept_epoch([monitored_loss(row) for row in rows], settings)


def monitored_loss(row: dict) -> float:
    """One epoch's validation loss from the CSV log, or its training loss for a fit without validation
    images (a cosine-schedule classifier fold), whose log has val_loss "NA" or no such column."""
    logged = row.get("val_loss")
    return float(row["loss"] if logged in (None, "", "NA") else logged)


def fit_is_finished(fit_dir: Path) -> bool:
    """True when a fit completed: the learning curve is written after the fit returns, so its presence
    marks a finished fit; the checkpoint holds the weights the fit kept (`kept_epoch`)."""
    return (fit_dir / "learning_curve.png").exists() and (fit_dir / "best.keras").exists()


def finished_fit(fit_dir: Path):
    """(kept checkpoint, the epoch log's rows) of a fit that completed (`fit_is_finished`), else None."""
    import keras

    if not fit_is_finished(fit_dir):
        return None
    with open(fit_dir / "epochs.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return keras.models.load_model(fit_dir / "best.keras", compile=False), rows


def set_seeds(seed: int) -> None:
    """Python, numpy and TensorFlow seeds in one call (keras.utils.set_random_seed sets all three)."""
    import keras

    keras.utils.set_random_seed(seed)


def device_name() -> str:
    """'GPU' when TensorFlow sees one (and will use it), else 'CPU'."""
    import tensorflow as tf

    return "GPU" if tf.config.list_physical_devices("GPU") else "CPU"


def set_batch_norm_momentum(model, momentum: float) -> None:
    """Set the moving-average momentum of every BatchNormalization layer (see FitSettings)."""
    import keras

    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


class EpochBatches:
    """Freshly augmented training batches, one epoch at a time: each epoch is a new shuffle of the
    examples (the last batch topped up from the front, so every batch is full), augmented as drawn."""

    def __init__(self, images, targets, settings: FitSettings, augment: AugmentSettings, seg: bool):
        self.images, self.targets, self.seg = images, targets, seg
        self.batch_size, self.augment = settings.batch_size, augment
        self.rng = np.random.default_rng(settings.seed)
        self.steps = settings.steps_per_epoch or max(1, int(np.ceil(len(images) / settings.batch_size)))

    def epoch(self):
        """The next epoch's (images, targets) batches, augmented lazily one batch at a time."""
        order = self.rng.permutation(len(self.images))
        for step in range(self.steps):
            pick = np.take(order, range(step * self.batch_size, (step + 1) * self.batch_size), mode="wrap")
            batch_images, batch_masks = augment_batch(
                self.images[pick], self.targets[pick] if self.seg else None, self.rng, self.augment
            )
            yield batch_images, (batch_masks if self.seg else self.targets[pick])


def fit(
    model,
    train,
    validation,
    loss,
    metrics,
    settings: FitSettings,
    augment: AugmentSettings,
    out_dir: Path,
    seg: bool,
    monitor: str = "val_loss",
    verbose: int = 2,
) -> dict:
    """Train `model` in place; returns the history dict (metric -> one value per epoch). Best weights
    (by `monitor`) are restored when the fit early-stops on validation images.

    Batches go to `train_on_batch` one at a time, with Keras' own callbacks (CSV log, checkpoint, early
    stopping) driven epoch by epoch, rather than through `model.fit` on a Python data source: on the
    2-core host of 2026-12-03, Keras' generator pipeline (a PyDataset, or tf.data from a generator) at
    times ran each step of the ultrasound classifier at about twice the time of the same step fed as
    arrays, its threads spending half their time in the kernel (`python bench/train_step.py --compare
    feed`; bench/README.md)."""
    import keras

    out_dir.mkdir(parents=True, exist_ok=True)
    if settings.batch_norm_momentum is not None:
        set_batch_norm_momentum(model, settings.batch_norm_momentum)
    if settings.schedule not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {settings.schedule!r}; choose one of {SCHEDULES}")
    batches = EpochBatches(*train, settings, augment, seg)
    cosine = settings.schedule == "cosine"
    learning_rate = (
        keras.optimizers.schedules.CosineDecay(settings.learning_rate, settings.epochs * batches.steps)
        if cosine
        else settings.learning_rate
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, beta_1=settings.beta_1),
        loss=loss,
        metrics=metrics,
    )
    history = keras.callbacks.History()
    callbacks = keras.callbacks.CallbackList(
        fit_callbacks(out_dir, settings, monitor, stops_early=validation is not None and not cosine)
        + [history],
        model=model,
    )
    model.stop_training = False
    callbacks.on_train_begin()
    for epoch in range(settings.epochs):
        started = time.time()
        callbacks.on_epoch_begin(epoch)
        logs = train_one_epoch(model, batches, f"epoch {epoch + 1}/{settings.epochs}", verbose)
        if validation is not None:
            scores = model.evaluate(*validation, batch_size=settings.batch_size, verbose=0, return_dict=True)
            logs.update({f"val_{name}": float(value) for name, value in scores.items()})
        if verbose:
            shown = " - ".join(f"{name} {value:.4f}" for name, value in logs.items())
            logger.info("epoch %d/%d - %.0f s - %s", epoch + 1, settings.epochs, time.time() - started, shown)
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callbacks.on_train_end()
    plot_learning_curve(out_dir / "epochs.csv", out_dir / "learning_curve.png")
    return history.history


def fit_callbacks(out_dir: Path, settings: FitSettings, monitor: str, stops_early: bool) -> list:
    """The per-epoch CSV log, the checkpoint, and early stopping with the best weights restored."""
    import keras

    mode = "max" if "dice" in monitor or "auc" in monitor or "acc" in monitor else "min"
    callbacks = [
        keras.callbacks.CSVLogger(str(out_dir / "epochs.csv")),
        # Under the cosine schedule the checkpoint is the last epoch's weights (see kept_epoch).
        keras.callbacks.ModelCheckpoint(
            str(out_dir / "best.keras"),
            monitor=monitor,
            mode=mode,
            save_best_only=settings.schedule != "cosine",
        ),
    ]
    if stops_early:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode=mode, patience=settings.patience, restore_best_weights=True
            )
        )
    return callbacks


def train_one_epoch(model, batches: EpochBatches, label: str, verbose: int) -> dict[str, float]:
    """One pass of `batches`; the loss and metrics averaged over its batches. Every batch is full, so for
    the loss and accuracy this is what `model.fit` logs; `train_on_batch` reports each batch alone."""
    from tqdm import tqdm

    totals: dict[str, float] = {}
    # disable=None: a bar on a terminal, nothing in a redirected log (the per-epoch line says it all)
    steps = tqdm(
        batches.epoch(), total=batches.steps, desc=label, unit="batch", disable=None if verbose else True
    )
    for batch_images, batch_targets in steps:
        logs = model.train_on_batch(batch_images, batch_targets, return_dict=True)
        for name, value in logs.items():
            totals[name] = totals.get(name, 0.0) + float(value)
        steps.set_postfix(loss=f"{float(logs['loss']):.4f}")
    return {name: total / batches.steps for name, total in totals.items()}


def plot_learning_curve(csv_path: Path, png_path: Path) -> None:
    """Loss (and any metric) per epoch, training vs validation, from the CSV log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    names = [
        key for key in rows[0] if key != "epoch" and not key.startswith("val_") and key != "learning_rate"
    ]
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    epochs = [int(row["epoch"]) + 1 for row in rows]
    for axis, name in zip(axes[0], names, strict=True):
        axis.plot(epochs, [float(row[name]) for row in rows], label="training")
        if f"val_{name}" in rows[0] and rows[0][f"val_{name}"] not in ("", "NA"):
            axis.plot(epochs, [float(row[f"val_{name}"]) for row in rows], label="validation")
        axis.set_xlabel("epoch")
        axis.set_title(name)
        axis.legend()
    figure.tight_layout()
    figure.savefig(png_path, dpi=90)
    plt.close(figure)
