"""`python -m breastapp retrain-all`: retrain every shipped weights file from ../shared/data.

Runs the five recipes one after the other (each: 5-fold patient-level cross-validation, then a final
fit) and writes models/<name>.keras + cards. See docs/TRAINING.md for the time it takes.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

logger = logging.getLogger(__name__)
ORDER = ("mg_cls", "us_seg_unet", "us_cls", "mg_seg_bcir", "mg_seg_unet")


def add_arguments(parser) -> None:
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--only", nargs="*", choices=ORDER, help="a subset of the weights, in this order")
    parser.add_argument("--quick", action="store_true", help="a few steps per network (checks the setup)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="reuse cross-validation folds that already finished under --runs",
    )


def run(args) -> int:
    from breastapp.ml.train.recipes import RECIPES
    from breastapp.ml.train.runner import quick, train_recipe

    started = time.time()
    for name in args.only or ORDER:
        config = quick(RECIPES[name]) if args.quick else RECIPES[name]
        card = train_recipe(
            name, args.data, args.models_dir, args.runs / name, config=config, resume=args.resume
        )
        logger.info("%s done in %.0f s (total %.0f s)", name, card["training_time_s"], time.time() - started)
    logger.info("retrain-all finished in %.0f s", time.time() - started)
    return 0
