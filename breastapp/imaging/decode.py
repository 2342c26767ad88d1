"""The one entry point from an upload's bytes to a Frame.

    frame = decode(data)                       # DICOM, PNG or JPEG, decided by content
    frame = decode(path, modality="US")        # the user's choices fill what a plain image cannot say

Every refusal is an ImagingError subclass with a stable code and a sentence for a radiologist. Decoders
are third-party C code fed hostile input, so anything else they raise (ValueError, OSError, zlib.error,
struct.error, ...) is translated here into CorruptFile: callers never see a bare library exception.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

from breastapp.constants import LATERALITIES, MODALITIES, VIEWS
from breastapp.imaging import sniff
from breastapp.imaging.dicom import decode_dicom
from breastapp.imaging.errors import (
    CorruptFile,
    DecompressionBomb,
    ImageTooLarge,
    ImageTooSmall,
    ImagingError,
    UnsupportedFormat,
    UnsupportedModality,
)
from breastapp.imaging.frame import Frame
from breastapp.imaging.raster import decode_raster

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecodeLimits:
    """Caps that keep one hostile upload from taking the worker down (see docs/CONTRACTS.md)."""

    max_pixels: int = 80_000_000  # declared rows*cols cap, checked before decoding
    max_decoded_bytes: int = 512 * 2**20  # cap on inflated / decompressed data
    max_file_bytes: int = 200 * 2**20


def decode(
    source: bytes | str | os.PathLike,
    *,
    limits: DecodeLimits | None = None,
    modality: str | None = None,
    view: str | None = None,
    laterality: str | None = None,
    spacing_mm: float | None = None,
) -> Frame:
    """Decode an upload (bytes or a path) into a Frame, or raise an ImagingError saying why not.

    `modality`, `view`, `laterality` and `spacing_mm` are the user's choices; DICOM tags win where
    present. Unknown view or laterality values are ignored; an unknown modality is refused.
    """
    limits = limits or DecodeLimits()
    modality = _choice(modality, MODALITIES, "modality")
    view, laterality = _choice(view, VIEWS, "view"), _choice(laterality, LATERALITIES, "laterality")
    spacing_mm = _valid_spacing(spacing_mm)
    data = _read_source(source, limits)
    source_format = sniff.sniff_format(data)
    try:
        if source_format == sniff.DICOM:
            return decode_dicom(
                data, limits, modality=modality, view=view, laterality=laterality, spacing_mm=spacing_mm
            )
        default_modality = "MG" if source_format == sniff.PNG else "US"
        return decode_raster(
            data,
            source_format,
            limits,
            modality=modality or default_modality,
            view=view,
            laterality=laterality,
            spacing_mm=spacing_mm,
        )
    except ImagingError:
        raise
    except MemoryError:
        raise DecompressionBomb("Decoding this image ran out of memory.") from None
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # the translator: no library exception escapes (pyo3 panics included)
        log.warning("unexpected %s while decoding a %s upload: %s", type(exc).__name__, source_format, exc)
        raise CorruptFile(f"This {source_format} file is damaged or malformed and cannot be read.") from None


MIN_ANALYSABLE_SIDE = 32  # fewer pixels on a side is an icon or a thumbnail, not an image to analyse


def require_analysable_size(frame: Frame) -> Frame:
    """`frame`, or ImageTooSmall when a side is shorter than MIN_ANALYSABLE_SIDE pixels.

    Separate from `decode`, which reads any valid file: the product refuses to ANALYSE tiny images
    (the upload service before accepting them, the engine before running).
    """
    rows, cols = frame.shape
    if min(rows, cols) < MIN_ANALYSABLE_SIDE:
        raise ImageTooSmall(
            f"This image is {cols} x {rows} pixels; an image to analyse needs at least "
            f"{MIN_ANALYSABLE_SIDE} pixels on each side. Please upload the original image, not an icon "
            "or a thumbnail."
        )
    return frame


def _choice(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    """Normalise a form value; an unknown modality is refused, an unknown view or side ignored."""
    if value is None or not str(value).strip():
        return None
    normalised = str(value).strip().upper()
    if normalised in allowed:
        return normalised
    if what == "modality":
        raise UnsupportedModality(
            f"Modality '{value}' cannot be analysed; choose mammography (MG) or ultrasound (US)."
        )
    log.info("ignoring unknown %s value from the caller", what)
    return None


def _valid_spacing(spacing_mm: float | None) -> float | None:
    if spacing_mm is None:
        return None
    try:
        spacing = float(spacing_mm)
    except (TypeError, ValueError):
        return None
    return spacing if math.isfinite(spacing) and spacing > 0 else None


def _read_source(source: bytes | str | os.PathLike, limits: DecodeLimits) -> bytes:
    """Bytes as given, or a file's bytes after checking its size on disk."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > limits.max_file_bytes:
                raise _file_too_large(size, limits)
            data = path.read_bytes()
        except OSError as exc:
            raise UnsupportedFormat(f"The file could not be read ({exc.strerror or 'unreadable'}).") from None
    if len(data) > limits.max_file_bytes:
        raise _file_too_large(len(data), limits)
    if not data:
        raise UnsupportedFormat("The file is empty.")
    return data


def _file_too_large(size: int, limits: DecodeLimits) -> ImageTooLarge:
    return ImageTooLarge(
        f"This file is {size / 2**20:.0f} MiB, "
        f"more than the {limits.max_file_bytes / 2**20:.0f} MiB accepted."
    )
