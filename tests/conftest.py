"""Fixtures shared by every test folder: where the real data lives, and where tests may write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """../shared/data beside the repository (or BREASTAPP_SHARED_DATA)."""
    return Path(os.environ.get("BREASTAPP_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets. Skips only outside CI when the folder is absent; in CI its absence fails."""
    path = shared_data_dir()
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the shared data folder {path} is missing")
        pytest.skip(f"shared data folder {path} is absent")
    return path


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """test-output/ at the repository root: screenshots and reports tests leave for people to look at."""
    path = REPO_ROOT / "test-output"
    path.mkdir(exist_ok=True)
    return path
