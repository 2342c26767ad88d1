"""Training pieces: tiles, augmentation, losses, and short real training runs that write valid cards."""

from __future__ import annotations

import csv
from dataclasses import replace

import cv2
import numpy as np
import pytest

from breastapp.ml.datasets.prepare import CanonicalSample, CanonicalSpec
from breastapp.ml.evaluate.scoring import SWEPT_THRESHOLDS
from breastapp.ml.train.augment import AugmentSettings, augment_pair
from breastapp.ml.train.tiles import TileSettings, background_tiles, build_tile_set, crop

from .conftest import synthetic_lesion_image


def _sample(size=96, lesion_box=(40, 50, 52, 62)) -> CanonicalSample:
    pixels = np.full((size, size), 0.3, np.float32)
    lesion = np.zeros((size, size), bool)
    r0, c0, r1, c1 = lesion_box
    lesion[r0:r1, c0:c1] = True
    pixels[lesion] = 0.9
    breast = np.zeros((size, size), bool)
    breast[:, : size * 3 // 4] = True
    return CanonicalSample(
        "img", "p1", "malignant", pixels, lesion, breast, np.array([lesion_box]), ("malignant",)
    )


def test_crop_pads_outside_the_image():
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    tile = crop(image, 0, 0, 4)
    assert tile[2, 2] == image[0, 0] and tile[0, 0] == 0


def test_tile_set_has_centred_shifted_and_background_tiles():
    settings = TileSettings(tile=32, shifted_copies=4, background_ratio=1.0)
    images, masks = build_tile_set([_sample()], settings, seed=0)
    assert images.shape == (10, 32, 32, 1) and masks.shape == images.shape
    lesion_tiles, background = masks[:5], masks[5:]
    assert lesion_tiles[0, 16, 16, 0] == 1.0  # the first tile is centred on the lesion
    assert all(tile.any() for tile in lesion_tiles)
    assert not background.any()  # background tiles hold no lesion pixel
    assert not np.array_equal(lesion_tiles[0], lesion_tiles[1])  # shifted copies differ


def _dense_tissue_sample() -> CanonicalSample:
    """A 200-px breast of dim fat with one bright dense patch (no lesion) and a bright lesion."""
    sample = _sample(size=200, lesion_box=(20, 20, 36, 36))
    pixels = sample.pixels.copy()
    pixels[120:170, 60:110] = 0.8  # dense fibroglandular tissue: the false positives' source
    return replace(sample, pixels=pixels)


def test_hard_negative_tiles_sit_on_bright_tissue_and_never_on_a_lesion():
    sample = _dense_tissue_sample()
    rng = np.random.default_rng(0)
    plain = TileSettings(tile=32)
    hard = TileSettings(tile=32, hard_negative_fraction=1.0, hard_percentile=90.0)
    random_images, _ = background_tiles(sample, 40, plain, rng)
    hard_images, hard_masks = background_tiles(sample, 40, hard, rng)
    assert len(hard_images) == 40
    assert not np.any(hard_masks)  # hard negatives hold no lesion pixel
    # The lesion is as bright as the dense patch, so only excluding it keeps the patch the target:
    centres = np.array([image[16, 16] for image in hard_images])
    assert np.all(centres >= 0.8)
    assert np.mean(hard_images) > np.mean(random_images) + 0.2


def test_hard_negative_fraction_splits_background_tiles():
    sample = _dense_tissue_sample()
    half = TileSettings(tile=32, hard_negative_fraction=0.5)
    images, masks = background_tiles(sample, 20, half, np.random.default_rng(1))
    centres = np.array([image[16, 16] for image in images])
    assert len(images) == 20 and not np.any(masks)
    assert np.sum(centres >= 0.8) >= 10  # the first half are centred on bright tissue


def test_augmentation_moves_mask_with_image():
    rng = np.random.default_rng(0)
    mask = np.zeros((32, 32), np.float32)
    mask[5:12, 8:20] = 1.0
    settings = AugmentSettings(noise_sigma=0.0, intensity=0.0)
    for _ in range(10):
        image, moved = augment_pair(mask.copy(), mask.copy(), rng, settings)
        assert (
            np.abs((image > 0.5) != (moved > 0.5)).mean() < 0.02
        )  # same geometry (edges may differ by interpolation)


def test_augmentation_without_vertical_flips_never_turns_an_image_upside_down():
    """Ultrasound's setting: a bright top row (the skin line) may be mirrored left-right, never moved down."""
    rng = np.random.default_rng(2)
    image = np.zeros((16, 16), np.float32)
    image[0, :4] = 1.0
    geometry_only = dict(
        rot90=False, max_rotation_deg=0, max_translation_fraction=0, noise_sigma=0, intensity=0
    )
    upright = AugmentSettings(vertical_flips=False, **geometry_only)
    outputs = [augment_pair(image.copy(), None, rng, upright)[0] for _ in range(40)]
    assert all(out[0].sum() == 4 for out in outputs)
    assert {int(np.argmax(out[0])) for out in outputs} == {0, 12}  # both left-right mirrors occur
    flipping = AugmentSettings(**geometry_only)
    assert any(augment_pair(image.copy(), None, rng, flipping)[0][15].sum() == 4 for _ in range(40))


def test_zoom_scales_image_and_mask_together_within_its_bounds_and_leaves_other_streams_alone():
    """A centred 16x16 square zoomed by s covers about (16 s)^2 pixels, s within [1/1.25, 1.25]; the
    square in the image and in the mask stay the same shape; with zoom off (the default) it keeps its size."""
    mask = np.zeros((64, 64), np.float32)
    mask[24:40, 24:40] = 1.0
    geometry = dict(flips=False, rot90=False, max_rotation_deg=0, max_translation_fraction=0)
    zooming = AugmentSettings(noise_sigma=0, intensity=0, max_scale_change=0.25, **geometry)
    rng = np.random.default_rng(3)
    scales = []
    for _ in range(30):
        image, moved = augment_pair(mask.copy(), mask.copy(), rng, zooming)
        assert np.abs((image > 0.5) != (moved > 0.5)).mean() < 0.02
        scales.append(np.sqrt(moved.sum()) / 16)
    assert min(scales) > 1 / 1.25 - 0.07 and max(scales) < 1.25 + 0.07
    assert min(scales) < 0.9 and max(scales) > 1.1  # it shrinks and grows
    unzoomed = AugmentSettings(noise_sigma=0, intensity=0, **geometry)
    assert np.array_equal(augment_pair(mask.copy(), mask.copy(), rng, unzoomed)[1], mask)


def test_augmentation_changes_intensity_only_in_the_image():
    rng = np.random.default_rng(1)
    image = np.full((16, 16), 0.5, np.float32)
    mask = np.ones((16, 16), np.float32)
    settings = AugmentSettings(flips=False, rot90=False, max_rotation_deg=0, max_translation_fraction=0)
    out_image, out_mask = augment_pair(image, mask, rng, settings)
    assert not np.allclose(out_image, image) and np.array_equal(out_mask, mask)


def test_augmentation_moves_a_guide_channel_with_the_image_and_keeps_its_values():
    rng = np.random.default_rng(3)
    square = np.zeros((32, 32), np.float32)
    square[6:14, 10:22] = 0.7
    two_channels = np.stack([square, square], axis=-1)
    for _ in range(10):  # geometry only: both channels move together
        moved, _ = augment_pair(
            two_channels.copy(), None, rng, AugmentSettings(noise_sigma=0.0, intensity=0.0)
        )
        assert moved.shape == (32, 32, 2)
        assert np.allclose(moved[..., 0], moved[..., 1], atol=1e-6)
    still = AugmentSettings(flips=False, rot90=False, max_rotation_deg=0, max_translation_fraction=0)
    changed, _ = augment_pair(two_channels.copy(), None, rng, still)
    assert not np.allclose(changed[..., 0], square) and np.array_equal(changed[..., 1], square)


def _us_sample(image_id: str, label: str, size: int = 32) -> CanonicalSample:
    pixels = np.random.default_rng(len(image_id)).random((size, size)).astype(np.float32)
    empty = np.zeros((size, size), bool)
    return CanonicalSample(image_id, image_id, label, pixels, empty, ~empty, np.zeros((0, 4), int), ())


def _guided_config():
    from breastapp.ml.train.classification import ClassificationConfig

    return ClassificationConfig(
        name="guided",
        architecture="cnn_classifier",
        build_kwargs={"input_size": 16, "n_classes": 3, "input_channels": 2},
        spec=CanonicalSpec(modality="US", spacing_mm=None, contrast="none", size=32),
        classes=("benign", "malignant", "normal"),
        input_size=16,
        crop_margin=None,
        guide="tiny_seg",
    )


def test_guided_examples_carry_the_guide_map_as_a_second_channel():
    from breastapp.ml.train.classification import examples

    samples = [_us_sample("a", "benign"), _us_sample("b", "normal")]
    maps = {"a": np.ones((32, 32), np.float32), "b": np.zeros((32, 32), np.float32)}
    images, labels, _ = examples(samples, _guided_config(), maps)
    assert images.shape == (2, 16, 16, 2) and list(labels) == [0, 2]
    assert np.allclose(images[0, ..., 1], 1.0) and np.allclose(images[1, ..., 1], 0.0)
    assert np.allclose(
        images[0, ..., 0], cv2.resize(samples[0].pixels, (16, 16), interpolation=cv2.INTER_AREA)
    )
    with pytest.raises(ValueError, match="train tiny_seg first"):
        examples(samples, _guided_config(), {"a": maps["a"]})


def test_lesion_view_frames_the_guides_most_probable_lesion_from_the_finer_image():
    from breastapp.ml.lesions import guide_lesion_box, guided_lesion_view, lesion_crop

    pixels = np.random.default_rng(0).random((64, 64)).astype(np.float32)  # twice the map's resolution
    prob = np.zeros((32, 32), np.float32)
    prob[2:4, 2:4] = 0.99  # small and sure: probability sum 3.96
    prob[16:24, 10:20] = 0.6  # large and less sure: sum 48, the lesion the view must show
    assert guide_lesion_box(prob, 0.5) == (16, 10, 24, 20)
    view = guided_lesion_view(pixels, prob, 0.5, 0.5, 16)
    assert view.shape == (16, 16, 2)
    np.testing.assert_allclose(view[..., 0], lesion_crop(pixels, (32, 20, 48, 40), 0.5, 16))
    assert view[8, 8, 1] == pytest.approx(0.6)  # the map is cropped the same way: the lesion at its centre
    # Nothing above the threshold (a normal scan): the whole image fills the view
    empty = guided_lesion_view(pixels, np.full((32, 32), 0.2, np.float32), 0.5, 0.5, 16)
    np.testing.assert_allclose(empty[..., 0], cv2.resize(pixels, (16, 16), interpolation=cv2.INTER_AREA))


def test_lesion_view_examples_stack_the_view_after_the_whole_image_and_need_a_guide():
    from breastapp.ml.lesions import guided_lesion_view
    from breastapp.ml.train.classification import LesionView, examples

    config = replace(_guided_config(), lesion_view=LesionView(threshold=0.5, margin=0.5))
    samples = [_us_sample("a", "benign"), _us_sample("b", "malignant")]
    maps = {image_id: np.zeros((16, 16), np.float32) for image_id in ("a", "b")}
    maps["a"][4:8, 4:8] = 0.9
    images, labels, _ = examples(samples, config, maps)
    assert config.input_channels == 4 and images.shape == (2, 16, 16, 4)
    np.testing.assert_allclose(
        images[0, ..., 2:], guided_lesion_view(samples[0].pixels, maps["a"], 0.5, 0.5, 16)
    )
    np.testing.assert_allclose(
        images[0, ..., 0], cv2.resize(samples[0].pixels, (16, 16), interpolation=cv2.INTER_AREA)
    )
    with pytest.raises(ValueError, match="set a guide"):
        examples(samples, replace(config, guide=None), maps)


def test_a_fold_early_stops_on_its_own_training_patients_split_by_patient_and_label():
    from breastapp.ml.train.classification import early_stopping_patients

    samples = [
        _us_sample(f"p{p}_{view}", "malignant" if p < 8 else "benign", size=8)
        for p in range(16)
        for view in (0, 1)
    ]
    samples = [replace(sample, patient_id=sample.image_id.split("_")[0]) for sample in samples]
    config = replace(_guided_config(), stopping_fraction=0.125)
    chosen = early_stopping_patients(samples, config, fold=0)
    # whole patients (so a patient's two images stay together): an eighth of them, one of each label
    assert len(chosen) == 2 and {int(p[1:]) < 8 for p in chosen} == {True, False}
    assert chosen <= {sample.patient_id for sample in samples}
    assert early_stopping_patients(samples, config, fold=0) == chosen  # seeded
    assert any(early_stopping_patients(samples, config, fold) != chosen for fold in range(1, 5))


def test_a_cosine_classifier_without_a_stopping_share_fits_every_training_patient_of_its_fold():
    from breastapp.ml.datasets.splits import kfold_indices
    from breastapp.ml.train.classification import fold_examples
    from breastapp.ml.train.loop import FitSettings

    samples = [
        _us_sample(f"p{p}_{view}", ("benign", "malignant")[p % 2], 8) for p in range(16) for view in (0, 1)
    ]
    samples = [replace(sample, patient_id=sample.image_id.split("_")[0]) for sample in samples]
    groups = np.array([sample.patient_id for sample in samples])
    splits = kfold_indices(samples, 4, seed=0)
    cosine = replace(_guided_config(), fit=FitSettings(schedule="cosine"), stopping_fraction=0.0)
    fitting, stopping, held = fold_examples(samples, groups, splits, cosine, fold=0)
    assert not stopping.any() and held.any() and np.array_equal(fitting, ~held)
    # an early-stopping fold sets an eighth of its training patients aside instead
    fitting, stopping, held = fold_examples(
        samples, groups, splits, replace(cosine, stopping_fraction=0.125), 0
    )
    assert stopping.any() and not (stopping & held).any() and np.array_equal(fitting, ~held & ~stopping)


def test_a_constant_rate_classifier_needs_patients_to_early_stop_on():
    with pytest.raises(
        ValueError, match="guided: a constant-rate fit early-stops, so it needs a stopping_fraction"
    ):
        replace(_guided_config(), stopping_fraction=0.0)


def test_losses_match_hand_values():
    from keras import ops

    from breastapp.ml.train.losses import make_loss

    truth = np.zeros((1, 2, 2, 1), np.float32)
    truth[0, 0, 0, 0] = 1.0
    prediction = np.full((1, 2, 2, 1), 0.5, np.float32)
    bce = float(ops.convert_to_numpy(make_loss("weighted_bce", positive_weight=3.0)(truth, prediction)))
    assert bce == pytest.approx((3 * np.log(2) + 3 * np.log(2)) / 4, rel=1e-4)
    dice = float(ops.convert_to_numpy(make_loss("dice")(truth, prediction)))
    assert dice == pytest.approx(1 - (2 * 0.5 + 1) / (1 + 2 + 1), rel=1e-4)


def test_batch_dice_pools_the_tiles_where_tile_dice_averages_them():
    from keras import ops

    from breastapp.ml.train.losses import make_loss

    # Tile 0 has one lesion pixel, tile 1 none; the network says 0.5 everywhere.
    truth = np.zeros((2, 2, 2, 1), np.float32)
    truth[0, 0, 0, 0] = 1.0
    prediction = np.full((2, 2, 2, 1), 0.5, np.float32)
    per_tile = float(ops.convert_to_numpy(make_loss("dice")(truth, prediction)))
    lesion_tile, background_tile = 1 - (2 * 0.5 + 1) / (1 + 2 + 1), 1 - 1 / (2 + 1)
    assert per_tile == pytest.approx((lesion_tile + background_tile) / 2, rel=1e-4)
    pooled = float(ops.convert_to_numpy(make_loss("batch_dice")(truth, prediction)))
    assert pooled == pytest.approx(1 - (2 * 0.5 + 1) / (1 + 4 + 1), rel=1e-4)
    summed = float(ops.convert_to_numpy(make_loss("bce_batch_dice", positive_weight=1.0)(truth, prediction)))
    assert summed == pytest.approx(np.log(2) + pooled, rel=1e-4)
    # A faint glow on the background tile beside a perfect lesion tile: per tile it costs the batch
    # 0.045 (the background tile's 0.09, halved), pooled 0.032, and less the more lesion pixels share it.
    glow = np.zeros((2, 2, 2, 1), np.float32)
    glow[0, 0, 0, 0] = 1.0
    glow[1, 0, 0, 0] = 0.1
    per_tile_glow = float(ops.convert_to_numpy(make_loss("dice")(truth, glow)))
    pooled_glow = float(ops.convert_to_numpy(make_loss("batch_dice")(truth, glow)))
    assert per_tile_glow == pytest.approx((0 + (1 - 1 / 1.1)) / 2, rel=1e-4)
    assert pooled_glow == pytest.approx(1 - 3 / 3.1, rel=1e-4)


def test_kept_epoch_is_the_lowest_loss_or_the_last_under_the_cosine_schedule():
    from breastapp.ml.train.loop import FitSettings, kept_epoch

    losses = [0.9, 0.4, 0.6, 0.7]
    assert kept_epoch(losses, FitSettings()) == 2
    assert kept_epoch(losses, FitSettings(schedule="cosine")) == 4


def fit_tiny_dense_model(tmp_path, settings):
    """(model, history) of a one-layer network fitted on 8 random images, its validation images labelled
    the opposite way, so the validation loss rises and a constant-rate fit would stop early."""
    import keras

    from breastapp.ml.train.loop import fit

    rng = np.random.default_rng(0)
    images = rng.random((8, 8, 8, 1)).astype(np.float32)
    labels = rng.integers(0, 2, 8)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(2, "softmax")]
    )
    history = fit(
        model,
        (images, labels),
        (images, 1 - labels),
        "sparse_categorical_crossentropy",
        ["accuracy"],
        settings,
        AugmentSettings(),
        tmp_path,
        seg=False,
        verbose=0,
    )
    return model, history


