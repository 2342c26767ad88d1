"""Augmentation applied IDENTICALLY to an image and its mask (geometry), and to the image alone
(noise, intensity): horizontal and vertical flips, 90-degree rotations, small rotations with
translation, Gaussian noise, and brightness/contrast/gamma changes, as the B-Cir U-Net seed lists; and,
optionally, zoom.
Pure numpy/OpenCV so the same code runs on CPU workers without TensorFlow.

An input may carry extra channels after the image (a guided classifier's segmentation map): they move
with the image's geometry but keep their values; noise and intensity changes touch the image alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentSettings:
    flips: bool = True  # horizontal flips, and vertical ones unless vertical_flips is False
    # Meant for ultrasound: the beam enters at the top, so the skin line and the acoustic shadows beneath
    # a lesion (a malignancy sign) have a direction that no upside-down scan shows. us_cls trains with it
    # off; us_seg_unet keeps it, as turning it off did not help it in a paired two-fold test
    # (models/README.md has both trials).
    vertical_flips: bool = True
    rot90: bool = True
    max_rotation_deg: float = 15.0
    max_translation_fraction: float = 0.1
    # Zoom by a factor drawn log-uniformly from [1 / (1 + x), 1 + x] (0: none). Lesion sizes vary more
    # between patients than a few dozen training lesions can show; a zoomed copy shows each at other sizes.
    max_scale_change: float = 0.0
    noise_sigma: float = 0.02
    intensity: float = 0.1  # +- brightness / contrast, and gamma in [1 - x, 1 + x]


def augment_pair(
    image: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator, settings: AugmentSettings
):
    """One random augmentation of an image (H, W) or (H, W, C) with channel 0 the image, and of its 2-D
    mask (None for classification)."""
    if settings.flips and rng.random() < 0.5:
        image, mask = image[:, ::-1], None if mask is None else mask[:, ::-1]
    if settings.flips and settings.vertical_flips and rng.random() < 0.5:
        image, mask = image[::-1, :], None if mask is None else mask[::-1, :]
    if settings.rot90:
        turns = int(rng.integers(4))
        image, mask = np.rot90(image, turns), None if mask is None else np.rot90(mask, turns)
    image, mask = _rotate_translate(np.ascontiguousarray(image), mask, rng, settings)
    if image.ndim == 3:  # only the image channel gets intensity and noise
        grey = _grey_changes(image[..., 0], rng, settings)
        image = np.concatenate([grey[..., None], np.clip(image[..., 1:], 0.0, 1.0)], axis=-1)
        return image.astype(np.float32), mask
    return _grey_changes(image, rng, settings), mask


def _grey_changes(image, rng, settings):
    image = _intensity(image, rng, settings)
    if settings.noise_sigma > 0:
        image = image + rng.normal(0.0, settings.noise_sigma * rng.random(), image.shape).astype(np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _rotate_translate(image, mask, rng, settings):
    if (
        settings.max_rotation_deg <= 0
        and settings.max_translation_fraction <= 0
        and settings.max_scale_change <= 0
    ):
        return image, mask
    rows, cols = image.shape[:2]
    angle = rng.uniform(-settings.max_rotation_deg, settings.max_rotation_deg)
    scale = 1.0
    if (
        settings.max_scale_change > 0
    ):  # drawn only when asked for, so other recipes' streams stay as they were
        bound = np.log1p(settings.max_scale_change)
        scale = float(np.exp(rng.uniform(-bound, bound)))
    matrix = cv2.getRotationMatrix2D((cols / 2.0, rows / 2.0), angle, scale)
    matrix[:, 2] += rng.uniform(-1, 1, size=2) * settings.max_translation_fraction * np.array([cols, rows])
    warped_image = cv2.warpAffine(
        image, matrix, (cols, rows), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    image = warped_image.reshape(image.shape)  # OpenCV drops a single trailing channel
    if mask is not None:
        warped = cv2.warpAffine(
            np.ascontiguousarray(mask, dtype=np.float32), matrix, (cols, rows), flags=cv2.INTER_NEAREST
        )
        mask = warped
    return image, mask


def _intensity(image, rng, settings):
    if settings.intensity <= 0:
        return image
    spread = settings.intensity
    gamma = rng.uniform(1 - spread, 1 + spread)
    image = np.clip(image, 0.0, 1.0) ** gamma
    return image * rng.uniform(1 - spread, 1 + spread) + rng.uniform(-spread, spread) / 2


def augment_batch(
    images: np.ndarray, masks: np.ndarray | None, rng: np.random.Generator, settings: AugmentSettings
):
    """Augment a batch (N, H, W, C), channel 0 the image (see the module docstring); masks (N, H, W, 1)
    or None."""
    out_images = np.empty_like(images)
    out_masks = None if masks is None else np.empty_like(masks)
    for i in range(images.shape[0]):
        one = images[i, ..., 0] if images.shape[-1] == 1 else images[i]
        image, mask = augment_pair(one, None if masks is None else masks[i, ..., 0], rng, settings)
        out_images[i] = image.reshape(out_images.shape[1:])
        if out_masks is not None:
            out_masks[i, ..., 0] = mask
    return out_images, out_masks
