"""`python -m breastapp analyze`: a real mini-MIAS film through real (initialised) networks, and a refusal."""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import pytest

from breastapp.commands import analyze
from breastapp.constants import RESEARCH_BANNER

OUTPUT_FILES = ("overlay.png", "mask.png", "heatmap.png", "result.json")


def main(argv: list[str]) -> int:
    """`python -m breastapp analyze ...` through the command's own parser (the dispatcher adds nothing)."""
    assert argv[0] == "analyze"
    parser = argparse.ArgumentParser(prog="python -m breastapp analyze")
    analyze.add_arguments(parser)
    return analyze.run(parser.parse_args(argv[1:]))


@pytest.fixture(scope="module")
def initialised_models(tmp_path_factory):
    """Untrained weights under every shipped name: the command's plumbing is the point, not accuracy."""
    from breastapp.ml.registry import write_initialised_weights

    folder = tmp_path_factory.mktemp("models")
    write_initialised_weights(folder)
    return folder


def test_analyze_writes_four_files_and_reports_a_refusal(shared_data, initialised_models, tmp_path, capsys):
    film = shared_data / "mini-mias" / "images" / "mdb001.png"
    garbage = tmp_path / "Jane_Doe_1970.dcm"  # a name that must never reach the output folders
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    out = tmp_path / "out"

    status = main(
        ["analyze", str(film), str(garbage), "--out", str(out), "--models-dir", str(initialised_models)]
    )

    assert status == 1, "a refused file makes the command fail, after the others were processed"
    stderr = capsys.readouterr().err
    assert f"{garbage}: unsupported_format: " in stderr
    manifest = json.loads((out / "manifest.json").read_text())["inputs"]
    assert [entry["input"] for entry in manifest] == [str(film), str(garbage)]
    assert manifest[1]["folder"] is None and manifest[1]["error"]["code"] == "unsupported_format"

    folder_name = manifest[0]["folder"]
    assert folder_name.startswith("001-") and "mdb" not in folder_name and "Jane" not in folder_name
    assert sorted(p.name for p in out.iterdir()) == sorted([folder_name, "manifest.json"])
    folder = out / folder_name
    assert sorted(p.name for p in folder.iterdir()) == sorted(OUTPUT_FILES)

    for name in ("overlay.png", "heatmap.png"):
        image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (1024, 1024, 3), name
    mask = cv2.imread(str(folder / "mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (1024, 1024) and set(np.unique(mask)) <= {0, 255}

    result = json.loads((folder / "result.json").read_text())
    assert result["disclaimer"] == RESEARCH_BANNER
    assert result["modality"] == "MG" and result["image_shape"] == [1024, 1024]
    assert 0.0 <= result["image_malignancy_prob"] <= 1.0
    assert {w["name"] for w in result["weights"]} >= {"mg_seg_unet", "mg_cls"}
    assert all(len(w["sha256"]) == 64 for w in result["weights"])
    assert any("untrained" in note for note in result["notes"])
    assert set(result["timings_s"]) >= {"decode", "preprocess", "segment", "draw"}
    for lesion in result["lesions"]:
        row0, col0, row1, col1 = lesion["box"]
        assert 0 <= row0 < row1 <= 1024 and 0 <= col0 < col1 <= 1024
        assert lesion["label"] in ("benign", "malignant")


def test_analyze_without_weights_exits_2_with_the_reason(shared_data, tmp_path, capsys):
    film = shared_data / "mini-mias" / "images" / "mdb001.png"
    empty_models = tmp_path / "no-models"
    empty_models.mkdir()

    status = main(["analyze", str(film), "--out", str(tmp_path / "out"), "--models-dir", str(empty_models)])

    assert status == 2
    assert "weights" in capsys.readouterr().err


def test_unreadable_path_is_refused_not_crashed(initialised_models, tmp_path, capsys):
    missing = tmp_path / "does-not-exist.png"

    status = main(
        ["analyze", str(missing), "--out", str(tmp_path / "out"), "--models-dir", str(initialised_models)]
    )

    assert status == 1
    assert f"{missing}: unreadable_file: " in capsys.readouterr().err
