"""Fixtures for the ml tests: one folder of initialised (untrained) shipped weights per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def initialised_models(tmp_path_factory):
    """models/ with every shipped name written by write_initialised_weights (real, untrained networks)."""
    from breastapp.ml.registry import write_initialised_weights

    models_dir = tmp_path_factory.mktemp("models")
    write_initialised_weights(models_dir)
    return models_dir
