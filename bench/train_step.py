"""Training-step benchmark: seconds per epoch of a shipped recipe's network, with and without XLA.

    python bench/train_step.py [--recipes us_seg_unet us_cls] [--steps 20] [--repeats 3] [--json F]

For each recipe: its network, loss, optimizer and batch size, fed random inputs of the recipe's shape
(the arithmetic does not depend on the pixels). Each setting compiles, runs one warm-up epoch (XLA's
compilation happens there), then times `--repeats` epochs of `--steps` steps with `model.fit` and
reports the median seconds per step and per epoch-equivalent of the recipe's real training set.
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


def time_setting(name: str, xla: bool, steps: int, repeats: int) -> float:
    """Median seconds per training step of recipe `name` with `jit_compile=xla`."""
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
    model.fit(images, targets, batch_size=batch, epochs=1, verbose=0)  # compiles
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.fit(images, targets, batch_size=batch, epochs=1, verbose=0)
        seconds.append((time.perf_counter() - started) / steps)
    return statistics.median(seconds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["us_seg_unet", "us_cls"], choices=sorted(RECIPES))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    from breastapp.ml.train.loop import device_name

    figures = {"device": device_name(), "cpu_count": os.cpu_count(), "recipes": {}}
    print(f"device {figures['device']}, {figures['cpu_count']} CPU cores")
    print("| recipe | XLA | s/step | s/epoch (images/epoch) |")
    print("|---|---|---|---|")
    for name in args.recipes:
        per_recipe = {}
        for xla in (False, True):
            per_step = time_setting(name, xla, args.steps, args.repeats)
            images = EPOCH_IMAGES.get(name)
            batch = RECIPES[name].fit.batch_size
            per_epoch = per_step * -(-images // batch) if images else None
            per_recipe["xla" if xla else "no_xla"] = {"s_per_step": per_step, "s_per_epoch": per_epoch}
            epoch_text = f"{per_epoch:.1f} ({images})" if per_epoch else "-"
            print(f"| {name} | {'on' if xla else 'off'} | {per_step:.3f} | {epoch_text} |")
        per_recipe["speedup"] = per_recipe["no_xla"]["s_per_step"] / per_recipe["xla"]["s_per_step"]
        print(f"{name}: XLA speed-up x{per_recipe['speedup']:.2f}")
        figures["recipes"][name] = per_recipe
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
