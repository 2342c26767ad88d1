"""`python -m breastapp train NAME`: train one shipped recipe (or a variant) with cross-validation.

Example: `python -m breastapp train us_seg_unet --data ../shared/data --models-dir models --runs runs`.
On a machine with few cores, fit folds in parallel processes (`--only-folds 0 1 2` and `--only-folds 3 4`),
then gather them with `--resume`.
`--dataset cbis|folder --data PATH` trains the same recipe on CBIS-DDSM or a user's folder.
A trial that may not ship can stop after its cross-validation (`--cv-only`, or gathered with `--resume
--cv-only`): its out-of-fold predictions and figures stay under --runs for `evaluate --out-of-fold`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

logger = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    from breastapp.ml.train.recipes import RECIPES

    parser.add_argument("name", choices=sorted(RECIPES), help="which weights to train")
    parser.add_argument(
        "--data", type=Path, default=Path("../shared/data"), help="dataset folder (or its parent)"
    )
    parser.add_argument(
        "--dataset", choices=("mias", "busi", "cbis", "folder"), help="default: the recipe's own"
    )
    parser.add_argument("--models-dir", type=Path, default=Path("models"), help="where the .keras + card go")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="logs, checkpoints, cache")
    parser.add_argument("--folds", type=int, help="cross-validation folds (default 5)")
    parser.add_argument("--cv-epochs", type=int, help="epoch budget per fold")
    parser.add_argument("--quick", action="store_true", help="a few steps, 2 folds: check the setup only")
    parser.add_argument("--limit", type=int, help="use only the first N images (smoke runs)")
    parser.add_argument(
        "--refresh-metrics",
        action="store_true",
        help="segmentation: recompute the card's cross-validated metrics from the out-of-fold maps kept "
        "under --runs (no training)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="reuse cross-validation folds that already finished under --runs",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="training seed instead of the recipe's (also the folds' seed for recipes without a split_seed): "
        "a rerun with other seeds measures a recipe's run-to-run spread",
    )
    parser.add_argument(
        "--only-folds",
        type=int,
        nargs="+",
        metavar="K",
        help="fit only these cross-validation folds (0-based) under --runs and stop, without a final fit "
        "or card; run several such processes side by side (or in separate sessions), then --resume "
        "gathers them",
    )
    parser.add_argument(
        "--cv-only",
        action="store_true",
        help="cross-validate (with --resume, gather the finished folds), keep the out-of-fold predictions "
        "and the run's own thresholds and figures under --runs (oof.npz, cross_validation.json), and stop "
        "before the final fit: no weights, no card. For trials; `evaluate --out-of-fold` reports them",
    )


def configured_recipe(args):
    from breastapp.ml.train.recipes import RECIPES
    from breastapp.ml.train.runner import quick

    config = RECIPES[args.name]
    if args.quick:
        config = quick(config)
    if args.folds:
        config = replace(config, folds=args.folds)
    if args.cv_epochs:
        config = replace(config, cv_epochs=args.cv_epochs)
    if args.seed is not None:
        config = replace(config, fit=replace(config.fit, seed=args.seed))
    return config


def run(args) -> int:
    if args.cv_only and (args.only_folds is not None or args.refresh_metrics):
        raise SystemExit(
            "--cv-only cross-validates every fold and stops before the final fit; it cannot be combined "
            "with --only-folds (which fits some folds only) or --refresh-metrics (which trains nothing)"
        )
    if args.refresh_metrics:
        from breastapp.ml.train.refresh import refresh_segmentation_card

        refresh_segmentation_card(args.name, args.data, args.models_dir, args.runs, dataset=args.dataset)
        return 0
    from breastapp.ml.train.runner import train_recipe, train_some_folds

    if args.only_folds is not None:
        try:
            train_some_folds(
                args.name,
                args.data,
                args.models_dir,
                args.runs / args.name,
                args.only_folds,
                config=configured_recipe(args),
                dataset=args.dataset,
                limit=args.limit,
            )
        except (FileNotFoundError, ValueError) as exc:
            raise SystemExit(str(exc)) from exc
        logger.info("%s: folds %s finished; gather them with --resume", args.name, args.only_folds)
        return 0
    try:
        card = train_recipe(
            args.name,
            args.data,
            args.models_dir,
            args.runs / args.name,
            config=configured_recipe(args),
            dataset=args.dataset,
            limit=args.limit,
            resume=args.resume,
            cv_only=args.cv_only,
        )
    except FileNotFoundError as exc:  # a dataset folder, or a guided classifier's missing guide maps
        raise SystemExit(str(exc)) from exc
    if args.cv_only:
        return 0  # train_recipe logged where the cross-validation was kept
    logger.info(
        "%s trained in %.0f s; card written to %s", args.name, card["training_time_s"], args.models_dir
    )
    return 0
