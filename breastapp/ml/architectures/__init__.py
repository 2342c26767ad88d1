"""Network builders. Each returns an uncompiled Keras functional model; TensorFlow is imported lazily.

`build(architecture, **kwargs)` is how the registry and the training tools turn the `architecture`
string of a model card back into a network.
"""

from __future__ import annotations

from .bcir_unet import build_bcir_unet
from .classifier import LAST_CONV, build_cnn_classifier, build_mobilenet_classifier, build_two_view_classifier
from .efficientnet_lite import build_efficientnet_lite0_classifier
from .unet import build_busi_unet, build_unet

BUILDERS = {
    "bcir_unet": build_bcir_unet,
    "unet": build_unet,
    "busi_unet": build_busi_unet,
    "cnn_classifier": build_cnn_classifier,
    "mobilenet_classifier": build_mobilenet_classifier,
    "two_view_classifier": build_two_view_classifier,
    "efficientnet_lite0_classifier": build_efficientnet_lite0_classifier,
}


def build(architecture: str, **kwargs):
    """Build the network a model card names; unknown names fail loudly with the known ones."""
    try:
        builder = BUILDERS[architecture]
    except KeyError:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(BUILDERS)}") from None
    return builder(**kwargs)


__all__ = [
    "BUILDERS",
    "LAST_CONV",
    "build",
    "build_bcir_unet",
    "build_busi_unet",
    "build_cnn_classifier",
    "build_mobilenet_classifier",
    "build_two_view_classifier",
    "build_unet",
]
