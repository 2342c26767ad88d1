"""Evaluate any weights on any supported dataset and write a report folder (report.md + PNGs).

Inference goes through the engine's own pieces: canonical form from `breastapp.imaging.preprocess`
(settings read from the weights' card), the sliding window of `breastapp.ml.sliding_window` for
mammograms, and the card's thresholds, so what is measured is what ships. Two segmentation weights
given together are evaluated as the engine's ensemble (average of probability maps) AND one by one.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from breastapp.ml.datasets import load_dataset
from breastapp.ml.datasets.prepare import CanonicalSpec, load_samples
from breastapp.ml.datasets.records import DENSITY, MASS
from breastapp.ml.registry import card_flip_tta

from .classification import auc, bootstrap_auc_ci, roc_curve, sensitivity_specificity
from .compare import compare_networks
from .plots import plot_confusion, plot_froc, plot_roc
from .report import classification_section, segmentation_section, write_report
from .scoring import (
    found_by_group,
    found_by_size,
    lesion_diameter_mm,
    operating_points,
    score_segmentation,
)

logger = logging.getLogger(__name__)
N_EXAMPLES = 6
ENSEMBLE = "ensemble (mean)"  # the report's label for the engine's ensemble of the weights given


def spec_from_card(card: dict) -> CanonicalSpec:
    """The canonical form the weights were trained on, from the card's `input` block (a whole-image
    classifier's `canonical_size` when it names one: its input is that image resized, as in the engine)."""
    block = card["input"]
    return CanonicalSpec(
        modality=card["modality"],
        spacing_mm=block.get("spacing_mm"),
        contrast=block.get("contrast", "none"),
        size=block.get("canonical_size") or block.get("size"),
    )


def select_for_evaluation(dataset: str, records, card: dict):
    """mini-MIAS mass networks are scored on the mass task images (see ml/train/recipes.py)."""
    from breastapp.ml.train.recipes import is_mass_task_image

    if dataset == "mias":
        records = [record for record in records if is_mass_task_image(record)]
        if card["role"] == "classification":
            records = [record for record in records if record.lesions]
    return records


def segmentation_maps(loaded, samples, card: dict) -> list[np.ndarray]:
    """Probability maps through the engine's path (sliding window for mammograms)."""
    from breastapp.ml.train.segmentation import SegmentationConfig, predict_probability
    from breastapp.ml.train.tiles import TileSettings

    tile = card["input"].get("tile")
    config = SegmentationConfig(
        name=card["name"],
        architecture=card["architecture"],
        build_kwargs={},
        spec=spec_from_card(card),
        tiles=TileSettings(tile=tile) if card["modality"] == "MG" else None,
        flip_tta=card_flip_tta(card),
    )
    return [predict_probability(loaded.model, sample, config) for sample in samples]


def card_min_area_px(card: dict) -> float:
    """The engine's smallest reported region for these weights, in canonical pixels."""
    from breastapp.ml.lesions import canonical_min_region_px

    return canonical_min_region_px(card["thresholds"], card["modality"], card["input"].get("spacing_mm"))