def assert_checkpoint_holds(model, checkpoint) -> None:
    import keras

    saved = keras.models.load_model(checkpoint, compile=False)
    for kept, current in zip(saved.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, current)


def test_cosine_schedule_runs_the_whole_budget_decays_to_zero_and_keeps_the_last_weights(tmp_path):
    from breastapp.ml.train.loop import FitSettings

    settings = FitSettings(
        epochs=5, batch_size=4, learning_rate=0.05, beta_1=0.9, patience=1, schedule="cosine"
    )
    model, history = fit_tiny_dense_model(tmp_path, settings)
    assert len(history["loss"]) == 5  # no early stopping
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)
    assert_checkpoint_holds(model, tmp_path / "best.keras")  # the checkpoint is the last epoch, as trained


def test_each_epoch_is_a_new_seeded_shuffle_of_full_augmented_batches():
    from breastapp.ml.train.loop import EpochBatches, FitSettings

    images = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1) / 10 * np.ones((10, 8, 8, 1), np.float32)
    labels = np.arange(10)
    settings = FitSettings(batch_size=4, seed=3)
    no_change = AugmentSettings(
        flips=False,
        rot90=False,
        max_rotation_deg=0.0,
        max_translation_fraction=0.0,
        noise_sigma=0.0,
        intensity=0.0,
    )
    batches = EpochBatches(images, labels, settings, no_change, seg=False)
    first = list(batches.epoch())
    assert batches.steps == 3 and [len(targets) for _, targets in first] == [4, 4, 4]  # topped up
    drawn = np.concatenate([targets for _, targets in first])
    assert sorted(drawn[:10]) == list(range(10)) and set(drawn[10:]) <= set(drawn[:2])  # every image once
    for batch_images, targets in first:  # each image travels with its own label
        np.testing.assert_allclose(batch_images[:, 0, 0, 0], targets / 10, rtol=1e-6)
    second = np.concatenate([targets for _, targets in batches.epoch()])
    assert not np.array_equal(second, drawn)  # a new shuffle every epoch
    again = EpochBatches(images, labels, settings, no_change, seg=False)
    np.testing.assert_array_equal(np.concatenate([t for _, t in again.epoch()]), drawn)  # seeded
    augmented = EpochBatches(images, labels, settings, AugmentSettings(), seg=False)
    changed = next(augmented.epoch())[0]
    assert not np.allclose(changed, images[:4])  # the recipe's augmentation is applied as drawn


