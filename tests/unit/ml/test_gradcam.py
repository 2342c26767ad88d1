"""Grad-CAM: a heat map of the crop's shape in [0, 1] that follows the evidence."""

from __future__ import annotations

import numpy as np

from breastapp.ml.architectures import LAST_CONV, build
from breastapp.ml.gradcam import gradcam, last_spatial_layer


def test_gradcam_shape_and_range():
    import keras

    keras.utils.set_random_seed(0)
    model = build("cnn_classifier", input_size=64, n_classes=2)
    crop = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    assert last_spatial_layer(model) == LAST_CONV
    for class_index in (None, 0, 1):
        heat = gradcam(model, crop, class_index)
        assert heat.shape == (64, 64) and heat.dtype == np.float32
        assert heat.min() >= 0.0 and heat.max() <= 1.0


def test_gradcam_points_at_the_only_informative_region():
    """A network that scores the mean brightness of the top-left quarter must light up that quarter."""
    import keras

    inputs = keras.Input((32, 32, 1))
    features = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="features")(inputs)
    weights = np.zeros((32, 32, 1), np.float32)
    weights[:16, :16] = 1.0
    gated = keras.layers.Multiply(name="gated")([features, keras.ops.convert_to_tensor(weights[None])])
    score = keras.layers.GlobalAveragePooling2D()(gated)
    outputs = keras.layers.Concatenate()([keras.layers.Dense(1, activation="sigmoid")(score), score])
    model = keras.Model(inputs, outputs)
    crop = np.ones((32, 32), np.float32)
    assert last_spatial_layer(model) == "gated"  # no LAST_CONV: the last 4-D output
    heat = gradcam(model, crop, class_index=1)
    assert heat[:16, :16].mean() > 0.9 and heat[20:, 20:].max() < 0.1
