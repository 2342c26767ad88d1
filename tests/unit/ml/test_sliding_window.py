"""Sliding window: exact coverage of the breast box, background skipping, blending, equivalence."""

from __future__ import annotations

import numpy as np
import pytest

from breastapp.ml.architectures import build
from breastapp.ml.sliding_window import (
    TileSettings,
    compiled_predictor,
    naive_predict,
    sliding_window_predict,
    tile_coverage,
    tile_origins,
)


@pytest.fixture(scope="module")
def bcir():
    return build("bcir_unet")


@pytest.fixture(scope="module")
def pointwise():
    """A 1x1-convolution network: its output at a pixel depends on that pixel only."""
    import keras

    inputs = keras.Input((None, None, 1))
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid", kernel_initializer="ones")(inputs)
    return keras.Model(inputs, outputs)


def _covered(shape, origins, tile):
    covered = np.zeros((max(shape[0], tile), max(shape[1], tile)), dtype=int)
    for r, c in origins:
        covered[r : r + tile, c : c + tile] += 1
    return covered


def test_zero_overlap_without_skipping_equals_the_naive_loop(bcir):
    image = np.random.default_rng(0).random((256, 384), dtype=np.float32)
    settings = TileSettings(tile=128, overlap=0, batch_size=4, min_breast_coverage=0.0)
    fast, tiles_run = sliding_window_predict(bcir, image, settings)
    assert tiles_run == 6
    np.testing.assert_allclose(fast, naive_predict(bcir, image, 128), atol=1e-5)


@pytest.mark.parametrize("box", [(0, 0, 700, 500), (13, 250, 795, 651), (100, 100, 230, 400), (5, 7, 70, 90)])
def test_tiles_cover_the_box_exactly_and_stay_inside_the_image(box):
    shape, settings = (800, 700), TileSettings(tile=256, overlap=32)
    origins = tile_origins(shape, settings, box)
    covered = _covered(shape, origins, settings.tile)
    row0, col0, row1, col1 = box
    assert covered[row0:row1, col0:col1].min() >= 1
    assert origins[:, 0].max() + settings.tile <= max(shape[0], settings.tile)
    assert origins[:, 1].max() + settings.tile <= max(shape[1], settings.tile)
    if row1 - row0 >= settings.tile:  # first tile at the box's start, last one ends at its edge
        assert origins[:, 0].min() == row0 and origins[:, 0].max() + settings.tile == row1
    if col1 - col0 >= settings.tile:
        assert origins[:, 1].min() == col0 and origins[:, 1].max() + settings.tile == col1


def test_an_image_smaller_than_a_tile_is_padded(bcir):
    image = np.random.default_rng(1).random((100, 72), dtype=np.float32)
    probs, tiles_run = sliding_window_predict(bcir, image, TileSettings(tile=128, overlap=16))
    assert probs.shape == image.shape and tiles_run == 1
    assert 0.0 <= probs.min() and probs.max() <= 1.0


def test_background_tiles_are_not_run_and_stay_zero(pointwise):
    image = np.full((512, 512), 0.5, dtype=np.float32)
    mask = np.zeros(image.shape, dtype=bool)
    mask[:, :200] = True  # breast on the left only
    settings = TileSettings(tile=128, overlap=0, min_breast_coverage=0.05)
    origins = tile_origins(image.shape, settings, mask=mask)
    assert set(origins[:, 1].tolist()) == {0, 128}
    np.testing.assert_allclose(tile_coverage(mask, np.array([[0, 128], [0, 256]]), 128), [72 / 128, 0])
    probs, tiles_run = sliding_window_predict(pointwise, image, settings, mask=mask)
    assert tiles_run == 8
    assert np.all(probs[:, 256:] == 0) and np.all(probs[:, :200] > 0.5)


def test_overlapping_tiles_blend_without_seams(pointwise):
    """Every tile agrees on a pointwise network, so the normalised blend must reproduce it exactly."""
    image = np.random.default_rng(2).random((300, 410), dtype=np.float32)
    probs, _ = sliding_window_predict(pointwise, image, TileSettings(tile=128, overlap=48, batch_size=3))
    expected = np.asarray(pointwise(image[None, :, :, None]))[0, :, :, 0]
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_one_trace_serves_every_image_size(pointwise):
    settings = TileSettings(tile=64, overlap=8, batch_size=4)
    for shape in [(64, 64), (200, 130), (333, 257)]:
        sliding_window_predict(pointwise, np.zeros(shape, np.float32), settings)
    assert compiled_predictor(pointwise, 64).experimental_get_tracing_count() == 1


def test_settings_refuse_impossible_values():
    with pytest.raises(ValueError):
        TileSettings(tile=64, overlap=64)
    with pytest.raises(ValueError):
        TileSettings(batch_size=0)