def test_a_constant_rate_fit_stops_early_and_returns_the_checkpointed_best_weights(tmp_path):
    from breastapp.ml.train.loop import FitSettings

    settings = FitSettings(epochs=10, batch_size=4, learning_rate=0.05, beta_1=0.9, patience=2)
    model, history = fit_tiny_dense_model(tmp_path, settings)
    best = int(np.argmin(history["val_loss"]))
    assert len(history["loss"]) == best + 1 + 2  # stopped `patience` epochs after the best one
    with open(tmp_path / "epochs.csv", newline="") as log:
        assert [float(row["val_loss"]) for row in csv.DictReader(log)] == pytest.approx(history["val_loss"])
    assert_checkpoint_holds(model, tmp_path / "best.keras")  # the best epoch's weights, restored and saved
    assert (tmp_path / "learning_curve.png").exists()


def test_an_unknown_schedule_is_refused_by_name(tmp_path):
    import keras

    from breastapp.ml.train.loop import FitSettings, fit

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    arrays = (np.zeros((2, 2), np.float32), np.zeros((2, 1), np.float32))
    with pytest.raises(ValueError, match="'warmup'"):
        fit(
            model,
            arrays,
            None,
            "mse",
            [],
            FitSettings(schedule="warmup"),
            AugmentSettings(),
            tmp_path,
            seg=False,
        )


