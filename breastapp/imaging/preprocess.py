"""Canonical form: every image the networks see is resampled, oriented and contrast-normalised the same way.

Training and inference both go through this module, so a network never meets an image prepared
differently from the ones it learnt on. Everything here is numpy/OpenCV (no TensorFlow), and every
geometric step is remembered in `CanonicalImage` so that results map back to the uploaded pixels.

Mammogram steps, in order (cheapest first: a 4664x3064 film is shrunk before anything else touches it):
1. resample to the working spacing (0.2 mm per pixel by default) with INTER_AREA;
2. breast mask: Otsu threshold on a smoothed, further-shrunk copy, keep the largest component
   (film labels and burned-in text are separate, smaller bright blobs), fill its holes, open/close;
3. mirror so the chest wall lies on one fixed side (left by default);
4. contrast normalisation (histogram equalisation over the breast region, CLAHE, or none);
5. pectoral muscle (imaging/pectoral.py) of MLO-like views, found on the equalised film: left out of the
   lesion search region.
Steps 1-3 and 5 do not depend on the contrast, so `canonical_views` makes them once for networks trained
on different contrasts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from breastapp.constants import DEFAULT_MG_SPACING_MM
from breastapp.imaging.frame import Frame
from breastapp.imaging.pectoral import pectoral_mask, shows_pectoral

log = logging.getLogger(__name__)

CONTRAST_METHODS = ("hist_eq", "clahe", "none")
FLIP_SIDES = ("left", "right")

# Spacing heuristic for files that say nothing: a full-field mammogram spans roughly 200-240 mm from top
# to bottom, so 240 mm / rows estimates the spacing. It is clamped to [0.05, 0.2] mm, the range of the
# digitised films (DDSM 0.05 mm, mini-MIAS 0.2 mm) and detectors (0.07-0.1 mm) the product meets: it never
# enlarges an image beyond the working spacing and never shrinks one more than CBIS-DDSM needs.
HEURISTIC_FIELD_MM = 240.0
HEURISTIC_SPACING_RANGE_MM = (0.05, 0.2)

# The mask is computed on a copy whose long side is at most this many pixels (~0.6 mm at 0.2 mm working
# spacing on a full film): plenty for a breast outline, and it keeps thresholding and morphology cheap.
MASK_WORK_LONG_SIDE = 384
# Opening kernel (pixels of that copy, ~9 mm) that separates the breast's body from thin film-edge strips.
MASK_BODY_KERNEL = 15
# When the left/right mass balance differs by less than this fraction, the image alone cannot say where
# the chest wall is and the DICOM laterality decides.
FLIP_AMBIGUITY = 0.1
HIST_BINS = 4096  # fine enough for 12-bit mammograms, small enough to equalise in microseconds


@dataclass(frozen=True)
class PreprocessSettings:
    """How mammograms are brought to canonical form (stored in each weights card as `input`)."""

    target_spacing_mm: float = DEFAULT_MG_SPACING_MM
    fallback_spacing_mm: float | None = None  # used when neither the file nor the caller gives one
    contrast: str = "hist_eq"  # "hist_eq" | "clahe" | "none"
    flip_to: str = "left"  # chest wall on the left of the canonical image

    def __post_init__(self):
        if self.contrast not in CONTRAST_METHODS:
            raise ValueError(f"contrast must be one of {CONTRAST_METHODS}, not {self.contrast!r}")
        if self.flip_to not in FLIP_SIDES:
            raise ValueError(f"flip_to must be one of {FLIP_SIDES}, not {self.flip_to!r}")
        if self.target_spacing_mm <= 0:
            raise ValueError("target_spacing_mm must be positive")


@dataclass(frozen=True)
class CanonicalImage:
    """An image in canonical form plus everything needed to map results back to the original pixels."""

    pixels: np.ndarray  # float32 [0,1], resampled, flipped, contrast-normalised
    breast_mask: np.ndarray  # bool, same shape
    breast_box: tuple[int, int, int, int]  # (row0, col0, row1, col1) in canonical pixels, end-exclusive
    flipped: bool  # True when columns were mirrored
    scale: float  # canonical pixels per original pixel (row axis; columns differ only by rounding)
    original_shape: tuple[int, int]
    spacing_mm: float | None  # canonical spacing actually used (None = unknown, heuristic applied)
    spacing_source: str  # "file" | "caller" | "settings" | "heuristic" | "unknown"
    pectoral_mask: np.ndarray | None = None  # bool, same shape; None = no muscle found or searched for

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]

    @property
    def search_mask(self) -> np.ndarray:
        """Where lesions are looked for: the breast without its pectoral muscle."""
        return search_region(self.breast_mask, self.pectoral_mask)


def search_region(breast: np.ndarray, pectoral: np.ndarray | None) -> np.ndarray:
    """The breast mask without the pectoral muscle (when one was found)."""
    return breast if pectoral is None else breast & ~pectoral


# ---------------------------------------------------------------------------------------------- spacing


def heuristic_spacing_mm(rows: int) -> float:
    """Guess the pixel spacing of a mammogram from its height alone (see HEURISTIC_FIELD_MM)."""
    low, high = HEURISTIC_SPACING_RANGE_MM
    return float(min(max(HEURISTIC_FIELD_MM / max(rows, 1), low), high))


def resolve_spacing(
    frame: Frame, settings: PreprocessSettings, spacing_mm: float | None = None
) -> tuple[float, str]:
    """The original pixel spacing to trust and where it came from: file, then caller, settings, heuristic.

    The file wins because it was measured; a caller's value is what a user typed for a plain PNG.
    Anisotropic spacings are averaged: mammography detectors and film scanners have square pixels.
    """
    if frame.spacing_mm is not None and all(s and s > 0 for s in frame.spacing_mm):
        return float(np.mean(frame.spacing_mm)), "file"
    if spacing_mm is not None and spacing_mm > 0:
        return float(spacing_mm), "caller"
    if settings.fallback_spacing_mm is not None and settings.fallback_spacing_mm > 0:
        return float(settings.fallback_spacing_mm), "settings"
    return heuristic_spacing_mm(frame.shape[0]), "heuristic"


def resize(pixels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize with INTER_AREA when shrinking (averages, no aliasing) and bilinear when enlarging."""
    rows, cols = shape
    if pixels.shape[:2] == (rows, cols):
        return pixels
    shrinking = rows * cols < pixels.shape[0] * pixels.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(pixels, (cols, rows), interpolation=interpolation)


