"""PNG and JPEG uploads to Frames, and the one rule for colour everywhere (DICOM ultrasound included).

Plain images carry no trustworthy acquisition facts, so modality, view, laterality and spacing come from
the user's choices in the upload form (PNG defaults to MG, JPEG to US).

Colour: mammograms are greyscale; an RGB(A) file whose channels agree is a grey image saved in colour and
is accepted. An ultrasound screen capture often has coloured calipers or text on a grey image: those are
converted to grey luminance (ITU-R BT.601) and the metadata says so. Anything more colourful than that
(elastography, colour Doppler filling the frame, a photograph) is refused.
"""

from __future__ import annotations

import io
import logging

import numpy as np
from PIL import Image, ImageOps

from breastapp.imaging.errors import (
    ColourImage,
    CorruptFile,
    DecompressionBomb,
    ImageTooLarge,
    TruncatedPixelData,
    UnsupportedBitDepth,
)
from breastapp.imaging.frame import Frame

log = logging.getLogger(__name__)

# A pixel is "coloured" when its channels differ by more than this (out of 255): JPEG chroma noise on a
# grey picture stays below it.
COLOUR_SPREAD_TOLERANCE = 24 / 255
# Largest share of coloured pixels still treated as annotations on a grey image.
MAX_COLOURED_FRACTION = {"MG": 0.001, "US": 0.10}
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)

_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 3, "LA": 2, "PA": 4, "I;16": 2, "I;16B": 2, "I;16L": 2, "I": 4}
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")


def decode_raster(
    data: bytes, source_format: str, limits, *, modality: str, view=None, laterality=None, spacing_mm=None
) -> Frame:
    """PNG or JPEG bytes to a Frame; `modality` is already resolved (caller's choice or the default)."""
    with _open_image(data) as image:
        _check_declared_size(image, limits)
        _load(image)
        oriented = ImageOps.exif_transpose(image) if source_format == "JPEG" else image
        pixels, bits, colour_note = _grey_pixels(oriented, modality)
        metadata = {"mode": image.mode, "bit_depth": bits, "width": image.width, "height": image.height}
    if colour_note:
        metadata["colour"] = colour_note
    metadata["spacing_source"] = "caller" if spacing_mm is not None else "unknown"
    return Frame(
        pixels=pixels,
        modality=modality,
        source_format=source_format,
        spacing_mm=(spacing_mm, spacing_mm) if spacing_mm is not None else None,
        laterality=laterality,
        view=view,
        bits_stored=bits,
        metadata=metadata,
    )


def _open_image(data: bytes) -> Image.Image:
    """Image.open reads only the header; Pillow's own bomb guard fires here for absurd sizes."""
    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise DecompressionBomb(f"This image declares an absurd size and was refused ({exc}).") from None
    except Exception as exc:
        log.info("image header unreadable: %s", exc)
        raise CorruptFile("This image file is damaged and cannot be read.") from None


def _check_declared_size(image: Image.Image, limits) -> None:
    """Pixel cap and memory cap from the header, before Pillow decodes anything."""
    width, height = image.size
    if width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"This image declares {width} x {height} pixels, more than the {limits.max_pixels:,} this "
            "installation accepts."
        )
    decoded = width * height * _BYTES_PER_PIXEL.get(image.mode, 4)
    if decoded > limits.max_decoded_bytes:
        raise DecompressionBomb(
            f"This image would need {decoded / 2**20:.0f} MiB once decoded, more than the "
            f"{limits.max_decoded_bytes / 2**20:.0f} MiB allowed."
        )


def _load(image: Image.Image) -> None:
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise DecompressionBomb(f"This image expands past the size allowed ({exc}).") from None
    except MemoryError:
        raise DecompressionBomb("Decoding this image ran out of memory.") from None
    except Exception as exc:
        log.info("image decoding failed: %s", exc)
        if "truncated" in str(exc).lower():
            raise TruncatedPixelData("This image file is incomplete; it was probably cut short.") from None
        raise CorruptFile("This image file is damaged and cannot be decoded.") from None


def _grey_pixels(image: Image.Image, modality: str) -> tuple[np.ndarray, int, dict | None]:
    """(float32 [0,1] pixels, bit depth, colour note) for any Pillow mode a PNG or JPEG can have."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image)
        return (values.clip(0, 65535).astype(np.float32) / np.float32(65535.0)), 16, None
    if mode in ("1", "L"):
        values = np.asarray(image.convert("L"))
        return values.astype(np.float32) / np.float32(255.0), 8, None
    if mode in ("LA", "La"):
        values = np.asarray(image.getchannel(0))
        return values.astype(np.float32) / np.float32(255.0), 8, None
    if mode in ("RGB", "RGBA", "RGBa", "RGBX", "P", "PA", "CMYK", "YCbCr"):
        rgb = np.asarray(image.convert("RGB"))
        grey, note = grey_from_rgb(rgb, modality)
        return grey, 8, note
    raise UnsupportedBitDepth(f"Images of pixel type '{mode}' are not supported.")


def grey_from_rgb(rgb: np.ndarray, modality: str) -> tuple[np.ndarray, dict]:
    """Integer RGB (H, W, 3) to float32 grey [0,1], or ColourImage when it is really a colour picture."""
    scale = float(np.iinfo(rgb.dtype).max)
    channels = rgb[..., :3]
    spread = channels.max(axis=-1) - channels.min(axis=-1)
    coloured_fraction = float(np.count_nonzero(spread > COLOUR_SPREAD_TOLERANCE * scale)) / spread.size
    if coloured_fraction > MAX_COLOURED_FRACTION.get(modality, 0.0):
        raise ColourImage(
            f"This is a colour image ({coloured_fraction:.0%} of pixels coloured); "
            + (
                "mammograms must be greyscale."
                if modality == "MG"
                else "only greyscale ultrasound can be analysed."
            )
        )
    grey = np.zeros(channels.shape[:2], dtype=np.float32)
    for band, weight in enumerate(_LUMA_WEIGHTS):
        grey += channels[..., band].astype(np.float32) * np.float32(weight / scale)
    note = {"stored_as": "RGB", "coloured_fraction": round(coloured_fraction, 5)}
    if coloured_fraction > 0:
        note["converted"] = "coloured annotations converted to grey luminance (BT.601)"
    return grey.clip(0.0, 1.0), note
