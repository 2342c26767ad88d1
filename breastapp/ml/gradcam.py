"""Grad-CAM saliency for the classifiers: which part of a crop drove the malignancy probability.

Selvaraju et al. (2017): weight each channel of the last convolutional feature map by the mean gradient
of the class score with respect to it, sum, keep the positive part, upsample to the crop. The
classifiers name that feature map `LAST_CONV`; networks built elsewhere fall back to the last layer
with a spatial (4-D) output.
"""

from __future__ import annotations

import threading
import weakref

import cv2
import numpy as np

_grad_models: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def last_spatial_layer(model) -> str:
    """Name of the feature map Grad-CAM reads: `LAST_CONV` if present, else the last 4-D output."""
    from breastapp.ml.architectures import LAST_CONV

    names = [layer.name for layer in model.layers]
    if LAST_CONV in names:
        return LAST_CONV
    spatial = [layer.name for layer in model.layers[1:] if len(layer.output.shape) == 4]
    if not spatial:
        raise ValueError(f"network {model.name!r} has no spatial layer for Grad-CAM")
    return spatial[-1]


def _grad_model(model):
    """A model returning (feature map, class probabilities); built once per classifier."""
    import keras

    with _lock:
        if model not in _grad_models:
            layer = model.get_layer(last_spatial_layer(model))
            _grad_models[model] = keras.Model(model.inputs, [layer.output, model.outputs[0]])
        return _grad_models[model]


def gradcam(model, crop: np.ndarray, class_index: int | None = None) -> np.ndarray:
    """Heat map in [0, 1] with the crop's (rows, cols): where the evidence for `class_index` lies.

    `crop` is one classifier input (rows, cols) or (rows, cols, 1); `class_index` defaults to the class
    the network predicts. A crop with no positive evidence gives all zeros.
    """
    import tensorflow as tf

    pixels = np.asarray(crop, dtype=np.float32).reshape(crop.shape[0], crop.shape[1], -1)
    batch = tf.constant(pixels[None])
    with tf.GradientTape() as tape:
        features, probs = _grad_model(model)(batch, training=False)
        if class_index is None:
            class_index = int(tf.argmax(probs[0]))
        score = probs[:, class_index]
    grads = tape.gradient(score, features)
    channel_weights = tf.reduce_mean(grads, axis=(1, 2))  # (1, channels)
    cam = tf.nn.relu(tf.reduce_sum(features * channel_weights[:, None, None, :], axis=-1))[0].numpy()
    heat = cv2.resize(
        cam.astype(np.float32), (pixels.shape[1], pixels.shape[0]), interpolation=cv2.INTER_LINEAR
    )
    peak = float(heat.max())
    return np.clip(heat / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(heat)
