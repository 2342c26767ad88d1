"""preprocess -> segment -> lesions -> classify -> verdict, for one decoded image (no drawing, no I/O).

Mammography: canonical form at the segmentation card's spacing and contrast, sliding-window U-Net
(optionally an ensemble of several weights and a mirrored second pass), connected components mapped
back to the uploaded pixels, then the lesion classifier on a crop around each component.
Ultrasound (the BUSI recipe): the whole image resized to the card's size, one U-Net pass for the
lesion outline, and a benign / malignant / normal classifier on the whole image.

Every threshold comes from the weights' model cards, so retrained weights bring their own operating
points. `PipelineOutput` keeps the maps and crops the engine draws and explains.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from breastapp.constants import VERDICT_BENIGN, VERDICT_MALIGNANT, VERDICT_NO_LESION, VERDICT_NORMAL
from breastapp.imaging.frame import Frame
from breastapp.imaging.preprocess import (
    CanonicalImage,
    PreprocessSettings,
    canonical_views,
    canonicalize_mammogram,
    canonicalize_ultrasound,
    map_to_original,
    resize,
)
from breastapp.ml.lesions import Region, canonical_box, find_regions, guided_lesion_view, lesion_crop
from breastapp.ml.registry import LoadedWeights, card_flip_tta
from breastapp.ml.result import AnalysisResult, Lesion
from breastapp.ml.sliding_window import TileSettings, mirrored_mean_predict, sliding_window_predict

DEFAULT_CROP_MARGIN = 0.5


@dataclass(frozen=True)
class PipelineOutput:
    """The result plus the arrays behind it (original-size maps, classifier inputs for saliency)."""

    result: AnalysisResult
    prob_map: np.ndarray  # float32, original (rows, cols)
    lesion_mask: np.ndarray  # bool, original (rows, cols)
    classifier_inputs: tuple[np.ndarray, ...]  # per lesion in index order (MG) or the whole image (US)
    tiles_run: int = 0
    not_searched: np.ndarray | None = None  # bool, original (rows, cols): the pectoral muscle left out


@dataclass
class _Stopwatch:
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str):
        started = time.perf_counter()
        yield
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started


# ----------------------------------------------------------------------------------------- mammography


def analyze_mammogram(
    frame: Frame,
    segmenters: Sequence[LoadedWeights],
    classifier: LoadedWeights,
    tiles: TileSettings,
    *,
    flip_tta: bool = False,
    spacing_mm: float | None = None,
) -> PipelineOutput:
    """Lesions, their malignancy and the image verdict for one mammogram."""
    clock = _Stopwatch()
    seg_card = segmenters[0].card
    with clock.stage("preprocess"):
        settings = mammogram_settings(seg_card, segmenters)
        contrasts = needed_contrasts(settings, segmenters, classifier)
        views = canonical_views(frame, settings, contrasts, spacing_mm=spacing_mm)
        canon = views[settings.contrast]
    with clock.stage("segment"):
        inputs = [views[_input_spec(weights.card)[1]].pixels for weights in segmenters]
        prob, tiles_run = ensemble_map(segmenters, canon, tiles, flip_tta, inputs)
        spacing = original_spacing_mm(frame, canon)
        regions, kept = find_regions(prob, canon, spacing_mm=spacing, **region_limits(seg_card))
    with clock.stage("classify"):
        cls_spacing, cls_contrast = _input_spec(classifier.card)
        shares_geometry = cls_spacing == settings.target_spacing_mm
        cls_canon = (
            views[cls_contrast]
            if shares_geometry
            else canonicalize_mammogram(frame, mammogram_settings(classifier.card), spacing_mm=spacing_mm)
        )
        crops = [_crop_for(region, cls_canon, shares_geometry, classifier.card) for region in regions]
        class_probs = predict_classes(classifier, crops)
    with clock.stage("segment"):  # mapping the maps back is part of segmenting
        prob_original = map_to_original(canon, prob)
        mask_original = map_to_original(canon, kept)
        muscle = None if canon.pectoral_mask is None else map_to_original(canon, canon.pectoral_mask)
    lesions, order = _mammogram_lesions(regions, class_probs, classifier.card)
    malignancy = max((lesion.malignancy_prob for lesion in lesions), default=0.0)
    result = _result(
        frame, canon, lesions, mammogram_verdict(lesions), malignancy, segmenters, classifier, clock
    )
    crops_in_order = tuple(crops[i] for i in order)
    return PipelineOutput(result, prob_original, mask_original, crops_in_order, tiles_run, muscle)


def mammogram_settings(card: dict, ensemble: Sequence[LoadedWeights] = ()) -> PreprocessSettings:
    """The canonical form a card's network was trained on. Every ensemble member must share its pixel
    spacing (their maps are averaged pixel by pixel); each may have its own contrast (`canonical_views`)."""
    spacing, contrast = _input_spec(card)
    for member in ensemble:
        other = _input_spec(member.card)[0]
        if other != spacing:
            raise ValueError(
                f"ensemble members disagree on pixel spacing: {member.info.name} {other} mm vs {spacing} mm"
            )
    return PreprocessSettings(target_spacing_mm=spacing, contrast=contrast)


def _input_spec(card: dict) -> tuple[float, str]:
    spec = card.get("input") or {}
    return float(spec.get("spacing_mm") or 0.2), str(spec.get("contrast") or "none")


def needed_contrasts(
    settings: PreprocessSettings, segmenters: Sequence[LoadedWeights], classifier: LoadedWeights
) -> set[str]:
    """The contrasts one canonical geometry must be rendered in: every segmenter's (they share the
    spacing) and the classifier's when it works at that spacing too (otherwise it gets its own form)."""
    contrasts = {settings.contrast, *(_input_spec(weights.card)[1] for weights in segmenters)}
    cls_spacing, cls_contrast = _input_spec(classifier.card)
    if cls_spacing == settings.target_spacing_mm:
        contrasts.add(cls_contrast)
    return contrasts


