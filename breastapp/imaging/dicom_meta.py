"""What a DICOM header tells us besides the pixels: modality, geometry, view, and safe metadata.

Two rules shape this module:
- Patient identifiers never leave it. The metadata dict is built from a WHITELIST of acquisition tags;
  anything not named here (names, ids, birth dates, accession numbers, institutions, dates, UIDs) is
  simply never read.
- Tags in the file win over what the user chose in the upload form; the form fills gaps only.
"""

from __future__ import annotations

import math

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

from breastapp.constants import LATERALITIES, VIEWS
from breastapp.imaging.errors import UnsupportedModality

# Projection X-ray modalities. Digitised film mammograms (DDSM, the NEMA samples) are stored as RG
# (radiographic imaging) or secondary captures; computed and digital radiography of the breast as CR/DX.
# They are mammograms when the file says BREAST or the radiologist says MG, and are then analysed as MG.
XRAY_PROJECTION_MODALITIES = ("RG", "CR", "DX")

# SOP classes that are mammography or breast ultrasound whatever the Modality tag says.
_MAMMOGRAPHY_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1",  # Digital Mammography X-Ray Image Storage - For Processing
}

# Acquisition facts safe to keep with the result (no identifiers, no dates, no UIDs).
METADATA_WHITELIST = (
    "Modality",
    "ImageType",
    "PresentationIntentType",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
    "WindowCenterWidthExplanation",
    "VOILUTFunction",
    "BodyPartExamined",
    "ViewPosition",
    "ImageLaterality",
    "Laterality",
    "PatientOrientation",
    "ImagerPixelSpacing",
    "PixelSpacing",
    "EstimatedRadiographicMagnificationFactor",
    "SpatialResolution",
    "Manufacturer",
    "ManufacturerModelName",
    "DetectorType",
    "KVP",
    "Exposure",
    "ExposureTime",
    "XRayTubeCurrent",
    "BodyPartThickness",
    "CompressionForce",
    "AnodeTargetMaterial",
    "FilterMaterial",
    "PartialView",
    "BreastImplantPresent",
    "ConversionType",
    "LossyImageCompression",
    "LossyImageCompressionRatio",
    "LossyImageCompressionMethod",
    "TransducerType",
    "SamplesPerPixel",
)

# Code meanings of the View Code Sequence (SNOMED / DICOM CID 4014) for files without ViewPosition.
_VIEW_CODE_MEANINGS = {
    "cranio-caudal": "CC",
    "medio-lateral oblique": "MLO",
    "medio-lateral": "ML",
    "latero-medial": "LM",
    "cranio-caudal exaggerated laterally": "XCCL",
    "cranio-caudal exaggerated medially": "XCCM",
    "caudo-cranial (from below)": "FB",
    "superolateral to inferomedial oblique": "SIO",
    "axillary tail": "AT",
}


def resolve_modality(ds: Dataset, caller_modality: str | None) -> tuple[str, str]:
    """Return (analysis modality "MG" or "US", a short reason) or refuse the file.

    The DICOM tag wins; RG/CR/DX are accepted as mammograms only with evidence (BREAST or the caller's MG).
    """
    stored = str(ds.get("Modality", "") or "").strip().upper()
    sop_class = str(ds.get("SOPClassUID", ""))
    body_part = str(ds.get("BodyPartExamined", "") or "").strip().upper()
    if stored in ("MG", "US"):
        return stored, "modality tag"
    if sop_class in _MAMMOGRAPHY_SOP_CLASSES:
        return "MG", "mammography SOP class"
    if stored in XRAY_PROJECTION_MODALITIES and (body_part == "BREAST" or caller_modality == "MG"):
        reason = (
            "breast X-ray (body part BREAST)" if body_part == "BREAST" else "breast X-ray (chosen by user)"
        )
        return "MG", reason
    if not stored and caller_modality in ("MG", "US"):
        return caller_modality, "chosen by user (file gives no modality)"
    raise UnsupportedModality(_modality_refusal(stored, body_part))


def _modality_refusal(stored: str, body_part: str) -> str:
    if not stored:
        return (
            "This DICOM file does not say which modality it is. "
            "Choose mammography (MG) or ultrasound (US) when uploading it."
        )
    if stored in XRAY_PROJECTION_MODALITIES:
        part = f" of {body_part.lower()}" if body_part else ""
        return (
            f"This is an X-ray ({stored}) image{part}, not marked as a breast image. "
            "If it is a mammogram, upload it again with modality MG."
        )
    return f"This is a {stored} image; only mammography (MG) and breast ultrasound (US) can be analysed."


def read_spacing(ds: Dataset, caller_spacing_mm: float | None) -> tuple[tuple[float, float] | None, str]:
    """(row, column) pixel spacing in mm and where it came from.

    ImagerPixelSpacing (at the detector) comes first, as the issue and most mammography readers do;
    PixelSpacing second; the user's value only when the file gives neither.
    """
    for keyword in ("ImagerPixelSpacing", "PixelSpacing"):
        spacing = _positive_pair(ds.get(keyword))
        if spacing is not None:
            return spacing, keyword
    if caller_spacing_mm is not None:
        return (caller_spacing_mm, caller_spacing_mm), "caller"
    return None, "unknown"


def _positive_pair(value) -> tuple[float, float] | None:
    """Two finite positive numbers from a DS value, or None for anything else (absent, 0, garbage)."""
    if value is None:
        return None
    try:
        numbers = [float(v) for v in (value if isinstance(value, MultiValue | list | tuple) else [value])]
    except (TypeError, ValueError):
        return None
    if len(numbers) == 1:
        numbers = numbers * 2
    if len(numbers) != 2 or not all(math.isfinite(v) and v > 0 for v in numbers):
        return None
    return numbers[0], numbers[1]


def read_laterality(ds: Dataset, caller_laterality: str | None) -> str | None:
    """ImageLaterality, then the series' Laterality, then the user's choice; only L or R count."""
    for keyword in ("ImageLaterality", "Laterality"):
        value = str(ds.get(keyword, "") or "").strip().upper()
        if value in LATERALITIES:
            return value
    return caller_laterality


def read_view(ds: Dataset, caller_view: str | None) -> str | None:
    """ViewPosition, then the View Code Sequence's meaning, then the user's choice."""
    value = str(ds.get("ViewPosition", "") or "").strip().upper()
    if value in VIEWS:
        return value
    for item in ds.get("ViewCodeSequence", []) or []:
        meaning = str(item.get("CodeMeaning", "")).strip().lower()
        if meaning in _VIEW_CODE_MEANINGS:
            return _VIEW_CODE_MEANINGS[meaning]
    return caller_view


def safe_metadata(ds: Dataset) -> dict:
    """The whitelisted acquisition tags as JSON-friendly values (str, int, float or lists of them)."""
    metadata: dict = {}
    for keyword in METADATA_WHITELIST:
        if keyword not in ds:
            continue
        value = _json_value(ds[keyword].value)
        if value not in (None, "", []):
            metadata[keyword] = value
    return metadata


def _json_value(value):
    """DICOM values to plain Python; anything exotic (bytes, sequences, person names) is dropped.

    pydicom's DS and IS values are float and int subclasses, so they land in the numeric branches.
    """
    if isinstance(value, MultiValue | list | tuple):
        items = [_json_value(v) for v in value]
        return [v for v in items if v is not None]
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and not isinstance(value, PersonName):
        return value.strip()
    return None
