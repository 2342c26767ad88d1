"""The one entry point for services, the command line and the bench: bytes or a Frame in, results out.

An `Engine` holds the loaded networks of one process. Construction is cheap; weights load on first
use or in `warm_up()` (a worker calls it after fork so the first upload does not pay for loading and
graph tracing). It is safe to share between threads: loading is locked, prediction is read-only.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from breastapp.imaging.errors import UnsupportedModality
from breastapp.imaging.frame import Frame
from breastapp.ml.pipeline import PipelineOutput, analyze_mammogram, analyze_ultrasound
from breastapp.ml.registry import LoadedWeights, card_flip_tta, load_weights
from breastapp.ml.result import AnalysisResult
from breastapp.ml.sliding_window import TileSettings

log = logging.getLogger(__name__)

UNTRAINED_NOTE = "untrained weights: results are meaningless"


@dataclass(frozen=True)
class EngineSettings:
    """Which weights to use and how to tile; every field has a working default except the folder."""

    models_dir: Path
    # Two names = ensemble (average of probability maps). The classic U-Net, started from the ultrasound
    # U-Net's weights, found more mini-MIAS masses at 2 false positives per image than the B-Cir U-Net
    # (pooled out of fold 0.58 against 0.40; models/README.md); BREASTAPP_MG_SEGMENTATION picks another.
    mg_segmentation: tuple[str, ...] = ("mg_seg_unet",)
    mg_classifier: str = "mg_cls"
    us_segmentation: str = "us_seg_unet"
    us_classifier: str = "us_cls"
    tile: int | None = None  # None: the tile the segmentation weights were trained and measured with (card)
    overlap: int = 32
    batch_size: int = 8
    min_breast_coverage: float = 0.05
    # None: as each segmentation card says (`inference.flip_tta`). Segmentation only: a classifier always
    # runs the pass its own card names, since its malignancy threshold was chosen with it.
    flip_tta: bool | None = None

    def tiles(self, card: dict) -> TileSettings:
        """Tiling for a segmentation card: its own tile size unless the settings override it."""
        tile = int(self.tile or card["input"].get("tile") or 256)
        return TileSettings(tile, self.overlap, self.batch_size, self.min_breast_coverage)


@dataclass(frozen=True)
class EngineOutput:
    result: AnalysisResult  # lesions in ORIGINAL pixel coordinates
    original_png: bytes  # display rendering of the upload (browsers cannot show DICOM)
    overlay_png: bytes
    heatmap_png: bytes
    mask_png: bytes


@dataclass(frozen=True)
class Saliency:
    """Grad-CAM of the classifier for one lesion (mammography) or the whole image (ultrasound)."""

    classifier_input: np.ndarray  # the image the classifier saw (channel 1 if guided), (size, size)
    heat: np.ndarray  # same shape, [0, 1]
    png: bytes  # heat blended over the classifier input


class Engine:
    def __init__(self, settings: EngineSettings):
        self.settings = settings
        self._weights: dict[str, LoadedWeights] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------ networks

    def weights(self, name: str) -> LoadedWeights:
        """Load (once) and return the named weights; WeightsError when missing or tampered with."""
        with self._lock:
            if name not in self._weights:
                from breastapp.ml.runtime import configure

                configure()
                self._weights[name] = load_weights(self.settings.models_dir, name)
            return self._weights[name]

    def _names(self) -> list[str]:
        s = self.settings
        return [*s.mg_segmentation, s.mg_classifier, s.us_segmentation, s.us_classifier]

    def warm_up(self) -> None:
        """Load every network and run one tiny prediction through each (traces the graphs)."""
        from breastapp.ml.sliding_window import compiled_predictor

        started = time.perf_counter()
        for name in self._names():
            loaded = self.weights(name)
            if loaded.card["role"] == "segmentation" and loaded.card["modality"] == "MG":
                tile = self.settings.tiles(loaded.card).tile
                compiled_predictor(loaded.model, tile)(np.zeros((1, tile, tile, 1), np.float32))
            else:
                size, channels = (
                    int(loaded.card["input"]["size"]),
                    int(loaded.card["input"].get("channels", 1)),
                )
                loaded.model(np.zeros((1, size, size, channels), np.float32), training=False)
        log.info("engine warm in %.2f s", time.perf_counter() - started)

    # ------------------------------------------------------------------------------------ analysis

    def analyze(self, frame: Frame, *, spacing_mm: float | None = None) -> EngineOutput:
        """Analyse a decoded image and render the pictures the result page shows."""
        from breastapp.imaging.decode import require_analysable_size

        require_analysable_size(frame)  # ImageTooSmall: too few pixels to segment, outline or draw
        output = self._run_pipeline(frame, spacing_mm)
        started = time.perf_counter()
        pictures = self._draw(frame, output)
        timings = {**output.result.timings_s, "draw": time.perf_counter() - started}
        result = dataclasses.replace(output.result, timings_s=timings, notes=self._notes(output.result))
        return EngineOutput(result, *pictures)

    def analyze_bytes(
        self, data: bytes, *, modality=None, view=None, laterality=None, spacing_mm=None, limits=None
    ) -> EngineOutput:
        """Decode an upload (DICOM, PNG, JPEG) and analyse it; ImagingError subclasses for bad files."""
        from breastapp.imaging.decode import decode

        started = time.perf_counter()
        frame = decode(
            data, limits=limits, modality=modality, view=view, laterality=laterality, spacing_mm=spacing_mm
        )
        decode_s = time.perf_counter() - started
        output = self.analyze(frame, spacing_mm=spacing_mm)
        timings = {"decode": decode_s, **output.result.timings_s}
        return dataclasses.replace(output, result=dataclasses.replace(output.result, timings_s=timings))

    def saliency(self, frame: Frame, lesion_index: int | None = None, *, spacing_mm=None) -> Saliency:
        """Grad-CAM for lesion `lesion_index` (1-based, as in the result) or the ultrasound image."""
        from breastapp.imaging.overlay import render_heatmap
        from breastapp.ml.gradcam import gradcam
        from breastapp.ml.pipeline import malignant_index

        output = self._run_pipeline(frame, spacing_mm)
        inputs = output.classifier_inputs
        position = 0 if frame.modality == "US" else (lesion_index or 1) - 1
        if not 0 <= position < len(inputs):
            raise IndexError(f"no lesion {lesion_index}: the analysis found {len(inputs)}")
        classifier = self._classifier_for(frame.modality)
        crop = inputs[position]
        heat = gradcam(classifier.model, crop, class_index=malignant_index(classifier.card))
        image = crop[..., 0] if crop.ndim == 3 else crop  # a guided classifier's 2nd channel is a map
        png = render_heatmap(Frame(pixels=image, modality=frame.modality, source_format="PNG"), heat)
        return Saliency(image, heat, png)

    # ------------------------------------------------------------------------------------- helpers

    def _classifier_for(self, modality: str) -> LoadedWeights:
        return self.weights(self.settings.us_classifier if modality == "US" else self.settings.mg_classifier)

    def _run_pipeline(self, frame: Frame, spacing_mm: float | None) -> PipelineOutput:
        s = self.settings
        if frame.modality == "MG":
            segmenters = [self.weights(name) for name in s.mg_segmentation]
            return analyze_mammogram(
                frame,
                segmenters,
                self.weights(s.mg_classifier),
                s.tiles(segmenters[0].card),
                flip_tta=self._flip_tta(segmenters[0].card),
                spacing_mm=spacing_mm,
            )
        if frame.modality == "US":
            segmenter = self.weights(s.us_segmentation)
            return analyze_ultrasound(
                frame, segmenter, self.weights(s.us_classifier), flip_tta=self._flip_tta(segmenter.card)
            )
        raise UnsupportedModality(
            f"Modality {frame.modality!r} is not analysed: only mammography and ultrasound."
        )

    def _flip_tta(self, segmentation_card: dict) -> bool:
        """The mirrored second pass: as the settings force it, else as the weights were measured with."""
        if self.settings.flip_tta is not None:
            return self.settings.flip_tta
        return card_flip_tta(segmentation_card)

    def _notes(self, result: AnalysisResult) -> tuple[str, ...]:
        untrained = [w.name for w in result.weights if self._weights[w.name].card.get("trained") is False]
        if untrained:
            log.warning("analysis used untrained weights: %s", ", ".join(untrained))
            return (*result.notes, UNTRAINED_NOTE)
        return result.notes

    @staticmethod
    def _draw(frame: Frame, output: PipelineOutput) -> tuple[bytes, bytes, bytes, bytes]:
        from breastapp.imaging.overlay import render_heatmap, render_mask, render_original, render_overlay

        return (
            render_original(frame),
            render_overlay(
                frame, output.result.lesions, lesion_mask=output.lesion_mask, not_searched=output.not_searched
            ),
            render_heatmap(frame, output.prob_map),
            render_mask(output.lesion_mask),
        )