def ensemble_map(
    segmenters,
    canon: CanonicalImage,
    tiles: TileSettings,
    flip_tta: bool,
    inputs: Sequence[np.ndarray] | None = None,
):
    """Mean probability map over the ensemble (each member with its mirrored pass when flip_tta), zero
    outside the lesion search region (canon.search_mask). `inputs` gives each member its own pixels (the
    canonical image in that member's contrast, `canonical_views`); without it every member sees
    `canon.pixels`."""
    predict = mirrored_mean_predict if flip_tta else sliding_window_predict
    total = np.zeros(canon.shape, dtype=np.float32)
    tiles_run = 0
    for weights, pixels in zip(segmenters, inputs or [canon.pixels] * len(segmenters), strict=True):
        prob, count = predict(weights.model, pixels, tiles, mask=canon.breast_mask, box=canon.breast_box)
        total, tiles_run = total + prob, tiles_run + count
    # Lesions are looked for in the breast without its pectoral muscle, as in cross-validation
    # (train/segmentation.predict_probability): film labels and the muscle are never reported.
    return np.where(canon.search_mask, total / len(segmenters), 0.0).astype(np.float32), tiles_run


def original_spacing_mm(frame: Frame, canon: CanonicalImage) -> tuple[float, float] | None:
    """The uploaded pixels' spacing: from the file, or implied by a known canonical spacing."""
    if frame.spacing_mm is not None and all(s and s > 0 for s in frame.spacing_mm):
        return float(frame.spacing_mm[0]), float(frame.spacing_mm[1])
    if canon.spacing_mm is None or frame.modality != "MG":
        return None
    (canon_rows, canon_cols), (rows, cols) = canon.shape, canon.original_shape
    return canon.spacing_mm * canon_rows / rows, canon.spacing_mm * canon_cols / cols


def region_limits(card: dict) -> dict:
    """find_regions' thresholds from a segmentation card."""
    thresholds = card["thresholds"]
    return {
        "threshold": float(thresholds.get("segmentation", 0.5)),
        "min_area_mm2": float(thresholds.get("min_lesion_area_mm2", 0.0)),
        "min_area_px": int(thresholds.get("min_lesion_area_px", 1)),
    }


def _crop_for(region: Region, cls_canon: CanonicalImage, shares_geometry: bool, card: dict) -> np.ndarray:
    """The classifier's input for one region; `shares_geometry` when `cls_canon` is a view of the
    segmenter's canonical image (same pixels grid), so the region's canonical box applies as it is."""
    box = region.canon_box if shares_geometry else canonical_box(cls_canon, region.box)
    spec = card["input"]
    margin = spec.get("crop_margin")
    return lesion_crop(
        cls_canon.pixels, box, DEFAULT_CROP_MARGIN if margin is None else float(margin), int(spec["size"])
    )


