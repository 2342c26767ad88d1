"""Drawing: valid PNGs of the right size, with the expected colours where the lesions and masks are."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from breastapp.imaging.frame import Frame
from breastapp.imaging.overlay import (
    BENIGN_RGB,
    FALSE_NEGATIVE_RGB,
    FALSE_POSITIVE_RGB,
    MALIGNANT_RGB,
    NOT_SEARCHED_RGB,
    TRUE_POSITIVE_RGB,
    render_comparison,
    render_heatmap,
    render_mask,
    render_original,
    render_outputs,
    render_overlay,
    scale_box,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class FakeLesion:
    """The four attributes overlay.py reads; ml.result.Lesion has them too (plus many more)."""

    index: int
    box: tuple[int, int, int, int]
    label: str
    malignancy_prob: float


def decode_rgb(png: bytes) -> np.ndarray:
    assert png.startswith(PNG_SIGNATURE)
    bgr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert bgr is not None, "OpenCV reads the PNG back"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else bgr


def grey_frame(rows=300, cols=200, level=0.5) -> Frame:
    return Frame(pixels=np.full((rows, cols), level, np.float32), modality="MG", source_format="PNG")


def test_original_is_a_grey_png_keeping_size_and_values_away_from_the_banner():
    image = decode_rgb(render_original(grey_frame()))
    assert image.shape == (300, 200), "a grey image stays single-channel (a third of the bytes)"
    assert image[150, 100] == 128


def test_banner_is_burned_into_the_darkest_corner():
    pixels = np.full((400, 600), 0.8, np.float32)
    pixels[-60:, -300:] = 0.0  # dark bottom-right corner: background, where the banner belongs
    image = decode_rgb(render_original(Frame(pixels=pixels, modality="MG", source_format="PNG")))
    corner = image[-60:, -300:]
    assert image.ndim == 2
    assert (corner > 200).any(), "white banner text appears in the dark corner"
    assert (image[:40, :300] == 204).all(), "the bright top-left corner is left alone"


def test_large_original_is_rendered_at_display_size():
    frame = grey_frame(rows=4664, cols=3064)
    image = decode_rgb(render_original(frame, max_side=1024))
    assert image.shape[:2] == (1024, round(3064 * 1024 / 4664))


def test_overlay_draws_boxes_in_label_colours_scaled_to_display():
    frame = grey_frame(rows=1000, cols=800, level=0.3)
    lesions = [
        FakeLesion(1, (400, 200, 600, 400), "malignant", 0.83),
        FakeLesion(2, (700, 500, 800, 600), "benign", 0.2),
    ]
    image = decode_rgb(render_overlay(frame, lesions, max_side=500))
    assert image.shape[:2] == (500, 400)
    # Malignant box (400..600, 200..400) at half size: its left edge runs down column 100.
    assert tuple(image[250, 100]) == MALIGNANT_RGB
    assert tuple(image[375, 250]) == BENIGN_RGB  # benign box's left edge, row 350..400 at column 250
    assert tuple(image[250, 150]) == (77, 77, 77), "inside the box the image is untouched"


def test_overlay_follows_the_mask_contour_inside_the_box():
    frame = grey_frame(rows=400, cols=400, level=0.3)
    mask = np.zeros((400, 400), bool)
    cv2.circle(mask.view(np.uint8), (200, 200), 60, 1, -1)
    lesion = FakeLesion(1, (140, 140, 261, 261), "benign", 0.4)
    image = decode_rgb(render_overlay(frame, [lesion], lesion_mask=mask))
    assert tuple(image[200, 141]) == BENIGN_RGB, "the circle's left edge is outlined"
    assert tuple(image[145, 145]) == (77, 77, 77), "the box corner is not drawn when a contour exists"


def test_overlay_label_text_is_drawn_above_the_box():
    frame = grey_frame(rows=400, cols=400, level=0.3)
    image = decode_rgb(render_overlay(frame, [FakeLesion(1, (200, 100, 260, 300), "malignant", 0.9)]))
    above = image[170:200, 100:300]
    assert (np.all(above == MALIGNANT_RGB, axis=-1)).sum() > 20, "coloured label text above the box"


def test_heatmap_colours_only_where_probability_is_high():
    frame = grey_frame(rows=200, cols=200, level=0.5)
    prob = np.zeros((200, 200), np.float32)
    prob[50:100, 50:100] = 0.95
    image = decode_rgb(render_heatmap(frame, prob))
    assert image.shape == (200, 200, 3)
    hot = image[75, 75].astype(int)
    assert hot[0] > hot[2] + 40, "high probability is shown warm (red) over the grey"
    assert tuple(image[150, 150]) == (128, 128, 128), "zero probability leaves the image untouched"


def test_mask_png_is_original_size_zero_or_255():
    mask = np.zeros((4664, 306), bool)
    mask[10:20, 30:40] = True
    image = decode_rgb(render_mask(mask))
    assert image.shape == (4664, 306) and image.dtype == np.uint8
    assert set(np.unique(image)) == {0, 255}
    assert image[15, 35] == 255 and image[0, 0] == 0


def test_comparison_colours_true_false_positives_and_negatives():
    frame = grey_frame(rows=200, cols=200, level=0.2)
    predicted = np.zeros((200, 200), bool)
    truth = np.zeros((200, 200), bool)
    predicted[100:150, 100:150] = True
    truth[100:150, 125:175] = True
    image = decode_rgb(render_comparison(frame, predicted, truth))
    assert tuple(image[120, 130]) == TRUE_POSITIVE_RGB
    assert tuple(image[120, 110]) == FALSE_POSITIVE_RGB
    assert tuple(image[120, 160]) == FALSE_NEGATIVE_RGB
    assert tuple(image[180, 50]) == (51, 51, 51)


@pytest.mark.parametrize(
    ("box", "factor", "expected"),
    [((100, 50, 200, 150), 0.5, (50, 25, 100, 75)), ((0, 0, 5000, 5000), 0.1, (0, 0, 300, 200))],
)
def test_scale_box_scales_and_clips(box, factor, expected):
    assert scale_box(box, factor, (300, 200)) == expected


def test_render_outputs_gives_the_same_pictures_as_the_single_renderers():
    pixels = np.random.default_rng(3).random((600, 500), dtype=np.float32)
    frame = Frame(pixels=pixels, modality="MG", source_format="PNG")
    lesions = [FakeLesion(1, (100, 100, 200, 220), "malignant", 0.7)]
    prob = np.zeros((600, 500), np.float32)
    prob[100:200, 100:220] = 0.8
    mask = prob > 0.5

    outputs = render_outputs(frame, lesions, prob, mask, lesion_mask=mask, max_side=400)

    assert set(outputs) == {"original.png", "overlay.png", "heatmap.png", "mask.png"}
    singles = {
        "original.png": render_original(frame, max_side=400),
        "overlay.png": render_overlay(frame, lesions, lesion_mask=mask, max_side=400),
        "heatmap.png": render_heatmap(frame, prob, max_side=400),
        "mask.png": render_mask(mask),
    }
    for name, png in singles.items():
        np.testing.assert_array_equal(decode_rgb(outputs[name]), decode_rgb(png), err_msg=name)
    assert decode_rgb(outputs["overlay.png"]).shape == (400, round(500 * 400 / 600), 3)
    assert decode_rgb(outputs["mask.png"]).shape == (600, 500), "the mask keeps the original size"


def test_the_region_left_out_of_the_search_is_outlined_in_its_own_colour():
    frame = grey_frame(400, 300)
    muscle = np.zeros((400, 300), bool)
    muscle[:200, :100] = np.tri(200, 100, k=-1, dtype=bool)[::-1]  # a triangle in the top-left corner
    lesion = FakeLesion(1, (300, 200, 340, 240), "malignant", 0.9)
    marked = decode_rgb(render_overlay(frame, [lesion], not_searched=muscle))
    plain = decode_rgb(render_overlay(frame, [lesion]))
    outlined = np.all(marked == NOT_SEARCHED_RGB, axis=-1)
    assert outlined[:220, :120].sum() > 100, "the muscle's outline (and its label) is drawn"
    assert not outlined[250:].any(), "nothing of that colour away from the muscle"
    assert not np.all(plain == NOT_SEARCHED_RGB, axis=-1).any()
    assert np.all(marked[300, 200:240] == MALIGNANT_RGB, axis=-1).any(), "lesions are still outlined"
