"""Training tiles cut from canonical images: lesion-centred tiles with shifted copies, plus background.

Seed 003 crops a 2^n x 2^n ROI centred on each lesion and 4 more whose centres are shifted by a random
amount, so the network does not learn "the lesion is always in the middle". Background tiles come
from breast tissue away from lesions (at least `min_breast` of the tile inside the breast mask), in a
set ratio to the lesion tiles, so that the network also learns what normal tissue looks like and the
sliding window does not light up everywhere. Optionally a share of them are hard negatives: centred on
the breast's brightest pixels (dense fibroglandular tissue), the tissue the networks mistake for masses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from breastapp.ml.datasets.prepare import CanonicalSample
from breastapp.ml.lesions import centred_window as crop  # the engine's zero-padded window


@dataclass(frozen=True)
class TileSettings:
    tile: int = 128
    shifted_copies: int = 4  # seed 003's 4 randomly shifted crops per lesion
    max_shift_fraction: float = 0.35  # shift of the centre, as a fraction of the tile side
    background_ratio: float = 1.0  # background tiles per lesion tile
    min_breast: float = 0.5  # a background tile must be at least this much breast
    # Share of background tiles centred on bright tissue (above the breast's `hard_percentile`
    # intensity): random tiles are mostly fat, so the network rarely sees dense normal tissue.
    hard_negative_fraction: float = 0.0
    hard_percentile: float = 90.0


def lesion_centres(sample: CanonicalSample) -> list[tuple[int, int]]:
    """Centre (row, col) of each lesion's box."""
    return [((r0 + r1) // 2, (c0 + c1) // 2) for r0, c0, r1, c1 in sample.lesion_boxes]


def lesion_tiles(sample: CanonicalSample, settings: TileSettings, rng: np.random.Generator):
    """Centred tile plus `shifted_copies` randomly shifted ones for every lesion: lists of (image, mask)."""
    images, masks = [], []
    max_shift = int(settings.tile * settings.max_shift_fraction)
    for row, col in lesion_centres(sample):
        shifts = [(0, 0)] + [
            tuple(rng.integers(-max_shift, max_shift + 1, size=2)) for _ in range(settings.shifted_copies)
        ]
        for d_row, d_col in shifts:
            images.append(crop(sample.pixels, row + d_row, col + d_col, settings.tile))
            masks.append(crop(sample.lesion_mask, row + d_row, col + d_col, settings.tile))
    return images, masks


def background_tiles(sample: CanonicalSample, count: int, settings: TileSettings, rng: np.random.Generator):
    """Up to `count` tiles of breast tissue containing no lesion pixel; `hard_negative_fraction` of
    them centred on the breast's brightest tissue."""
    hard_count = int(round(count * settings.hard_negative_fraction))
    images, masks = [], []
    if hard_count:
        bright = bright_tissue_mask(sample, settings.hard_percentile)
        images, masks = _tiles_centred_in(sample, bright, hard_count, settings, rng)
    rest = count - len(images)  # a breast without enough bright places is topped up at random
    more_images, more_masks = _tiles_centred_in(sample, sample.breast_mask, rest, settings, rng)
    return images + more_images, masks + more_masks


def bright_tissue_mask(sample: CanonicalSample, percentile: float) -> np.ndarray:
    """Breast pixels brighter than the breast's `percentile`-th intensity percentile."""
    breast = sample.breast_mask.astype(bool)
    if not breast.any():
        return breast
    return breast & (sample.pixels > np.percentile(sample.pixels[breast], percentile))


def _tiles_centred_in(sample, centres_mask, count: int, settings: TileSettings, rng: np.random.Generator):
    """Up to `count` lesion-free tiles, at least `min_breast` breast, centred on pixels of `centres_mask`."""
    images, masks = [], []
    rows, cols = np.nonzero(centres_mask)
    if rows.size == 0 or count <= 0:
        return images, masks
    for _ in range(count * 20):  # bounded rejection sampling: small breasts may offer few places
        if len(images) == count:
            break
        pick = rng.integers(rows.size)
        row, col = int(rows[pick]), int(cols[pick])
        breast = crop(sample.breast_mask, row, col, settings.tile)
        lesion = crop(sample.lesion_mask, row, col, settings.tile)
        if breast.mean() >= settings.min_breast and not lesion.any():
            images.append(crop(sample.pixels, row, col, settings.tile))
            masks.append(lesion)
    return images, masks


def build_tile_set(samples, settings: TileSettings, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """All lesion tiles of `samples` plus background tiles spread over every sample, as float32
    arrays (N, tile, tile, 1) for images and masks."""
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for sample in samples:
        tile_images, tile_masks = lesion_tiles(sample, settings, rng)
        images += tile_images
        masks += tile_masks
    wanted = int(round(max(len(images), 1) * settings.background_ratio))
    per_sample = int(np.ceil(wanted / max(len(samples), 1)))
    background_images, background_masks = [], []
    for index in rng.permutation(len(samples)):
        tile_images, tile_masks = background_tiles(samples[index], per_sample, settings, rng)
        background_images += tile_images
        background_masks += tile_masks
    images += background_images[:wanted]
    masks += background_masks[:wanted]
    return _stack(images), _stack(masks)


def _stack(arrays) -> np.ndarray:
    return (
        np.stack([a.astype(np.float32) for a in arrays])[..., None]
        if arrays
        else np.zeros((0, 1, 1, 1), "float32")
    )
