"""PNG and JPEG uploads: bit depths, colour rules, defaults, and the real mini-MIAS and BUSI files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from breastapp.imaging import errors
from breastapp.imaging.decode import decode


def encode(array: np.ndarray, fmt: str = "PNG", **options) -> bytes:
    stream = io.BytesIO()
    Image.fromarray(array).save(stream, format=fmt, **options)
    return stream.getvalue()


def grey_ramp(rows: int = 40, cols: int = 60, dtype=np.uint8) -> np.ndarray:
    top = np.iinfo(dtype).max
    return np.rint(np.linspace(0, top, rows * cols)).reshape(rows, cols).astype(dtype)


def test_real_mini_mias_png(mias_png):
    frame = decode(mias_png)
    expected = np.asarray(Image.open(mias_png), dtype=np.float32) / 255
    assert (frame.modality, frame.source_format, frame.bits_stored) == ("MG", "PNG", 8)
    assert frame.shape == (1024, 1024)
    np.testing.assert_allclose(frame.pixels, expected, atol=1e-7)


def test_real_busi_png_as_ultrasound(busi_png):
    frame = decode(busi_png.read_bytes(), modality="US", laterality="L")
    assert (frame.modality, frame.laterality) == ("US", "L")
    assert frame.pixels.dtype == np.float32 and frame.pixels.max() <= 1.0
    assert frame.pixels.std() > 0.05


def test_png_8_bit():
    ramp = grey_ramp()
    frame = decode(encode(ramp))
    np.testing.assert_allclose(frame.pixels, ramp / 255, atol=1e-7)


def test_png_16_bit_keeps_its_precision():
    ramp = grey_ramp(dtype=np.uint16)
    frame = decode(encode(ramp))
    assert frame.bits_stored == 16
    np.testing.assert_allclose(frame.pixels, ramp / 65535, atol=1e-7)
    assert len(np.unique(frame.pixels)) > 256


def test_rgb_png_with_equal_channels_is_grey():
    ramp = grey_ramp()
    frame = decode(encode(np.stack([ramp] * 3, axis=-1)))
    np.testing.assert_allclose(frame.pixels, ramp / 255, atol=1e-6)
    assert frame.metadata["colour"]["coloured_fraction"] == 0


def test_rgba_png_with_equal_channels_is_grey():
    ramp = grey_ramp()
    rgba = np.stack([ramp, ramp, ramp, np.full_like(ramp, 255)], axis=-1)
    np.testing.assert_allclose(decode(encode(rgba)).pixels, ramp / 255, atol=1e-6)


def test_truly_coloured_png_is_refused():
    ramp = grey_ramp()
    colour = np.stack([ramp, 255 - ramp, np.full_like(ramp, 128)], axis=-1)
    error = pytest.raises(errors.ColourImage, decode, encode(colour)).value
    assert error.code == "colour_image"


def test_ultrasound_jpeg_with_coloured_annotations_is_converted_to_luminance():
    grey = grey_ramp(80, 100)
    rgb = np.stack([grey] * 3, axis=-1)
    rgb[10:14, 10:40] = (255, 255, 0)  # a yellow caliper line: 1.5 % of the pixels
    frame = decode(encode(rgb, "JPEG", quality=95))
    assert (frame.modality, frame.source_format) == ("US", "JPEG")  # JPEG defaults to ultrasound
    assert "converted" in frame.metadata["colour"]
    assert 0 < frame.metadata["colour"]["coloured_fraction"] < 0.05
    assert np.abs(frame.pixels[40:, 50:] - grey[40:, 50:] / 255).mean() < 0.02


def test_ultrasound_elastography_colour_map_is_refused():
    ramp = grey_ramp(80, 100)
    colour = np.stack([ramp, 255 - ramp, np.zeros_like(ramp)], axis=-1)
    with pytest.raises(errors.ColourImage):
        decode(encode(colour, "JPEG"), modality="US")


def test_grey_jpeg_is_decoded_and_can_be_a_mammogram():
    ramp = grey_ramp()
    frame = decode(encode(ramp, "JPEG", quality=95), modality="MG", view="CC", spacing_mm=0.1)
    assert (frame.modality, frame.view, frame.spacing_mm) == ("MG", "CC", (0.1, 0.1))
    assert np.abs(frame.pixels - ramp / 255).mean() < 0.01


def test_plain_image_takes_the_callers_choices_and_ignores_nonsense():
    frame = decode(encode(grey_ramp()), view="mlo", laterality="sideways", spacing_mm=-1)
    assert (frame.view, frame.laterality, frame.spacing_mm) == ("MLO", None, None)


def test_palette_png_is_decoded_through_rgb():
    image = Image.fromarray(grey_ramp()).convert("P")
    stream = io.BytesIO()
    image.save(stream, format="PNG")
    frame = decode(stream.getvalue())
    assert frame.pixels.shape == (40, 60) and frame.pixels.max() > 0.9


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_plain_image_is_refused_as_incomplete(fmt):
    data = encode(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8), fmt)
    with pytest.raises(errors.TruncatedPixelData):
        decode(data[: len(data) // 2])