# ------------------------------------------------------------------------------------------ breast mask


def breast_mask(pixels: np.ndarray) -> np.ndarray:
    """Bool mask of the breast: the largest bright region, holes filled, labels and text left out.

    Works on a shrunk, smoothed copy (speed, and smoothing keeps Otsu from splitting fatty tissue),
    then scales the outline back to `pixels`' shape.
    """
    if float(pixels.max()) - float(pixels.min()) < 1e-6:
        return np.zeros(pixels.shape, dtype=bool)
    small = _shrink_for_mask(pixels)
    small_u8 = cv2.GaussianBlur(_to_uint8(small), (5, 5), 0)
    binary = _threshold_breast(small_u8)
    binary = _drop_thin_attachments(binary)
    binary = _fill_largest_component(binary)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, kernel)
    full = cv2.resize(binary, (pixels.shape[1], pixels.shape[0]), interpolation=cv2.INTER_LINEAR)
    return full >= 128


def _threshold_breast(image_u8: np.ndarray) -> np.ndarray:
    """Foreground above a level halfway between the background's typical grey and Otsu's threshold.

    Otsu alone splits the dense tissue from everything else and loses the darker fatty rim inside the
    skin line; halfway down towards the background keeps that rim and stays clear of scanner noise.
    """
    otsu, _ = cv2.threshold(image_u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    below = image_u8[image_u8 <= otsu]
    background = float(np.median(below)) if below.size else 0.0
    level = background + 0.5 * (otsu - background)
    return np.where(image_u8 > level, 255, 0).astype(np.uint8)


def _drop_thin_attachments(binary: np.ndarray) -> np.ndarray:
    """Cut off thin bright structures touching the breast: film-edge strips, ruler marks, label bridges.

    A wide opening (about 9 mm) keeps only the breast's body; the thresholded pixels within one kernel
    of that body are then taken back, so the skin line keeps its detail while a strip along the film's
    edge survives only where it touches the breast.
    """
    size = MASK_BODY_KERNEL
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    body = cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)
    if not body.any():  # a tiny or thin image: nothing survives the wide opening, keep the threshold
        return cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    body = _fill_largest_component(body)
    return cv2.bitwise_and(binary, cv2.dilate(body, kernel))


