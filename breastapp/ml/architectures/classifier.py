"""Lesion / image classifiers: the small CNN of seed 002 and a MobileNetV2 backbone.

Both take a fixed-size one-channel crop in [0, 1] and end in a softmax over `n_classes`
(2 for mammography benign/malignant, 3 for ultrasound benign/malignant/normal). Softmax for two
classes too, so the pipeline reads every class probability the same way.
The last convolutional feature map is named `LAST_CONV` so that Grad-CAM finds it without guessing.
"""

from __future__ import annotations

from pathlib import Path

LAST_CONV = "last_conv"
CNN_WIDTHS = (32, 64, 128, 256)


def build_cnn_classifier(
    input_size: int = 128,
    n_classes: int = 2,
    *,
    input_channels: int = 1,
    dropout: float = 0.25,
    name: str = "cnn_classifier",
):
    """Seed 002's CNN: four conv blocks (32..256, BN, LeakyReLU, pooling), Dense 32, softmax."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(input_size, input_size, input_channels), name="crop")
    x = layers.Flatten()(_cnn_trunk(inputs, dropout, last_conv_name=LAST_CONV))
    return keras.Model(inputs, _dense_head(x, n_classes), name=name)


def build_two_view_classifier(
    input_size: int = 64,
    n_classes: int = 3,
    *,
    view_channels: int = 2,
    dropout: float = 0.25,
    name: str = "two_view_classifier",
):
    """Seed 002's CNN twice, one trunk per view (whole image, lesion), joined before the head.

    The input stacks the two views as channels: the first `view_channels` are the whole image (and its
    guide map), the next `view_channels` the square crop around the guided lesion (ml/lesions.py
    `guided_lesion_view`). The views are not spatially aligned, so each gets its own convolutions; one
    input keeps the engine's batching and Grad-CAM unchanged. `LAST_CONV` is the whole-image trunk's,
    so the saliency map lies on the image the user sees.
    """
    import keras
    from keras import layers

    from .layers import ChannelSlice

    inputs = keras.Input(shape=(input_size, input_size, 2 * view_channels), name="crop")
    whole = ChannelSlice(0, view_channels, name="whole_view")(inputs)
    lesion = ChannelSlice(view_channels, 2 * view_channels, name="lesion_view")(inputs)
    features = [
        layers.Flatten()(_cnn_trunk(whole, dropout, last_conv_name=LAST_CONV)),
        layers.Flatten()(_cnn_trunk(lesion, dropout, last_conv_name="lesion_last_conv")),
    ]
    return keras.Model(inputs, _dense_head(layers.Concatenate()(features), n_classes), name=name)


def _cnn_trunk(x, dropout: float, *, last_conv_name: str):
    """Seed 002's four conv blocks (32..256 filters, BN, LeakyReLU, 2x2 pooling, dropout)."""
    from keras import layers

    for i, width in enumerate(CNN_WIDTHS):
        last = i == len(CNN_WIDTHS) - 1
        x = layers.Conv2D(width, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(negative_slope=0.1, name=last_conv_name if last else None)(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(dropout)(x)
    return x


def _dense_head(features, n_classes: int):
    """Seed 002's head: Dense 32, LeakyReLU, softmax over the classes."""
    from keras import layers

    x = layers.Dense(32)(features)
    x = layers.LeakyReLU(negative_slope=0.1)(x)
    return layers.Dense(n_classes, activation="softmax", name="classes")(x)


def build_mobilenet_classifier(
    input_size: int = 128,
    n_classes: int = 2,
    *,
    imagenet_weights: str | Path | None = None,
    alpha: float = 1.0,
    dropout: float = 0.3,
    name: str = "mobilenet_classifier",
):
    """MobileNetV2 on a grey crop replicated to three channels inside the model.

    `imagenet_weights` is a local file (Keras' `mobilenet_v2_..._no_top.h5`) the user supplies:
    nothing is downloaded at run time. The backbone's layers are built inline on our input, so the
    model is flat and Grad-CAM can reach its last convolutional activation.
    """
    import keras
    from keras import layers

    if imagenet_weights is not None and not Path(imagenet_weights).is_file():
        raise FileNotFoundError(f"ImageNet weights file not found: {imagenet_weights}")
    inputs = keras.Input(shape=(input_size, input_size, 1), name="crop")
    scaled = grey_to_imagenet_rgb(inputs)  # MobileNetV2 expects [-1, 1]
    backbone = keras.applications.MobileNetV2(
        input_tensor=scaled,
        include_top=False,
        weights=str(imagenet_weights) if imagenet_weights else None,
        alpha=alpha,
    )
    features = layers.Activation("linear", name=LAST_CONV)(backbone.output)
    x = layers.GlobalAveragePooling2D()(features)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name=name)


def grey_to_imagenet_rgb(inputs):
    """A grey image in [0, 1] as the three-channel [-1, 1] input ImageNet backbones were trained on."""
    from keras import layers

    rgb = layers.Concatenate(name="grey_to_rgb")([inputs, inputs, inputs])
    return layers.Rescaling(2.0, offset=-1.0, name="to_minus1_1")(rgb)
