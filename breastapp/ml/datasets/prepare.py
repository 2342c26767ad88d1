"""Records -> canonical arrays, through the SAME preprocessing the engine runs at inference.

Every image is decoded by `breastapp.imaging.decode` and brought to canonical form by
`breastapp.imaging.preprocess` (mammograms: resampled to the working spacing, chest wall on the
left, histogram-equalised over the breast; ultrasound: resized to size x size). Lesion masks (circles
drawn from mini-MIAS centres and radii, or pixel masks) are drawn in ORIGINAL coordinates and
carried into canonical space by `map_to_canonical`, so they follow every resample and mirror.
Results are cached as .npz under a folder keyed by the settings (decoding 242 films takes minutes
on two cores; the cache makes every later fold and run start at once).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from .records import MASS, ImageRecord, LesionAnnotation

logger = logging.getLogger(__name__)
# Part of the cache folder's name: bump it whenever CanonicalSample (or what fills it) changes, so an
# old cache is never read as if it held the new fields. 2: pectoral muscle masks. 3: CLAHE on an 8-bit copy,
# and the muscle found on the equalised film whatever the contrast.
CACHE_VERSION = 3


@dataclass(frozen=True)
class CanonicalSpec:
    """How images become network input; stored verbatim as the `input` block of a model card."""

    modality: str  # "MG" or "US"
    spacing_mm: float | None = 0.2  # mammography working spacing
    contrast: str = "hist_eq"
    size: int | None = None  # ultrasound: whole image resized to size x size
    channels: int = 1

    def key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


@dataclass
class CanonicalSample:
    """One image in canonical form with its lesion masks and per-lesion facts (canonical pixels)."""

    image_id: str
    patient_id: str
    label: str
    pixels: np.ndarray  # float32 [0, 1]
    lesion_mask: np.ndarray  # bool, union of the lesions of interest
    breast_mask: np.ndarray  # bool
    lesion_boxes: np.ndarray  # (n, 4) int: row0, col0, row1, col1 (end-exclusive)
    lesion_pathologies: tuple[str, ...]
    pectoral_mask: np.ndarray | None = None  # bool; None when no muscle was found (always for ultrasound)

    @property
    def search_mask(self) -> np.ndarray:
        """Where the engine looks for lesions: the breast without its pectoral muscle."""
        from breastapp.imaging.preprocess import search_region

        return search_region(self.breast_mask, self.pectoral_mask)


def load_frame(record: ImageRecord):
    """Decode a record's image file exactly as an upload would be decoded."""
    from breastapp.imaging.decode import decode

    return decode(record.image_path, modality=record.modality, spacing_mm=record.spacing_mm)


def canonicalize(frame, spec: CanonicalSpec):
    """The engine's canonical form for `spec` (one call site for training and evaluation)."""
    from breastapp.imaging.preprocess import (
        PreprocessSettings,
        canonicalize_mammogram,
        canonicalize_ultrasound,
    )

    if spec.modality == "US":
        return canonicalize_ultrasound(frame, size=spec.size or 128, contrast=spec.contrast)
    settings = PreprocessSettings(target_spacing_mm=spec.spacing_mm or 0.2, contrast=spec.contrast)
    return canonicalize_mammogram(frame, settings)


def lesion_mask_original(lesion: LesionAnnotation, shape: tuple[int, int]) -> np.ndarray:
    """Bool mask of one lesion in original pixels: a filled circle, or a thresholded mask file."""
    if lesion.mask_path is not None:
        return _read_mask_file(lesion.mask_path, shape)
    mask = np.zeros(shape, dtype=np.uint8)
    row, col = lesion.center_rc
    cv2.circle(mask, (int(round(col)), int(round(row))), int(round(lesion.radius_px)), 1, thickness=-1)
    return mask.astype(bool)