def tiny_segmentation_config():
    """A two-level U-Net on 32-pixel ultrasound images, 2 folds of one 2-step epoch: seconds to train."""
    from breastapp.ml.train.loop import FitSettings
    from breastapp.ml.train.segmentation import SegmentationConfig

    return SegmentationConfig(
        name="tiny_seg",
        architecture="unet",
        build_kwargs={"base": 4, "depth": 2},
        spec=CanonicalSpec(modality="US", spacing_mm=None, contrast="none", size=32),
        tiles=None,
        fit=FitSettings(epochs=1, batch_size=4, steps_per_epoch=2, schedule="cosine"),
        cv_epochs=1,
        folds=2,
        fp_budget_per_image=1.0,
        split_seed=7,
    )


@pytest.mark.slow
def test_folds_fitted_in_separate_processes_are_gathered_by_a_resumed_run(folder_dataset, tmp_path):
    from breastapp.ml.train.runner import train_recipe, train_some_folds

    config, run_dir = tiny_segmentation_config(), tmp_path / "runs" / "tiny_seg"
    arguments = ("tiny_seg", folder_dataset, tmp_path / "models", run_dir)
    with pytest.raises(ValueError, match="fold 2 does not exist: tiny_seg has folds 0 to 1"):
        train_some_folds(*arguments, [1, 2], config=config, dataset="folder")
    assert not run_dir.exists() or not list(run_dir.iterdir())  # refused before any fit started
    train_some_folds(*arguments, [1], config=config, dataset="folder")
    assert (run_dir / "fold1" / "learning_curve.png").exists() and not (run_dir / "fold0").exists()
    assert not (tmp_path / "models").exists()  # no final fit, no card: only the fold
    card = train_recipe(*arguments, config=config, dataset="folder", resume=True)
    assert card["resumed"] == {"reused_folds": 1, "reused_final_fit": False}


@pytest.mark.slow
def test_short_segmentation_run_writes_a_card_load_weights_accepts(folder_dataset, tmp_path, caplog):
    import json

    caplog.set_level("INFO", logger="breastapp.ml.train")
    from breastapp.ml.evaluate.run import evaluate
    from breastapp.ml.registry import load_weights
    from breastapp.ml.train.runner import train_recipe

    config = tiny_segmentation_config()
    card = train_recipe(
        "tiny_seg",
        folder_dataset,
        tmp_path / "models",
        tmp_path / "runs" / "tiny_seg",
        config=config,
        dataset="folder",
    )
    loaded = load_weights(tmp_path / "models", "tiny_seg")
    assert loaded.card["role"] == "segmentation" and loaded.card["input"]["size"] == 32
    kept = (tmp_path / "runs" / "tiny_seg" / "cross_validation.json").read_text()  # before the final fit
    assert json.loads(kept)["thresholds"] == card["thresholds"]
    assert 0.05 <= loaded.card["thresholds"]["segmentation"] <= 0.95
    assert set(card["metrics"]["cross_validation"]["summary"]) >= {"dice_whole_set", "sensitivity_at_2_fppi"}
    two_fppi = card["metrics"]["cross_validation"]["summary"]["sensitivity_at_2_fppi"]
    assert f"tiny_seg: cross-validated sensitivity_at_2_fppi {two_fppi['mean']:.3f}" in caplog.text
    assert len(card["metrics"]["cross_validation"]["per_fold"]) == 2
    assert (tmp_path / "runs" / "tiny_seg" / "fold0" / "epochs.csv").exists()
    # the card names the rule that chose its threshold, and the folds follow split_seed, not fit.seed
    assert card["threshold_rule"].startswith("lowest of grid 0.05..0.95 with at most 1 false-positive")
    assert card["hyperparameters"]["fp_budget_per_image"] == 1.0
    assert card["hyperparameters"]["split_seed"] == 7 and card["hyperparameters"]["seed"] == 0
    from breastapp.ml.datasets import load_dataset
    from breastapp.ml.datasets.splits import kfold_indices

    records = load_dataset("folder", folder_dataset)
    by_split_seed, by_fit_seed = kfold_indices(records, 2, seed=7), kfold_indices(records, 2, seed=0)
    assert by_split_seed != by_fit_seed  # otherwise this check could not tell the two seeds apart
    fold_of = np.load(tmp_path / "runs" / "tiny_seg" / "oof_index.npy")
    assert [list(np.flatnonzero(fold_of == fold)) for fold in (0, 1)] == [held for _, held in by_split_seed]
    assert (tmp_path / "runs" / "tiny_seg" / "fold0" / "learning_curve.png").exists()
    probability = loaded.model.predict(np.zeros((1, 32, 32, 1), np.float32), verbose=0)
    assert probability.shape == (1, 32, 32, 1)
    resumed = train_recipe(
        "tiny_seg",
        folder_dataset,
        tmp_path / "models",
        tmp_path / "runs" / "tiny_seg",
        config=config,
        dataset="folder",
        resume=True,
    )
    # --resume skips folds, and a cosine final fit, whose fit completed: the same weights are shipped
    assert "reusing the finished fold" in caplog.text and "reusing the finished final fit" in caplog.text
    assert resumed["resumed"] == {"reused_folds": 2, "reused_final_fit": True} and "resumed" not in card
    for before, after in zip(
        loaded.model.get_weights(),
        load_weights(tmp_path / "models", "tiny_seg").model.get_weights(),
        strict=True,
    ):
        np.testing.assert_array_equal(before, after)
    assert (
        resumed["metrics"]["cross_validation"]["best_epochs"]
        == card["metrics"]["cross_validation"]["best_epochs"]
    )
    report = evaluate(
        ["tiny_seg"],
        tmp_path / "models",
        "folder",
        folder_dataset,
        tmp_path / "report",
        runs_dir=tmp_path / "runs",
        out_of_fold=True,
    )
    text = report.read_text()
    assert "Dice whole set" in text and (tmp_path / "report" / "froc.png").exists()
    assert "out-of-fold maps from the training run that produced these weights" in text
    assert list((tmp_path / "report").glob("example_*.png"))
    # the operating-point sweep: one row per swept threshold, in order
    assert "Lesions found, by size" not in text  # the folder dataset's canonical form has no pixel size
    missed = text.split("### Lesions missed")[1].split("###")[0]
    rows = [line.split(" | ") for line in missed.splitlines() if line.startswith("| tiny_seg |")]
    assert rows or "None: every network hit every lesion" in missed
    assert all(row[2].endswith(" px") for row in rows)  # sizes in pixels without a pixel size
    sweep = text.split("### Operating points")[1].split("###")[0]
    swept = [line.split(" | ")[1] for line in sweep.splitlines() if line.startswith("| tiny_seg |")]
    assert swept == [f"{t:.2f}" for t in SWEPT_THRESHOLDS]


