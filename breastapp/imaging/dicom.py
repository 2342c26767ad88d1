"""DICOM files to Frames: parse (with a guard on deflated data sets), validate, decode, describe.

Order matters for the messages a radiologist sees: a structured report is "no image" before it is
"wrong modality", and every size check happens on the header before a single pixel is decoded.
"""

from __future__ import annotations

import io
import logging
import zlib

import numpy as np
import pydicom
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset

from breastapp.imaging import dicom_meta, dicom_pixels
from breastapp.imaging.errors import CorruptFile, DecompressionBomb, TruncatedPixelData
from breastapp.imaging.frame import Frame
from breastapp.imaging.raster import grey_from_rgb
from breastapp.imaging.sniff import DICOM_PREAMBLE_LENGTH, has_dicom_preamble

log = logging.getLogger(__name__)

_INFLATE_CHUNK = 1 << 20  # compressed bytes fed to zlib per step


def decode_dicom(data: bytes, limits, *, modality=None, view=None, laterality=None, spacing_mm=None) -> Frame:
    """One DICOM file's bytes to a Frame; raises only ImagingError subclasses (via decode's translator)."""
    ds = read_dicom(data, limits)
    if "PixelData" not in ds and _mentions_pixel_data_tag(data):
        # pydicom drops an encapsulated Pixel Data element whose fragments run past the end of the file.
        raise TruncatedPixelData(
            "The image data in this DICOM file is incomplete; "
            "the file was probably cut short during transfer."
        )
    dicom_pixels.check_has_pixels(ds)
    frame_modality, modality_reason = dicom_meta.resolve_modality(ds, modality)
    dicom_pixels.check_pixel_module(ds, limits, allow_colour=frame_modality == "US")
    raw = dicom_pixels.decode_stored_values(ds)
    pixels, pipeline = _display_pixels(ds, raw, frame_modality)
    spacing, spacing_source = dicom_meta.read_spacing(ds, spacing_mm)
    metadata = dicom_meta.safe_metadata(ds)
    metadata.update(
        transfer_syntax=dicom_pixels.transfer_syntax(ds).name,
        modality_reason=modality_reason,
        spacing_source=spacing_source,
        grey_pipeline=pipeline,
    )
    return Frame(
        pixels=pixels,
        modality=frame_modality,
        source_format="DICOM",
        spacing_mm=spacing,
        laterality=dicom_meta.read_laterality(ds, laterality),
        view=dicom_meta.read_view(ds, view),
        presentation_intent=str(ds.get("PresentationIntentType", "") or "").strip() or None,
        bits_stored=int(ds.get("BitsStored", 8)),
        manufacturer=str(ds.get("Manufacturer", "") or "").strip() or None,
        metadata=metadata,
    )


def _mentions_pixel_data_tag(data: bytes) -> bool:
    """True when the bytes contain the (7FE0,0010) tag in either byte order (deflated files excepted)."""
    return b"\xe0\x7f\x10\x00" in data or b"\x7f\xe0\x00\x10" in data


def _display_pixels(ds: Dataset, raw: np.ndarray, modality: str) -> tuple[np.ndarray, dict]:
    """Greyscale through the LUT pipeline; colour (ultrasound only, already vetted) through luminance."""
    if raw.ndim == 3:
        grey, colour_note = grey_from_rgb(raw, modality)
        return grey, {"colour": colour_note}
    return dicom_pixels.to_grey(ds, raw)


def read_dicom(data: bytes, limits) -> Dataset:
    """Parse a DICOM data set from bytes, inflating deflated data sets under the memory cap."""
    if has_dicom_preamble(data):
        meta, body_offset = _read_file_meta(data)
        if meta.get("TransferSyntaxUID") == uid.DeflatedExplicitVRLittleEndian:
            return _read_deflated(meta, data[body_offset:], limits)
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=not has_dicom_preamble(data))
    except Exception as exc:
        log.info("DICOM parse failed: %s", exc)
        raise CorruptFile("This DICOM file is damaged or incomplete and cannot be read.") from None
    _ensure_transfer_syntax(ds)
    return ds


def _read_file_meta(data: bytes) -> tuple[FileMetaDataset, int]:
    """The group 0002 elements after the preamble, and where the data set proper starts."""
    stream = io.BytesIO(data)
    stream.seek(DICOM_PREAMBLE_LENGTH + 4)
    try:
        meta = read_dataset(
            stream, is_implicit_VR=False, is_little_endian=True, stop_when=lambda tag, *_: tag.group != 2
        )
    except Exception as exc:
        log.info("DICOM file meta parse failed: %s", exc)
        raise CorruptFile("The header of this DICOM file is damaged.") from None
    return FileMetaDataset(meta), stream.tell()


def _read_deflated(meta: FileMetaDataset, body: bytes, limits) -> Dataset:
    """Inflate in bounded steps (pydicom would inflate all at once) and parse the result."""
    inflated = inflate_bounded(body, limits.max_decoded_bytes)
    try:
        ds = read_dataset(io.BytesIO(inflated), is_implicit_VR=False, is_little_endian=True)
    except Exception as exc:
        log.info("deflated DICOM parse failed: %s", exc)
        raise CorruptFile("This DICOM file is damaged or incomplete and cannot be read.") from None
    ds.file_meta = meta
    ds.set_original_encoding(False, True)
    return ds


def inflate_bounded(compressed: bytes, max_bytes: int) -> bytes:
    """Raw-deflate `compressed`, refusing as soon as the output would pass `max_bytes`.

    `decompress(chunk, max_length)` never returns more than asked for, so memory stays bounded by
    the cap however extreme the compression ratio (a deflate bomb reaches 1000:1).
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    output = bytearray()
    pending = memoryview(compressed)
    try:
        while not inflater.eof:
            if inflater.unconsumed_tail:
                chunk = inflater.unconsumed_tail
            elif pending:
                chunk, pending = pending[:_INFLATE_CHUNK], pending[_INFLATE_CHUNK:]
            else:
                break  # input exhausted before the end of the stream
            output += inflater.decompress(chunk, max_bytes - len(output) + 1)
            if len(output) > max_bytes:
                raise DecompressionBomb(
                    f"This deflated DICOM file expands past the {max_bytes / 2**20:.0f} MiB allowed."
                )
    except zlib.error as exc:
        log.info("inflate failed: %s", exc)
        raise CorruptFile("The compressed content of this DICOM file is damaged.") from None
    return bytes(output)


def _ensure_transfer_syntax(ds: Dataset) -> None:
    """Files without a Part 10 header have no TransferSyntaxUID; derive it from how pydicom read them."""
    if not hasattr(ds, "file_meta"):
        ds.file_meta = FileMetaDataset()
    if "TransferSyntaxUID" in ds.file_meta:
        return
    implicit, little = ds.original_encoding
    if implicit:
        ds.file_meta.TransferSyntaxUID = uid.ImplicitVRLittleEndian
    else:
        ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian if little else uid.ExplicitVRBigEndian
