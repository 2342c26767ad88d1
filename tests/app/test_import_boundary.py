"""The web process never imports TensorFlow: checked in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from breastapp.config import REPO_ROOT

CHECK = """
import sys
import {module} as entry
app = entry.app
app.test_client().get("/healthz")
heavy = ("tensorflow", "keras")
loaded = sorted(name for name in sys.modules if name.split(".")[0] in heavy)
print("LOADED", loaded)
assert not loaded, loaded
assert "celery_app" not in dir(entry) or entry.celery_app.conf.task_serializer == "json"
"""


@pytest.mark.parametrize("module", ["app", "wsgi"])
def test_web_app_does_not_import_tensorflow(tmp_path, module):
    env = {
        **os.environ,
        "BREASTAPP_INSTANCE_DIR": str(tmp_path / "instance"),
        "BREASTAPP_UPLOAD_DIR": str(tmp_path / "uploads"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "BREASTAPP_ENV": "development",
    }
    result = subprocess.run(
        [sys.executable, "-c", CHECK.format(module=module)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LOADED []" in result.stdout
