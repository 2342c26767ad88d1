"""`python -m breastapp analyze FILE [FILE...] --out DIR`: the engine without the web app.

Needs no database, broker or server: files in, a folder per file out (overlay.png, mask.png,
heatmap.png, result.json). Output folders are named by the input's position and a short hash of its
bytes, never by its file name, because file names often carry a patient's name; manifest.json maps
each input path to its folder for the person who ran the command.

Exit status: 0 when every file was analysed, 1 when at least one was refused (each refusal is printed
to stderr as "<file>: <code>: <sentence>" after the others were processed), 2 when nothing could run
(missing or damaged weights).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
from pathlib import Path

from breastapp.constants import LATERALITIES, MODALITIES, RESEARCH_BANNER, VIEWS
from breastapp.imaging.errors import ImagingError

log = logging.getLogger(__name__)

OUTPUT_FILES = ("overlay.png", "mask.png", "heatmap.png", "result.json")
# The two mammography segmenters, averaged; the first one's threshold applies (the order models/README.md
# measured the ensemble in).
ENSEMBLE = ("mg_seg_unet", "mg_seg_bcir")
HASH_CHARS = 12


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="DICOM, PNG or JPEG files")
    parser.add_argument("--out", required=True, type=Path, help="folder to write one sub-folder per input")
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=Path(os.environ.get("BREASTAPP_MODELS_DIR", "models")),
        help="folder holding <name>.keras + <name>.json (default: $BREASTAPP_MODELS_DIR or models)",
    )
    parser.add_argument("--modality", choices=MODALITIES, help="for PNG/JPEG (DICOM tags win)")
    parser.add_argument("--spacing-mm", type=float, help="pixel spacing for files that do not say")
    parser.add_argument("--view", choices=VIEWS, help="for PNG/JPEG (DICOM tags win)")
    parser.add_argument("--laterality", choices=LATERALITIES, help="for PNG/JPEG (DICOM tags win)")
    parser.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average the segmentation map with the mirrored image's (default: as the segmentation card "
        "says; a classifier always runs the pass its own card names)",
    )
    parser.add_argument(
        "--ensemble", action="store_true", help=f"average the segmenters {', '.join(ENSEMBLE)}"
    )


def run(args: argparse.Namespace) -> int:
    """Analyse every file, write its folder, then the manifest; refusals go to stderr."""
    from breastapp.ml.registry import WeightsError

    engine = build_engine(args)
    args.out.mkdir(parents=True, exist_ok=True)
    manifest, refused = [], 0
    for position, path in enumerate(args.files, start=1):
        try:
            entry = analyse_one(engine, path, position, args)
        except ImagingError as exc:
            refused += 1
            print(f"{path}: {exc.code}: {exc.message}", file=sys.stderr)
            entry = {"input": str(path), "folder": None, "error": exc.to_dict()}
        except WeightsError as exc:
            print(f"{path}: weights_error: {exc}", file=sys.stderr)
            return 2
        manifest.append(entry)
    (args.out / "manifest.json").write_text(json.dumps({"inputs": manifest}, indent=2) + "\n")
    return 1 if refused else 0


def build_engine(args: argparse.Namespace):
    """One engine for the whole run: each network is loaded once, whatever the number of files."""
    from breastapp.ml.engine import Engine, EngineSettings

    settings = EngineSettings(models_dir=args.models_dir, flip_tta=args.tta)
    if args.ensemble:
        settings = EngineSettings(models_dir=args.models_dir, flip_tta=args.tta, mg_segmentation=ENSEMBLE)
    return Engine(settings)


def analyse_one(engine, path: Path, position: int, args: argparse.Namespace) -> dict:
    """Analyse one file and write its folder; returns its manifest entry. Raises ImagingError on refusal."""
    data = read_input(path)
    folder_name = output_folder_name(position, data)
    output = engine.analyze_bytes(
        data,
        modality=args.modality,
        view=args.view,
        laterality=args.laterality,
        spacing_mm=args.spacing_mm,
    )
    folder = args.out / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "overlay.png").write_bytes(output.overlay_png)
    (folder / "mask.png").write_bytes(output.mask_png)
    (folder / "heatmap.png").write_bytes(output.heatmap_png)
    document = result_document(output.result, data)
    (folder / "result.json").write_text(json.dumps(document, indent=2) + "\n")
    result = output.result
    print(
        f"{path} -> {folder}: {result.verdict}, {len(result.lesions)} lesion(s), "
        f"image malignancy {result.image_malignancy_prob:.2f}, {sum(result.timings_s.values()):.2f} s"
    )
    return {"input": str(path), "folder": folder_name, "sha256": document["input_sha256"]}


def read_input(path: Path) -> bytes:
    """The file's bytes, refusing what cannot be read or is larger than decoding would ever accept."""
    from breastapp.imaging.decode import DecodeLimits

    limit = DecodeLimits().max_file_bytes
    try:
        size = path.stat().st_size
        if size > limit:
            raise ImagingError(
                f"The file is {size / 2**20:.0f} MB; files over {limit / 2**20:.0f} MB are refused.",
                code="file_too_large",
                http_status=413,
            )
        return path.read_bytes()
    except OSError as exc:
        raise ImagingError(f"The file cannot be read ({exc.strerror}).", code="unreadable_file") from exc


def output_folder_name(position: int, data: bytes) -> str:
    """'003-1a2b3c4d5e6f': the input's position and a short hash of its bytes, no file name."""
    return f"{position:03d}-{hashlib.sha256(data).hexdigest()[:HASH_CHARS]}"


def result_document(result, data: bytes) -> dict:
    """result.json: the result, the banner text, the weights that produced it, and the input's hash."""
    document = result.to_dict()
    document["disclaimer"] = RESEARCH_BANNER
    document["weights"] = [
        {"name": w.name, "sha256": w.sha256, "architecture": w.architecture, "role": w.role}
        for w in result.weights
    ]
    document["input_sha256"] = hashlib.sha256(data).hexdigest()
    return document
