"""Sliding-window segmentation of a canonical mammogram, in three small steps (as in nyukat's code):

1. `tile_origins`: where the tiles go. They cover the breast box exactly (the last tile of a row or
   column is aligned to the box's edge rather than running past it), and tiles holding less breast than
   `min_breast_coverage` are dropped: the black background, often half a film, is never run through
   the network (seed 003 skips dark patches for the same reason).
2. `predict_tiles`: tiles are cut and predicted `batch_size` at a time through ONE compiled callable per
   network and tile size, so the graph is traced once whatever the image size.
3. `stitch`: overlapping predictions are blended with a separable trapezoid weight (1 in the tile's
   interior, falling linearly across the overlap band) and normalised by the accumulated weight, so
   tile seams vanish and zero overlap reduces to plain tiling.

Memory stays bounded for any image: one batch of tiles plus two float32 maps of the canonical size.
`naive_predict` is the seed's loop (every tile, one `predict` call each), kept as the bench's baseline.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class TileSettings:
    """How a large image is cut into network-sized tiles."""

    tile: int = 256
    overlap: int = 32
    batch_size: int = 8
    min_breast_coverage: float = 0.05  # fraction of a tile's pixels inside the breast mask

    def __post_init__(self):
        if self.tile <= 0 or not 0 <= self.overlap < self.tile:
            raise ValueError(f"need tile > overlap >= 0, got tile={self.tile} overlap={self.overlap}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")

    @property
    def stride(self) -> int:
        return self.tile - self.overlap


# ------------------------------------------------------------------------------------------ 1. where


def axis_starts(start: int, stop: int, length: int, tile: int, stride: int) -> list[int]:
    """Tile starts covering [start, stop) along one axis of `length` (>= tile) pixels.

    The last tile ends exactly at `stop` (or at `length` when the span is shorter than a tile).
    """
    if stop - start <= tile:
        return [max(0, min(start, length - tile))]
    starts = list(range(start, stop - tile, stride))
    starts.append(stop - tile)
    return starts


def tile_origins(
    shape: tuple[int, int],
    settings: TileSettings,
    box: tuple[int, int, int, int] | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """(n, 2) int array of tile (row, col) origins over `box` of an image padded to at least one tile.

    With a `mask`, tiles whose mask coverage is below `settings.min_breast_coverage` are left out.
    """
    rows, cols = padded_shape(shape, settings.tile)
    row0, col0, row1, col1 = (
        box if box is not None and box[2] > box[0] and box[3] > box[1] else (0, 0, shape[0], shape[1])
    )
    grid = np.array(
        [
            (r, c)
            for r in axis_starts(row0, row1, rows, settings.tile, settings.stride)
            for c in axis_starts(col0, col1, cols, settings.tile, settings.stride)
        ],
        dtype=np.int64,
    )
    if mask is None or settings.min_breast_coverage <= 0:
        return grid
    coverage = tile_coverage(mask, grid, settings.tile)
    return grid[coverage >= settings.min_breast_coverage]


def padded_shape(shape: tuple[int, int], tile: int) -> tuple[int, int]:
    """Images smaller than a tile are padded (bottom/right, with black) up to one tile."""
    return max(shape[0], tile), max(shape[1], tile)


def tile_coverage(mask: np.ndarray, origins: np.ndarray, tile: int) -> np.ndarray:
    """Fraction of each tile's pixels set in `mask`, in O(1) per tile from a summed-area table."""
    table = cv2.integral(np.ascontiguousarray(mask, dtype=np.uint8))  # (rows + 1, cols + 1) sums
    r0 = np.minimum(origins[:, 0], mask.shape[0])
    c0 = np.minimum(origins[:, 1], mask.shape[1])
    r1 = np.minimum(origins[:, 0] + tile, mask.shape[0])
    c1 = np.minimum(origins[:, 1] + tile, mask.shape[1])
    inside = table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]
    return inside / float(tile * tile)


# ---------------------------------------------------------------------------------------- 2. predict

_compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_compiled_lock = threading.Lock()


def compiled_predictor(model, tile: int):
    """One traced graph per (network, tile size): batches of any length, no retracing per image."""
    import tensorflow as tf

    with _compiled_lock:
        per_model = _compiled.setdefault(model, {})
        if tile not in per_model:
            channels = model.input_shape[-1]
            signature = [tf.TensorSpec([None, tile, tile, channels], tf.float32)]

            @tf.function(input_signature=signature, reduce_retracing=True)
            def predict(batch):
                return model(batch, training=False)

            per_model[tile] = predict
        return per_model[tile]


