"""DICOM pixel data: checks before decoding, decoding, and the greyscale display pipeline.

The display pipeline follows PS3.3 C.11 in the standard's order - modality LUT (rescale slope/intercept
or a Modality LUT Sequence), then VOI (a VOI LUT Sequence, else the first window), then MONOCHROME1
inversion - using pydicom's own `apply_modality_lut` and `apply_voi_lut` so that we do not re-derive the
standard's edge cases (LINEAR's half-pixel offsets, SIGMOID, LUT first-mapped values).

Speed: stored values are integers of at most 16 bits, so instead of running those functions over a
14-megapixel mammogram in float64, we run them once over every possible stored value (at most 65,536),
turn the result into a float32 lookup table in [0, 1], and index the table with the image. One gather,
no float64 copy of the image.

Scaling when the file has neither a VOI LUT nor a window (typical of "FOR PROCESSING" images): the
modality-LUT output is stretched between the image's own minimum and maximum. A bits-stored scaling
would leave a 10-bit detector's image in the bottom of a 16-bit range, i.e. nearly black on screen;
contrast normalisation downstream makes the network indifferent to the choice, the display is not.
"""

from __future__ import annotations

import logging

import numpy as np
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import apply_modality_lut, apply_voi_lut, get_decoder
from pydicom.pixels.processing import apply_windowing

from breastapp.imaging.errors import (
    ColourImage,
    CorruptFile,
    DecompressionBomb,
    ImageTooLarge,
    MultiFrame,
    NoPixelData,
    TruncatedPixelData,
    UnsupportedBitDepth,
    UnsupportedTransferSyntax,
)

log = logging.getLogger(__name__)

GREY_PHOTOMETRICS = ("MONOCHROME1", "MONOCHROME2")
COLOUR_PHOTOMETRICS = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420")
_SEQUENTIAL_JPEG = (uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit)
# Never swallowed. Everything else a plugin raises is a damaged stream - including the Rust decoders'
# pyo3 PanicException, which derives from BaseException rather than Exception.
_FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit)


def check_pixel_module(ds: Dataset, limits, *, allow_colour: bool) -> None:
    """Refuse, before decoding anything, what this engine cannot or must not decode.

    `check_has_pixels` runs earlier (before the modality check) so a report is called a report.
    """
    frames = _int_tag(ds, "NumberOfFrames", 1)
    if frames > 1:
        raise MultiFrame(
            f"This DICOM file holds {frames} frames (a cine loop or tomosynthesis stack); "
            "only single images can be analysed."
        )
    _check_photometric(ds, allow_colour)
    _check_bit_depth(ds)
    _check_declared_size(ds, limits)
    _check_decoder_available(ds)
    _check_native_length(ds)


def _int_tag(ds: Dataset, keyword: str, default: int) -> int:
    try:
        return int(ds.get(keyword, default) or default)
    except (TypeError, ValueError):
        raise CorruptFile(f"The DICOM header value {keyword} is not a number.") from None


def check_has_pixels(ds: Dataset) -> None:
    """Structured reports, encapsulated PDFs and other pixel-less objects are refused by name."""
    if "PixelData" in ds:
        return
    if "EncapsulatedDocument" in ds:
        kind = str(ds.get("MIMETypeOfEncapsulatedDocument", "") or "a document")
        raise NoPixelData(f"This DICOM file holds an encapsulated document ({kind}), not an image.")
    if "ContentSequence" in ds or str(ds.get("Modality", "")) == "SR":
        raise NoPixelData("This DICOM file is a structured report (text), not an image.")
    raise NoPixelData(
        "This DICOM file contains no image (no pixel data). If it should hold one, it may be incomplete."
    )


def _check_photometric(ds: Dataset, allow_colour: bool) -> None:
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    samples = _int_tag(ds, "SamplesPerPixel", 1)
    if photometric in GREY_PHOTOMETRICS and samples == 1:
        return
    if allow_colour and photometric in COLOUR_PHOTOMETRICS and samples == 3:
        return
    raise ColourImage(
        f"This DICOM image is stored in colour ({photometric or 'unknown'}, {samples} samples per pixel); "
        "mammograms must be greyscale."
    )


