"""Canonical form on synthetic breasts (known geometry) and on a real mini-MIAS film."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from breastapp.imaging.frame import Frame
from breastapp.imaging.preprocess import (
    PreprocessSettings,
    canonicalize_mammogram,
    canonicalize_ultrasound,
    heuristic_spacing_mm,
    map_to_canonical,
    map_to_original,
    normalize_contrast,
    to_canonical,
    to_original,
)


def synthetic_breast(rows=400, cols=300, chest_wall="left", label=True) -> np.ndarray:
    """A half-ellipse 'breast' against one side, with an optional bright film label far from it."""
    image = np.zeros((rows, cols), dtype=np.float32)
    centre = (0, rows // 2) if chest_wall == "left" else (cols - 1, rows // 2)
    cv2.ellipse(image, centre, (int(cols * 0.6), int(rows * 0.4)), 0, 0, 360, 0.5, thickness=-1)
    image[rows // 2 - 10 : rows // 2 + 10, :20] += 0.2 if chest_wall == "left" else 0.0  # denser tissue
    if label:
        label_col = cols - 40 if chest_wall == "left" else 10
        image[20:50, label_col : label_col + 30] = 1.0  # bright label, brighter than any breast tissue
    rng = np.random.default_rng(0)
    return np.clip(image + rng.normal(0, 0.01, image.shape).astype(np.float32), 0, 1)


def frame_of(pixels, spacing=None, laterality=None, modality="MG") -> Frame:
    return Frame(
        pixels=pixels, modality=modality, source_format="PNG", spacing_mm=spacing, laterality=laterality
    )


def test_chest_wall_on_the_right_is_mirrored_to_the_left():
    canon = canonicalize_mammogram(frame_of(synthetic_breast(chest_wall="right")), PreprocessSettings())
    assert canon.flipped
    left, right = canon.breast_mask[:, :150].sum(), canon.breast_mask[:, 150:].sum()
    assert left > 3 * right


def test_chest_wall_already_left_is_not_mirrored():
    canon = canonicalize_mammogram(frame_of(synthetic_breast(chest_wall="left")), PreprocessSettings())
    assert not canon.flipped


def test_flip_to_right_setting_mirrors_a_left_breast():
    settings = PreprocessSettings(flip_to="right")
    assert canonicalize_mammogram(frame_of(synthetic_breast(chest_wall="left")), settings).flipped


def test_laterality_breaks_a_tie_when_the_image_is_symmetric():
    symmetric = np.zeros((200, 200), dtype=np.float32)
    symmetric[50:150, 50:150] = 0.6
    settings = PreprocessSettings()
    assert canonicalize_mammogram(frame_of(symmetric, laterality="R"), settings).flipped
    assert not canonicalize_mammogram(frame_of(symmetric, laterality="L"), settings).flipped


def test_mask_ignores_a_separate_bright_label():
    image = synthetic_breast(chest_wall="left", label=True)
    canon = canonicalize_mammogram(frame_of(image), PreprocessSettings(contrast="none"))
    assert not canon.breast_mask[20:50, 260:290].any(), "the film label must not be part of the breast"
    assert canon.breast_mask[200, 50], "the breast itself is masked"
    row0, col0, row1, col1 = canon.breast_box
    assert col0 == 0 and col1 < 260 and row0 > 20


def test_mask_is_empty_for_a_blank_image():
    canon = canonicalize_mammogram(frame_of(np.zeros((64, 64), np.float32)), PreprocessSettings())
    assert not canon.breast_mask.any()
    assert canon.breast_box == (0, 0, 0, 0)


def test_resample_factor_follows_file_spacing():
    image = synthetic_breast(rows=800, cols=600)
    canon = canonicalize_mammogram(frame_of(image, spacing=(0.05, 0.05)), PreprocessSettings())
    assert canon.shape == (200, 150)
    assert canon.scale == pytest.approx(0.25)
    assert canon.spacing_source == "file" and canon.spacing_mm == 0.2
    assert canon.original_shape == (800, 600)


def test_spacing_precedence_caller_then_settings_then_heuristic():
    image = synthetic_breast(rows=400, cols=300)
    settings = PreprocessSettings(fallback_spacing_mm=0.1)
    by_caller = canonicalize_mammogram(frame_of(image), settings, spacing_mm=0.4)
    assert by_caller.spacing_source == "caller" and by_caller.shape == (800, 600)
    by_settings = canonicalize_mammogram(frame_of(image), settings)
    assert by_settings.spacing_source == "settings" and by_settings.shape == (200, 150)
    guessed = canonicalize_mammogram(frame_of(image), PreprocessSettings())
    assert guessed.spacing_source == "heuristic" and guessed.spacing_mm is None
    by_file = canonicalize_mammogram(frame_of(image, spacing=(0.2, 0.2)), settings, spacing_mm=0.4)
    assert by_file.spacing_source == "file" and by_file.shape == (400, 300)


def test_heuristic_spacing_is_clamped_to_known_range():
    assert heuristic_spacing_mm(4664) == pytest.approx(0.0515, abs=1e-3)  # a DDSM film: about 0.05 mm
    assert heuristic_spacing_mm(1024) == 0.2  # mini-MIAS: never enlarged
    assert heuristic_spacing_mm(100_000) == 0.05


@pytest.mark.parametrize("chest_wall", ["left", "right"])
def test_coordinates_round_trip_to_original_within_a_pixel(chest_wall):
    image = synthetic_breast(rows=803, cols=601, chest_wall=chest_wall)
    canon = canonicalize_mammogram(frame_of(image, spacing=(0.07, 0.07)), PreprocessSettings())
    rows, cols = np.array([0, 100, 802, 400]), np.array([0, 300, 600, 17])
    back_rows, back_cols = to_original(canon, *to_canonical(canon, rows, cols))
    np.testing.assert_allclose(back_rows, rows, atol=1.0)
    np.testing.assert_allclose(back_cols, cols, atol=1.0)


def test_a_marked_original_pixel_lands_where_to_original_says():
    image = synthetic_breast(rows=400, cols=300, chest_wall="right")
    canon = canonicalize_mammogram(frame_of(image, spacing=(0.1, 0.1)), PreprocessSettings())
    truth = np.zeros(image.shape, dtype=bool)
    truth[100:110, 200:210] = True  # a 10x10 'lesion' at original (104.5, 204.5)
    in_canon = map_to_canonical(canon, truth)
    rows, cols = np.nonzero(in_canon)
    back_row, back_col = to_original(canon, rows.mean(), cols.mean())
    assert abs(back_row - 104.5) <= 1.0 and abs(back_col - 204.5) <= 1.0


def test_map_to_original_undoes_flip_and_resize():
    image = synthetic_breast(rows=400, cols=300, chest_wall="right")
    canon = canonicalize_mammogram(frame_of(image, spacing=(0.1, 0.1)), PreprocessSettings())
    back = map_to_original(canon, canon.breast_mask)
    assert back.shape == image.shape and back.dtype == bool
    assert back[200, 290] and not back[200, 5], "the breast is back on the right in original space"
    prob = map_to_original(canon, canon.breast_mask.astype(np.float32))
    assert prob.dtype == np.float32 and prob.shape == image.shape


def test_normalize_contrast_range_and_monotonic():
    ramp = np.linspace(0.1, 0.6, 1000, dtype=np.float32).reshape(20, 50) ** 2
    for method in ("hist_eq", "clahe", "none"):
        out = normalize_contrast(ramp, method)
        assert out.dtype == np.float32 and out.shape == ramp.shape
        assert out.min() >= 0.0 and out.max() <= 1.0
    equalised = normalize_contrast(ramp, "hist_eq").ravel()
    assert np.all(np.diff(equalised) >= 0), "histogram equalisation keeps the order of grey levels"
    assert equalised[0] == 0.0 and equalised[-1] == 1.0, "it spreads the values over the full range"
    np.testing.assert_array_equal(normalize_contrast(ramp, "none"), ramp)
    with pytest.raises(ValueError):
        normalize_contrast(ramp, "gamma")


def test_clahe_raises_local_contrast_without_saturating():
    """A faint blob (+0.03) in mid-grey tissue: CLAHE must spread it from its surroundings and keep the
    tissue mid-grey (a 16-bit CLAHE on a 12-bit copy once returned a breast of 0.95 and masses of 1.00)."""
    rng = np.random.default_rng(3)
    tissue = 0.5 + 0.02 * cv2.GaussianBlur(rng.normal(0, 1, (256, 256)).astype(np.float32), (0, 0), 2)
    rows, cols = np.mgrid[:256, :256]
    blob = np.hypot(rows - 128, cols - 128) < 12
    image = np.clip(tissue + 0.03 * blob, 0, 1).astype(np.float32)
    ring = (np.hypot(rows - 128, cols - 128) < 24) & ~blob
    out = normalize_contrast(image, "clahe")
    assert 0.3 < out.mean() < 0.7 and (out >= 0.99).mean() < 0.01
    assert out[blob].mean() - out[ring].mean() > 1.5 * (image[blob].mean() - image[ring].mean())


def test_hist_eq_with_mask_ignores_the_background():
    # Film background is not pure black: scanner noise spreads it over many dark grey levels.
    image = np.random.default_rng(2).uniform(0.0, 0.1, (100, 100)).astype(np.float32)
    image[:, 50:] = np.linspace(0.3, 0.5, 50, dtype=np.float32)[None, :]
    mask = image >= 0.3
    with_mask = normalize_contrast(image, "hist_eq", mask)
    without = normalize_contrast(image, "hist_eq")
    assert with_mask[mask].min() == 0.0, "the breast's darkest value starts the range"
    assert without[mask].min() > 0.4, "without a mask, black background takes half the range"
    assert with_mask[~mask].max() == 0.0, "background darker than the breast stays black"


def test_settings_refuse_unknown_methods():
    with pytest.raises(ValueError):
        PreprocessSettings(contrast="magic")
    with pytest.raises(ValueError):
        PreprocessSettings(flip_to="up")


def test_ultrasound_is_resized_whole_and_maps_back():
    image = np.random.default_rng(1).random((300, 450), dtype=np.float32)
    canon = canonicalize_ultrasound(frame_of(image, modality="US"), size=128)
    assert canon.shape == (128, 128) and canon.breast_mask.all() and not canon.flipped
    assert canon.spacing_source == "unknown" and canon.original_shape == (300, 450)
    assert map_to_original(canon, canon.pixels).shape == (300, 450)
    back_rows, back_cols = to_original(canon, 127.0, 127.0)
    assert abs(back_rows - 299) < 2 and abs(back_cols - 449) < 2


def test_real_mini_mias_film(shared_data):
    path = shared_data / "mini-mias" / "images" / "mdb001.png"
    pixels = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
    canon = canonicalize_mammogram(frame_of(pixels), PreprocessSettings())
    assert canon.shape == (1024, 1024), "mini-MIAS is already at 0.2 mm"
    coverage = canon.breast_mask.mean()
    assert 0.1 < coverage < 0.6
    row0, col0, row1, col1 = canon.breast_box
    assert (row1 - row0) > 600 and (col1 - col0) > 250
    left, right = canon.breast_mask[:, :512].sum(), canon.breast_mask[:, 512:].sum()
    assert left > right, "the chest wall is on the canonical image's left"
    # mdb001's mass (centre x=535, y=425 from the bottom-left) lies inside the breast mask.
    original_mask = map_to_original(canon, canon.breast_mask)
    assert original_mask[1024 - 425, 535]
    assert canon.pixels.min() >= 0 and canon.pixels.max() <= 1
