"""The networks: exact size of the B-Cir U-Net, fully convolutional segmenters, classifier outputs."""

from __future__ import annotations

import numpy as np
import pytest

from breastapp.ml.architectures import LAST_CONV, build


def _non_trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)


def test_bcir_unet_matches_table_1_of_the_paper():
    model = build("bcir_unet")
    assert model.count_params() == 1_276_721
    assert _non_trainable(model) == 2_432
    assert model.input_shape == (None, None, None, 1)


def test_bcir_unet_skip_blocks_are_bias_free_separable_convolutions():
    model = build("bcir_unet")
    separable = [layer for layer in model.layers if layer.__class__.__name__ == "SeparableConv2D"]
    assert len(separable) == 16  # four per level, four levels
    assert all(not layer.use_bias for layer in separable)
    assert sorted({layer.count_params() for layer in separable}) == [400, 1312, 4672, 17536]


@pytest.mark.parametrize("architecture", ["bcir_unet", "unet"])
@pytest.mark.parametrize("shape", [(256, 256), (128, 192)])
def test_segmenters_are_fully_convolutional(architecture, shape):
    model = build(architecture)
    batch = np.random.default_rng(0).random((1, *shape, 1), dtype=np.float32)
    out = np.asarray(model(batch, training=False))
    assert out.shape == (1, *shape, 1)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_busi_unet_widths_follow_the_seed():
    model = build("busi_unet", base=64)
    widths = [layer.filters for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert max(widths) == 1024 and widths[0] == 64
    assert any(layer.__class__.__name__ == "Dropout" for layer in model.layers)
    out = model(np.zeros((1, 128, 128, 1), np.float32), training=False)
    assert tuple(out.shape) == (1, 128, 128, 1)


@pytest.mark.parametrize(
    "architecture", ["cnn_classifier", "mobilenet_classifier", "efficientnet_lite0_classifier"]
)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifiers_return_a_distribution_over_classes(architecture, n_classes):
    model = build(architecture, input_size=96, n_classes=n_classes)
    crops = np.random.default_rng(1).random((2, 96, 96, 1), dtype=np.float32)
    probs = np.asarray(model(crops, training=False))
    assert probs.shape == (2, n_classes)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert len(model.get_layer(LAST_CONV).output.shape) == 4


def test_mobilenet_refuses_a_missing_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="ImageNet weights"):
        build("mobilenet_classifier", imagenet_weights=tmp_path / "absent.h5")


def test_unknown_architecture_names_the_known_ones():
    with pytest.raises(ValueError, match="bcir_unet"):
        build("resnet9000")
