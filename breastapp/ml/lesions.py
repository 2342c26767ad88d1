"""From a probability map to lesions: threshold, connected components, geometry in original pixels.

Everything the user sees is in the coordinates of the file they uploaded, so each component's box,
centroid and area are mapped back through the canonical form's flip and scale (preprocess's
`to_original`). Sizes in millimetres need the ORIGINAL pixel spacing; without one they stay None
rather than being guessed.

`lesion_crop` is the one crop rule shared by classifier training and inference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from breastapp.imaging.preprocess import CanonicalImage, resize, to_canonical, to_original

MAX_REGIONS = 10  # the largest components are kept; an untrained network can light up hundreds
# Smallest region reported, unless a card says otherwise: 4 mm² (a 2 mm blob; the smallest mini-MIAS mass
# is 6 mm across), or 8 canonical pixels when the spacing is unknown (ultrasound). Written into every
# trained segmentation card's `thresholds`.
DEFAULT_REGION_THRESHOLDS = {"min_lesion_area_mm2": 4.0, "min_lesion_area_px": 8}
MIN_CROP_PX = 32  # smallest crop side in canonical pixels (tiny lesions still get context)


@dataclass(frozen=True)
class Region:
    """One connected component of the thresholded map, measured in canonical and original pixels."""

    canon_box: tuple[int, int, int, int]  # (row0, col0, row1, col1), end-exclusive, canonical pixels
    box: tuple[int, int, int, int]  # the same, original pixels
    centroid: tuple[float, float]  # (row, col), original pixels
    area_px: int  # original pixels
    area_mm2: float | None
    max_diameter_mm: float | None
    seg_prob_max: float
    seg_prob_mean: float


def find_regions(
    prob: np.ndarray,
    canon: CanonicalImage,
    *,
    threshold: float,
    min_area_mm2: float = 0.0,
    min_area_px: int = 1,
    spacing_mm: tuple[float, float] | None = None,
    max_regions: int = MAX_REGIONS,
) -> tuple[list[Region], np.ndarray]:
    """Components of `prob >= threshold` at least `min_area_mm2` (or, without a spacing, `min_area_px`
    canonical pixels) in size, largest first, at most `max_regions`; and the bool mask of those kept.

    `spacing_mm` is the ORIGINAL image's (row, col) pixel spacing, None when unknown.
    """
    binary = (prob >= threshold).astype(np.uint8)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(binary, connectivity=8)
    canon_spacing = canonical_spacing(canon, spacing_mm)
    pixel_mm2 = canon_spacing[0] * canon_spacing[1] if canon_spacing else None
    smallest = min_region_px(min_area_mm2, min_area_px, pixel_mm2)
    kept = largest_components(stats[:, cv2.CC_STAT_AREA], smallest, max_regions)
    regions = [
        _measure(label, prob, labels, stats[label], centroids[label], canon, canon_spacing) for label in kept
    ]
    is_kept = np.zeros(count, dtype=bool)
    is_kept[kept] = True
    return regions, is_kept[labels]


def largest_components(areas: np.ndarray, min_area_px: float, max_regions: int | None) -> np.ndarray:
    """Labels (1..n) of the components a user is shown, largest first: `areas` is indexed by label (0 =
    background), components under `min_area_px` are dropped, at most `max_regions` are kept. The
    evaluation's FROC candidates use the same rule (evaluate/froc.candidates), so the false positives it
    counts are the regions a user would be shown."""
    labels = np.flatnonzero(areas[1:] >= min_area_px) + 1
    return labels[np.argsort(-areas[labels], kind="stable")][:max_regions]


def min_region_px(min_area_mm2: float, min_area_px: float, pixel_mm2: float | None) -> float:
    """Smallest reported region in canonical pixels: `min_area_mm2` when the pixel area is known, else
    `min_area_px`."""
    return min_area_mm2 / pixel_mm2 if pixel_mm2 else float(min_area_px)


def canonical_min_region_px(thresholds: dict, modality: str, spacing_mm: float | None) -> float:
    """`min_region_px` for a card's `thresholds` and canonical spacing (mammograms; ultrasound has none)."""
    pixel_mm2 = spacing_mm**2 if modality == "MG" and spacing_mm else None
    return min_region_px(
        float(thresholds.get("min_lesion_area_mm2", 0.0)),
        float(thresholds.get("min_lesion_area_px", 1)),
        pixel_mm2,
    )


