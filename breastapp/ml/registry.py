"""Trained weights on disk: `models/<name>.keras` + model card `<name>.json` (+ a readable `<name>.md`).

Every result names the weights that produced it by name and sha256, so loading verifies the hash
written in the card against the file: a swapped or truncated file is refused, never silently used.
Loaded networks are cached per process (key: resolved path + sha256) because a worker analyses many
images with the same weights and loading costs far more than one prediction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from breastapp.constants import DEFAULT_MG_SPACING_MM
from breastapp.ml.result import WeightsInfo
from breastapp.ml.validation_summary import chance_caution, validation_line

log = logging.getLogger(__name__)

REQUIRED_CARD_KEYS = ("name", "architecture", "role", "modality", "input", "thresholds", "sha256")
ROLES = ("segmentation", "classification")
SHIPPED_NAMES = ("mg_seg_bcir", "mg_seg_unet", "mg_cls", "us_seg_unet", "us_cls")
HOW_TO_PRODUCE = (
    "run `python -m breastapp retrain-all` (or see the models section of the README) to produce it"
)

# Kept equal to the training recipes (breastapp/ml/train/recipes.py): 0.4 mm, 128-pixel tiles.
_MG_SPACING_MM = 2 * DEFAULT_MG_SPACING_MM
_MG_SEG_INPUT = {"spacing_mm": _MG_SPACING_MM, "tile": 128, "channels": 1, "contrast": "hist_eq"}
_MG_SEG_THRESHOLDS = {"segmentation": 0.5, "min_lesion_area_mm2": 4.0, "min_lesion_area_px": 25}
# What each shipped name is when no training has happened yet: architecture, build arguments, card.
SHIPPED_SPECS: dict[str, dict[str, Any]] = {
    "mg_seg_bcir": {
        "architecture": "bcir_unet",
        "build_kwargs": {},
        "role": "segmentation",
        "modality": "MG",
        "input": _MG_SEG_INPUT,
        "thresholds": _MG_SEG_THRESHOLDS,
        "classes": ["lesion"],
    },
    "mg_seg_unet": {
        "architecture": "unet",
        "build_kwargs": {"base": 16, "depth": 4},
        "role": "segmentation",
        "modality": "MG",
        "input": {**_MG_SEG_INPUT, "contrast": "clahe"},
        "thresholds": _MG_SEG_THRESHOLDS,
        "classes": ["lesion"],
    },
    "mg_cls": {
        "architecture": "cnn_classifier",
        "build_kwargs": {"input_size": 64, "n_classes": 2},
        "role": "classification",
        "modality": "MG",
        "input": {
            "size": 64,
            "channels": 1,
            "contrast": "hist_eq",
            "crop_margin": 0.5,
            "spacing_mm": _MG_SPACING_MM,
        },
        "thresholds": {"malignancy": 0.5},
        "classes": ["benign", "malignant"],
    },
    "us_seg_unet": {
        "architecture": "unet",
        "build_kwargs": {"base": 16, "depth": 4},
        "role": "segmentation",
        "modality": "US",
        "input": {"size": 128, "channels": 1, "contrast": "none"},
        "thresholds": {"segmentation": 0.5, "min_lesion_area_mm2": 4.0, "min_lesion_area_px": 8},
        "classes": ["lesion"],
    },
    "us_cls": {
        # Initialised from scratch here (no ImageNet weights): these placeholder weights only have to run.
        "architecture": "efficientnet_lite0_classifier",
        "build_kwargs": {"input_size": 224, "n_classes": 3},
        "role": "classification",
        "modality": "US",
        "input": {"size": 224, "canonical_size": 224, "channels": 1, "contrast": "none"},
        "thresholds": {"malignancy": 0.5},
        "classes": ["benign", "malignant", "normal"],
    },
}


class WeightsError(Exception):
    """Weights that cannot be used: missing file, hash mismatch, or an incomplete model card."""


@dataclass(frozen=True)
class LoadedWeights:
    """A ready network with its card and the identity every result records."""

    model: Any  # keras.Model (not typed: TensorFlow is imported lazily)
    card: dict
    info: WeightsInfo


_cache: dict[tuple[str, str], LoadedWeights] = {}
_cache_lock = threading.Lock()


def weights_paths(models_dir: str | os.PathLike, name: str) -> tuple[Path, Path, Path]:
    """(.keras, .json card, .md card) for a weights name."""
    base = Path(models_dir) / name
    return base.with_suffix(".keras"), base.with_suffix(".json"), base.with_suffix(".md")


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks (weights files reach tens of megabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def info_from_card(card: dict) -> WeightsInfo:
    return WeightsInfo(
        card["name"],
        card["sha256"],
        card["architecture"],
        card["role"],
        validation=validation_line(card),
        caution=chance_caution(card),
    )


def card_flip_tta(card: dict) -> bool:
    """Whether the network was measured with the mirrored second pass, which the engine then runs too
    (cards before the `inference` block: no)."""
    return card.get("inference", {}).get("flip_tta", False)  # types checked when the card is read


def save_weights(model, card: dict, models_dir: str | os.PathLike, name: str) -> WeightsInfo:
    """Write `<name>.keras`, then the card (with the file's sha256) as JSON and Markdown.

    The .keras file is written under a temporary name and renamed, so a crash never leaves a
    half-written file behind a card that vouches for it.
    """
    keras_path, json_path, md_path = weights_paths(models_dir, name)
    keras_path.parent.mkdir(parents=True, exist_ok=True)
    partial = keras_path.with_name(f".{name}.partial.keras")
    model.save(partial)
    os.replace(partial, keras_path)
    full_card = _complete_card(card, name, file_sha256(keras_path))
    json_path.write_text(json.dumps(full_card, indent=2, sort_keys=True, default=str) + "\n")
    md_path.write_text(card_markdown(full_card))
    log.info("saved weights %s (sha256 %s)", name, full_card["sha256"][:12])
    return info_from_card(full_card)


def _complete_card(card: dict, name: str, sha256: str) -> dict:
    """The caller's card plus the facts only the registry knows (name, hash, time, machine)."""
    full = {
        "trained": True,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()} python {platform.python_version()}",
        "training_data": None,
        "split": None,
        "hyperparameters": {},
        "metrics": {},
        "training_time_s": None,
        "classes": [],
        **card,
        "name": name,
        "sha256": sha256,
    }
    _check_card(full, f"card for {name}")
    return full


