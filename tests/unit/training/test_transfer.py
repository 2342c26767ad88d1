"""Segmentation recipes that start from a shipped network's weights (`SegmentationConfig.initial_weights`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from breastapp.ml.datasets.prepare import CanonicalSpec
from breastapp.ml.train.loop import FitSettings

TINY_UNET = {"base": 4, "depth": 2}


def _tiny_config(**changes):
    from breastapp.ml.train.segmentation import SegmentationConfig

    config = SegmentationConfig(
        name="tiny_target",
        architecture="unet",
        build_kwargs=TINY_UNET,
        spec=CanonicalSpec(modality="US", spacing_mm=None, contrast="none", size=32),
        tiles=None,
        fit=FitSettings(epochs=1, batch_size=4, steps_per_epoch=2, schedule="cosine"),
        cv_epochs=1,
        folds=2,
        initial_weights="tiny_source",
    )
    return replace(config, **changes)


def _save_source(models_dir, architecture="unet", build_kwargs=TINY_UNET):
    """A randomly initialised network saved with a card, as a shipped network would be."""
    from breastapp.ml.architectures import build
    from breastapp.ml.registry import save_weights

    model = build(architecture, **build_kwargs)
    card = {
        "architecture": architecture,
        "build_kwargs": build_kwargs,
        "role": "segmentation",
        "modality": "US",
        "input": {"channels": 1, "size": 32},
        "thresholds": {"segmentation": 0.5},
    }
    return model, save_weights(model, card, models_dir, "tiny_source")


def test_a_recipe_starts_from_the_named_networks_weights_and_knows_their_hash(tmp_path):
    from breastapp.ml.train.runner import starting_weights
    from breastapp.ml.train.segmentation import new_model

    source, info = _save_source(tmp_path)
    start = starting_weights(tmp_path, _tiny_config())
    assert start.describe() == {"name": "tiny_source", "sha256": info.sha256}
    started = new_model(_tiny_config(), start).get_weights()
    for expected, actual in zip(source.get_weights(), started, strict=True):
        np.testing.assert_array_equal(expected, actual)
    fresh = new_model(_tiny_config()).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(started, fresh, strict=True))


def test_a_missing_or_differently_shaped_starting_network_is_refused_by_name(tmp_path):
    from breastapp.ml.train.runner import starting_weights

    with pytest.raises(FileNotFoundError, match="tiny_source.keras is missing: train tiny_source first"):
        starting_weights(tmp_path, _tiny_config())
    _save_source(tmp_path, build_kwargs={"base": 8, "depth": 2})
    with pytest.raises(ValueError, match="cannot start from tiny_source"):
        starting_weights(tmp_path, _tiny_config())


@pytest.mark.slow
def test_training_from_a_starting_network_fits_from_its_weights_and_names_it_on_the_card(
    folder_dataset, tmp_path
):
    """At learning rate 0 a fit cannot move a kernel, so the shipped network equals the source layer for
    layer: every fit (folds and final) really began from the source, not from a random initialisation."""
    from breastapp.ml.registry import load_weights
    from breastapp.ml.train.runner import train_recipe

    source, info = _save_source(tmp_path / "models")
    frozen = _tiny_config(fit=replace(_tiny_config().fit, learning_rate=0.0))
    card = train_recipe(
        "tiny_target",
        folder_dataset,
        tmp_path / "models",
        tmp_path / "runs" / "tiny_target",
        config=frozen,
        dataset="folder",
    )
    assert card["hyperparameters"]["initial_weights"] == {"name": "tiny_source", "sha256": info.sha256}
    trained = load_weights(tmp_path / "models", "tiny_target").model
    kernels = [layer.name for layer in source.layers if layer.__class__.__name__ == "Conv2D"]
    assert kernels
    for source_layer, trained_layer in zip(source.layers, trained.layers, strict=True):
        if source_layer.name in kernels:
            np.testing.assert_array_equal(source_layer.get_weights()[0], trained_layer.get_weights()[0])
