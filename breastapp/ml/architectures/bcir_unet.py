"""B-Cir U-Net: a U-Net whose skip connections pass through blocks of separable convolutions.

Built exactly as Table 1 of the B-Cir U-Net paper (seed 000): 1,276,721 parameters, 2,432 of them
non-trainable (the BatchNormalization moving statistics). Where the paper's text and its table disagree
the table wins, because its parameter counts pin the layers down:

- encoder convolutions are 3x3 (the text says 5x5; a 5x5 first layer would have 416 parameters, not 160);
- each skip block is sep -> BN -> ReLU -> sep -> BN -> ReLU -> sep -> ReLU -> sep -> MaxPool(2, stride 1),
  with bias-free 3x3 separable convolutions, starting from the level's activation output;
- the decoder upsamples with a 3x3 stride-2 transposed convolution, concatenates (upsampled, skip),
  then Dropout -> Conv 3x3 -> BN -> Activation.

The network is fully convolutional (input (None, None, 1)); height and width must be multiples of 16
(four 2x2 poolings), which is why the sliding window uses tiles of 256.
"""

from __future__ import annotations

# Channel width per encoder level (the fifth is the bottom of the "U").
LEVEL_WIDTHS = (16, 32, 64, 128)
BOTTOM_WIDTH = 256
DROPOUT_RATE = 0.1
DOWNSAMPLING = 16  # 2 ** len(LEVEL_WIDTHS): input sides must be multiples of this


def _conv_bn_act(layers, x, width: int):
    """Conv 3x3 -> BatchNorm -> ReLU: the unit every encoder and decoder level is built from."""
    x = layers.Conv2D(width, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def _separable_skip(layers, x, width: int):
    """The 'circular' skip block: four bias-free separable convolutions, the last two without BN."""
    for _ in range(2):
        x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False)(x)
    x = layers.ReLU()(x)
    x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False)(x)
    # Pool size 2 with stride 1 keeps the resolution: a local max filter, not a downsampling.
    return layers.MaxPooling2D(pool_size=2, strides=1, padding="same")(x)


def build_bcir_unet(input_channels: int = 1, dropout: float = DROPOUT_RATE, name: str = "bcir_unet"):
    """Return the B-Cir U-Net as an (uncompiled) Keras functional model with a sigmoid mask output."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(None, None, input_channels), name="img")
    x = inputs
    skips = []
    for width in LEVEL_WIDTHS:
        activation = _conv_bn_act(layers, x, width)
        skips.append(_separable_skip(layers, activation, width))
        x = layers.MaxPooling2D(2)(activation)
        x = layers.Dropout(dropout)(x)
    x = _conv_bn_act(layers, x, BOTTOM_WIDTH)
    for width, skip in zip(reversed(LEVEL_WIDTHS), reversed(skips), strict=True):
        x = layers.Conv2DTranspose(width, 3, strides=2, padding="same")(x)
        x = layers.Concatenate()([x, skip])
        x = layers.Dropout(dropout)(x)
        x = _conv_bn_act(layers, x, width)
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="mask")(x)
    return keras.Model(inputs, outputs, name=name)
