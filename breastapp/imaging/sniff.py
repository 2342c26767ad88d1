"""Decide what an upload is from its bytes, never from its name.

A browser's file name and MIME type are whatever the user's machine says; the first bytes are what the
decoders will actually see. Anything that is not recognisably DICOM, PNG or JPEG is refused here, before
any decoder is handed hostile bytes it was never meant for.
"""

from __future__ import annotations

from breastapp.imaging.errors import UnsupportedFormat

DICOM = "DICOM"
PNG = "PNG"
JPEG = "JPEG"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8\xff"
DICOM_PREAMBLE_LENGTH = 128
DICOM_MAGIC = b"DICM"

# Groups a bare (preamble-less) DICOM data set may plausibly start with: file meta, identifying
# information, or - in files written by old software - patient or study groups.
_BARE_DATASET_FIRST_GROUPS = {0x0002, 0x0008, 0x0010, 0x0018, 0x0020}


def has_dicom_preamble(data: bytes) -> bool:
    """True when the Part 10 marker "DICM" follows the 128-byte preamble."""
    return data[DICOM_PREAMBLE_LENGTH : DICOM_PREAMBLE_LENGTH + 4] == DICOM_MAGIC


def _looks_like_bare_dataset(data: bytes) -> bool:
    """A preamble-less data set starts with a little-endian tag of a low group and element.

    Old modalities wrote data sets without the Part 10 header; pydicom can still read them with
    force=True, but force=True reads anything, so we only allow it when the first tag is plausible.
    """
    if len(data) < 8:
        return False
    group = int.from_bytes(data[0:2], "little")
    element = int.from_bytes(data[2:4], "little")
    return group in _BARE_DATASET_FIRST_GROUPS and element < 0x0100


def sniff_format(data: bytes) -> str:
    """Return "DICOM", "PNG" or "JPEG" for these bytes, or raise UnsupportedFormat."""
    if data.startswith(PNG_SIGNATURE):
        return PNG
    if data.startswith(JPEG_SOI):
        return JPEG
    if has_dicom_preamble(data) or _looks_like_bare_dataset(data):
        return DICOM
    raise UnsupportedFormat(
        "This file is not a DICOM, PNG or JPEG image (judged by its content, not its name). "
        "Please upload the original image file."
    )
