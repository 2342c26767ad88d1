"""Pectoral muscle of a canonical MLO mammogram, so that lesion search can leave it out.

In a mediolateral-oblique view the pectoral muscle is a bright, roughly triangular region in the upper
chest-wall corner. Its brightness and texture look like a mass to a tile-level network: the mammography
networks' largest false positives are there (models/README.md). Removing the muscle from the search
region is a classic step of mammography CAD (Kwok et al., IEEE TMI 2004: a straight-line approximation
of the muscle edge, refined by thresholding).

Method (canonical form: chest wall on the LEFT), on a copy shrunk like the breast mask:
1. smooth, and look only at the upper-left part of the breast's bounding box;
2. for a range of thresholds (quantiles of the breast's grey levels there), take the bright
   component(s) touching the top of the chest wall, and per row the extent of that component from the
   chest-wall edge;
3. fit a robust straight line (Huber) to those extents: a candidate muscle edge;
4. keep the candidates that look like a pectoral edge (the line slopes down towards the chest wall,
   meets the top and the chest wall inside the breast, and the extents follow it closely), and of those
   the one with the strongest grey-level step across it: a threshold too high cuts the muscle in two, one
   too low takes tissue in, and the true edge is where the image steps. The muscle is the part of the
   breast on the chest-wall side of that line.

When no threshold gives a plausible edge (CC views, small or faint muscles, unusual films), the mask is
empty: missing a muscle only leaves a false positive the networks already make, while cutting away
breast tissue could hide a lesion, so every test errs towards "no muscle".
"""

from __future__ import annotations

import cv2
import numpy as np

# Views that show no pectoral triangle in the upper chest-wall corner (DICOM CID 4014 view codes).
# MLO, ML, LM and unknown views are searched; the line tests reject images without a muscle.
VIEWS_WITHOUT_PECTORAL = frozenset({"CC", "XCC", "XCCL", "XCCM", "FB", "SIO"})

WORK_LONG_SIDE = 384  # pixels on the long side of the working copy (as for the breast mask)
SMOOTHING_SIGMA = 3.0  # working-copy pixels: removes fibre texture, keeps the muscle edge
SEARCH_FRACTION = 0.7  # the muscle lies within the top 70% rows and the chest-wall 70% columns of the box
# Thresholds tried (quantiles of the grey levels); the plausible edge with the strongest step wins.
BRIGHTNESS_QUANTILES = (0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5)
EDGE_BAND = 8  # working-copy pixels (~4 mm on a full film) on each side of a candidate edge
SEED_ROWS_FRACTION = 1 / 50  # the component must touch the top rows ...
SEED_COLS_FRACTION = 1 / 10  # ... near the chest wall
ROW_START_FRACTION = 1 / 20  # a row's bright run must start this close to the row's chest-wall edge
MIN_EDGE_ROWS = 10
# Plausible edge, col = top_width + slope * row (rows from the top of the breast, columns from its
# chest-wall edge): it runs down towards the chest wall, meets the top between 8% and 70% of the breast
# width and the chest wall between 10% and 100% of its height, and the rows' extents stray from it by
# less than 8% of the width (median), so an irregular bright blob is not taken for a muscle.
MAX_SLOPE = -0.2
TOP_WIDTH_RANGE = (0.08, 0.7)
HEIGHT_RANGE = (0.1, 1.0)
MAX_MEDIAN_RESIDUAL = 0.08


def shows_pectoral(view: str | None) -> bool:
    """False for views that cannot show the muscle in the corner; True for MLO-like and unknown views."""
    return (view or "").strip().upper() not in VIEWS_WITHOUT_PECTORAL


def pectoral_mask(pixels: np.ndarray, breast_mask: np.ndarray) -> np.ndarray:
    """Bool mask (pixels' shape) of the pectoral muscle; empty when no plausible muscle edge is found.

    `pixels` and `breast_mask` are a canonical mammogram (chest wall on the left) and its breast mask.
    """
    empty = np.zeros(breast_mask.shape, dtype=bool)
    if not breast_mask.any():
        return empty
    small_pixels, small_breast = _working_copy(pixels, breast_mask)
    line = _muscle_edge(small_pixels, small_breast)
    if line is None:
        return empty
    small = _chest_wall_side_of(line, small_breast)
    full = cv2.resize(small.astype(np.uint8), breast_mask.shape[::-1], interpolation=cv2.INTER_NEAREST)
    return full.astype(bool) & breast_mask


