"""The classic U-Net (Ronneberger et al.), with the width, depth and dropout the seeds vary.

- Seed 003 (CBIS-DDSM mass segmentation on 256x256 patches): base width 32, BatchNorm.
- Seed 002 (BUSI ultrasound, 128x128): widths 64..1024 (base=64, depth=4), dropout 0.2 after each
  encoder pooling and 0.1 in each decoder block, transposed convolutions 2x2 stride 2 with ReLU.

Fully convolutional (input (None, None, channels)); sides must be multiples of 2**depth.
"""

from __future__ import annotations


def _double_conv(layers, x, width: int, batch_norm: bool):
    """Two 3x3 convolutions with ReLU: the block at every level of both paths."""
    for _ in range(2):
        x = layers.Conv2D(width, 3, padding="same", use_bias=not batch_norm)(x)
        if batch_norm:
            x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
    return x


def build_unet(
    base: int = 32,
    depth: int = 4,
    *,
    encoder_dropout: float = 0.0,
    decoder_dropout: float = 0.0,
    batch_norm: bool = True,
    input_channels: int = 1,
    name: str = "unet",
):
    """Return a U-Net with `depth` poolings, widths base * 2**level, and a one-channel sigmoid output."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(None, None, input_channels), name="img")
    x = inputs
    skips = []
    for level in range(depth):
        x = _double_conv(layers, x, base * 2**level, batch_norm)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
        if encoder_dropout:
            x = layers.Dropout(encoder_dropout)(x)
    x = _double_conv(layers, x, base * 2**depth, batch_norm)
    for level in reversed(range(depth)):
        width = base * 2**level
        x = layers.Conv2DTranspose(width, 2, strides=2, padding="same", activation="relu")(x)
        x = layers.Concatenate()([x, skips[level]])
        x = _double_conv(layers, x, width, batch_norm)
        if decoder_dropout:
            x = layers.Dropout(decoder_dropout)(x)
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="mask")(x)
    return keras.Model(inputs, outputs, name=name)


def build_busi_unet(base: int = 64, input_channels: int = 1, name: str = "busi_unet"):
    """Seed 002's ultrasound U-Net: no BatchNorm, dropout 0.2 (encoder) / 0.1 (decoder)."""
    return build_unet(
        base,
        4,
        encoder_dropout=0.2,
        decoder_dropout=0.1,
        batch_norm=False,
        input_channels=input_channels,
        name=name,
    )
