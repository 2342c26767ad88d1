"""TensorFlow settings from the environment, and one crop rule for training and inference."""

from __future__ import annotations

import numpy as np
import pytest

from breastapp.ml import runtime
from breastapp.ml.lesions import lesion_crop


def test_thread_count_follows_the_environment(monkeypatch):
    monkeypatch.setenv("BREASTAPP_TF_THREADS", "3")
    assert runtime.thread_count() == 3
    monkeypatch.setenv("BREASTAPP_TF_THREADS", "many")
    assert runtime.thread_count() >= 1  # a typo falls back to the cores, it does not crash the worker
    monkeypatch.delenv("BREASTAPP_TF_THREADS")
    assert runtime.thread_count() >= 1


def test_device_name_is_cpu_or_gpu():
    runtime.configure()
    runtime.configure()  # idempotent
    assert runtime.device_name() in ("CPU", "GPU")


@pytest.mark.parametrize("box", [(40, 40, 60, 60), (0, 0, 10, 90), (90, 95, 100, 100)])
def test_training_crops_lesions_exactly_like_the_engine(box):
    """A classifier must see lesions framed the way it learnt them."""
    from breastapp.ml.train.classification import lesion_crop as training_crop

    pixels = np.random.default_rng(0).random((100, 100), dtype=np.float32)
    np.testing.assert_array_equal(lesion_crop(pixels, box, 0.5, 64), training_crop(pixels, box, 0.5, 64))