def _shrink_for_mask(pixels: np.ndarray) -> np.ndarray:
    long_side = max(pixels.shape)
    if long_side <= MASK_WORK_LONG_SIDE:
        return pixels
    factor = MASK_WORK_LONG_SIDE / long_side
    shape = (max(1, round(pixels.shape[0] * factor)), max(1, round(pixels.shape[1] * factor)))
    return resize(pixels, shape)


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _fill_largest_component(binary: np.ndarray) -> np.ndarray:
    """Keep only the largest foreground component and fill every hole inside its outline."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return np.zeros_like(binary)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    component = np.where(labels == largest, 255, 0).astype(np.uint8)
    contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(binary)
    cv2.drawContours(filled, contours, -1, 255, thickness=cv2.FILLED)
    return filled


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(row0, col0, row1, col1), end-exclusive, of the mask's True pixels; (0, 0, 0, 0) when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return 0, 0, 0, 0
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


# ------------------------------------------------------------------------------------------ orientation


def chest_wall_side(pixels: np.ndarray, mask: np.ndarray, laterality: str | None = None) -> str:
    """Which image side ("left" or "right") the chest wall lies on.

    The breast is widest and most attenuating at the chest wall and tapers to the nipple, so the half
    holding more breast (mask weighted by intensity) is the chest-wall half. The image is trusted over
    the DICOM laterality because PNG uploads and re-exported films are often mirrored. Only when the two
    halves balance within FLIP_AMBIGUITY does laterality decide, using the DICOM mammography orientation
    (PS3.17 Patient Orientation: LCC "A\\R" -> left breast's chest wall on the image's left, RCC "P\\L" ->
    right breast's chest wall on the image's right).
    """
    weight = np.where(mask, pixels, 0.0) if mask.any() else pixels
    column_mass = weight.sum(axis=0, dtype=np.float64)
    half = column_mass.size // 2
    left, right = float(column_mass[:half].sum()), float(column_mass[column_mass.size - half :].sum())
    total = left + right
    if total > 0 and abs(left - right) / total >= FLIP_AMBIGUITY:
        return "left" if left > right else "right"
    if laterality in ("L", "R"):
        return "left" if laterality == "L" else "right"
    return "left" if left >= right else "right"


# --------------------------------------------------------------------------------------------- contrast


def normalize_contrast(pixels: np.ndarray, method: str, mask: np.ndarray | None = None) -> np.ndarray:
    """Contrast normalisation shared by training and inference; returns float32 in [0, 1].

    "hist_eq": histogram equalisation as in the B-Cir U-Net paper. With `mask`, the histogram is counted
    over the breast only: otherwise the black background (often half the film) takes half the output range.
    The mapping is a monotonic lookup table applied to every pixel, so background stays dark.
    "clahe": contrast-limited adaptive equalisation (8x8 tiles, clip 2.0) on an 8-bit copy.
    "none": values clipped to [0, 1], unchanged otherwise.
    """
    if method not in CONTRAST_METHODS:
        raise ValueError(f"contrast method must be one of {CONTRAST_METHODS}, not {method!r}")
    pixels = np.clip(np.asarray(pixels, dtype=np.float32), 0.0, 1.0)
    if method == "none":
        return pixels
    if method == "clahe":
        return _clahe(pixels)
    return _histogram_equalise(pixels, mask)


def _histogram_equalise(pixels: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    bins = (pixels * (HIST_BINS - 1) + 0.5).astype(np.int32)
    counted = bins[mask] if mask is not None and mask.any() else bins
    histogram = np.bincount(counted.ravel(), minlength=HIST_BINS).astype(np.float64)
    cdf = np.cumsum(histogram)
    first = cdf[np.flatnonzero(histogram)[0]]
    span = cdf[-1] - first
    if span <= 0:  # a single grey level: nothing to spread
        return pixels
    lut = np.clip((cdf - first) / span, 0.0, 1.0).astype(np.float32)
    return lut[bins]


def _clahe(pixels: np.ndarray) -> np.ndarray:
    # On 8 bits, OpenCV's clip limit means what the CLAHE literature means (a multiple of the mean count of
    # 256 bins). On 16-bit input it counts 65536 bins and maps onto the whole 16-bit range, so the 12-bit
    # copy this used to pass came back saturated: a mini-MIAS breast averaged 0.95, its masses 1.00.
    as_u8 = (pixels * 255.0 + 0.5).astype(np.uint8)
    equalised = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(as_u8)
    return equalised.astype(np.float32) / 255.0


# --------------------------------------------------------------------------------------- canonical form


def canonicalize_mammogram(
    frame: Frame, settings: PreprocessSettings | None = None, *, spacing_mm: float | None = None
) -> CanonicalImage:
    """Bring a mammogram to canonical form (see the module docstring for the steps and their order)."""
    settings = settings or PreprocessSettings()
    return canonical_views(frame, settings, (settings.contrast,), spacing_mm=spacing_mm)[settings.contrast]


def canonical_views(
    frame: Frame, settings: PreprocessSettings, contrasts: Iterable[str], *, spacing_mm: float | None = None
) -> dict[str, CanonicalImage]:
    """The canonical form of a mammogram in each of `contrasts` (`settings.contrast` is not used): one
    resampling, breast mask and muscle search shared by all, so networks trained on different contrasts
    see the same geometry and the same search region, and only their grey levels differ."""
    original_spacing, source = resolve_spacing(frame, settings, spacing_mm)
    scale = original_spacing / settings.target_spacing_mm
    rows, cols = frame.shape
    shape = (max(1, round(rows * scale)), max(1, round(cols * scale)))
    pixels = resize(np.asarray(frame.pixels, dtype=np.float32), shape)
    mask = breast_mask(pixels)
    flipped = chest_wall_side(pixels, mask, frame.laterality) != settings.flip_to
    if flipped:
        pixels, mask = pixels[:, ::-1], mask[:, ::-1]
    mask = np.ascontiguousarray(mask)
    equalised = np.ascontiguousarray(normalize_contrast(pixels, "hist_eq", mask))
    # The muscle detector's thresholds and edge test were tuned on equalised films; a network trained on
    # another contrast must not move the muscle (and with it the search region) as a side effect.
    pectoral = pectoral_mask(equalised, mask) if shows_pectoral(frame.view) else None
    log.debug(
        "canonical mammogram %s -> %s, spacing from %s, flipped=%s", frame.shape, shape, source, flipped
    )
    equalised_view = CanonicalImage(
        pixels=equalised,
        breast_mask=mask,
        breast_box=mask_box(mask),
        flipped=flipped,
        scale=shape[0] / rows,
        original_shape=(rows, cols),
        spacing_mm=None if source == "heuristic" else settings.target_spacing_mm,
        spacing_source=source,
        pectoral_mask=pectoral if pectoral is not None and pectoral.any() else None,
    )
    return {
        contrast: equalised_view
        if contrast == "hist_eq"
        else replace(equalised_view, pixels=np.ascontiguousarray(normalize_contrast(pixels, contrast, mask)))
        for contrast in contrasts
    }


def canonicalize_ultrasound(frame: Frame, size: int = 128, contrast: str = "none") -> CanonicalImage:
    """Resize the whole ultrasound image to size x size (the BUSI U-Net input); no mask, no flip.

    The aspect ratio is not kept, as in the BUSI paper; `to_original` undoes each axis separately.
    """
    rows, cols = frame.shape
    pixels = resize(np.asarray(frame.pixels, dtype=np.float32), (size, size))
    pixels = np.ascontiguousarray(normalize_contrast(pixels, contrast))
    spacing = None
    if frame.spacing_mm is not None and all(s and s > 0 for s in frame.spacing_mm):
        spacing = float(frame.spacing_mm[0]) * rows / size
    return CanonicalImage(
        pixels=pixels,
        breast_mask=np.ones((size, size), dtype=bool),
        breast_box=(0, 0, size, size),
        flipped=False,
        scale=size / rows,
        original_shape=(rows, cols),
        spacing_mm=spacing,
        spacing_source="file" if spacing is not None else "unknown",
    )


# ------------------------------------------------------------------------------------ back to original


def to_original(canon: CanonicalImage, rows, cols):
    """Map canonical (row, col) coordinates (scalars or arrays, pixel centres) to original coordinates.

    Undoes the mirror first, then the resampling, per axis (rounding makes the two axes' factors differ).
    """
    canon_rows, canon_cols = canon.shape
    orig_rows, orig_cols = canon.original_shape
    rows = np.asarray(rows, dtype=np.float64)
    cols = np.asarray(cols, dtype=np.float64)
    if canon.flipped:
        cols = (canon_cols - 1) - cols
    out_rows = (rows + 0.5) * (orig_rows / canon_rows) - 0.5
    out_cols = (cols + 0.5) * (orig_cols / canon_cols) - 0.5
    return out_rows, out_cols


def to_canonical(canon: CanonicalImage, rows, cols):
    """The inverse of `to_original`: original (row, col) coordinates to canonical ones."""
    canon_rows, canon_cols = canon.shape
    orig_rows, orig_cols = canon.original_shape
    out_rows = (np.asarray(rows, dtype=np.float64) + 0.5) * (canon_rows / orig_rows) - 0.5
    out_cols = (np.asarray(cols, dtype=np.float64) + 0.5) * (canon_cols / orig_cols) - 0.5
    if canon.flipped:
        out_cols = (canon_cols - 1) - out_cols
    return out_rows, out_cols


def map_to_original(canon: CanonicalImage, array: np.ndarray, interpolation: str = "linear") -> np.ndarray:
    """Bring a canonical-space map (probabilities, a mask) to the original image's shape and orientation.

    Bool arrays come back bool (resized by nearest neighbour); "nearest" keeps label values intact.
    """
    return _map(array, canon.flipped, canon.original_shape, interpolation, flip_first=True)


def map_to_canonical(canon: CanonicalImage, array: np.ndarray, interpolation: str = "nearest") -> np.ndarray:
    """Bring an original-space map (e.g. a ground-truth lesion mask) into canonical space, for training."""
    return _map(array, canon.flipped, canon.shape, interpolation, flip_first=False)


def _map(array: np.ndarray, flipped: bool, shape: tuple[int, int], interpolation: str, *, flip_first: bool):
    if interpolation not in ("linear", "nearest", "area"):
        raise ValueError(f"interpolation must be linear, nearest or area, not {interpolation!r}")
    is_bool = array.dtype == bool
    work = array.astype(np.uint8) if is_bool else np.asarray(array)
    if work.dtype == np.float64:
        work = work.astype(np.float32)
    if flipped and flip_first:
        work = work[:, ::-1]
    flag = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST, "area": cv2.INTER_AREA}[interpolation]
    if is_bool:
        flag = cv2.INTER_NEAREST
    if work.shape[:2] != tuple(shape):
        work = cv2.resize(np.ascontiguousarray(work), (shape[1], shape[0]), interpolation=flag)
    if flipped and not flip_first:
        work = work[:, ::-1]
    work = np.ascontiguousarray(work)
    return work.astype(bool) if is_bool else work