def tiny_mammography_config(**changes):
    """A two-level U-Net on 32-pixel tiles at 0.4 mm: seconds to build, train and slide."""
    from breastapp.ml.train.segmentation import SegmentationConfig

    config = SegmentationConfig(
        name="tiny_mg",
        architecture="unet",
        build_kwargs={"base": 4, "depth": 2},
        spec=CanonicalSpec(modality="MG", spacing_mm=0.4),
        tiles=TileSettings(tile=32),
        overlap=8,
    )
    return replace(config, **changes)


def test_validation_maps_cover_the_breast_and_are_scored_without_the_pectoral_muscle():
    """Kept maps cover the whole breast (an ablation can score the muscle); what is scored is the map the
    engine reports: zero outside the breast and on the muscle."""
    from breastapp.ml.train.segmentation import new_model, predict_probability, searched

    sample = _sample(size=96)
    muscle = np.zeros_like(sample.breast_mask)
    muscle[:20, :20] = True
    sample = replace(sample, pectoral_mask=muscle)
    config = tiny_mammography_config()
    probability = predict_probability(new_model(config), sample, config)
    assert probability.shape == sample.pixels.shape
    assert probability[muscle].min() > 0 and not probability[~sample.breast_mask].any()
    reported = searched(probability, sample)
    assert not reported[muscle].any() and not reported[~sample.breast_mask].any()
    np.testing.assert_array_equal(reported[sample.search_mask], probability[sample.search_mask])


@pytest.mark.parametrize("modality", ["MG", "US"])
def test_flip_tta_scores_the_mean_with_the_mirrored_map(modality):
    """With `flip_tta` a validation map is the mean of the image's map and its mirror image's map mirrored
    back (tiles and the breast mask mirrored too), as the engine computes it."""
    from breastapp.ml.train.segmentation import new_model, predict_probability

    sample = _sample(size=96)
    config = tiny_mammography_config()
    if modality == "US":
        config = replace(config, spec=CanonicalSpec(modality="US", spacing_mm=None, size=96), tiles=None)
    model = new_model(config)
    plain = predict_probability(model, sample, config)
    mirrored_sample = replace(
        sample,
        pixels=np.ascontiguousarray(sample.pixels[:, ::-1]),
        breast_mask=np.ascontiguousarray(sample.breast_mask[:, ::-1]),
    )
    mirrored = predict_probability(model, mirrored_sample, config)[:, ::-1]
    assert not np.allclose(plain, mirrored, atol=1e-4)  # the check below would pass on a symmetric net
    with_tta = predict_probability(model, sample, replace(config, flip_tta=True))
    np.testing.assert_allclose(with_tta, (plain + mirrored) / 2, atol=1e-5)


@pytest.mark.slow
def test_short_mammography_run_uses_tiles_and_the_sliding_window(tmp_path):
    from breastapp.ml.registry import load_weights
    from breastapp.ml.train.loop import FitSettings
    from breastapp.ml.train.runner import train_recipe

    rng = np.random.default_rng(2)
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "masks").mkdir()
    lines = ["image,label,patient,modality,spacing_mm,density"]
    for i in range(6):
        image, mask = synthetic_lesion_image(rng, size=96, lesion=i % 3 != 2)
        image[:, 70:] = 0  # black background beside the "breast"
        cv2.imwrite(str(tmp_path / "data" / "images" / f"mg{i}.png"), image)
        cv2.imwrite(str(tmp_path / "data" / "masks" / f"mg{i}.png"), mask)
        lines.append(f"mg{i}.png,{'malignant' if i % 3 != 2 else 'normal'},p{i},MG,0.4,BI-RADS {1 + i % 2}")
    (tmp_path / "data" / "labels.csv").write_text("\n".join(lines) + "\n")
    config = tiny_mammography_config(
        fit=FitSettings(epochs=1, batch_size=4, steps_per_epoch=2), cv_epochs=1, folds=2
    )

    def train(variant):
        runs = tmp_path / "runs" / variant.name
        return train_recipe(
            variant.name, tmp_path / "data", tmp_path / "models", runs, config=variant, dataset="folder"
        )

    card = train(config)
    assert card["input"]["tile"] == 32 and card["input"]["spacing_mm"] == 0.4
    assert card["training_data"]["images"] == 6 and card["training_data"]["lesions"] == 4  # masks = masses
    assert (
        load_weights(tmp_path / "models", "tiny_mg").card["hyperparameters"]["tiles"]["shifted_copies"] == 4
    )
    # Recomputing the card from the kept out-of-fold maps reproduces the run's own figures and threshold.
    from breastapp.ml.train.refresh import refresh_segmentation_card

    trained = load_weights(tmp_path / "models", "tiny_mg")
    refreshed = refresh_segmentation_card(
        "tiny_mg", tmp_path / "data", tmp_path / "models", tmp_path / "runs", config=config, dataset="folder"
    )
    before, after = card["metrics"]["cross_validation"], refreshed["metrics"]["cross_validation"]
    np.testing.assert_equal(after["per_fold"], before["per_fold"])  # NaN (no lesion in a fold) == NaN
    assert after["threshold"] == before["threshold"]
    reloaded = load_weights(tmp_path / "models", "tiny_mg")
    np.testing.assert_equal(reloaded.card["metrics"]["cross_validation"]["per_fold"], before["per_fold"])
    assert reloaded.model.count_params() == trained.model.count_params()
    # The report gives the operating point; the pectoral ablation says what it is.
    from breastapp.ml.evaluate.run import evaluate

    for keep_pectoral in (False, True):
        out = tmp_path / f"report_keep_{keep_pectoral}"
        report = evaluate(
            ["tiny_mg"],
            tmp_path / "models",
            "folder",
            tmp_path / "data",
            out,
            runs_dir=tmp_path / "runs",
            out_of_fold=True,
            keep_pectoral=keep_pectoral,
        ).read_text()
        assert "| at the threshold: sensitivity | FP per image |" in report
        # mammograms have a pixel size, so the report splits the lesions found by diameter
        assert "| weights | < 10 mm | 10-20 mm | 20-30 mm | ≥ 30 mm |" in report
        # and by the density labels.csv states: mg0 and mg4 hold lesions in BI-RADS 1, mg1 and mg3 in 2
        by_density = report.split("### Lesions found, by breast density")[1].split("###")[0]
        assert "| weights | BI-RADS 1 | BI-RADS 2 |" in by_density
        (row,) = [line for line in by_density.splitlines() if line.startswith("| tiny_mg |")]
        assert [cell.split(" of ")[1] for cell in row.strip("| ").split(" | ")[1:]] == ["2", "2"]
        assert ("pectoral muscle is NOT left out" in report) is keep_pectoral
    # Two networks: the report scores their ensemble too and says, per network, whether it helps.
    train(replace(config, name="tiny_mg_b", fit=replace(config.fit, seed=1)))
    report = evaluate(
        ["tiny_mg", "tiny_mg_b"],
        tmp_path / "models",
        "folder",
        tmp_path / "data",
        tmp_path / "report_ensemble",
        runs_dir=tmp_path / "runs",
        out_of_fold=True,
    ).read_text()
    metrics = ["sensitivity at 2 FPPI", "mean lesion-image Dice"]
    between = report.split("### Network against network")[1].split("###")[0]
    rows = [line.split(" | ")[:3] for line in between.splitlines() if line.startswith("| tiny_mg")]
    assert rows == [["| tiny_mg_b", "tiny_mg", metric] for metric in metrics]
    comparison = report.split("### Does the ensemble help?")[1].split("###")[0]
    rows = [line.split(" | ")[:3] for line in comparison.splitlines() if line.startswith("| ensemble")]
    assert rows == [
        ["| ensemble (mean)", name, metric] for name in ("tiny_mg", "tiny_mg_b") for metric in metrics
    ]


