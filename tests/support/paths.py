"""Where things are: the repository, the virtual environment's commands, the shared data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO_ROOT / "docker" / "entrypoint.sh"

# The commands (gunicorn, celery, flask) installed beside the interpreter running the tests.
VENV_BIN = Path(sys.executable).parent


def shared_data_dir() -> Path:
    """../shared/data beside the repository (or BREASTAPP_SHARED_DATA), as tests/conftest.py has it."""
    return Path(os.environ.get("BREASTAPP_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()