def write_examples(samples, maps, threshold: float, out_dir: Path, modality: str) -> list[str]:
    """Comparison overlays (TP green, FP white, FN red) for the images with lesions, first few."""
    from breastapp.imaging.frame import Frame
    from breastapp.imaging.overlay import render_comparison

    names = []
    with_lesion = [i for i, sample in enumerate(samples) if sample.lesion_mask.any()]
    step = max(1, len(with_lesion) // N_EXAMPLES)  # spread over the set (classes are often listed in order)
    chosen = with_lesion[::step][:N_EXAMPLES]
    for i in chosen:
        frame = Frame(pixels=samples[i].pixels, modality=modality, source_format="PNG")
        name = f"example_{samples[i].image_id}.png"
        (out_dir / name).write_bytes(render_comparison(frame, maps[i] > threshold, samples[i].lesion_mask))
        names.append(name)
    return names


def evaluate_segmentation(
    names, models_dir, dataset, records, out_dir, cache_dir, out_of_fold_dir=None, keep_pectoral=False
) -> str:
    from breastapp.ml.registry import load_weights
    from breastapp.ml.train.segmentation import searched

    loaded = [load_weights(models_dir, name) for name in names]
    card = loaded[0].card
    chosen = select_for_evaluation(dataset, records, card)
    samples = load_samples(
        chosen,
        spec_from_card(card),
        cache_dir,
        kinds=(MASS,) if card["modality"] == "MG" else ("lesion",),
        progress=True,
    )
    if keep_pectoral:  # the ablation: search the whole breast, as the engine did before
        samples = [replace(sample, pectoral_mask=None) for sample in samples]
    card_of = {name: weights.card for name, weights in zip(names, loaded, strict=True)}
    if out_of_fold_dir is not None:
        all_maps = {name: out_of_fold_maps(out_of_fold_dir / name, samples) for name in names}
        card_of = {name: out_of_fold_card(card_of[name], out_of_fold_dir / name) for name in names}
    else:
        all_maps = {
            name: segmentation_maps(weights, samples, weights.card)
            for name, weights in zip(names, loaded, strict=True)
        }
    all_maps = {  # the engine's cut: zero outside the lesion search region
        label: [searched(m, sample) for m, sample in zip(maps, samples, strict=True)]
        for label, maps in all_maps.items()
    }
    if len(names) > 1:
        all_maps[ENSEMBLE] = [np.mean(stack, axis=0) for stack in zip(*all_maps.values(), strict=True)]
    # Each network at its own card's operating point; the ensemble at the first network's, as the
    # engine runs an ensemble (ml/pipeline.region_limits reads the first segmenter's card).
    card = card_of[names[0]]
    truths = [sample.lesion_mask for sample in samples]
    density_of = {record.image_id: record.metadata.get(DENSITY) for record in chosen}
    densities = [density_of.get(sample.image_id) for sample in samples]
    results = {}
    for label, maps in all_maps.items():
        operating = card_of.get(label, card)
        threshold, candidate_threshold = operating_point(operating)
        min_area_px = card_min_area_px(operating)
        result = {
            **score_segmentation(maps, truths, threshold, candidate_threshold, min_area_px),
            "images": len(samples),
            "threshold": threshold,
            "operating_points": operating_points(maps, truths, min_area_px=min_area_px),
        }
        spacing_mm = operating["input"].get("spacing_mm")
        if spacing_mm:  # lesion sizes in mm need a physical pixel size (ultrasound images have none)
            result["by_size"] = found_by_size(result["lesion_hits"], spacing_mm)
        if any(densities):
            result["by_density"] = found_by_group(result["lesion_hits"], result["lesion_images"], densities)
        result["missed"] = [
            {
                **miss,
                "image_id": samples[miss["image"]].image_id,
                "diameter_mm": lesion_diameter_mm(miss["area_px"], spacing_mm) if spacing_mm else None,
            }
            for miss in result["missed"]
        ]
        results[label] = result
    comparison = compare_networks(results, [sample.patient_id for sample in samples], ENSEMBLE)
    plot_froc({label: result["froc"] for label, result in results.items()}, out_dir / "froc.png")
    shown = list(all_maps)[-1]
    examples = write_examples(
        samples, all_maps[shown], results[shown]["threshold"], out_dir, card["modality"]
    )
    return segmentation_section(results, examples, comparison, ENSEMBLE)


def operating_point(card: dict) -> tuple[float, float]:
    """(segmentation threshold, FROC candidate threshold) of a segmentation card."""
    threshold = float(card["thresholds"].get("segmentation", 0.5))
    return threshold, float(card["thresholds"].get("froc_candidate", min(0.1, threshold)))


def out_of_fold_maps(run_dir: Path, samples) -> list[np.ndarray]:
    """The cross-validation's out-of-fold probability maps (each image predicted by the fold that did
    not train on it), in `samples` order: the honest way to score weights on their own training set.
    Maps of the whole breast, as stored (see train.segmentation.searched for the engine's cut)."""
    with np.load(run_dir / "oof.npz") as data:
        index = {str(image_id): i for i, image_id in enumerate(data["image_ids"])}
        return [data[f"map_{index[sample.image_id]}"].astype(np.float32) for sample in samples]


def evaluate_classification(name, models_dir, dataset, records, out_dir, cache_dir) -> str:
    from breastapp.ml.pipeline import class_probabilities
    from breastapp.ml.registry import load_weights
    from breastapp.ml.train.classification import ClassificationConfig, LesionView, examples

    weights = load_weights(models_dir, name)
    card = weights.card
    block = card["input"]
    config = ClassificationConfig(
        name=name,
        architecture=card["architecture"],
        build_kwargs={},
        spec=spec_from_card(card),
        classes=tuple(card["classes"]),
        input_size=int(block["size"]),
        crop_margin=block.get("crop_margin"),
        guide=(block.get("guide") or {}).get("segmenter"),
        lesion_view=LesionView(**{k: block["lesion_view"][k] for k in ("threshold", "margin")})
        if block.get("lesion_view")
        else None,
        flip_tta=card_flip_tta(card),
    )
    chosen = select_for_evaluation(dataset, records, card)
    kinds = (MASS,) if card["modality"] == "MG" else ("lesion",)
    guide_maps, samples = None, None
    if config.guide:
        # The guide's maps come from its own canonical images; the classifier's pixels from the guide's
        # canonical image too, or, with a lesion view, from the finer one its card names (as in the engine).
        segmenter = load_weights(models_dir, config.guide)
        guide_spec = spec_from_card(segmenter.card)
        guide_samples = load_samples(chosen, guide_spec, cache_dir, kinds=kinds, progress=True)
        guide_maps = live_guide_maps(segmenter, guide_samples)
        own_size, own_contrast = block.get("canonical_size") or guide_spec.size, block.get("contrast", "none")
        config = replace(config, spec=replace(guide_spec, size=own_size, contrast=own_contrast))
        if config.spec == guide_spec:  # no finer image named: the guide's samples are the classifier's
            samples = guide_samples
    if samples is None:
        samples = load_samples(chosen, config.spec, cache_dir, kinds=kinds, progress=True)
    images, labels, groups = examples(samples, config, guide_maps)
    probabilities = class_probabilities(weights.model, images, config.flip_tta)
    return classification_report(probabilities, labels, groups, config.classes, card, out_dir)


def out_of_fold_classification(name: str, models_dir: Path, runs_dir: Path, out_dir: Path) -> str:
    """The classifier's cross-validation predictions (each example scored by the fold that did not train
    on it, kept in `runs/<name>/oof.npz`): the honest report on its own training set."""
    from breastapp.ml.registry import read_card

    card = read_card(models_dir, name)
    operating = out_of_fold_card(card, runs_dir / name)
    with np.load(runs_dir / name / "oof.npz") as data:
        probabilities, labels, groups = data["probabilities"], data["labels"], data["groups"]
    threshold_name = "the card threshold" if operating is card else "the run's own threshold"
    return classification_report(
        probabilities, labels, groups, list(card["classes"]), operating, out_dir, threshold_name
    )


def out_of_fold_card(card: dict, run_dir: Path) -> dict:
    """The card that scores a training run's out-of-fold predictions: the weights' own when that run
    produced them (its `weights.json` names them). Otherwise, when the run kept what its cross-validation
    decided (`cross_validation.json`: a trial run with `train --cv-only`, or one whose final fit was
    stopped or saved other weights), the card with that run's thresholds: the operating point the run
    would have shipped with, so a rejected trial is reported as it would have worked."""
    from breastapp.ml.train.runner import run_cross_validation_record, run_weights_sha256

    record = run_cross_validation_record(run_dir)
    if run_weights_sha256(run_dir) == card["sha256"] or record is None:
        return card
    return {**card, "thresholds": {**card["thresholds"], **record["thresholds"]}}


def live_guide_maps(segmenter, samples) -> dict[str, np.ndarray]:
    """A guided classifier's second channel on evaluation data: the guide network's own maps, as the
    engine computes them for an upload (image id -> probability map)."""
    maps = segmentation_maps(segmenter, samples, segmenter.card)
    return {sample.image_id: prob for sample, prob in zip(samples, maps, strict=True)}


def classification_report(
    probabilities, labels, groups, classes, card, out_dir: Path, threshold_name: str = "the card threshold"
) -> str:
    from .classification import confusion_matrix, per_class_report

    predicted = probabilities.argmax(axis=1)
    counts = confusion_matrix([classes[i] for i in labels], [classes[i] for i in predicted], classes)
    plot_confusion(counts, classes, out_dir / "confusion.png")
    malignant = classes.index("malignant")
    positive, score = (labels == malignant).astype(int), probabilities[:, malignant]
    threshold = float(card["thresholds"].get("malignancy", 0.5))
    value, interval = auc(positive, score), bootstrap_auc_ci(positive, score, groups)
    plot_roc(roc_curve(positive, score), value, interval, out_dir / "roc.png")
    sensitivity, specificity = sensitivity_specificity(positive, score, threshold)
    return classification_section(
        per_class_report(counts, classes),
        counts,
        classes,
        value,
        interval,
        threshold,
        sensitivity,
        specificity,
        len(labels),
        len(set(groups)),
        threshold_name,
    )


def evaluate(
    names: list[str],
    models_dir: Path,
    dataset: str,
    data: Path,
    out_dir: Path,
    runs_dir: Path | None = None,
    limit: int | None = None,
    csv_dir: Path | None = None,
    out_of_fold: bool = False,
    keep_pectoral: bool = False,
) -> Path:
    """Write `out_dir/report.md` and its plots; returns the report path.

    `keep_pectoral` searches mammograms' whole breast, pectoral muscle included: the engine leaves the
    muscle out, and this measures what that changes."""
    from breastapp.ml.registry import read_card

    out_dir.mkdir(parents=True, exist_ok=True)
    card = read_card(models_dir, names[0])
    records = load_dataset(dataset, data, csv_dir)[: limit or None]
    cache_dir = (runs_dir or out_dir) / "cache"
    if card["role"] == "segmentation":
        oof_dir = runs_dir if out_of_fold else None
        body = evaluate_segmentation(
            names, models_dir, dataset, records, out_dir, cache_dir, oof_dir, keep_pectoral
        )
        if keep_pectoral:
            body = "**Ablation: the pectoral muscle is NOT left out of the lesion search here.**\n\n" + body
    elif out_of_fold:
        body = out_of_fold_classification(names[0], models_dir, runs_dir, out_dir)
    else:
        body = evaluate_classification(names[0], models_dir, dataset, records, out_dir, cache_dir)
    curves = copy_learning_curves(names, runs_dir, out_dir) if runs_dir else []
    cards = [read_card(models_dir, name) for name in names]
    provenance = out_of_fold_provenance(runs_dir, cards) if out_of_fold else []
    return write_report(out_dir, cards, dataset, data, body, curves, out_of_fold, provenance)


def out_of_fold_provenance(runs_dir: Path, cards: list[dict]) -> list[str]:
    """Per network, whether its out-of-fold maps come from the run that produced the weights evaluated,
    and at which thresholds they are scored (`out_of_fold_card`).

    A run's `weights.json` names the weights its final fit saved. Folds rerun without a final fit, or a
    run that saved other weights, score the recipe rather than these weights' own cross-validation, and
    their figures can differ from the card's (training on a CPU is not repeatable bit for bit)."""
    from breastapp.ml.train.runner import run_cross_validation_record, run_weights_sha256

    lines = []
    for card in cards:
        run_dir = runs_dir / card["name"]
        produced = run_weights_sha256(run_dir)
        if produced == card["sha256"]:
            source = "the training run that produced these weights"
        elif produced:
            source = (
                f"a training run whose final fit produced other weights (sha256 {produced[:12]}), so they "
                "score its recipe, not these weights' own cross-validation"
            )
        else:
            source = (
                "a run of the recipe's folds without a final fit (it names no weights), so they score the "
                "recipe, and can differ from the card's own cross-validation"
            )
        record = run_cross_validation_record(run_dir)
        if produced != card["sha256"] and record is not None:
            chosen = ", ".join(f"{key} {value:.4g}" for key, value in record["thresholds"].items())
            source += (
                f"; scored at the thresholds that run chose on its own out-of-fold predictions "
                f"({chosen}; rule: {record['threshold_rule']}), not the card's"
            )
        lines.append(f"- `{card['name']}` ({card['sha256'][:12]}): out-of-fold maps from {source}.")
    return lines


def copy_learning_curves(names, runs_dir: Path, out_dir: Path) -> list[str]:
    """The training run's learning curves (final fit and folds), when the run folder is at hand."""
    copied = []
    for name in names:
        for source in sorted((runs_dir / name).glob("*/learning_curve.png")):
            target = f"learning_curve_{name}_{source.parent.name}.png"
            shutil.copyfile(source, out_dir / target)
            copied.append(target)
    return copied