def tiny_classification_config(schedule="cosine", cv_epochs=1):
    """A small CNN on 32-pixel whole ultrasound images, 2 folds of 2-step epochs: seconds to train."""
    from breastapp.ml.train.classification import ClassificationConfig
    from breastapp.ml.train.loop import FitSettings

    return ClassificationConfig(
        name="tiny_cls",
        architecture="cnn_classifier",
        build_kwargs={"input_size": 32, "n_classes": 3},
        spec=CanonicalSpec(modality="US", spacing_mm=None, contrast="none", size=32),
        classes=("benign", "malignant", "normal"),
        input_size=32,
        crop_margin=None,
        fit=FitSettings(epochs=1, batch_size=4, steps_per_epoch=2, schedule=schedule, patience=1),
        cv_epochs=cv_epochs,
        folds=2,
    )


@pytest.mark.slow
def test_classifier_folds_fitted_apart_are_gathered_by_a_resumed_run_with_the_same_predictions(
    folder_dataset, tmp_path, caplog
):
    caplog.set_level("INFO")
    from breastapp.ml.train.runner import train_recipe, train_some_folds

    # Constant rate with early stopping: each fold keeps its best epoch, which a reused fold must match.
    config, run_dir = (
        tiny_classification_config(schedule="constant", cv_epochs=3),
        tmp_path / "runs" / "tiny_cls",
    )
    arguments = ("tiny_cls", folder_dataset, tmp_path / "models", run_dir)
    with pytest.raises(ValueError, match="fold 2 does not exist: tiny_cls has folds 0 to 1"):
        train_some_folds(*arguments, [2], config=config, dataset="folder")
    train_some_folds(*arguments, [1], config=config, dataset="folder")
    assert (run_dir / "fold1" / "learning_curve.png").exists() and not (run_dir / "fold0").exists()
    assert "tiny_cls: fold 1 (6 held-out examples), kept epoch" in caplog.text  # scored when fitted
    train_some_folds(*arguments, [1], config=config, dataset="folder")  # finished: scored, not refitted
    assert "tiny_cls: fold 1 already finished in" in caplog.text
    assert caplog.text.count("tiny_cls: fold 1 (6 held-out examples), kept epoch") == 2
    assert not (tmp_path / "models").exists()  # no final fit, no card: only the fold
    card = train_recipe(*arguments, config=config, dataset="folder", resume=True)
    assert card["resumed"] == {"reused_folds": 1, "reused_final_fit": False}
    assert card["split"]["final_fit"] == "all images, fixed epochs = median best epoch of the folds"
    assert "reusing the finished fold in" in caplog.text
    # the cross-validated figures are logged before the final fit starts, as the card will hold them
    pooled = card["metrics"]["cross_validation"]["pooled_out_of_fold"]
    accuracy = card["metrics"]["cross_validation"]["summary"]["accuracy"]
    assert f"tiny_cls: cross-validated accuracy {accuracy['mean']:.3f} ± {accuracy['std']:.3f}" in caplog.text
    assert f"tiny_cls: pooled out-of-fold accuracy {pooled['accuracy']:.3f}" in caplog.text
    with np.load(run_dir / "oof.npz") as saved:
        fitted = saved["probabilities"]
    again = train_recipe(*arguments, config=config, dataset="folder", resume=True)
    assert again["resumed"] == {"reused_folds": 2, "reused_final_fit": False}
    with np.load(run_dir / "oof.npz") as saved:  # the kept checkpoints predict what the fits predicted
        np.testing.assert_array_equal(saved["probabilities"], fitted)
    cv = again["metrics"]["cross_validation"]
    assert cv["best_epochs"] == card["metrics"]["cross_validation"]["best_epochs"]
    assert cv["pooled_out_of_fold"] == card["metrics"]["cross_validation"]["pooled_out_of_fold"]
    fresh = train_recipe(*arguments, config=config, dataset="folder")  # without --resume: every fold refits
    assert "resumed" not in fresh


@pytest.mark.slow
def test_a_cosine_classifier_runs_its_whole_budget_on_all_training_patients_and_resumes(
    folder_dataset, tmp_path
):
    """Without a stopping share, each fold fits its every training patient for the full budget with no
    validation images; a resumed run reuses such a fold, and the final fit runs the same budget."""
    from breastapp.ml.train.runner import train_recipe, train_some_folds

    config = replace(tiny_classification_config(schedule="cosine", cv_epochs=2), stopping_fraction=0.0)
    run_dir = tmp_path / "runs" / "tiny_cls"
    arguments = ("tiny_cls", folder_dataset, tmp_path / "models", run_dir)
    train_some_folds(*arguments, [0], config=config, dataset="folder")
    with open(run_dir / "fold0" / "epochs.csv", newline="") as log:
        epochs = list(csv.DictReader(log))
    # the whole budget, with no validation images: nothing was held back to watch
    assert len(epochs) == 2 and {epoch.get("val_loss", "NA") for epoch in epochs} == {"NA"}
    card = train_recipe(*arguments, config=config, dataset="folder", resume=True)
    assert card["resumed"]["reused_folds"] == 1
    assert card["metrics"]["cross_validation"]["best_epochs"] == [2, 2]  # every fold keeps its last epoch
    assert card["hyperparameters"]["final_epochs"] == 2
    assert "on all of its training patients" in card["hyperparameters"]["early_stopping"]
    assert (
        card["split"]["final_fit"]
        == "all images, the folds' whole epoch budget under the cosine schedule, last weights kept"
    )