def predict_classes(classifier: LoadedWeights, images: Sequence[np.ndarray]) -> np.ndarray:
    """(n, classes) probabilities for classifier inputs, with the mirrored pass when the card says so."""
    n_classes = len(classifier.card.get("classes") or []) or int(classifier.model.output_shape[-1])
    if not images:
        return np.zeros((0, n_classes), dtype=np.float32)
    batch = np.stack(images).astype(np.float32)
    if batch.ndim == 3:  # one-channel inputs come as (rows, cols)
        batch = batch[..., None]
    return class_probabilities(classifier.model, batch, card_flip_tta(classifier.card))


PREDICT_CHUNK = 32  # inputs per forward call: bounds memory on a cross-validation fold's few hundred


def class_probabilities(model, batch: np.ndarray, flip_tta: bool) -> np.ndarray:
    """(n, classes) probabilities for classifier inputs (n, rows, cols, channels); with flip_tta, the mean
    of the inputs' and their left-right mirror images' probabilities. Cross-validation, `evaluate` and the
    engine all call this, so what a card reports is what a user gets."""
    return np.mean(class_probability_passes(model, batch, flip_tta), axis=0, dtype=np.float32)


def class_probability_passes(model, batch: np.ndarray, flip_tta: bool) -> list[np.ndarray]:
    """The probabilities of each pass: the inputs as given, then (flip_tta) their mirror images.
    Training keeps the first apart to report what the mirrored pass changed."""
    views = [batch, np.ascontiguousarray(batch[:, :, ::-1])] if flip_tta else [batch]
    return [
        np.concatenate(
            [
                np.asarray(model(view[start : start + PREDICT_CHUNK], training=False), dtype=np.float32)
                for start in range(0, len(view), PREDICT_CHUNK)
            ]
        )
        for view in views
    ]


def malignant_index(card: dict) -> int:
    classes = list(card.get("classes") or [])
    if "malignant" not in classes:
        raise ValueError(f"classifier {card.get('name')} has no 'malignant' class: {classes}")
    return classes.index("malignant")


def _mammogram_lesions(regions: list[Region], class_probs: np.ndarray, card: dict):
    """Lesions ordered by malignancy then size (index 1 = most suspicious), and that order."""
    malignant = malignant_index(card)
    threshold = float(card["thresholds"].get("malignancy", 0.5))
    order = sorted(range(len(regions)), key=lambda i: (-class_probs[i, malignant], -regions[i].area_px))
    lesions = tuple(
        _lesion(n + 1, regions[i], class_probs[i], card["classes"], malignant, threshold)
        for n, i in enumerate(order)
    )
    return lesions, order


def _lesion(index: int, region: Region, probs, classes, malignant: int, threshold: float) -> Lesion:
    prob = float(probs[malignant])
    return Lesion(
        index=index,
        box=region.box,
        centroid=region.centroid,
        area_px=region.area_px,
        area_mm2=region.area_mm2,
        max_diameter_mm=region.max_diameter_mm,
        seg_prob_max=region.seg_prob_max,
        seg_prob_mean=region.seg_prob_mean,
        malignancy_prob=prob,
        label="malignant" if prob >= threshold else "benign",
        class_probs={name: float(p) for name, p in zip(classes, probs, strict=True)},
    )


def mammogram_verdict(lesions: Sequence[Lesion]) -> str:
    if not lesions:
        return VERDICT_NO_LESION
    return VERDICT_MALIGNANT if any(lesion.label == "malignant" for lesion in lesions) else VERDICT_BENIGN


# ------------------------------------------------------------------------------------------ ultrasound


def analyze_ultrasound(
    frame: Frame, segmenter: LoadedWeights, classifier: LoadedWeights, *, flip_tta: bool = False
) -> PipelineOutput:
    """Lesion outline from the whole-image U-Net, verdict from the whole-image classifier."""
    clock = _Stopwatch()
    seg_spec = segmenter.card["input"]
    with clock.stage("preprocess"):
        canon = canonicalize_ultrasound(
            frame, int(seg_spec.get("size") or 128), seg_spec.get("contrast", "none")
        )
    with clock.stage("segment"):
        prob = whole_image_map(segmenter.model, canon.pixels, flip_tta)
        spacing = original_spacing_mm(frame, canon)
        regions, kept = find_regions(prob, canon, spacing_mm=spacing, **region_limits(segmenter.card))
    with clock.stage("classify"):
        cls_input = _ultrasound_classifier_input(
            frame, canon, seg_spec.get("contrast", "none"), classifier.card, prob
        )
        probs = predict_classes(classifier, [cls_input])[0]
    with clock.stage("segment"):  # mapping the maps back is part of segmenting
        prob_original = map_to_original(canon, prob)
        mask_original = map_to_original(canon, kept)
    classes = list(classifier.card["classes"])
    malignant = malignant_index(classifier.card)
    threshold = float(classifier.card["thresholds"].get("malignancy", 0.5))
    lesions = tuple(
        _lesion(n + 1, region, probs, classes, malignant, threshold) for n, region in enumerate(regions)
    )
    verdict = ultrasound_verdict(probs, classes, threshold, has_lesion=bool(lesions))
    result = _result(
        frame,
        canon,
        lesions,
        verdict,
        float(probs[malignant]),
        [segmenter],
        classifier,
        clock,
        class_probs={name: float(p) for name, p in zip(classes, probs, strict=True)},
    )
    return PipelineOutput(result, prob_original, mask_original, (cls_input,))