def canonical_spacing(
    canon: CanonicalImage, original_spacing_mm: tuple[float, float] | None
) -> tuple[float, float] | None:
    """(row, col) millimetres per canonical pixel, from the original spacing and the resampling."""
    if original_spacing_mm is None:
        return None
    (canon_rows, canon_cols), (rows, cols) = canon.shape, canon.original_shape
    return original_spacing_mm[0] * rows / canon_rows, original_spacing_mm[1] * cols / canon_cols


def _measure(label, prob, labels, stat, centroid, canon, canon_spacing) -> Region:
    col0, row0 = int(stat[cv2.CC_STAT_LEFT]), int(stat[cv2.CC_STAT_TOP])
    row1, col1 = row0 + int(stat[cv2.CC_STAT_HEIGHT]), col0 + int(stat[cv2.CC_STAT_WIDTH])
    inside = labels[row0:row1, col0:col1] == label
    values = prob[row0:row1, col0:col1][inside]
    area = int(stat[cv2.CC_STAT_AREA])
    (canon_rows, canon_cols), (rows, cols) = canon.shape, canon.original_shape
    centroid_row, centroid_col = to_original(canon, centroid[1], centroid[0])
    return Region(
        canon_box=(row0, col0, row1, col1),
        box=original_box(canon, (row0, col0, row1, col1)),
        centroid=(float(centroid_row), float(centroid_col)),
        area_px=max(1, round(area * (rows / canon_rows) * (cols / canon_cols))),
        area_mm2=None if canon_spacing is None else area * canon_spacing[0] * canon_spacing[1],
        max_diameter_mm=None if canon_spacing is None else max_diameter_mm(inside, canon_spacing),
        seg_prob_max=float(values.max()),
        seg_prob_mean=float(values.mean()),
    )