def _check_bit_depth(ds: Dataset) -> None:
    allocated = _int_tag(ds, "BitsAllocated", 0)
    stored = _int_tag(ds, "BitsStored", allocated)
    if allocated not in (8, 16) or not 8 <= stored <= allocated:
        raise UnsupportedBitDepth(
            f"This DICOM image uses {stored} bits per pixel in {allocated}-bit words; "
            "only 8 to 16 bits stored are supported."
        )


def _check_declared_size(ds: Dataset, limits) -> None:
    """Pixel cap and memory cap from the header alone, so a hostile header costs nothing."""
    rows, cols = _int_tag(ds, "Rows", 0), _int_tag(ds, "Columns", 0)
    if rows <= 0 or cols <= 0:
        raise CorruptFile("This DICOM image declares no rows or columns.")
    if rows * cols > limits.max_pixels:
        raise ImageTooLarge(
            f"This image declares {cols} x {rows} pixels, more than the {limits.max_pixels:,} this "
            "installation accepts."
        )
    decoded_bytes = rows * cols * _int_tag(ds, "SamplesPerPixel", 1) * _int_tag(ds, "BitsAllocated", 16) // 8
    if decoded_bytes > limits.max_decoded_bytes:
        raise DecompressionBomb(
            f"This image would need {decoded_bytes / 2**20:.0f} MiB once decoded, more than the "
            f"{limits.max_decoded_bytes / 2**20:.0f} MiB allowed."
        )


def transfer_syntax(ds: Dataset) -> uid.UID:
    return uid.UID(str(ds.file_meta.get("TransferSyntaxUID", uid.ExplicitVRLittleEndian)))


def _check_decoder_available(ds: Dataset) -> None:
    syntax = transfer_syntax(ds)
    name = syntax.name if syntax.is_transfer_syntax else f"unknown transfer syntax {syntax}"
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise UnsupportedTransferSyntax(
            f"This DICOM file is compressed with '{name}', which this installation cannot decode."
        ) from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "none"
        log.warning("no decoder plugin for %s (missing: %s)", name, missing)
        raise UnsupportedTransferSyntax(
            f"This DICOM file is compressed with '{name}', but no decoder for it is installed here."
        )


