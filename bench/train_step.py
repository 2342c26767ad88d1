"""Training-step benchmark: a shipped recipe's seconds per epoch under two settings (XLA, batch feed).

    python bench/train_step.py [--compare xla|feed] [--recipes us_seg_unet us_cls] [--steps 20]
                               [--repeats 3] [--json F]

For each recipe: its network, loss, optimizer and batch size, fed random inputs of the recipe's shape
(the arithmetic does not depend on the pixels). Each setting compiles, runs one warm-up epoch (XLA's
compilation happens there), then times `--repeats` epochs of `--steps` steps and reports the median
seconds per step and per epoch-equivalent of the recipe's real training set.
- `--compare xla` (default): `model.fit` on arrays in memory, XLA off and on.
- `--compare feed`: the recipe's own augmentation on every batch, fed (a) through `model.fit` on a Keras
  PyDataset, as the training loop did until 2026-12-03, (b) by the training loop as it is
  (`ml/train/loop.py`: `train_on_batch`, batch by batch), and, for reference, (c) `model.fit` on arrays
  in memory without augmentation.
Not part of the pass/fail suite: it prints figures. Run it on an otherwise idle machine: two trainings
sharing two cores halve each other's speed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from breastapp.ml.train import classification, segmentation  # noqa: E402
from breastapp.ml.train.losses import dice_metric, make_loss  # noqa: E402
from breastapp.ml.train.recipes import RECIPES  # noqa: E402

# Images in one epoch of the shipped runs (a cross-validation fold's training part), to turn seconds per
# step into seconds per epoch.
EPOCH_IMAGES = {"us_seg_unet": 498, "us_cls": 498}


def network_and_shapes(name: str):
    """(model, loss, metrics, input shape, target shape or None for class labels) of recipe `name`."""
    config = RECIPES[name]
    if isinstance(config, segmentation.SegmentationConfig):
        size = config.tiles.tile if config.tiles else config.spec.size
        model = segmentation.new_model(config)
        return model, make_loss(config.loss, config.positive_weight), [dice_metric()], (size, size, 1), True
    channels = config.build_kwargs.get("input_channels", 1)
    model = classification.new_model(config)
    shape = (config.input_size, config.input_size, channels)
    return model, classification.LOSS, ["accuracy"], shape, False


FEEDS = ("pydataset", "loop", "arrays")


def compiled_network(name: str, steps: int, xla: bool = False):
    """(model compiled as the recipe trains it, random images, targets, is_segmentation) of recipe `name`."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    config = RECIPES[name]
    model, loss, metrics, shape, is_segmentation = network_and_shapes(name)
    batch = config.fit.batch_size
    rng = np.random.default_rng(0)
    images = rng.random((steps * batch, *shape), dtype=np.float32)
    if is_segmentation:
        targets = (rng.random((steps * batch, *shape[:2], 1)) > 0.8).astype(np.float32)
    else:
        targets = rng.integers(0, len(config.classes), steps * batch)
    optimizer = keras.optimizers.Adam(config.fit.learning_rate, beta_1=config.fit.beta_1)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=xla)
    return model, images, targets, is_segmentation


def median_seconds_per_step(run_one_epoch, steps: int, repeats: int) -> float:
    """Median over `repeats` timed epochs of `run_one_epoch()`, after one untimed warm-up epoch."""
    run_one_epoch()  # compiles
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run_one_epoch()
        seconds.append((time.perf_counter() - started) / steps)
    return statistics.median(seconds)


def time_setting(name: str, xla: bool, steps: int, repeats: int) -> float:
    """Median seconds per training step of recipe `name` with `jit_compile=xla`, fed arrays in memory."""
    model, images, targets, _ = compiled_network(name, steps, xla)
    batch = RECIPES[name].fit.batch_size
    return median_seconds_per_step(
        lambda: model.fit(images, targets, batch_size=batch, epochs=1, verbose=0), steps, repeats
    )


