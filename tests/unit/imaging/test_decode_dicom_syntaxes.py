"""Every transfer syntax the issue names decodes to the same picture as the uncompressed file.

Fixtures are built by tests/unit/imaging/dicom_factory.py (see its docstring for which encoder makes
which syntax); JPEG extended 12-bit comes from the real NEMA sample MG1_JPLY.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydicom import uid

from breastapp.imaging.decode import decode
from breastapp.imaging.dicom_pixels import _scan_header_spectral_end
from tests.unit.imaging import dicom_factory as factory


@pytest.fixture(scope="module")
def reference():
    """A 12-bit mammogram with a window, and its uncompressed decode."""
    ds = factory.with_window(factory.mammogram(bits_stored=12), 2047, 4095)
    return ds, decode(factory.to_bytes(ds)).pixels


@pytest.mark.parametrize(
    "syntax",
    [
        uid.ImplicitVRLittleEndian,
        uid.ExplicitVRLittleEndian,
        uid.ExplicitVRBigEndian,
        uid.DeflatedExplicitVRLittleEndian,
    ],
)
def test_uncompressed_syntaxes_decode_identically(reference, syntax):
    ds, expected = reference
    frame = decode(factory.to_bytes(ds, syntax))
    assert frame.metadata["transfer_syntax"] == syntax.name
    np.testing.assert_array_equal(frame.pixels, expected)


def test_bare_data_set_without_preamble_is_read(reference):
    ds, expected = reference
    data = factory.to_bytes(ds, uid.ImplicitVRLittleEndian, preamble=False)
    assert data[128:132] != b"DICM"
    np.testing.assert_array_equal(decode(data).pixels, expected)


@pytest.mark.parametrize(
    ("syntax", "options"),
    [(uid.RLELossless, {}), (uid.JPEG2000Lossless, {}), (uid.JPEGLSLossless, {})],
)
def test_lossless_compressions_are_exact(reference, syntax, options):
    ds, expected = reference
    frame = decode(factory.compressed_bytes(ds, syntax, **options))
    assert frame.metadata["transfer_syntax"] == syntax.name
    np.testing.assert_array_equal(frame.pixels, expected)


@pytest.mark.parametrize("syntax", [uid.JPEGLossless, uid.JPEGLosslessSV1])
def test_jpeg_lossless_process_14_is_exact(reference, syntax):
    pytest.importorskip("gdcm", reason="python-gdcm (requirements-dev.txt) encodes the JPEG lossless fixture")
    ds, expected = reference
    frame = decode(factory.gdcm_jpeg_lossless_bytes(ds, syntax))
    assert frame.metadata["transfer_syntax"] == syntax.name
    np.testing.assert_array_equal(frame.pixels, expected)


@pytest.mark.parametrize(
    ("syntax", "options", "max_error"),
    [(uid.JPEG2000, {"j2k_cr": [8]}, 0.05), (uid.JPEGLSNearLossless, {"jls_error": 3}, 3 / 4095 + 1e-6)],
)
def test_lossy_compressions_stay_close(reference, syntax, options, max_error):
    ds, expected = reference
    frame = decode(factory.compressed_bytes(ds, syntax, **options))
    error = np.abs(frame.pixels - expected)
    assert error.mean() < max_error
    assert frame.metadata["transfer_syntax"] == syntax.name


def test_jpeg_baseline_8_bit():
    pixels8 = factory.synthetic_pixels(bits_stored=8)
    frame = decode(factory.jpeg_baseline_bytes(pixels8, quality=95, BodyPartExamined="BREAST"))
    assert frame.metadata["transfer_syntax"] == uid.JPEGBaseline8Bit.name
    assert np.abs(frame.pixels - pixels8 / 255.0).mean() < 0.02


def test_sequential_jpeg_with_spectral_end_zero_is_repaired():
    """Some encoders write Se=0 in a baseline scan header; libjpeg refuses, we patch it to 63."""
    pixels8 = factory.synthetic_pixels(bits_stored=8)
    good = factory.jpeg_baseline_bytes(pixels8)
    soi = good.index(b"\xff\xd8\xff")
    frame_bytes = bytearray(good[soi:])
    position = _scan_header_spectral_end(frame_bytes)
    assert frame_bytes[position] == 63
    broken = bytearray(good)
    broken[soi + position] = 0
    np.testing.assert_array_equal(decode(bytes(broken)).pixels, decode(good).pixels)


@pytest.fixture(scope="module")
def j2k_frame(j2k_mammogram):
    return decode(j2k_mammogram)


def test_real_jpeg2000_mammogram(j2k_frame):
    frame = j2k_frame
    assert frame.shape == (4664, 3064)
    assert frame.pixels.dtype == np.float32
    assert 0.0 <= frame.pixels.min() and frame.pixels.max() <= 1.0
    assert (frame.modality, frame.view, frame.laterality, frame.bits_stored) == ("MG", "MLO", "L", 12)
    assert frame.metadata["Modality"] == "RG"  # a digitised film, accepted because BodyPartExamined=BREAST
    assert frame.spacing_mm is None  # the file has neither ImagerPixelSpacing nor PixelSpacing
    assert frame.pixels.std() > 0.1  # a real picture, not a flat field


def test_real_jpeg_extended_12_bit_mammogram_matches_its_jpeg2000_twin(j2k_frame, jpeg12_mammogram):
    frame = decode(jpeg12_mammogram)
    assert frame.metadata["transfer_syntax"] == uid.JPEGExtended12Bit.name
    assert frame.shape == (4664, 3064)
    # Both are lossy encodings (10:1) of one film: they agree to within a few grey levels on average.
    assert np.abs(frame.pixels - j2k_frame.pixels).mean() < 0.01