def _check_native_length(ds: Dataset) -> None:
    if transfer_syntax(ds).is_compressed:
        return
    expected = (
        _int_tag(ds, "Rows", 0)
        * _int_tag(ds, "Columns", 0)
        * _int_tag(ds, "SamplesPerPixel", 1)
        * (_int_tag(ds, "BitsAllocated", 16) // 8)
    )
    actual = len(ds.PixelData)
    if actual < expected:
        raise TruncatedPixelData(
            f"The image data in this DICOM file is incomplete ({actual:,} of {expected:,} bytes); "
            "the file was probably cut short during transfer."
        )


def decode_stored_values(ds: Dataset) -> np.ndarray:
    """The stored pixel values (before any LUT) as pydicom's plugins decode them."""
    syntax = transfer_syntax(ds)
    if syntax in _SEQUENTIAL_JPEG:
        _repair_sequential_scan_header(ds)
    if syntax.is_compressed and "pylibjpeg" in get_decoder(syntax).available_plugins:
        # The installed, tested decoder; otherwise pydicom tries whichever plugins exist (gdcm, pillow ...).
        ds.pixel_array_options(decoding_plugin="pylibjpeg")
    try:
        return ds.pixel_array
    except MemoryError:
        raise DecompressionBomb("Decoding this image ran out of memory.") from None
    except _FATAL:
        raise
    except BaseException as exc:  # plugins raise RuntimeError, ValueError, OSError, Rust panics ...
        log.info("pixel decoding failed: %s", exc)
        raise CorruptFile(
            f"The image data in this DICOM file ({transfer_syntax(ds).name}) is damaged or "
            "incomplete and cannot be decoded."
        ) from None


def _repair_sequential_scan_header(ds: Dataset) -> None:
    """Set Se=63 in a sequential JPEG scan header that says 0, as lenient JPEG readers do.

    Sequential DCT scans must have spectral selection 0..63 (ITU T.81 B.2.3), but some encoders wrote
    Se=0 - among them the one that made the NEMA mammography sample MG1_JPLY. libjpeg refuses such a
    stream; IJG-based readers ignore the field. Patching one header byte keeps the data untouched.
    """
    frame = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
    position = _scan_header_spectral_end(frame)
    if position is not None and frame[position - 1] == 0 and frame[position] == 0:
        frame[position] = 63
        ds.PixelData = encapsulate([bytes(frame)])
        log.info("repaired a sequential JPEG scan header with spectral end 0")


def _scan_header_spectral_end(frame: bytearray) -> int | None:
    """Offset of the Se byte of the first SOS when the frame is sequential (SOF0/SOF1), else None."""
    offset, sequential = 2, False
    while offset + 4 <= len(frame) and frame[offset] == 0xFF:
        marker = frame[offset + 1]
        length = int.from_bytes(frame[offset + 2 : offset + 4], "big")
        if marker in (0xC0, 0xC1):
            sequential = True
        if marker == 0xDA:
            components = frame[offset + 4] if offset + 4 < len(frame) else 0
            position = offset + 5 + 2 * components + 1
            return position if sequential and position < len(frame) else None
        offset += 2 + length
    return None


def grey_lookup_table(ds: Dataset, raw: np.ndarray) -> tuple[np.ndarray, dict]:
    """float32 table in [0, 1], indexed by the stored value's unsigned bit pattern, plus what was applied."""
    unsigned = np.uint8 if raw.dtype.itemsize == 1 else np.uint16
    domain = np.arange(np.iinfo(unsigned).max + 1, dtype=unsigned).view(raw.dtype)
    values, steps = _modality_values(ds, domain)
    grey, low, high = _voi_values(ds, values, steps)
    if low is None:
        present = (domain >= raw.min()) & (domain <= raw.max())
        low, high = float(values[present].min()), float(values[present].max())
        steps["voi"] = "image min/max"
    span = high - low
    table = ((grey - low) / span if span > 0 else np.zeros_like(grey)).clip(0.0, 1.0).astype(np.float32)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        table = 1.0 - table
        steps["inverted"] = True
    return table, steps


def _modality_values(ds: Dataset, domain: np.ndarray) -> tuple[np.ndarray, dict]:
    if ds.get("ModalityLUTSequence"):
        values, step = apply_modality_lut(domain, ds), "modality LUT sequence"
    elif "RescaleSlope" in ds and "RescaleIntercept" in ds:
        values, step = apply_modality_lut(domain, ds), "rescale slope/intercept"
    else:
        values, step = domain, "none"
    return np.asarray(values, dtype=np.float64), {"modality_lut": step, "inverted": False}


def _voi_values(ds: Dataset, values: np.ndarray, steps: dict):
    """(grey values, low, high) after the VOI step; low is None when the caller must use min/max."""
    if _has_voi_lut(ds):
        grey = apply_voi_lut(np.rint(values).astype(np.int64), ds, index=0, prefer_lut=True)
        steps["voi"] = "VOI LUT sequence (first)"
        grey = grey.astype(np.float64)
        return grey, float(grey.min()), float(grey.max())
    if "WindowCenter" in ds and "WindowWidth" in ds:
        try:
            grey = apply_windowing(values.copy(), ds, index=0)
            with np.errstate(over="ignore"):
                # Windowing maps everything into [y_min, y_max]; ask pydicom for those ends directly.
                low, high = apply_windowing(np.array([-1e30, 1e30]), ds, index=0)
        except (ValueError, TypeError, IndexError) as exc:
            log.info("ignoring an unusable window: %s", exc)
            steps["voi_ignored"] = "invalid window"
            return values, None, None
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
        steps["voi"] = f"window {function} (first of {ds['WindowCenter'].VM})"
        return grey, float(low), float(high)
    return values, None, None


def _has_voi_lut(ds: Dataset) -> bool:
    sequence = ds.get("VOILUTSequence")
    return bool(sequence) and "LUTDescriptor" in sequence[0] and "LUTData" in sequence[0]


def to_grey(ds: Dataset, raw: np.ndarray) -> tuple[np.ndarray, dict]:
    """Stored greyscale values to display-ready float32 [0, 1] (0 = black) and the steps applied."""
    if raw.ndim != 2 or raw.dtype.kind not in "ui" or raw.dtype.itemsize > 2:
        raise UnsupportedBitDepth(
            f"Decoded pixel array of type {raw.dtype} and shape {raw.shape} is not supported."
        )
    table, steps = grey_lookup_table(ds, raw)
    index = raw.view(np.uint8 if raw.dtype.itemsize == 1 else np.uint16)
    return table[index], steps