def _working_copy(pixels: np.ndarray, breast_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = min(1.0, WORK_LONG_SIDE / max(pixels.shape))
    shape = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
    small = cv2.resize(np.asarray(pixels, dtype=np.float32), shape, interpolation=cv2.INTER_AREA)
    breast = cv2.resize(breast_mask.astype(np.uint8), shape, interpolation=cv2.INTER_NEAREST).astype(bool)
    return cv2.GaussianBlur(small, (0, 0), SMOOTHING_SIGMA), breast


def _muscle_edge(pixels: np.ndarray, breast: np.ndarray) -> tuple[int, int, float, float] | None:
    """(row0, col0, top_width, slope) of the plausible edge line with the strongest step, or None."""
    rows, cols = np.flatnonzero(breast.any(axis=1)), np.flatnonzero(breast.any(axis=0))
    row0, col0 = int(rows[0]), int(cols[0])
    height, width = int(rows[-1]) + 1 - row0, int(cols[-1]) + 1 - col0
    search_rows, search_cols = max(1, int(SEARCH_FRACTION * height)), max(1, int(SEARCH_FRACTION * width))
    region = pixels[row0 : row0 + search_rows, col0 : col0 + search_cols]
    region_breast = breast[row0 : row0 + search_rows, col0 : col0 + search_cols]
    grey_levels = region[region_breast]
    if grey_levels.size < MIN_EDGE_ROWS:
        return None
    best, best_contrast = None, 0.0
    for level in np.quantile(grey_levels, BRIGHTNESS_QUANTILES):
        bright = (region > level) & region_breast
        extents = _corner_component_extents(bright, region_breast, height, width)
        if extents is None:
            continue
        top_width, slope = _robust_line(extents)
        if not _plausible_edge(extents, top_width, slope, height, width):
            continue
        contrast = _edge_contrast(region, region_breast, top_width, slope)
        if contrast > best_contrast:
            best, best_contrast = (row0, col0, top_width, slope), contrast
    return best


def _edge_contrast(region, breast, top_width: float, slope: float) -> float:
    """Mean grey level in a band just inside the line minus a band just outside: the muscle edge is the
    line with the strongest step (a threshold too high cuts the muscle, one too low takes tissue in)."""
    distance = _distance_past_edge(region.shape, 0, 0, top_width, slope)
    inside = breast & (distance < 0) & (distance >= -EDGE_BAND)
    outside = breast & (distance >= 0) & (distance < EDGE_BAND)
    if inside.sum() < EDGE_BAND or outside.sum() < EDGE_BAND:
        return 0.0
    return float(region[inside].mean() - region[outside].mean())


def _corner_component_extents(bright, breast, height: int, width: int) -> np.ndarray | None:
    """(n, 2) float (row, extent) of the bright component(s) touching the top of the chest wall."""
    _, labels = cv2.connectedComponents(bright.astype(np.uint8), connectivity=8)
    seed = labels[: max(3, int(height * SEED_ROWS_FRACTION)), : max(3, int(width * SEED_COLS_FRACTION))]
    seed_labels = np.unique(seed[seed > 0])
    if seed_labels.size == 0:
        return None
    component = np.isin(labels, seed_labels)
    # Per row: the run of the component that starts at the row's chest-wall edge (its first breast pixel).
    has_breast = breast.any(axis=1)
    wall = np.where(has_breast, np.argmax(breast, axis=1), 0)
    first = np.where(component.any(axis=1), np.argmax(component, axis=1), -1)
    starts_at_wall = (first >= 0) & (first - wall <= max(3, int(width * ROW_START_FRACTION)))
    after_first = np.arange(component.shape[1])[None, :] >= first[:, None]
    gaps = ~component & after_first
    run_end = np.where(gaps.any(axis=1), np.argmax(gaps, axis=1), component.shape[1])
    rows = np.flatnonzero(starts_at_wall)
    if rows.size < MIN_EDGE_ROWS:
        return None
    return np.stack([rows, run_end[rows]], axis=1).astype(np.float32)


def _robust_line(extents: np.ndarray) -> tuple[float, float]:
    """(top_width, slope) of col = top_width + slope * row, fitted with a Huber loss."""
    points = np.ascontiguousarray(extents[:, ::-1])  # (x = col, y = row) for OpenCV
    vx, vy, x0, y0 = cv2.fitLine(points, cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
    if abs(vy) < 1e-6:  # a horizontal edge is not a pectoral muscle
        return float("nan"), 0.0
    slope = float(vx / vy)
    return float(x0 - slope * y0), slope


def _plausible_edge(extents, top_width: float, slope: float, height: int, width: int) -> bool:
    if not np.isfinite(top_width) or slope >= MAX_SLOPE:
        return False
    meets_wall_at = -top_width / slope
    residual = float(np.median(np.abs(extents[:, 1] - (top_width + slope * extents[:, 0]))))
    return (
        TOP_WIDTH_RANGE[0] * width < top_width < TOP_WIDTH_RANGE[1] * width
        and HEIGHT_RANGE[0] * height < meets_wall_at < HEIGHT_RANGE[1] * height
        and residual < MAX_MEDIAN_RESIDUAL * width
    )


def _chest_wall_side_of(line: tuple[int, int, float, float], breast: np.ndarray) -> np.ndarray:
    return (_distance_past_edge(breast.shape, *line) < 0) & breast


def _distance_past_edge(shape, row0: int, col0: int, top_width: float, slope: float) -> np.ndarray:
    """Horizontal distance (pixels) of every pixel from the line col = col0 + top_width + slope * (row -
    row0): negative on the chest-wall (muscle) side."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (cols - col0) - (top_width + slope * (rows - row0))