def _read_mask_file(path: Path, shape: tuple[int, int]) -> np.ndarray:
    if path.suffix.lower() == ".dcm":
        import pydicom

        mask = pydicom.dcmread(path).pixel_array > 0
    else:
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0
    if mask.shape != shape:  # a few BUSI masks are off by a pixel or two: resample, never crop
        mask = cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    return mask


def to_sample(record: ImageRecord, spec: CanonicalSpec, kinds=(MASS,)) -> CanonicalSample:
    """Decode, canonicalise and carry the locatable lesions of `kinds` into canonical space."""
    from breastapp.imaging.preprocess import map_to_canonical, mask_box

    frame = load_frame(record)
    canon = canonicalize(frame, spec)
    union = np.zeros(canon.shape, dtype=bool)
    boxes, pathologies = [], []
    for lesion in record.lesions:
        if lesion.kind not in kinds or not lesion.locatable:
            continue
        mask = map_to_canonical(canon, lesion_mask_original(lesion, frame.shape))
        if not mask.any():
            continue
        union |= mask
        boxes.append(mask_box(mask))
        pathologies.append(lesion.pathology or "unknown")
    return CanonicalSample(
        image_id=record.image_id,
        patient_id=record.patient_id,
        label=record.label,
        pixels=canon.pixels.astype(np.float32),
        lesion_mask=union,
        breast_mask=canon.breast_mask.astype(bool),
        lesion_boxes=np.array(boxes, dtype=np.int32).reshape(-1, 4),
        lesion_pathologies=tuple(pathologies),
        pectoral_mask=canon.pectoral_mask,
    )


def load_samples(records, spec: CanonicalSpec, cache_dir: Path | None = None, kinds=(MASS,), progress=False):
    """Canonical samples for `records`, read from / written to `cache_dir/<spec key>/` when given."""
    folder = Path(cache_dir) / f"{spec.modality.lower()}_{spec.key()}_v{CACHE_VERSION}" if cache_dir else None
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
    iterator = records
    if progress:
        from tqdm import tqdm

        iterator = tqdm(records, desc="preparing images", unit="img")
    return [_cached_sample(record, spec, folder, kinds) for record in iterator]


def _cached_sample(record: ImageRecord, spec: CanonicalSpec, folder: Path | None, kinds) -> CanonicalSample:
    kinds_tag = "-".join(sorted(kinds))
    path = folder / f"{record.image_id}.{kinds_tag}.npz" if folder else None
    if path is not None and path.exists():
        try:
            return _read_cached(path, record)
        except (EOFError, OSError, ValueError, KeyError, zipfile.BadZipFile):
            # A file left half-written by a run killed before this cache wrote atomically: rebuild it.
            logger.warning("rebuilding unreadable cache file %s", path.name)
    sample = to_sample(record, spec, kinds)
    if path is not None:
        _write_cached(path, sample)
    return sample


def _write_cached(path: Path, sample: CanonicalSample) -> None:
    """Write to a temporary file beside `path`, then rename it into place: a reader (another training
    run sharing the cache) sees the whole file or none, and a run killed mid-write leaves no stub."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.savez_compressed(
                handle,
                pixels=sample.pixels.astype(np.float16),
                lesion_mask=sample.lesion_mask,
                breast_mask=sample.breast_mask,
                lesion_boxes=sample.lesion_boxes,
                lesion_pathologies=np.array(sample.lesion_pathologies, dtype=str),
                **({} if sample.pectoral_mask is None else {"pectoral_mask": sample.pectoral_mask}),
            )
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_cached(path: Path, record: ImageRecord) -> CanonicalSample:
    with np.load(path) as data:
        return CanonicalSample(
            image_id=record.image_id,
            patient_id=record.patient_id,
            label=record.label,
            pixels=data["pixels"].astype(np.float32),
            lesion_mask=data["lesion_mask"],
            breast_mask=data["breast_mask"],
            lesion_boxes=data["lesion_boxes"],
            lesion_pathologies=tuple(str(value) for value in data["lesion_pathologies"]),
            pectoral_mask=data["pectoral_mask"] if "pectoral_mask" in data else None,
        )
