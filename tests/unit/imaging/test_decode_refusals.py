"""Every refusal is a typed ImagingError with a stable code and a sentence, never a library exception."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image
from pydicom import uid

from breastapp.imaging import errors
from breastapp.imaging.decode import DecodeLimits, decode
from breastapp.imaging.dicom import inflate_bounded
from tests.unit.imaging import dicom_factory as factory


def refusal(data, error_type, **kwargs) -> errors.ImagingError:
    with pytest.raises(error_type) as caught:
        decode(data, **kwargs)
    error = caught.value
    assert error.code == error_type.code
    assert error.message and error.message[0].isupper() and error.message.endswith((".", ")"))
    return error


def test_random_bytes_are_not_an_image():
    refusal(np.random.default_rng(1).bytes(5000), errors.UnsupportedFormat)


def test_a_text_file_named_dcm_is_judged_by_content(tmp_path):
    path = tmp_path / "scan.dcm"
    path.write_text("Patient: Jane Doe\nThis is not an image.\n" * 20)
    error = refusal(path, errors.UnsupportedFormat)
    assert error.http_status == 415


def test_empty_file_is_refused():
    refusal(b"", errors.UnsupportedFormat)


def test_an_icon_sized_image_decodes_but_is_refused_for_analysis():
    from breastapp.imaging.decode import require_analysable_size

    buffer = io.BytesIO()
    Image.fromarray(np.full((1, 40), 128, np.uint8)).save(buffer, "PNG")
    with pytest.raises(errors.ImageTooSmall) as caught:
        require_analysable_size(decode(buffer.getvalue()))
    assert caught.value.http_status == 422 and "40 x 1 pixels" in caught.value.message
    buffer = io.BytesIO()
    Image.fromarray(np.full((32, 32), 128, np.uint8)).save(buffer, "PNG")
    assert require_analysable_size(decode(buffer.getvalue())).shape == (32, 32)  # the smallest accepted


def test_structured_report_has_no_pixel_data():
    error = refusal(factory.structured_report(), errors.NoPixelData)
    assert "structured report" in error.message


def test_encapsulated_pdf_has_no_pixel_data():
    error = refusal(factory.encapsulated_pdf(), errors.NoPixelData)
    assert "application/pdf" in error.message


def test_multi_frame_is_refused():
    error = refusal(factory.multi_frame(3), errors.MultiFrame)
    assert "3 frames" in error.message


def test_rgb_mammogram_is_refused():
    refusal(factory.rgb_image("MG"), errors.ColourImage)


def test_grey_ultrasound_stored_as_rgb_is_accepted():
    frame = decode(factory.rgb_image("US", coloured=False))
    assert frame.modality == "US" and frame.pixels.ndim == 2
    assert frame.metadata["grey_pipeline"]["colour"]["coloured_fraction"] == 0


def test_32_bit_pixels_are_refused():
    ds = factory.make_dataset(np.zeros((4, 4), np.uint32), BodyPartExamined="BREAST")
    error = refusal(factory.to_bytes(ds), errors.UnsupportedBitDepth)
    assert "32" in error.message


def test_ct_is_refused_naming_the_modality():
    ds = factory.mammogram(Modality="CT", BodyPartExamined="CHEST")
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = uid.CTImageStorage
    error = refusal(factory.to_bytes(ds), errors.UnsupportedModality)
    assert "CT" in error.message


def test_unknown_transfer_syntax_is_named():
    error = refusal(factory.unknown_transfer_syntax("1.2.3.4.5.6.7"), errors.UnsupportedTransferSyntax)
    assert "1.2.3.4.5.6.7" in error.message


def test_transfer_syntax_without_installed_plugin_is_named():
    """In a process where no JPEG-LS plugin can be imported, a JPEG-LS file is refused by name."""
    data = factory.compressed_bytes(factory.mammogram(), uid.JPEGLSLossless)
    script = (
        "import sys\n"
        "for name in ('gdcm', 'jpeg_ls', 'libjpeg', 'pylibjpeg'):\n"
        "    sys.modules[name] = None  # as if not installed\n"
        "from breastapp.imaging.decode import decode\n"
        "from breastapp.imaging.errors import ImagingError\n"
        "try:\n"
        "    decode(sys.stdin.buffer.read())\n"
        "except ImagingError as error:\n"
        "    print(error.code, error.message)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], input=data, capture_output=True, timeout=120)
    output = result.stdout.decode()
    assert output.startswith("unsupported_transfer_syntax"), result.stderr.decode()[-2000:]
    assert "JPEG-LS Lossless" in output


def test_truncated_native_pixel_data():
    data = factory.to_bytes(factory.mammogram())
    error = refusal(data[:-500], errors.TruncatedPixelData)
    assert "incomplete" in error.message


@pytest.mark.filterwarnings("ignore:End of file reached before delimiter:UserWarning")
def test_truncated_compressed_pixel_data():
    data = factory.compressed_bytes(factory.mammogram(), uid.JPEG2000Lossless)
    refusal(data[:-300], errors.TruncatedPixelData)


def test_huge_declared_rows_and_columns_are_refused_before_decoding():
    ds = factory.mammogram()
    ds.Rows, ds.Columns = 60000, 60000  # 3.6 gigapixels declared over a few kB of data
    error = refusal(factory.to_bytes(ds), errors.ImageTooLarge)
    assert error.http_status == 413


def test_compressed_image_past_the_memory_cap_is_refused_before_decoding():
    data = factory.compressed_bytes(factory.mammogram(), uid.RLELossless)
    refusal(data, errors.DecompressionBomb, limits=DecodeLimits(max_decoded_bytes=1000))


def test_deflate_bomb_is_stopped_while_inflating():
    bomb = factory.deflate_bomb(2048, 2048)  # 8 MiB of zeros in about 8 kB
    assert len(bomb) < 64_000
    error = refusal(bomb, errors.DecompressionBomb, limits=DecodeLimits(max_decoded_bytes=2 * 2**20))
    assert "deflated" in error.message


def test_inflate_bounded_never_returns_more_than_the_cap():
    payload = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    compressed = payload.compress(b"\0" * 5_000_000) + payload.flush()
    assert inflate_bounded(compressed, 5_000_000) == b"\0" * 5_000_000
    with pytest.raises(errors.DecompressionBomb):
        inflate_bounded(compressed, 4_999_999)


def _png_with_declared_size(width: int, height: int) -> bytes:
    """A PNG header declaring width x height grey pixels, with a tiny (incomplete) image stream."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


