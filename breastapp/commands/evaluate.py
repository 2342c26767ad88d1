"""`python -m breastapp evaluate`: evaluate weights on a dataset and write a report folder.

Example: `python -m breastapp evaluate --weights mg_seg_bcir mg_seg_unet --dataset mias
--data ../shared/data/mini-mias --out runs/eval_mg_seg` (two segmentation weights: each alone and
their ensemble). Any weights on any supported dataset: point --data at images nobody trained on.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("--weights", nargs="+", required=True, help="weights name(s) under --models-dir")
    parser.add_argument("--dataset", required=True, choices=("mias", "busi", "cbis", "folder"))
    parser.add_argument("--data", type=Path, required=True, help="the dataset's folder")
    parser.add_argument("--csv-dir", type=Path, help="CBIS-DDSM description CSVs (default: --data)")
    parser.add_argument("--out", type=Path, required=True, help="report folder to write")
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument(
        "--runs", type=Path, help="training runs folder: adds learning curves, holds the cache"
    )
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument(
        "--out-of-fold",
        action="store_true",
        help="score the cross-validation's out-of-fold predictions kept under --runs (segmentation maps, "
        "classifier probabilities) instead of the final weights: the weights' own training set, evaluated "
        "honestly",
    )
    parser.add_argument(
        "--keep-pectoral",
        action="store_true",
        help="segmentation, ablation: search mammograms' whole breast, pectoral muscle included (the "
        "engine leaves it out), to measure what leaving it out changes",
    )


def run(args) -> int:
    from breastapp.ml.evaluate.run import evaluate

    if args.keep_pectoral:
        from breastapp.ml.registry import read_card

        card = read_card(args.models_dir, args.weights[0])
        if card.get("role") != "segmentation" or card.get("modality") != "MG":
            raise SystemExit("--keep-pectoral is an ablation for mammography segmentation weights only")

    if args.out_of_fold:
        if args.runs is None:
            raise SystemExit("--out-of-fold needs --runs: the training runs folder that holds <name>/oof.npz")
        missing = [
            str(args.runs / name / "oof.npz")
            for name in args.weights
            if not (args.runs / name / "oof.npz").is_file()
        ]
        if missing:
            raise SystemExit(
                f"--out-of-fold: no cross-validation predictions at {', '.join(missing)} (train first)"
            )

    path = evaluate(
        args.weights,
        args.models_dir,
        args.dataset,
        args.data,
        args.out,
        runs_dir=args.runs,
        limit=args.limit,
        csv_dir=args.csv_dir,
        out_of_fold=args.out_of_fold,
        keep_pectoral=args.keep_pectoral,
    )
    logger.info("report written to %s", path)
    return 0
