"""The decoded image every later stage works on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One decoded greyscale image, ready for display and the networks.

    pixels: float32, shape (rows, cols), values in [0, 1], 0 = black (MONOCHROME1 already inverted).
    spacing_mm: (row spacing, column spacing) in millimetres, or None when the file does not say.
    metadata: acquisition facts only (never patient identifiers), JSON-serialisable.
    """

    pixels: np.ndarray
    modality: str  # "MG" or "US"
    source_format: str  # "DICOM", "PNG" or "JPEG"
    spacing_mm: tuple[float, float] | None = None
    laterality: str | None = None  # "L" or "R"
    view: str | None = None  # "CC", "MLO", ...
    presentation_intent: str | None = None  # "FOR PRESENTATION" / "FOR PROCESSING"
    bits_stored: int = 8
    manufacturer: str | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]