def tiny_classifier_out_of_fold_report(folder_dataset, tmp_path) -> str:
    """`evaluate --out-of-fold` of the tiny classifier trained under tmp_path: the report's text."""
    from breastapp.ml.evaluate.run import evaluate

    return evaluate(
        ["tiny_cls"],
        tmp_path / "models",
        "folder",
        folder_dataset,
        tmp_path / "oof_report",
        runs_dir=tmp_path / "runs",
        out_of_fold=True,
    ).read_text()


@pytest.mark.slow
def test_classifier_flip_tta_scores_the_same_folds_both_ways_and_tells_the_engine(
    folder_dataset, tmp_path, caplog
):
    """flip_tta scores each held-out input as the mean of its and its mirror image's probabilities; the card
    keeps the same fold models' single-pass figures (what the mirrored pass changed) and tells the engine
    and `evaluate` to run the pass too."""
    caplog.set_level("INFO")
    from breastapp.ml.registry import card_flip_tta, load_weights
    from breastapp.ml.train.runner import train_recipe

    config = tiny_classification_config(schedule="constant", cv_epochs=2)
    arguments = ("tiny_cls", folder_dataset, tmp_path / "models", tmp_path / "runs" / "tiny_cls")
    single = train_recipe(*arguments, config=config, dataset="folder")["metrics"]["cross_validation"]
    assert "single_pass" not in single
    with np.load(tmp_path / "runs" / "tiny_cls" / "oof.npz") as saved:
        plain, labels = saved["probabilities"], saved["labels"]
    card = train_recipe(*arguments, config=replace(config, flip_tta=True), dataset="folder", resume=True)
    assert card["resumed"]["reused_folds"] == 2  # the very fold models scored above
    cv = card["metrics"]["cross_validation"]
    assert cv["single_pass"]["summary"] == single["summary"]
    single_pooled = cv["single_pass"]["pooled_out_of_fold"]
    for key in ("accuracy", "malignant_auc", "malignant_auc_ci95"):
        assert single_pooled[key] == pytest.approx(single["pooled_out_of_fold"][key])
    with np.load(tmp_path / "runs" / "tiny_cls" / "oof.npz") as saved:
        mirrored_mean = saved["probabilities"]
    assert not np.allclose(mirrored_mean, plain, atol=1e-4)  # the mirrored pass was really averaged in
    assert mirrored_mean.sum(1) == pytest.approx(np.ones(len(labels)), abs=1e-5)
    assert (mirrored_mean.argmax(1) == labels).mean() == pytest.approx(cv["pooled_out_of_fold"]["accuracy"])
    assert "tiny_cls without the mirrored pass: cross-validated accuracy" in caplog.text
    assert card_flip_tta(load_weights(tmp_path / "models", "tiny_cls").card)
    out_of_fold = tiny_classifier_out_of_fold_report(folder_dataset, tmp_path)
    assert f"Accuracy {cv['pooled_out_of_fold']['accuracy']:.3f}." in out_of_fold


@pytest.mark.slow
def test_a_cv_only_trial_keeps_its_predictions_and_is_reported_at_its_own_threshold(folder_dataset, tmp_path):
    """`train --cv-only` keeps a trial's out-of-fold predictions and what its cross-validation decided,
    with no final fit; the shipped weights are untouched, the run stops naming them (its predictions are no
    longer theirs), and `evaluate --out-of-fold` scores the trial at the threshold it chose itself."""
    import json

    from breastapp.ml.train.runner import train_recipe

    config = tiny_classification_config(schedule="constant", cv_epochs=2)
    run_dir, models = tmp_path / "runs" / "tiny_cls", tmp_path / "models"
    arguments = ("tiny_cls", folder_dataset, models, run_dir)
    card = train_recipe(*arguments, config=config, dataset="folder")
    kept = json.loads((run_dir / "cross_validation.json").read_text())  # kept before the final fit
    assert kept["thresholds"] == card["thresholds"] and kept["threshold_rule"] == card["threshold_rule"]
    assert kept["cross_validation"] == json.loads(json.dumps(card["metrics"]["cross_validation"]))
    shipped = tiny_classifier_out_of_fold_report(folder_dataset, tmp_path)
    assert "the training run that produced these weights" in shipped
    assert f"At the card threshold {card['thresholds']['malignancy']:.3f}" in shipped
    shipped_file = (models / "tiny_cls.keras").read_bytes()

    trial = train_recipe(
        *arguments, config=replace(config, fit=replace(config.fit, seed=5)), dataset="folder", cv_only=True
    )
    assert (models / "tiny_cls.keras").read_bytes() == shipped_file  # no final fit, nothing saved
    assert not (run_dir / "weights.json").exists() and not (run_dir / "card.json").exists()
    assert json.loads((run_dir / "cross_validation.json").read_text()) == json.loads(json.dumps(trial))
    pooled = trial["cross_validation"]["pooled_out_of_fold"]
    assert trial["thresholds"] == {"malignancy": pooled["malignancy_threshold"]}
    with np.load(run_dir / "oof.npz") as saved:  # the trial's own predictions replaced the shipped run's
        assert (saved["probabilities"].argmax(1) == saved["labels"]).mean() == pytest.approx(
            pooled["accuracy"]
        )
    report = tiny_classifier_out_of_fold_report(folder_dataset, tmp_path)
    assert "a run of the recipe's folds without a final fit" in report
    assert "scored at the thresholds that run chose on its own out-of-fold predictions" in report
    assert f"At the run's own threshold {pooled['malignancy_threshold']:.3f}" in report
    assert f"Accuracy {pooled['accuracy']:.3f}." in report


def test_train_cv_only_refuses_options_that_fit_part_of_a_run_or_nothing(tmp_path):
    from breastapp.__main__ import main

    base = ["train", "us_cls", "--data", str(tmp_path), "--runs", str(tmp_path / "runs"), "--cv-only"]
    for extra in (["--only-folds", "0"], ["--refresh-metrics"]):
        with pytest.raises(SystemExit, match="--cv-only cross-validates every fold and stops before"):
            main([*base, *extra])
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_short_classification_run_and_evaluation_report(folder_dataset, tmp_path):
    from breastapp.ml.evaluate.run import evaluate
    from breastapp.ml.registry import load_weights
    from breastapp.ml.train.runner import train_recipe

    config = tiny_classification_config()
    card = train_recipe(
        "tiny_cls",
        folder_dataset,
        tmp_path / "models",
        tmp_path / "runs" / "tiny_cls",
        config=replace(config),
        dataset="folder",
    )
    pooled = card["metrics"]["cross_validation"]["pooled_out_of_fold"]
    assert pooled["n"] == 12 and np.array(pooled["confusion_matrix"]).sum() == 12
    assert (
        load_weights(tmp_path / "models", "tiny_cls").card["thresholds"]["malignancy"]
        == pooled["malignancy_threshold"]
    )
    report = evaluate(
        ["tiny_cls"],
        tmp_path / "models",
        "folder",
        folder_dataset,
        tmp_path / "report",
        runs_dir=tmp_path / "runs",
    )
    text = report.read_text()
    assert "AUC" in text and "| malignant |" in text
    assert (tmp_path / "report" / "roc.png").exists() and (tmp_path / "report" / "confusion.png").exists()
    out_of_fold = tiny_classifier_out_of_fold_report(folder_dataset, tmp_path)
    assert f"Accuracy {pooled['accuracy']:.3f}." in out_of_fold and "out-of-fold predictions" in out_of_fold


