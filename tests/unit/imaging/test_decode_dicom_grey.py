"""The DICOM grey-scale pipeline: modality LUT, then VOI LUT or window, then MONOCHROME1 inversion.

Expected values are computed here from the standard's formulas (PS3.3 C.11.2.1.2), not by calling the
code under test, on small synthetic images whose stored values are known exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from breastapp.imaging.decode import decode
from tests.unit.imaging import dicom_factory as factory

GREY_LEVEL = 1 / 255


def stored_values(ds) -> np.ndarray:
    """The stored values the factory wrote (little endian, signedness from PixelRepresentation)."""
    kind = "i" if ds.PixelRepresentation else "u"
    dtype = np.dtype(f"<{kind}{ds.BitsAllocated // 8}")
    return np.frombuffer(ds.PixelData, dtype=dtype).reshape(ds.Rows, ds.Columns).astype(np.float64)


def linear_window(x, center, width):
    """PS3.3 C.11.2.1.2.1, normalised to [0, 1]."""
    c, w = center - 0.5, width - 1
    y = (x - c) / w + 0.5
    return np.where(x <= c - w / 2, 0.0, np.where(x > c + w / 2, 1.0, y))


@pytest.mark.parametrize("bits", [8, 10, 12, 14, 16])
@pytest.mark.parametrize("signed", [False, True])
def test_bits_stored_8_to_16_signed_and_unsigned_scale_by_image_min_max(bits, signed):
    ds = factory.mammogram(bits_stored=bits, signed=signed)
    frame = decode(factory.to_bytes(ds))
    values = stored_values(ds)
    expected = (values - values.min()) / (values.max() - values.min())
    assert frame.pixels.dtype == np.float32
    assert frame.bits_stored == bits
    np.testing.assert_allclose(frame.pixels, expected, atol=1e-6)
    assert frame.metadata["grey_pipeline"]["voi"] == "image min/max"


def test_linear_window_follows_the_standard():
    ds = factory.with_window(factory.mammogram(bits_stored=12), 1500, 1000)
    frame = decode(factory.to_bytes(ds))
    expected = linear_window(stored_values(ds), 1500, 1000)
    np.testing.assert_allclose(frame.pixels, expected, atol=1e-5)
    assert frame.pixels.min() == 0.0 and frame.pixels.max() == 1.0  # the window clips both ends


def test_sigmoid_window_follows_the_standard():
    ds = factory.with_window(factory.mammogram(bits_stored=12), 2000, 800, function="SIGMOID")
    frame = decode(factory.to_bytes(ds))
    expected = 1.0 / (1.0 + np.exp(-4.0 * (stored_values(ds) - 2000) / 800))
    np.testing.assert_allclose(frame.pixels, expected, atol=1e-5)
    assert "SIGMOID" in frame.metadata["grey_pipeline"]["voi"]


def test_first_of_several_windows_is_used():
    several = factory.with_window(factory.mammogram(), [1500, 3000], [1000, 400])
    single = factory.with_window(factory.mammogram(), 1500, 1000)
    np.testing.assert_array_equal(
        decode(factory.to_bytes(several)).pixels, decode(factory.to_bytes(single)).pixels
    )


def test_rescale_slope_and_intercept_come_before_the_window():
    # A window given in rescaled units must select the same stored values as the unscaled window.
    ds = factory.mammogram(bits_stored=12, RescaleSlope=2, RescaleIntercept=-1000)
    factory.with_window(ds, 2 * 1500 - 1000, 2 * 1000)
    frame = decode(factory.to_bytes(ds))
    rescaled = stored_values(ds) * 2 - 1000
    np.testing.assert_allclose(frame.pixels, linear_window(rescaled, 2000, 2000), atol=1e-5)
    assert frame.metadata["grey_pipeline"]["modality_lut"] == "rescale slope/intercept"


def test_negative_rescale_slope_without_window_inverts_the_scale():
    ds = factory.mammogram(bits_stored=12, RescaleSlope=-1, RescaleIntercept=4095)
    frame = decode(factory.to_bytes(ds))
    values = stored_values(ds)
    np.testing.assert_allclose(
        frame.pixels, (values.max() - values) / (values.max() - values.min()), atol=1e-6
    )


def test_voi_lut_sequence_is_applied_and_preferred_over_a_window():
    lut = np.rint(np.sqrt(np.arange(4096) / 4095) * 65535).astype(np.uint16)
    ds = factory.with_voi_lut(factory.mammogram(bits_stored=12), lut)
    factory.with_window(ds, 100, 10)  # would crush the image if it won
    frame = decode(factory.to_bytes(ds))
    expected = lut[stored_values(ds).astype(int)] / 65535
    np.testing.assert_allclose(frame.pixels, expected, atol=1e-6)
    assert frame.metadata["grey_pipeline"]["voi"].startswith("VOI LUT")


def test_voi_lut_first_mapped_value_clamps_lower_inputs():
    lut = np.linspace(0, 4095, 2048).astype(np.uint16)  # maps stored 1024..3071, clamps outside
    ds = factory.with_voi_lut(factory.mammogram(bits_stored=12), lut, first_mapped=1024, bits=12)
    frame = decode(factory.to_bytes(ds))
    index = np.clip(stored_values(ds).astype(int) - 1024, 0, len(lut) - 1)
    np.testing.assert_allclose(frame.pixels, lut[index] / 4095, atol=1e-6)


@pytest.mark.parametrize("window", [None, (1800, 1200), (2000, 800, "SIGMOID")])
def test_monochrome1_and_its_monochrome2_twin_give_the_same_frame(window):
    mono2 = factory.mammogram(bits_stored=12)
    if window:
        factory.with_window(mono2, *window[:2], function=window[2] if len(window) > 2 else None)
    mono1 = factory.monochrome1_twin(mono2)
    frame2, frame1 = decode(factory.to_bytes(mono2)), decode(factory.to_bytes(mono1))
    assert frame1.metadata["grey_pipeline"]["inverted"] is True
    assert np.abs(frame1.pixels - frame2.pixels).max() <= GREY_LEVEL


def test_monochrome1_is_inverted_so_that_zero_is_black():
    ds = factory.mammogram(bits_stored=12, PhotometricInterpretation="MONOCHROME1")
    frame = decode(factory.to_bytes(ds))
    values = stored_values(ds)
    assert frame.pixels[values == values.max()].max() == 0.0  # highest stored value = black
    assert frame.pixels[values == values.min()].min() == 1.0


def test_unusable_window_width_falls_back_to_min_max():
    ds = factory.with_window(factory.mammogram(bits_stored=12), 1000, 0)
    frame = decode(factory.to_bytes(ds))
    assert frame.metadata["grey_pipeline"]["voi"] == "image min/max"
    assert frame.pixels.min() == 0.0 and frame.pixels.max() == 1.0


def test_constant_image_decodes_to_black_without_dividing_by_zero():
    ds = factory.make_dataset(np.full((8, 8), 700, np.uint16), bits_stored=12, BodyPartExamined="BREAST")
    frame = decode(factory.to_bytes(ds))
    assert np.all(frame.pixels == 0.0)
