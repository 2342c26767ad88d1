"""Typed refusals: every way an upload can be unusable, with a stable code and a plain sentence.

The web tier shows `message` to the radiologist next to the file and returns `http_status`;
the command line prints it. Codes are part of the public API: never rename one.
"""

from __future__ import annotations


class ImagingError(Exception):
    """An input the engine refuses. `code` is machine-readable, `message` is for a radiologist."""

    code = "invalid_image"
    http_status = 422

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


class UnsupportedFormat(ImagingError):
    """Not DICOM, PNG or JPEG by content (whatever the file name says)."""

    code = "unsupported_format"
    http_status = 415


class NoPixelData(ImagingError):
    code = "no_pixel_data"


class MultiFrame(ImagingError):
    code = "multi_frame"


class ColourImage(ImagingError):
    code = "colour_image"


class UnsupportedModality(ImagingError):
    code = "unsupported_modality"


class UnsupportedTransferSyntax(ImagingError):
    code = "unsupported_transfer_syntax"


class TruncatedPixelData(ImagingError):
    code = "truncated_pixel_data"


class ImageTooLarge(ImagingError):
    """Declared dimensions exceed the pixel cap (checked before any decoding)."""

    code = "image_too_large"
    http_status = 413


class ImageTooSmall(ImagingError):
    """Fewer pixels on a side than any mammogram or ultrasound image has (an icon, a thumbnail)."""

    code = "image_too_small"


class DecompressionBomb(ImagingError):
    """Compressed data that would expand past the memory cap."""

    code = "decompression_bomb"
    http_status = 413


class CorruptFile(ImagingError):
    """A file of a known type that its decoder cannot read."""

    code = "corrupt_file"


class UnsupportedBitDepth(ImagingError):
    code = "unsupported_bit_depth"
