"""Atomic writes: a crash during a write leaves the previous file whole and no half-written file."""

from __future__ import annotations

import os

import pytest

from breastapp.services import storage as storage_module
from breastapp.services.storage import Storage, write_atomic


def test_write_creates_folders_and_exact_bytes(tmp_path):
    path = Storage(tmp_path).save_original("study", "image", "DICOM", b"DICM bytes")
    assert path == tmp_path / "study" / "image.dcm"
    assert path.read_bytes() == b"DICM bytes"
    assert [p.name for p in path.parent.iterdir()] == ["image.dcm"]  # no temporary file left


def test_crash_before_rename_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    write_atomic(target, b"old")

    def crash(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(storage_module.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, b"new and longer")
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["result.json"]


def test_result_kinds_are_a_closed_list(tmp_path):
    with pytest.raises(ValueError):
        Storage(tmp_path).result_path("s", "a", "../../etc/passwd")