@pytest.mark.slow
def test_guided_classifier_trains_on_its_guides_out_of_fold_maps(folder_dataset, tmp_path):
    from breastapp.ml.evaluate.run import evaluate
    from breastapp.ml.registry import load_weights
    from breastapp.ml.train.classification import LesionView
    from breastapp.ml.train.loop import FitSettings
    from breastapp.ml.train.runner import train_recipe
    from breastapp.ml.train.segmentation import SegmentationConfig

    spec = CanonicalSpec(modality="US", spacing_mm=None, contrast="none", size=32)
    tiny_fit = FitSettings(epochs=1, batch_size=4, steps_per_epoch=2)
    classifier = replace(_guided_config(), spec=spec, fit=tiny_fit, cv_epochs=1, folds=2)
    runs = tmp_path / "runs"
    with pytest.raises(
        FileNotFoundError, match="weights.json is missing: train the guide network tiny_seg first"
    ):
        train_recipe(
            "guided",
            folder_dataset,
            tmp_path / "models",
            runs / "guided",
            config=classifier,
            dataset="folder",
        )
    segmenter = SegmentationConfig(
        name="tiny_seg",
        architecture="unet",
        build_kwargs={"base": 4, "depth": 2},
        spec=spec,
        tiles=None,
        fit=tiny_fit,
        cv_epochs=1,
        folds=2,
    )
    train_recipe(
        "tiny_seg", folder_dataset, tmp_path / "models", runs / "tiny_seg", config=segmenter, dataset="folder"
    )
    card = train_recipe(
        "guided", folder_dataset, tmp_path / "models", runs / "guided", config=classifier, dataset="folder"
    )
    assert card["input"]["channels"] == 2 and card["input"]["guide"]["segmenter"] == "tiny_seg"
    # Paired with the exact segmentation weights whose run made its training maps
    assert (
        card["input"]["guide"]["segmenter_sha256"]
        == load_weights(tmp_path / "models", "tiny_seg").card["sha256"]
    )
    assert load_weights(tmp_path / "models", "guided").model.input_shape == (None, 16, 16, 2)
    assert card["metrics"]["cross_validation"]["pooled_out_of_fold"]["n"] == 12
    report = evaluate(["guided"], tmp_path / "models", "folder", folder_dataset, tmp_path / "report")
    assert "AUC" in report.read_text()
    # The same guide with a lesion view: a two-view network whose card tells the engine how to cut it
    two_view = replace(
        classifier,
        name="two_view",
        architecture="two_view_classifier",
        build_kwargs={"input_size": 16, "n_classes": 3, "view_channels": 2},
        spec=replace(spec, size=64),
        lesion_view=LesionView(threshold=0.5, margin=0.5),
    )
    card = train_recipe(
        "two_view", folder_dataset, tmp_path / "models", runs / "two_view", config=two_view, dataset="folder"
    )
    assert card["input"]["channels"] == 4 and card["input"]["canonical_size"] == 64
    assert card["input"]["lesion_view"]["threshold"] == 0.5
    assert load_weights(tmp_path / "models", "two_view").model.input_shape == (None, 16, 16, 4)
    report = evaluate(
        ["two_view"], tmp_path / "models", "folder", folder_dataset, tmp_path / "report_two_view"
    )
    assert "AUC" in report.read_text()


def test_out_of_fold_evaluation_without_the_runs_predictions_is_refused_clearly(tmp_path):
    from breastapp.__main__ import main

    base = [
        "evaluate",
        "--weights",
        "us_cls",
        "--dataset",
        "busi",
        "--data",
        str(tmp_path),
        "--out",
        str(tmp_path / "r"),
    ]
    with pytest.raises(SystemExit, match="needs --runs"):
        main([*base, "--out-of-fold"])
    with pytest.raises(SystemExit, match="no cross-validation predictions at .*us_cls/oof.npz"):
        main([*base, "--out-of-fold", "--runs", str(tmp_path / "runs")])
    with pytest.raises(SystemExit, match="--keep-pectoral is an ablation for mammography segmentation"):
        main([*base, "--keep-pectoral"])


def test_out_of_fold_reports_say_whether_the_maps_come_from_the_run_that_made_the_weights(tmp_path):
    import json

    from breastapp.ml.evaluate.run import out_of_fold_provenance

    cards = [{"name": name, "sha256": f"{name}-sha".ljust(64, "0")} for name in ("same", "other", "folds")]
    for name, produced in (("same", cards[0]["sha256"]), ("other", "f" * 64)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "weights.json").write_text(json.dumps({"name": name, "sha256": produced}))
    same, other, folds_only = out_of_fold_provenance(tmp_path, cards)
    assert (
        same.startswith("- `same` (same-sha0000)") and "the training run that produced these weights" in same
    )
    assert "other weights (sha256 ffffffffffff)" in other
    assert "without a final fit" in folds_only and "differ from the card's own cross-validation" in folds_only


def test_evaluation_canonicalises_a_whole_image_classifier_at_the_size_its_card_names():
    """`evaluate` must prepare images as the engine does: at the card's `canonical_size`, then resized."""
    from breastapp.ml.evaluate.run import spec_from_card

    block = {"size": 224, "channels": 1, "contrast": "none"}
    assert spec_from_card({"modality": "US", "input": {**block, "canonical_size": 256}}).size == 256
    assert spec_from_card({"modality": "US", "input": block}).size == 224


def test_train_seed_option_reseeds_the_recipe_and_leaves_the_rest():
    """`train NAME --seed N` is how a recipe's run-to-run spread is measured (models/README.md)."""
    import argparse

    from breastapp.commands.train import add_arguments, configured_recipe
    from breastapp.ml.train.recipes import RECIPES

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    reseeded = configured_recipe(parser.parse_args(["us_cls", "--seed", "100"]))
    assert reseeded.fit.seed == 100 and RECIPES["us_cls"].fit.seed == 0
    assert reseeded.fit.learning_rate == RECIPES["us_cls"].fit.learning_rate
    assert configured_recipe(parser.parse_args(["us_cls"])) == RECIPES["us_cls"]