def time_feed(name: str, feed: str, steps: int, repeats: int) -> float:
    """Median seconds per training step of recipe `name` with its batches fed the way `feed` names."""
    import keras

    from breastapp.ml.train.augment import augment_batch
    from breastapp.ml.train.loop import EpochBatches, train_one_epoch

    if feed == "arrays":
        return time_setting(name, False, steps, repeats)
    config = RECIPES[name]
    model, images, targets, is_segmentation = compiled_network(name, steps)
    settings = replace(config.fit, steps_per_epoch=steps)
    batches = EpochBatches(images, targets, settings, config.augment, is_segmentation)
    if feed == "loop":
        return median_seconds_per_step(lambda: train_one_epoch(model, batches, name, 0), steps, repeats)

    class AugmentedBatches(keras.utils.PyDataset):  # the loop's feed until 2026-12-03
        def __len__(self):
            return steps

        def __getitem__(self, index):
            pick = slice(index * settings.batch_size, (index + 1) * settings.batch_size)
            masks = targets[pick] if is_segmentation else None
            batch_images, batch_masks = augment_batch(images[pick], masks, batches.rng, config.augment)
            return batch_images, (batch_masks if is_segmentation else targets[pick])

    data = AugmentedBatches(workers=1, use_multiprocessing=False)
    return median_seconds_per_step(lambda: model.fit(data, epochs=1, verbose=0), steps, repeats)


def per_epoch_seconds(name: str, per_step: float) -> float | None:
    images = EPOCH_IMAGES.get(name)
    return per_step * -(-images // RECIPES[name].fit.batch_size) if images else None


# What `--compare` varies: the table's column, each setting's timer, and the (slower, faster) pair
# whose ratio is printed.
COMPARISONS = {
    "xla": (
        "XLA",
        {
            "off": lambda name, steps, repeats: time_setting(name, False, steps, repeats),
            "on": lambda name, steps, repeats: time_setting(name, True, steps, repeats),
        },
        ("off", "on"),
    ),
    "feed": (
        "feed",
        {
            feed: lambda name, steps, repeats, feed=feed: time_feed(name, feed, steps, repeats)
            for feed in FEEDS
        },
        ("pydataset", "loop"),
    ),
}


def compare(names, what: str, steps: int, repeats: int) -> dict:
    """Time every setting of comparison `what` on each recipe; print a table row per setting."""
    column, timers, (slower, faster) = COMPARISONS[what]
    print(f"| recipe | {column} | s/step | s/epoch (images/epoch) |")
    print("|---|---|---|---|")
    figures = {}
    for name in names:
        per_recipe = {}
        for setting, timer in timers.items():
            per_step = timer(name, steps, repeats)
            per_epoch = per_epoch_seconds(name, per_step)
            per_recipe[setting] = {"s_per_step": per_step, "s_per_epoch": per_epoch}
            epoch_text = f"{per_epoch:.1f} ({EPOCH_IMAGES[name]})" if per_epoch else "-"
            print(f"| {name} | {setting} | {per_step:.3f} | {epoch_text} |")
        per_recipe["speedup"] = per_recipe[slower]["s_per_step"] / per_recipe[faster]["s_per_step"]
        print(f"{name}: {column} {faster} x{per_recipe['speedup']:.2f} faster than {column} {slower}")
        figures[name] = per_recipe
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--compare", choices=sorted(COMPARISONS), default="xla", help="what to vary (docstring)"
    )
    parser.add_argument("--recipes", nargs="+", default=["us_seg_unet", "us_cls"], choices=sorted(RECIPES))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    from breastapp.ml.train.loop import device_name

    figures = {"device": device_name(), "cpu_count": os.cpu_count(), "compare": args.compare}
    print(f"device {figures['device']}, {figures['cpu_count']} CPU cores")
    figures["recipes"] = compare(args.recipes, args.compare, args.steps, args.repeats)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