def predict_tiles(
    predictor, image: np.ndarray, origins: np.ndarray, settings: TileSettings
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (origins, probabilities (b, tile, tile)) batch by batch; `image` is already padded."""
    tile = settings.tile
    for start in range(0, len(origins), settings.batch_size):
        batch_origins = origins[start : start + settings.batch_size]
        batch = np.empty((len(batch_origins), tile, tile, 1), dtype=np.float32)
        for i, (r, c) in enumerate(batch_origins):
            batch[i, :, :, 0] = image[r : r + tile, c : c + tile]
        yield batch_origins, np.asarray(predictor(batch))[..., 0]


# ------------------------------------------------------------------------------------------ 3. stitch


def blend_weights(tile: int, overlap: int) -> np.ndarray:
    """Separable trapezoid: 1 inside, linear ramp across the overlap band, never zero (edges count)."""
    if overlap == 0:
        return np.ones((tile, tile), dtype=np.float32)
    position = np.arange(tile, dtype=np.float32) + 0.5
    ramp = np.minimum(1.0, np.minimum(position, tile - position) / overlap)
    return np.outer(ramp, ramp).astype(np.float32)


def stitch(batches, shape: tuple[int, int], settings: TileSettings) -> np.ndarray:
    """Blend predicted tiles into one probability map of `shape`; pixels no tile covered are 0."""
    padded = padded_shape(shape, settings.tile)
    total = np.zeros(padded, dtype=np.float32)
    weight_sum = np.zeros(padded, dtype=np.float32)
    weights = blend_weights(settings.tile, settings.overlap)
    tile = settings.tile
    for origins, probs in batches:
        for (r, c), prob in zip(origins, probs, strict=True):
            total[r : r + tile, c : c + tile] += prob * weights
            weight_sum[r : r + tile, c : c + tile] += weights
    np.divide(total, weight_sum, out=total, where=weight_sum > 0)
    return total[: shape[0], : shape[1]]


# ------------------------------------------------------------------------------------------ together


def pad_to_tile(image: np.ndarray, tile: int) -> np.ndarray:
    rows, cols = padded_shape(image.shape, tile)
    if (rows, cols) == image.shape:
        return np.ascontiguousarray(image, dtype=np.float32)
    padded = np.zeros((rows, cols), dtype=np.float32)
    padded[: image.shape[0], : image.shape[1]] = image
    return padded


def sliding_window_predict(
    model,
    image: np.ndarray,
    settings: TileSettings,
    *,
    mask: np.ndarray | None = None,
    box: tuple[int, int, int, int] | None = None,
) -> tuple[np.ndarray, int]:
    """Probability map (float32, image's shape) and the number of tiles actually run."""
    origins = tile_origins(image.shape, settings, box, mask)
    predictor = compiled_predictor(model, settings.tile)
    padded = pad_to_tile(image, settings.tile)
    batches = predict_tiles(predictor, padded, origins, settings)
    return stitch(batches, image.shape, settings), len(origins)


def mirrored_mean_predict(
    model,
    image: np.ndarray,
    settings: TileSettings,
    *,
    mask: np.ndarray | None = None,
    box: tuple[int, int, int, int] | None = None,
) -> tuple[np.ndarray, int]:
    """The mirrored second pass: the mean of the image's map and its left-right mirror's map mirrored back
    (mask and box mirrored with it), and the tiles both passes ran."""
    prob, count = sliding_window_predict(model, image, settings, mask=mask, box=box)
    cols = image.shape[1]
    mirrored_box = None if box is None else (box[0], cols - box[3], box[2], cols - box[1])
    mirrored_mask = None if mask is None else mask[:, ::-1]
    mirrored, mirrored_count = sliding_window_predict(
        model, np.ascontiguousarray(image[:, ::-1]), settings, mask=mirrored_mask, box=mirrored_box
    )
    return (prob + mirrored[:, ::-1]) / 2, count + mirrored_count


def naive_predict(model, image: np.ndarray, tile: int) -> np.ndarray:
    """The seed's loop: every non-overlapping tile, one `model.predict` call each, no skipping.

    The image is padded to a multiple of the tile and the result cropped back. Kept as the baseline the
    bench measures `sliding_window_predict` against.
    """
    rows = -(-image.shape[0] // tile) * tile
    cols = -(-image.shape[1] // tile) * tile
    padded = np.zeros((rows, cols), dtype=np.float32)
    padded[: image.shape[0], : image.shape[1]] = image
    out = np.zeros_like(padded)
    for r in range(0, rows, tile):
        for c in range(0, cols, tile):
            patch = padded[None, r : r + tile, c : c + tile, None]
            out[r : r + tile, c : c + tile] = model.predict(patch, verbose=0)[0, :, :, 0]
    return out[: image.shape[0], : image.shape[1]]
