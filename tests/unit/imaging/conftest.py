"""Fixtures for the imaging tests: the real files in ../shared/data (skipped outside CI when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def dicom_dir(shared_data: Path) -> Path:
    return shared_data / "dicom"


@pytest.fixture(scope="session")
def j2k_mammogram(dicom_dir: Path) -> Path:
    """NEMA's MG1_J2KI: a digitised film mammogram, 4664x3064, 12-bit, JPEG 2000 lossy, Modality RG."""
    return dicom_dir / "MG1_J2KI.dcm"


@pytest.fixture(scope="session")
def jpeg12_mammogram(dicom_dir: Path) -> Path:
    """The same image as 12-bit JPEG extended (lossy), the only 12-bit JPEG fixture we have."""
    return dicom_dir / "MG1_JPLY.dcm"


@pytest.fixture(scope="session")
def mias_png(shared_data: Path) -> Path:
    return shared_data / "mini-mias" / "images" / "mdb001.png"


@pytest.fixture(scope="session")
def busi_png(shared_data: Path) -> Path:
    return shared_data / "busi" / "benign" / "benign (1).png"
