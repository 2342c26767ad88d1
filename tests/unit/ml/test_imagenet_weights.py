"""The ImageNet start of the ultrasound classifier: the package's PyTorch file read without PyTorch, mapped
onto our EfficientNet-Lite0, and checked the only way that proves the mapping: it still recognises
photographs (scikit-image's bundled cat and coffee cup) as ImageNet classes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from breastapp.ml.architectures import LAST_CONV, build, imagenet_weights
from breastapp.ml.architectures.efficientnet_lite import imagenet_layer_weights
from breastapp.ml.architectures.imagenet_weights import (
    ImageNetWeightsError,
    imagenet_state_dict,
    read_legacy_state_dict,
)

CATS = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO, CUP = 967, 968


@pytest.fixture(scope="module")
def state():
    return imagenet_state_dict()


def _imagenet_top3(model, state, rgb: np.ndarray) -> list[int]:
    """Top-3 ImageNet classes of a photograph, through our network and the file's own ImageNet head."""
    import cv2
    import keras

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    grey = cv2.resize(grey, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    features = keras.Model(model.input, model.get_layer("pool").output)(grey[None, ..., None], training=False)
    logits = np.asarray(features)[0] @ state["_fc.weight"].T + state["_fc.bias"]
    return [int(i) for i in np.argsort(-logits)[:3]]


def test_imagenet_weights_still_recognise_photographs_in_grey(state):
    from skimage import data

    model = build("efficientnet_lite0_classifier", input_size=224, n_classes=3, imagenet=True)
    assert _imagenet_top3(model, state, data.chelsea())[0] in CATS
    assert {ESPRESSO, CUP} & set(_imagenet_top3(model, state, data.coffee()))
    untrained = build("efficientnet_lite0_classifier", input_size=224, n_classes=3)
    assert _imagenet_top3(untrained, state, data.chelsea())[0] not in CATS


def test_every_backbone_tensor_of_the_file_is_used_once_and_only_the_imagenet_head_is_left(state):
    assert len(state) == 296
    assert (
        state["_conv_stem.weight"].shape == (32, 3, 3, 3) and state["_conv_stem.weight"].dtype == np.float32
    )
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    mapped = imagenet_layer_weights(state)
    used = sum(len(values) for values in mapped.values())
    backbone = [k for k in state if not k.startswith("_fc.") and not k.endswith("num_batches_tracked")]
    assert used == len(backbone)
    model = build("efficientnet_lite0_classifier", input_size=64, n_classes=2, imagenet=True)
    np.testing.assert_array_equal(
        model.get_layer("stem_conv").get_weights()[0], state["_conv_stem.weight"].transpose(2, 3, 1, 0)
    )
    assert len(model.get_layer(LAST_CONV).output.shape) == 4


class _RunsAProgram:
    def __reduce__(self):
        import os

        return (os.system, ("true",))


def test_a_weights_file_that_names_any_other_global_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, handle)
        pickle.dump({"weight": _RunsAProgram()}, handle)
    with pytest.raises(ImageNetWeightsError, match="refusing to load .*system"):
        read_legacy_state_dict(path)
    with open(path, "wb") as handle:  # a global hidden in the very first pickle is refused too
        pickle.dump(_RunsAProgram(), handle)
    with pytest.raises(ImageNetWeightsError, match="refusing to load .*system"):
        read_legacy_state_dict(path)
    (tmp_path / "plain.pth").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ImageNetWeightsError, match="not a legacy PyTorch file"):
        read_legacy_state_dict(tmp_path / "plain.pth")


def test_an_altered_weights_file_is_refused(monkeypatch):
    monkeypatch.setattr(imagenet_weights, "SHA256", "0" * 64)
    with pytest.raises(ImageNetWeightsError, match="expected 0000"):
        imagenet_weights.imagenet_state_dict()


def test_frozen_batch_normalization_keeps_the_imagenet_statistics_while_the_rest_fine_tunes():
    """`freeze_batchnorm`: a fit step moves the convolutions but no BatchNormalization statistic or scale."""
    model = build(
        "efficientnet_lite0_classifier", input_size=64, n_classes=3, imagenet=True, freeze_batchnorm=True
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    bn, conv = model.get_layer("block3_dw_bn"), model.get_layer("block3_dw_conv")
    before_bn, before_conv = [np.array(w) for w in bn.get_weights()], np.array(conv.get_weights()[0])
    images = np.random.default_rng(0).random((8, 64, 64, 1), dtype=np.float32)
    model.fit(images, np.arange(8) % 3, batch_size=4, epochs=1, verbose=0)
    for before, after in zip(before_bn, bn.get_weights(), strict=True):  # gamma, beta, mean, variance
        np.testing.assert_array_equal(before, after)
    assert not np.allclose(before_conv, conv.get_weights()[0])
    with pytest.raises(ValueError, match="needs imagenet=True"):
        build("efficientnet_lite0_classifier", input_size=64, freeze_batchnorm=True)
