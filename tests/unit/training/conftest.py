"""Fixtures for the training tests: real mini-MIAS/BUSI paths, a synthetic CBIS-DDSM tree in TCIA's
layout, and a tiny plain-folder dataset of synthetic lesions."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest


@pytest.fixture(scope="session")
def mias_root(shared_data) -> Path:
    return shared_data / "mini-mias"


@pytest.fixture(scope="session")
def busi_root(shared_data) -> Path:
    return shared_data / "busi"


def _write_dicom(path: Path, pixels: np.ndarray) -> None:
    """A minimal MG DICOM (uncompressed, 16-bit) the way TCIA ships CBIS-DDSM files."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID, dataset.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    dataset.Modality = "MG"
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 16, 15, 0
    dataset.PixelData = pixels.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)


CBIS_HEADER = [
    "patient_id",
    "breast_density",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "mass shape",
    "mass margins",
    "assessment",
    "pathology",
    "subtlety",
    "image file path",
    "cropped image file path",
    "ROI mask file path",
]


@pytest.fixture
def cbis_tree(tmp_path) -> Path:
    """Two patients, three full images, in TCIA's layout, with both real-world quirks:
    P_00001's folders are renamed as the NBIA downloader does, and its crop/mask paths are swapped."""
    rows = []
    cases = [
        ("P_00001", "LEFT", "CC", "MALIGNANT", (20, 30)),
        ("P_00001", "LEFT", "MLO", "MALIGNANT", (25, 28)),
        ("P_00002", "RIGHT", "CC", "BENIGN_WITHOUT_CALLBACK", (40, 20)),
    ]
    for patient, side, view, pathology, (row, col) in cases:
        case = f"Mass-Training_{patient}_{side}_{view}"
        full = np.full((64, 48), 800, np.uint16)
        full[:, 40:] = 0
        mask = np.zeros((64, 48), np.uint16)
        mask[row - 4 : row + 4, col - 4 : col + 4] = 255
        full[mask > 0] = 3000
        renamed = patient == "P_00001"
        full_dir = (
            f"{case}/07-20-2016-DDSM-1/1.000000-full mammogram images-1" if renamed else f"{case}/1.2.3/1.2.4"
        )
        _write_dicom(tmp_path / full_dir / ("1-1.dcm" if renamed else "000000.dcm"), full)
        roi = f"{case}_1/1.2.5/1.2.6"
        _write_dicom(tmp_path / roi / "000000.dcm", mask)  # the mask, named like a crop
        _write_dicom(tmp_path / roi / "000001.dcm", full[row - 8 : row + 8, col - 8 : col + 8])
        crop_csv, mask_csv = f"{roi}/000001.dcm", f"{roi}/000000.dcm"
        if renamed:
            crop_csv, mask_csv = mask_csv, crop_csv  # the CSV swaps them: content must decide
        rows.append(
            [
                patient,
                3,
                side,
                view,
                1,
                "mass",
                "OVAL",
                "CIRCUMSCRIBED",
                4,
                pathology,
                3,
                f"{case}/1.2.3/1.2.4/000000.dcm",
                crop_csv,
                mask_csv + "\n",
            ]
        )
    with open(tmp_path / "mass_case_description_train_set.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CBIS_HEADER)
        writer.writerows(rows)
    return tmp_path


def synthetic_lesion_image(rng: np.random.Generator, size: int = 48, lesion: bool = True):
    """Textured grey background with (optionally) one bright disc; returns (uint8 image, uint8 mask)."""
    image = (rng.normal(90, 12, (size, size))).clip(0, 255)
    mask = np.zeros((size, size), np.uint8)
    if lesion:
        center = tuple(int(v) for v in rng.integers(size // 4, 3 * size // 4, 2))
        cv2.circle(mask, center, int(rng.integers(5, 9)), 255, -1)
        image[mask > 0] += 90
    return image.clip(0, 255).astype(np.uint8), mask


@pytest.fixture
def folder_dataset(tmp_path) -> Path:
    """A plain-folder ultrasound dataset: 12 images (4 per class), 2 images per patient."""
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    lines = ["image,label,patient,modality"]
    for i in range(12):
        label = ("benign", "malignant", "normal")[i % 3]
        image, mask = synthetic_lesion_image(rng, lesion=label != "normal")
        cv2.imwrite(str(tmp_path / "images" / f"case{i:02d}.png"), image)
        cv2.imwrite(str(tmp_path / "masks" / f"case{i:02d}.png"), mask)
        lines.append(f"case{i:02d}.png,{label},p{i // 2},US")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    return tmp_path