def _check_card(card: dict, where: str) -> None:
    missing = [key for key in REQUIRED_CARD_KEYS if key not in card]
    if missing:
        raise WeightsError(f"{where} lacks required keys: {', '.join(missing)}")
    if card["role"] not in ROLES:
        raise WeightsError(f"{where}: role must be one of {ROLES}, not {card['role']!r}")
    inference = card.get("inference", {})
    if not isinstance(inference, dict) or not isinstance(inference.get("flip_tta", False), bool):
        raise WeightsError(f"{where}: inference must be an object whose flip_tta is true or false")


def read_card(models_dir: str | os.PathLike, name: str) -> dict:
    """The JSON model card of `name`, validated; WeightsError when absent or incomplete."""
    _, json_path, _ = weights_paths(models_dir, name)
    if not json_path.is_file():
        raise WeightsError(f"model card {json_path} is missing; {HOW_TO_PRODUCE}")
    try:
        card = json.loads(json_path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"model card {json_path} is not readable JSON: {exc}") from exc
    if not isinstance(card, dict):
        raise WeightsError(f"model card {json_path} is not a JSON object")
    _check_card(card, f"model card {json_path}")
    return card


def load_weights(models_dir: str | os.PathLike, name: str) -> LoadedWeights:
    """Load `<name>.keras` after checking its sha256 against the card; cached per process."""
    keras_path, json_path, _ = weights_paths(models_dir, name)
    if not keras_path.is_file():
        raise WeightsError(f"weights file {keras_path} is missing; {HOW_TO_PRODUCE}")
    card = read_card(models_dir, name)
    actual = file_sha256(keras_path)
    if actual != card["sha256"]:
        raise WeightsError(
            f"weights file {keras_path} does not match its model card {json_path}: sha256 is "
            f"{actual[:16]}..., the card says {str(card['sha256'])[:16]}... (replaced or corrupted file; "
            f"{HOW_TO_PRODUCE})"
        )
    key = (str(keras_path.resolve()), actual)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = LoadedWeights(_load_model(keras_path), card, info_from_card(card))
        return _cache[key]


def _load_model(keras_path: Path):
    import keras

    import breastapp.ml.architectures.layers  # noqa: F401  (registers our custom layers for loading)
    from breastapp.ml.runtime import configure

    configure()
    try:
        model = keras.saving.load_model(keras_path, compile=False)
    except Exception as exc:  # Keras raises many types for a damaged archive
        raise WeightsError(f"weights file {keras_path} cannot be loaded: {exc}") from exc
    log.info("loaded weights %s", keras_path.name)
    return model


def clear_cache() -> None:
    """Forget loaded networks (tests; a worker that swaps weights)."""
    with _cache_lock:
        _cache.clear()


def write_initialised_weights(
    models_dir: str | os.PathLike, names: tuple[str, ...] = SHIPPED_NAMES, seed: int = 0
) -> list[WeightsInfo]:
    """Save freshly initialised (untrained) networks under the shipped names, cards saying trained=false.

    Lets the whole product run, and tests exercise real networks, before any training has happened;
    the engine marks every result from such weights as meaningless.
    """
    import keras

    from breastapp.ml.architectures import build
    from breastapp.ml.runtime import configure

    configure()
    infos = []
    for name in names:
        spec = SHIPPED_SPECS[name]
        keras.utils.set_random_seed(seed)
        model = build(spec["architecture"], **spec["build_kwargs"])
        card = {**json.loads(json.dumps(spec)), "trained": False, "training_data": "none (initialised)"}
        infos.append(save_weights(model, card, models_dir, name))
    return infos


def card_markdown(card: dict) -> str:
    """A short human-readable model card (the JSON is the machine-readable one)."""
    lines = [
        f"# {card['name']}",
        "",
        "Research use only — not for clinical use.",
        "",
        f"- architecture: {card['architecture']}",
        f"- role: {card['role']} ({card['modality']})",
        f"- trained: {card.get('trained', True)}",
        f"- classes: {', '.join(card.get('classes') or []) or '-'}",
        f"- input: {json.dumps(card['input'], sort_keys=True)}",
        f"- thresholds: {json.dumps(card['thresholds'], sort_keys=True)}",
        f"- training data: {card.get('training_data') or '-'}",
        f"- split: {card.get('split') or '-'}",
        f"- metrics: {json.dumps(card.get('metrics') or {}, sort_keys=True)}",
        f"- training time (s): {card.get('training_time_s') or '-'}",
        f"- created: {card.get('created_at')} on {card.get('machine')}",
        f"- sha256: `{card['sha256']}`",
    ]
    return "\n".join(lines) + "\n"