def test_png_bomb_is_caught_by_pillows_guard_and_translated():
    refusal(
        _png_with_declared_size(30000, 30000),
        errors.DecompressionBomb,
        limits=DecodeLimits(max_pixels=10**10, max_decoded_bytes=10**11),
    )


def test_png_declaring_more_pixels_than_the_cap_is_refused():
    refusal(_png_with_declared_size(9000, 9000), errors.ImageTooLarge)


def test_png_that_inflates_past_the_memory_cap_is_refused():
    stream = io.BytesIO()
    Image.fromarray(np.zeros((2000, 2000), np.uint8)).save(stream, format="PNG")
    assert len(stream.getvalue()) < 50_000
    refusal(stream.getvalue(), errors.DecompressionBomb, limits=DecodeLimits(max_decoded_bytes=2**20))


def test_file_larger_than_the_upload_cap_is_refused(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 5000)
    refusal(path, errors.ImageTooLarge, limits=DecodeLimits(max_file_bytes=1000))


def test_unknown_modality_from_the_caller_is_refused():
    stream = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(stream, format="PNG")
    refusal(stream.getvalue(), errors.UnsupportedModality, modality="CT")


# ---- fuzzing: damaged real and synthetic files may only ever raise ImagingError -------------------


def _damaged_versions(data: bytes, seed: int, count: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        damaged = bytearray(data)
        if rng.random() < 0.5:
            damaged = damaged[: int(rng.integers(1, len(data)))]
        else:
            for position in rng.integers(0, len(data), size=int(rng.integers(1, 12))):
                damaged[position] = int(rng.integers(0, 256))
        yield bytes(damaged)


def _only_imaging_errors(samples) -> int:
    refused = 0
    for sample in samples:
        try:
            frame = decode(sample)
        except errors.ImagingError:
            refused += 1
            continue
        assert frame.pixels.dtype == np.float32
        assert np.isfinite(frame.pixels).all()
    return refused


@pytest.mark.parametrize(
    "make",
    [
        lambda: factory.to_bytes(factory.with_window(factory.mammogram(), 2047, 4095)),
        lambda: factory.to_bytes(factory.mammogram(), uid.DeflatedExplicitVRLittleEndian),
        lambda: factory.compressed_bytes(factory.mammogram(), uid.RLELossless),
        lambda: factory.compressed_bytes(factory.mammogram(), uid.JPEG2000Lossless),
        lambda: factory.compressed_bytes(factory.mammogram(), uid.JPEGLSLossless),
        lambda: factory.jpeg_baseline_bytes(factory.synthetic_pixels(bits_stored=8)),
    ],
    ids=["explicit", "deflated", "rle", "j2k", "jpegls", "jpeg-baseline"],
)
@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about every invalid value it reads
def test_fuzzed_dicom_raises_only_imaging_errors(make):
    assert _only_imaging_errors(_damaged_versions(make(), seed=7, count=60)) > 0


def test_fuzzed_png_raises_only_imaging_errors(mias_png):
    image = Image.open(mias_png).crop((300, 300, 364, 364))
    stream = io.BytesIO()
    image.save(stream, format="PNG")
    assert _only_imaging_errors(_damaged_versions(stream.getvalue(), seed=11, count=80)) > 0
