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


def finished_fold(fold_dir: Path, settings: FitSettings):
    """(best checkpoint, best epoch) of a cross-validation fold whose fit completed, else None: what
    `--resume` reuses instead of fitting the fold again."""
    finished = finished_fit(fold_dir)
    if finished is None:
        return None
    model, rows = finished
    return model, kept_epoch([float(row["val_loss"]) for row in rows], settings)


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


def augmented_batches(images, targets, settings: FitSettings, augment: AugmentSettings, seg: bool):
    """A keras PyDataset yielding freshly augmented batches every epoch."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.rng = np.random.default_rng(settings.seed)
            self.order = self.rng.permutation(len(images))

        def __len__(self):
            return settings.steps_per_epoch or max(1, int(np.ceil(len(images) / settings.batch_size)))

        def __getitem__(self, index):
            start = (index * settings.batch_size) % len(images)
            pick = np.take(self.order, range(start, start + settings.batch_size), mode="wrap")
            batch_images, batch_masks = augment_batch(
                images[pick], targets[pick] if seg else None, self.rng, augment
            )
            return batch_images, (batch_masks if seg else targets[pick])

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(images))

    return Batches()


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
    """Train `model` in place; returns the history dict. Best weights (by `monitor`) are restored."""
    import keras

    out_dir.mkdir(parents=True, exist_ok=True)
    if settings.batch_norm_momentum is not None:
        set_batch_norm_momentum(model, settings.batch_norm_momentum)
    if settings.schedule not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {settings.schedule!r}; choose one of {SCHEDULES}")
    batches = augmented_batches(*train, settings, augment, seg)
    cosine = settings.schedule == "cosine"
    learning_rate = (
        keras.optimizers.schedules.CosineDecay(settings.learning_rate, settings.epochs * len(batches))
        if cosine
        else settings.learning_rate
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, beta_1=settings.beta_1),
        loss=loss,
        metrics=metrics,
    )
    mode = "max" if "dice" in monitor or "auc" in monitor or "acc" in monitor else "min"
    callbacks = [
        keras.callbacks.CSVLogger(str(out_dir / "epochs.csv")),
        # Under the cosine schedule the checkpoint is the last epoch's weights (see kept_epoch).
        keras.callbacks.ModelCheckpoint(
            str(out_dir / "best.keras"), monitor=monitor, mode=mode, save_best_only=not cosine
        ),
    ]
    if validation is not None and not cosine:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode=mode, patience=settings.patience, restore_best_weights=True
            )
        )
    history = model.fit(
        batches,
        validation_data=validation,
        epochs=settings.epochs,
        callbacks=callbacks,
        verbose=verbose,
    )
    plot_learning_curve(out_dir / "epochs.csv", out_dir / "learning_curve.png")
    return history.history


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