def max_diameter_mm(component: np.ndarray, spacing: tuple[float, float]) -> float:
    """Longest distance across a component (between convex-hull pixel corners), in millimetres."""
    contours, _ = cv2.findContours(component.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    points = cv2.convexHull(np.concatenate(contours)).reshape(-1, 2).astype(np.float64)
    # Pixel centres -> the four corners of each hull pixel, so a single pixel measures one pixel across.
    corners = np.concatenate([points + offset for offset in ((0, 0), (1, 0), (0, 1), (1, 1))])
    mm = corners[:, ::-1] * np.asarray(spacing)  # (col, row) -> (row, col) in mm
    distances = np.sqrt(((mm[:, None, :] - mm[None, :, :]) ** 2).sum(axis=-1))
    return float(distances.max())


def original_box(canon: CanonicalImage, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Canonical (row0, col0, row1, col1) end-exclusive box -> the smallest covering original box."""
    rows, cols = to_original(canon, np.array([box[0], box[2]]) - 0.5, np.array([box[1], box[3]]) - 0.5)
    return _covering_box(rows + 0.5, cols + 0.5, canon.original_shape)


def canonical_box(canon: CanonicalImage, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Original box -> canonical box (e.g. to crop a lesion from another canonical form)."""
    rows, cols = to_canonical(canon, np.array([box[0], box[2]]) - 0.5, np.array([box[1], box[3]]) - 0.5)
    return _covering_box(rows + 0.5, cols + 0.5, canon.shape)


def _covering_box(row_edges, col_edges, shape) -> tuple[int, int, int, int]:
    """Edges (in any order, mirroring swaps them) -> integer end-exclusive box clipped to `shape`."""
    eps = 1e-6  # float noise must not grow a box by a whole pixel
    row0 = max(0, math.floor(min(row_edges) + eps))
    row1 = min(shape[0], math.ceil(max(row_edges) - eps))
    col0 = max(0, math.floor(min(col_edges) + eps))
    col1 = min(shape[1], math.ceil(max(col_edges) - eps))
    return int(row0), int(col0), int(max(row1, row0 + 1)), int(max(col1, col0 + 1))


def lesion_crop(pixels: np.ndarray, box, margin: float, size: int) -> np.ndarray:
    """Square crop centred on a lesion box, side max(h, w) * (1 + 2 * margin) (at least MIN_CROP_PX),
    zero-padded where it leaves the image, resized to size x size.

    Training crops with this same function: a classifier must see lesions framed the way it learnt them.
    """
    row0, col0, row1, col1 = (int(v) for v in box)
    side = max(MIN_CROP_PX, int(round(max(row1 - row0, col1 - col0) * (1 + 2 * margin))))
    square = centred_window(pixels, (row0 + row1) // 2, (col0 + col1) // 2, side)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)


def guided_lesion_view(
    pixels: np.ndarray, prob: np.ndarray, threshold: float, margin: float, size: int
) -> np.ndarray:
    """(size, size, 2): the image and the guide map, cropped around the guide's most probable lesion.

    The lesion is the component of `prob >= threshold` holding the most probability (its sum), framed
    as `lesion_crop` frames a lesion box. `prob` may be coarser than `pixels` (the segmenter runs at a
    lower resolution than the classifier's source image): the box is scaled to `pixels`. With no
    component the view is the whole image, so a normal scan still fills the view. Classifier training
    and the engine both call this, so a lesion is framed the same way in both.
    """
    prob_full = resize(prob.astype(np.float32), pixels.shape[:2])
    box = guide_lesion_box(prob, threshold)
    if box is None:
        views = [resize(image, (size, size)) for image in (pixels, prob_full)]
    else:
        row_scale, col_scale = pixels.shape[0] / prob.shape[0], pixels.shape[1] / prob.shape[1]
        scales = (row_scale, col_scale, row_scale, col_scale)
        box = tuple(int(round(edge * scale)) for edge, scale in zip(box, scales, strict=True))
        views = [lesion_crop(image, box, margin, size) for image in (pixels, prob_full)]
    return np.stack(views, axis=-1).astype(np.float32)


def guide_lesion_box(prob: np.ndarray, threshold: float) -> tuple[int, int, int, int] | None:
    """(row0, col0, row1, col1), end-exclusive, of the component of `prob >= threshold` with the largest
    probability sum; None when no pixel reaches the threshold."""
    count, labels = cv2.connectedComponents((prob >= threshold).astype(np.uint8), connectivity=8)
    if count <= 1:
        return None
    mass = np.bincount(labels.ravel(), weights=prob.ravel(), minlength=count)[1:]
    rows, cols = np.nonzero(labels == 1 + int(np.argmax(mass)))
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def centred_window(array: np.ndarray, center_row: int, center_col: int, side: int) -> np.ndarray:
    """side x side window centred on (row, col), zero-padded where it leaves the image."""
    row0, col0 = center_row - side // 2, center_col - side // 2
    out = np.zeros((side, side), dtype=array.dtype)
    src_r0, src_c0 = max(row0, 0), max(col0, 0)
    src_r1, src_c1 = min(row0 + side, array.shape[0]), min(col0 + side, array.shape[1])
    if src_r1 > src_r0 and src_c1 > src_c0:
        out[src_r0 - row0 : src_r1 - row0, src_c0 - col0 : src_c1 - col0] = array[
            src_r0:src_r1, src_c0:src_c1
        ]
    return out
