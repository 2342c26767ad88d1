"""Weights on disk: round trip, hash verification, clear refusals, initialised weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from breastapp.ml.architectures import build
from breastapp.ml.registry import (
    SHIPPED_NAMES,
    WeightsError,
    clear_cache,
    file_sha256,
    load_weights,
    save_weights,
    weights_paths,
)

CARD = {
    "architecture": "cnn_classifier",
    "role": "classification",
    "modality": "MG",
    "input": {"size": 32, "channels": 1, "contrast": "hist_eq"},
    "thresholds": {"malignancy": 0.5},
    "classes": ["benign", "malignant"],
}


@pytest.fixture()
def saved(tmp_path):
    model = build("cnn_classifier", input_size=32, n_classes=2)
    info = save_weights(model, CARD, tmp_path, "tiny")
    clear_cache()
    return tmp_path, model, info


def test_round_trip_gives_the_same_predictions_and_identity(saved):
    models_dir, model, info = saved
    loaded = load_weights(models_dir, "tiny")
    crops = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded.model(crops), model(crops), atol=1e-6)
    keras_path, json_path, md_path = weights_paths(models_dir, "tiny")
    assert info.sha256 == file_sha256(keras_path) == loaded.info.sha256
    assert (loaded.info.name, loaded.info.architecture, loaded.info.role) == (
        "tiny",
        "cnn_classifier",
        "classification",
    )
    card = json.loads(json_path.read_text())
    assert card["trained"] is True and card["created_at"] and card["machine"]
    assert info.sha256 in md_path.read_text()


def test_loading_is_cached_per_process(saved):
    models_dir, _, _ = saved
    assert load_weights(models_dir, "tiny") is load_weights(models_dir, "tiny")


def test_a_changed_file_is_refused(saved):
    models_dir, _, _ = saved
    keras_path, _, _ = weights_paths(models_dir, "tiny")
    with open(keras_path, "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(WeightsError, match="does not match its model card"):
        load_weights(models_dir, "tiny")


def test_a_missing_file_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(WeightsError, match="absent.keras is missing.*retrain-all"):
        load_weights(tmp_path, "absent")


@pytest.mark.parametrize("inference", ["yes", {"flip_tta": "yes"}])
def test_a_card_with_a_malformed_inference_block_is_refused(saved, inference):
    models_dir, _, _ = saved
    _, json_path, _ = weights_paths(models_dir, "tiny")
    json_path.write_text(json.dumps({**json.loads(json_path.read_text()), "inference": inference}))
    with pytest.raises(WeightsError, match="inference must be an object whose flip_tta is true or false"):
        load_weights(models_dir, "tiny")


def test_a_card_without_required_keys_is_refused(saved):
    models_dir, _, _ = saved
    _, json_path, _ = weights_paths(models_dir, "tiny")
    card = json.loads(json_path.read_text())
    del card["thresholds"], card["role"]
    json_path.write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="lacks required keys: role, thresholds"):
        load_weights(models_dir, "tiny")


def test_initialised_weights_cover_every_shipped_name(initialised_models):
    for name in SHIPPED_NAMES:
        loaded = load_weights(initialised_models, name)
        assert loaded.card["trained"] is False
        assert loaded.card["modality"] in ("MG", "US")
        assert loaded.info.sha256 == file_sha256(weights_paths(initialised_models, name)[0])


@pytest.mark.parametrize("name", ["mg_seg_bcir", "mg_seg_unet", "mg_cls", "us_seg_unet", "us_cls"])
def test_shipped_cards_were_trained_with_the_committed_recipes(name):
    """models/<name>.json records the recipe that `retrain-all` would run today: no silent drift."""
    from dataclasses import asdict

    from breastapp.ml.registry import card_flip_tta
    from breastapp.ml.train.augment import AugmentSettings
    from breastapp.ml.train.loop import FitSettings, final_fit_rule
    from breastapp.ml.train.recipes import RECIPES
    from tests.support.paths import REPO_ROOT

    card = json.loads((REPO_ROOT / "models" / f"{name}.json").read_text())
    recipe, recorded = RECIPES[name], card["hyperparameters"]
    defaults = asdict(FitSettings())
    for key, value in asdict(recipe.fit).items():
        # A setting added after the card was written ran at its default (e.g. schedule="constant")
        trained = recorded.get(key, defaults[key])
        assert trained == value, f"{name}: card {key}={trained!r}, recipe {value!r}"
    assert recorded["cv_epochs"] == recipe.cv_epochs
    augment_defaults = asdict(AugmentSettings())
    for key, value in asdict(recipe.augment).items():
        trained = recorded["augment"].get(key, augment_defaults[key])
        assert trained == value, f"{name}: card augment {key}={trained!r}, recipe {value!r}"
    assert card_flip_tta(card) == recipe.flip_tta  # the engine runs the mirrored pass it was measured with
    assert card["split"]["final_fit"] == final_fit_rule(recipe.fit)
    if card["role"] == "segmentation":
        started_from = recorded.get("initial_weights") or {}
        assert started_from.get("name") == recipe.initial_weights, (
            f"{name}: fits started from another network"
        )
        from breastapp.ml.train.segmentation import threshold_rule_text

        # the card's threshold was chosen by the rule the recipe names today
        assert recorded.get("fp_budget_per_image") == recipe.fp_budget_per_image
        assert recorded.get("split_seed") == recipe.split_seed
        assert card["threshold_rule"] == threshold_rule_text(recipe)
    assert card["build_kwargs"] == recipe.build_kwargs and card["architecture"] == recipe.architecture
    spec = asdict(recipe.spec)
    if card["role"] == "classification":  # a classifier's card gives its own input size and channels
        assert card["input"]["size"] == recipe.input_size
        assert card["input"]["channels"] == recipe.input_channels
        assert recorded["stopping_fraction"] == recipe.stopping_fraction
        view = card["input"].get("lesion_view")
        assert (view and {k: view[k] for k in ("threshold", "margin")}) == (
            recipe.lesion_view and asdict(recipe.lesion_view)
        )
        if recipe.crop_margin is None:  # the engine canonicalises at the recipe's size, then resizes
            assert card["input"]["canonical_size"] == spec["size"]
        spec.pop("size"), spec.pop("channels")
    assert {k: card["input"][k] for k in spec} == spec
