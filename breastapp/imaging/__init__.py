"""Pure imaging library: decoding, validation, canonical form and drawing.

Knows nothing of Flask, SQL, Celery or TensorFlow: arrays and dataclasses in, arrays and dataclasses out.
"""

from breastapp.imaging.errors import ImagingError
from breastapp.imaging.frame import Frame

__all__ = ["Frame", "ImagingError"]