def whole_image_map(model, pixels: np.ndarray, flip_tta: bool) -> np.ndarray:
    """A whole-image network's probability map; with flip_tta, the mean with its mirrored image's map
    (mirrored back). Cross-validation scores maps made by this same function."""
    batch = pixels[None, :, :, None].astype(np.float32)
    if flip_tta:
        batch = np.concatenate([batch, batch[:, :, ::-1]])
    probs = np.asarray(model(batch, training=False))[..., 0]
    if flip_tta:
        return (probs[0] + probs[1][:, ::-1]) / 2
    return probs[0]


def _ultrasound_classifier_input(
    frame: Frame, canon: CanonicalImage, canon_contrast: str, card: dict, lesion_prob: np.ndarray
):
    """The whole image as the classifier was trained on it (its own size and contrast); a guided
    classifier (card input `guide`) also gets the segmenter's lesion probability map as channel 2, and one
    with a `lesion_view` the crop around the guided lesion as channels 3-4 (ml/lesions.py)."""
    spec = card["input"]
    size = int(spec.get("size") or 128)
    # The canonical image the classifier was trained on: the segmenter's unless its card names another
    # size (a lesion view is cut from a finer image than the segmenter's) or contrast.
    canonical_size = int(spec.get("canonical_size") or canon.pixels.shape[0])
    if spec.get("contrast", "none") != canon_contrast or canonical_size != canon.pixels.shape[0]:
        canon = canonicalize_ultrasound(frame, canonical_size, spec.get("contrast", "none"))
    image = resize(canon.pixels, (size, size))
    if not spec.get("guide"):
        return image
    whole = np.stack([image, resize(lesion_prob.astype(np.float32), (size, size))], axis=-1)
    view = spec.get("lesion_view")
    if not view:
        return whole
    lesion = guided_lesion_view(
        canon.pixels, lesion_prob, float(view["threshold"]), float(view["margin"]), size
    )
    return np.concatenate([whole, lesion], axis=-1)


def ultrasound_verdict(probs, classes: list[str], threshold: float, *, has_lesion: bool) -> str:
    """Malignant at the card's threshold; normal when nothing was found or the classifier says normal."""
    if probs[classes.index("malignant")] >= threshold:
        return VERDICT_MALIGNANT
    predicted = classes[int(np.argmax(probs))]
    if not has_lesion or predicted == "normal":
        return VERDICT_NORMAL
    return VERDICT_BENIGN


# ---------------------------------------------------------------------------------------------- result


def _result(frame, canon, lesions, verdict, malignancy, segmenters, classifier, clock, class_probs=None):
    seg_thresholds = segmenters[0].card["thresholds"]
    thresholds = {
        "segmentation": float(seg_thresholds.get("segmentation", 0.5)),
        "min_lesion_area_mm2": float(seg_thresholds.get("min_lesion_area_mm2", 0.0)),
        "malignancy": float(classifier.card["thresholds"].get("malignancy", 0.5)),
    }
    notes = []
    if canon.spacing_mm is None and frame.modality == "MG":
        notes.append("pixel spacing unknown: estimated from the image size; sizes in mm are not reported")
    if canon.pectoral_mask is not None:
        share = canon.pectoral_mask.sum() / max(int(canon.breast_mask.sum()), 1)
        notes.append(f"pectoral muscle ({share:.0%} of the breast) left out of the lesion search")
    return AnalysisResult(
        modality=frame.modality,
        verdict=verdict,
        image_malignancy_prob=float(malignancy),
        lesions=tuple(lesions),
        image_shape=frame.shape,
        spacing_mm=original_spacing_mm(frame, canon),
        laterality=frame.laterality,
        view=frame.view,
        weights=tuple(w.info for w in segmenters) + (classifier.info,),
        timings_s=dict(clock.timings),
        thresholds=thresholds,
        class_probs=class_probs or {},
        notes=tuple(notes),
    )
