"""Segmentation losses: weighted binary cross-entropy, soft Dice, and their sum.

Lesion pixels are a small minority even in lesion-centred tiles (seed 003 balances "black and white
pixels" by weighting), so BCE weighs positive pixels by `positive_weight`. Dice is insensitive to the
imbalance but noisy on tiles with no lesion; the sum gets the gradient of both. Keras is imported
inside the functions (the ml package never imports TensorFlow at import time).

Dice per tile or over the batch. Per tile (`dice`, `bce_dice`), a tile without lesion scores a Dice of
1 / (predicted sum + 1): a faint glow summing to 10 costs it a loss of 0.91, nearly as much as missing
a whole lesion costs a lesion tile, and two tiles in three are such background tiles in the mammography
recipes. Over the batch (`batch_dice`, `bce_batch_dice`; nnU-Net's "batch Dice") the batch's tiles are
pooled into one Dice, so a background tile's pixels only add to the false positives of the batch's
lesions.
"""

from __future__ import annotations

LOSSES = ("weighted_bce", "dice", "bce_dice", "batch_dice", "bce_batch_dice")


def weighted_bce(positive_weight: float = 3.0):
    from keras import ops

    def loss(y_true, y_pred):
        y_pred = ops.clip(y_pred, 1e-6, 1.0 - 1e-6)
        per_pixel = -(positive_weight * y_true * ops.log(y_pred) + (1.0 - y_true) * ops.log(1.0 - y_pred))
        return ops.mean(per_pixel)

    loss.__name__ = "weighted_bce"
    return loss


def dice_loss(smooth: float = 1.0, over_batch: bool = False):
    """Soft Dice loss per tile, averaged (default), or one Dice over the whole batch (module docstring)."""
    from keras import ops

    axes = (0, 1, 2, 3) if over_batch else (1, 2, 3)

    def loss(y_true, y_pred):
        intersection = ops.sum(y_true * y_pred, axis=axes)
        total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
        return ops.mean(1.0 - (2.0 * intersection + smooth) / (total + smooth))

    loss.__name__ = "batch_dice" if over_batch else "dice"
    return loss


def make_loss(name: str, positive_weight: float = 3.0):
    """The loss a training config names."""
    if name == "weighted_bce":
        return weighted_bce(positive_weight)
    if name in ("dice", "batch_dice"):
        return dice_loss(over_batch=name == "batch_dice")
    if name in ("bce_dice", "bce_batch_dice"):
        bce, dice = weighted_bce(positive_weight), dice_loss(over_batch=name == "bce_batch_dice")

        def loss(y_true, y_pred):
            return bce(y_true, y_pred) + dice(y_true, y_pred)

        loss.__name__ = name
        return loss
    raise ValueError(f"unknown loss {name!r}; known: {LOSSES}")


def dice_metric():
    """Hard-ish Dice on the batch (threshold 0.5), reported per epoch."""
    from keras import ops

    def dice(y_true, y_pred):
        predicted = ops.cast(y_pred > 0.5, "float32")
        intersection = ops.sum(y_true * predicted)
        return (2.0 * intersection + 1.0) / (ops.sum(y_true) + ops.sum(predicted) + 1.0)

    return dice
