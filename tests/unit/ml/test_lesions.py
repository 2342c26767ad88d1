"""Lesion extraction on synthetic probability maps: geometry back in original pixels, sizes, filters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from breastapp.imaging.preprocess import CanonicalImage, map_to_original
from breastapp.ml.lesions import canonical_box, find_regions, lesion_crop, original_box


def _canon(shape=(200, 150), original_shape=(400, 300), flipped=True) -> CanonicalImage:
    return CanonicalImage(
        pixels=np.zeros(shape, np.float32),
        breast_mask=np.ones(shape, bool),
        breast_box=(0, 0, *shape),
        flipped=flipped,
        scale=shape[0] / original_shape[0],
        original_shape=original_shape,
        spacing_mm=0.2,
        spacing_source="caller",
    )


def _box_of(mask):
    rows, cols = np.nonzero(mask)
    return rows.min(), cols.min(), rows.max() + 1, cols.max() + 1


@pytest.mark.parametrize("flipped", [True, False])
def test_boxes_map_back_through_flip_and_scale(flipped):
    canon = _canon(flipped=flipped)
    prob = np.zeros(canon.shape, np.float32)
    prob[20:40, 10:30] = 0.9
    regions, kept = find_regions(prob, canon, threshold=0.5, spacing_mm=(0.1, 0.1))
    (region,) = regions
    expected_cols = (240, 280) if flipped else (20, 60)  # mirrored: canonical cols [120, 140) before scaling
    assert region.canon_box == (20, 10, 40, 30)
    assert region.box == (40, expected_cols[0], 80, expected_cols[1])
    assert region.box == tuple(int(v) for v in _box_of(map_to_original(canon, kept)))
    assert region.centroid == pytest.approx((59.5, sum(expected_cols) / 2 - 0.5))
    assert region.area_px == 1600
    assert region.area_mm2 == pytest.approx(16.0)  # 400 canonical pixels of 0.2 mm x 0.2 mm
    assert region.max_diameter_mm == pytest.approx(4.0 * math.sqrt(2))
    assert region.seg_prob_max == pytest.approx(0.9) and region.seg_prob_mean == pytest.approx(0.9)


def test_original_and_canonical_boxes_are_inverse():
    canon = _canon(shape=(333, 251), original_shape=(1000, 754))
    for box in [(0, 0, 10, 10), (100, 37, 180, 250), (300, 1, 333, 2)]:
        back = canonical_box(canon, original_box(canon, box))
        assert all(abs(a - b) <= 1 for a, b in zip(back, box, strict=True))


def test_small_components_are_dropped_by_area_in_mm2_or_pixels():
    canon = _canon(flipped=False)
    prob = np.zeros(canon.shape, np.float32)
    prob[10:12, 10:12] = 1.0  # 4 canonical px = 0.16 mm2
    prob[50:70, 50:70] = 0.8  # 400 px = 16 mm2
    regions, kept = find_regions(prob, canon, threshold=0.5, min_area_mm2=1.0, spacing_mm=(0.1, 0.1))
    assert [r.canon_box for r in regions] == [(50, 50, 70, 70)]
    assert not kept[10:12, 10:12].any() and kept[50:70, 50:70].all()
    regions, _ = find_regions(prob, canon, threshold=0.5, min_area_px=3, spacing_mm=None)
    assert len(regions) == 2
    assert all(r.area_mm2 is None and r.max_diameter_mm is None for r in regions)
    assert regions[0].area_px > regions[1].area_px  # largest first


def test_at_most_max_regions_are_kept():
    canon = _canon(flipped=False)
    prob = np.zeros(canon.shape, np.float32)
    for i in range(15):
        prob[5 + 12 * i : 10 + 12 * i, 5:10] = 0.7
    regions, _ = find_regions(prob, canon, threshold=0.5, max_regions=4)
    assert len(regions) == 4


def test_lesion_crop_is_square_centred_and_padded_at_the_edge():
    pixels = np.zeros((100, 100), np.float32)
    pixels[40:60, 40:60] = 1.0
    crop = lesion_crop(pixels, (40, 40, 60, 60), margin=0.5, size=40)
    assert crop.shape == (40, 40)
    assert crop[10:30, 10:30].min() == pytest.approx(1.0) and crop[:8].max() == 0.0
    edge = lesion_crop(pixels, (0, 0, 10, 10), margin=0.5, size=32)  # 32 px crop centred on (5, 5)
    assert edge.shape == (32, 32) and edge[:10].max() == 0.0
