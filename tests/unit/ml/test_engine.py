"""End to end on real images with real (initialised, untrained) networks: structure and invariants.

Untrained weights make the numbers meaningless, so these tests check what must hold for ANY weights:
shapes, coordinates inside the image, ordering, probabilities, identities, notes, timings.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
from PIL import Image

from breastapp.constants import LESION_LABELS, VERDICT_NO_LESION, VERDICTS
from breastapp.imaging.decode import decode
from breastapp.imaging.errors import UnsupportedModality
from breastapp.imaging.frame import Frame
from breastapp.imaging.preprocess import canonicalize_mammogram, map_to_original
from breastapp.ml.engine import UNTRAINED_NOTE, Engine, EngineSettings
from breastapp.ml.pipeline import (
    analyze_mammogram,
    analyze_ultrasound,
    ensemble_map,
    mammogram_settings,
)
from breastapp.ml.registry import WeightsError, file_sha256, load_weights, weights_paths
from breastapp.ml.sliding_window import TileSettings, sliding_window_predict

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STAGES = {"decode", "preprocess", "segment", "classify", "draw"}


@pytest.fixture(scope="module")
def engine(initialised_models):
    engine = Engine(EngineSettings(models_dir=initialised_models))
    engine.warm_up()
    return engine


@pytest.fixture(scope="module")
def mammogram_bytes(shared_data):
    return (shared_data / "mini-mias" / "images" / "mdb001.png").read_bytes()


@pytest.fixture(scope="module")
def ultrasound_bytes(shared_data):
    path = next(
        p for p in sorted((shared_data / "busi" / "malignant").glob("*.png")) if "_mask" not in p.name
    )
    return path.read_bytes()


def _png_shape(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(data)) as image:
        return image.size[1], image.size[0]


def _check_common(output, shape, models_dir, stages=STAGES):
    result = output.result
    assert result.image_shape == shape
    assert result.verdict in VERDICTS
    assert 0.0 <= result.image_malignancy_prob <= 1.0
    assert stages <= set(result.timings_s) and all(t >= 0 for t in result.timings_s.values())
    assert UNTRAINED_NOTE in result.notes
    for info in result.weights:
        assert info.sha256 == file_sha256(weights_paths(models_dir, info.name)[0])
    assert [lesion.index for lesion in result.lesions] == list(range(1, len(result.lesions) + 1))
    for lesion in result.lesions:
        row0, col0, row1, col1 = lesion.box
        assert 0 <= row0 < row1 <= shape[0] and 0 <= col0 < col1 <= shape[1]
        assert row0 <= lesion.centroid[0] <= row1 and col0 <= lesion.centroid[1] <= col1
        assert lesion.label in LESION_LABELS and 0.0 <= lesion.malignancy_prob <= 1.0
        assert 0.0 <= lesion.seg_prob_mean <= lesion.seg_prob_max <= 1.0
        assert sum(lesion.class_probs.values()) == pytest.approx(1.0, abs=1e-4)
    assert _png_shape(output.mask_png) == shape
    for picture in (output.original_png, output.overlay_png, output.heatmap_png):
        assert picture.startswith(PNG_SIGNATURE)
    assert result.to_dict()["verdict"] == result.verdict


def test_mammogram_end_to_end(engine, mammogram_bytes, initialised_models):
    output = engine.analyze_bytes(mammogram_bytes, modality="MG", spacing_mm=0.2)
    result = output.result
    _check_common(output, (1024, 1024), initialised_models)
    assert result.modality == "MG"
    assert [w.name for w in result.weights] == ["mg_seg_unet", "mg_cls"]
    probs = [lesion.malignancy_prob for lesion in result.lesions]
    assert probs == sorted(probs, reverse=True)
    assert result.image_malignancy_prob == (max(probs) if probs else 0.0)
    assert (result.verdict == VERDICT_NO_LESION) == (not result.lesions)
    assert result.spacing_mm == pytest.approx((0.2, 0.2))
    assert all(lesion.area_mm2 is not None and lesion.area_mm2 > 0 for lesion in result.lesions)


def test_ultrasound_end_to_end(engine, ultrasound_bytes, initialised_models):
    frame = decode(ultrasound_bytes, modality="US")
    output = engine.analyze(frame)
    result = output.result
    _check_common(output, frame.shape, initialised_models, STAGES - {"decode"})  # decoded here
    assert result.modality == "US"
    assert set(result.class_probs) == {"benign", "malignant", "normal"}
    assert sum(result.class_probs.values()) == pytest.approx(1.0, abs=1e-4)
    assert result.image_malignancy_prob == pytest.approx(result.class_probs["malignant"])
    assert result.verdict in {"normal", "benign", "malignant"}


def test_ensemble_averages_and_flip_tta_mirrors(initialised_models, mammogram_bytes):
    """Ensemble map = mean of members' maps, each member on the image in its own contrast (the B-Cir U-Net
    equalised, the U-Net CLAHE); the flip pass = the map of the mirrored image, mirrored back; both are zero
    outside the lesion search region (the breast without its pectoral muscle)."""
    bcir, unet = (load_weights(initialised_models, n) for n in ("mg_seg_bcir", "mg_seg_unet"))
    frame = decode(mammogram_bytes, modality="MG", spacing_mm=0.1)  # 0.1 mm -> 512x512 canonical: fast
    tiles = TileSettings(tile=256, overlap=32)
    output = analyze_mammogram(frame, [bcir, unet], load_weights(initialised_models, "mg_cls"), tiles)
    assert [w.name for w in output.result.weights] == ["mg_seg_bcir", "mg_seg_unet", "mg_cls"]
    from breastapp.imaging.preprocess import PreprocessSettings, canonical_views, canonicalize_mammogram

    canon = canonicalize_mammogram(frame, PreprocessSettings(target_spacing_mm=0.2), spacing_mm=0.1)
    clahe = canonicalize_mammogram(
        frame, PreprocessSettings(target_spacing_mm=0.2, contrast="clahe"), spacing_mm=0.1
    )
    assert [bcir.card["input"]["contrast"], unet.card["input"]["contrast"]] == ["hist_eq", "clahe"]
    assert np.array_equal(clahe.search_mask, canon.search_mask), "only the grey levels differ"
    settings = PreprocessSettings(target_spacing_mm=0.2)
    views = canonical_views(frame, settings, ["hist_eq", "clahe"], spacing_mm=0.1)
    inputs = [views[weights.card["input"]["contrast"]].pixels for weights in (bcir, unet)]
    np.testing.assert_array_equal(inputs[0], canon.pixels)
    np.testing.assert_array_equal(inputs[1], clahe.pixels)
    args = {"mask": canon.breast_mask, "box": canon.breast_box}
    members = zip((bcir, unet), inputs, strict=True)
    maps = [sliding_window_predict(w.model, pixels, tiles, **args)[0] for w, pixels in members]
    ensemble, _ = ensemble_map([bcir, unet], canon, tiles, flip_tta=False, inputs=inputs)
    search = canon.search_mask
    np.testing.assert_allclose(ensemble, np.where(search, (maps[0] + maps[1]) / 2, 0), atol=1e-6)
    flipped, tiles_run = ensemble_map([bcir], canon, tiles, flip_tta=True)
    mirrored = canon.pixels[:, ::-1].copy()
    row0, col0, row1, col1 = canon.breast_box
    mirrored_box = (row0, canon.shape[1] - col1, row1, canon.shape[1] - col0)
    mirror_map, _ = sliding_window_predict(
        bcir.model, mirrored, tiles, mask=canon.breast_mask[:, ::-1], box=mirrored_box
    )
    np.testing.assert_allclose(flipped, np.where(search, (maps[0] + mirror_map[:, ::-1]) / 2, 0), atol=1e-5)
    assert output.prob_map.shape == frame.shape and output.lesion_mask.dtype == bool


def test_an_ensemble_of_networks_at_different_pixel_spacings_is_refused(initialised_models):
    """Maps are averaged pixel by pixel, so members must share the canonical spacing (contrast may differ)."""
    bcir, unet = (load_weights(initialised_models, n) for n in ("mg_seg_bcir", "mg_seg_unet"))
    assert mammogram_settings(bcir.card, [bcir, unet]).contrast == "hist_eq"
    finer = replace(unet, card={**unet.card, "input": {**unet.card["input"], "spacing_mm": 0.2}})
    with pytest.raises(ValueError, match="disagree on pixel spacing: mg_seg_unet 0.2 mm vs 0.4 mm"):
        mammogram_settings(bcir.card, [bcir, finer])


def test_mirrored_pass_follows_the_segmentation_card_unless_the_settings_force_it(
    initialised_models, ultrasound_bytes, tmp_path
):
    """A card measured with flip_tta (`inference.flip_tta`) gets the mirrored pass in the engine, as in its
    cross-validation; EngineSettings.flip_tta overrides the card either way."""
    import shutil

    models_dir = tmp_path / "models"
    shutil.copytree(initialised_models, models_dir)
    card_path = weights_paths(models_dir, "us_seg_unet")[1]
    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**card, "inference": {"flip_tta": True}}))
    save_guided_classifier(models_dir)
    frame = decode(ultrasound_bytes, modality="US")
    segmenter, classifier = (load_weights(models_dir, n) for n in ("us_seg_unet", "us_cls"))
    # A guided classifier reads the segmentation map, so its answer tells which map the engine made.
    expected = {
        flip: analyze_ultrasound(frame, segmenter, classifier, flip_tta=flip).result.class_probs
        for flip in (True, False)
    }
    assert expected[True] != expected[False]
    for forced, used in ((None, True), (False, False), (True, True)):
        engine = Engine(EngineSettings(models_dir=models_dir, flip_tta=forced))
        got = engine.analyze(frame).result.class_probs
        assert got == pytest.approx(expected[used], abs=1e-6), f"settings flip_tta={forced}"


def test_classifier_mirrored_pass_follows_its_own_card(initialised_models):
    """A classifier card with `inference.flip_tta` gets the mean of each input's and its mirror image's
    probabilities (in chunks of PREDICT_CHUNK inputs); without it, one pass."""
    from dataclasses import replace

    from breastapp.ml.pipeline import PREDICT_CHUNK, predict_classes

    classifier = load_weights(initialised_models, "mg_cls")
    size = int(classifier.card["input"]["size"])
    rng = np.random.default_rng(0)
    crops = [rng.random((size, size), dtype=np.float32) for _ in range(PREDICT_CHUNK + 8)]
    batch = np.stack(crops)[..., None]
    plain = np.asarray(classifier.model(batch, training=False))
    mirrored = np.asarray(classifier.model(batch[:, :, ::-1].copy(), training=False))
    assert not np.allclose(plain, mirrored, atol=1e-4)  # the check below would pass on a symmetric net
    np.testing.assert_allclose(predict_classes(classifier, crops), plain, atol=1e-5)
    with_tta = replace(classifier, card={**classifier.card, "inference": {"flip_tta": True}})
    np.testing.assert_allclose(predict_classes(with_tta, crops), (plain + mirrored) / 2, atol=1e-5)


def save_guided_classifier(models_dir, size: int = 64) -> None:
    """Replace `us_cls` in `models_dir` by an initialised classifier guided by `us_seg_unet`'s map."""
    import keras

    from breastapp.ml.architectures import build
    from breastapp.ml.registry import save_weights

    keras.utils.set_random_seed(0)
    build_kwargs = {"input_size": size, "n_classes": 3, "input_channels": 2}
    card = json.loads(weights_paths(models_dir, "us_cls")[1].read_text())
    card.update(architecture="cnn_classifier", build_kwargs=build_kwargs)
    # No canonical_size: the classifier sees the segmenter's canonical image, as guided training used.
    card["input"] = {"size": size, "channels": 2, "contrast": "none", "guide": {"segmenter": "us_seg_unet"}}
    save_weights(build("cnn_classifier", **build_kwargs), card, models_dir, "us_cls")


def inner(mask: np.ndarray, margin: int = 4) -> np.ndarray:
    """`mask` without the `margin` pixels next to its edges."""
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    return cv2.erode(mask.astype(np.uint8), kernel).astype(bool)


def test_no_lesion_is_looked_for_on_the_pectoral_muscle(shared_data, initialised_models):
    """mdb028 (MLO) has a large pectoral muscle: the engine's map is zero there and outside the breast,
    as in the cross-validation that measured the weights (untrained weights map ~0.5 everywhere else)."""
    bcir = load_weights(initialised_models, "mg_seg_bcir")
    frame = decode((shared_data / "mini-mias" / "images" / "mdb028.png").read_bytes(), modality="MG")
    output = analyze_mammogram(
        frame, [bcir], load_weights(initialised_models, "mg_cls"), TileSettings(tile=256, overlap=32)
    )
    canon = canonicalize_mammogram(frame, mammogram_settings(bcir.card))
    assert canon.pectoral_mask is not None
    muscle = map_to_original(canon, canon.pectoral_mask)
    search = map_to_original(canon, canon.search_mask)
    assert muscle.sum() > 0.01 * search.sum()
    # The map comes back to the film's pixels by linear interpolation: look a few pixels inside the edges.
    assert output.prob_map[inner(muscle)].max() == 0.0
    assert output.prob_map[inner(~(muscle | search))].max() == 0.0, "nothing is looked for outside the breast"
    assert output.prob_map[search].mean() > 0.1
    assert any(note.startswith("pectoral muscle (") for note in output.result.notes), "the user is told"
    assert np.array_equal(output.not_searched, muscle), "and shown where (overlay.png draws it)"


def test_saliency_for_a_lesion_or_a_clear_refusal(engine, mammogram_bytes, ultrasound_bytes):
    frame = decode(mammogram_bytes, modality="MG", spacing_mm=0.2)
    found = engine.analyze(frame).result.lesions
    if found:
        saliency = engine.saliency(frame, 1)
        assert saliency.heat.shape == saliency.classifier_input.shape
        assert 0.0 <= saliency.heat.min() and saliency.heat.max() <= 1.0
    with pytest.raises(IndexError, match="no lesion"):
        engine.saliency(frame, len(found) + 1)
    us = engine.saliency(decode(ultrasound_bytes, modality="US"))
    size = engine.weights("us_cls").card["input"]["size"]
    assert us.heat.shape == us.classifier_input.shape == (size, size)
    assert us.png.startswith(PNG_SIGNATURE)


def test_missing_weights_are_reported_not_guessed(tmp_path):
    engine = Engine(EngineSettings(models_dir=tmp_path))
    frame = Frame(pixels=np.zeros((64, 64), np.float32), modality="MG", source_format="PNG")
    with pytest.raises(WeightsError, match="mg_seg_unet.keras is missing"):
        engine.analyze(frame)


def test_other_modalities_are_refused(engine):
    frame = Frame(pixels=np.zeros((64, 64), np.float32), modality="CT", source_format="DICOM")
    with pytest.raises(UnsupportedModality):
        engine.analyze(frame)


def test_an_unguided_ultrasound_classifier_sees_the_image_canonicalised_at_its_own_size(
    initialised_models, ultrasound_bytes
):
    """The shipped `us_cls` card names `canonical_size` (224, the ImageNet network's input) apart from the
    segmenter's 128: the engine canonicalises the upload again at that size, as training did, rather than
    enlarging the segmenter's smaller image; Grad-CAM explains the same input."""
    from breastapp.imaging.preprocess import canonicalize_ultrasound

    segmenter, classifier = (load_weights(initialised_models, n) for n in ("us_seg_unet", "us_cls"))
    size = int(classifier.card["input"]["size"])
    assert classifier.card["input"]["canonical_size"] == size != segmenter.card["input"]["size"]
    frame = decode(ultrasound_bytes, modality="US")
    (seen,) = analyze_ultrasound(frame, segmenter, classifier).classifier_inputs
    np.testing.assert_allclose(seen, canonicalize_ultrasound(frame, size, "none").pixels, atol=1e-6)
    saliency = Engine(EngineSettings(models_dir=initialised_models)).saliency(frame)
    assert saliency.classifier_input.shape == saliency.heat.shape == (size, size)


def test_a_guided_ultrasound_classifier_gets_the_segmenters_map_as_its_second_channel(
    initialised_models, ultrasound_bytes, tmp_path
):
    """A card with `input.guide` makes the engine stack the lesion probability map under the image."""
    import shutil

    from breastapp.imaging.preprocess import canonicalize_ultrasound, resize

    for path in initialised_models.iterdir():
        shutil.copy(path, tmp_path / path.name)
    size = 32
    save_guided_classifier(tmp_path, size)

    segmenter, classifier = (load_weights(tmp_path, name) for name in ("us_seg_unet", "us_cls"))
    frame = decode(ultrasound_bytes, modality="US")
    (guided_input,) = analyze_ultrasound(frame, segmenter, classifier).classifier_inputs
    assert guided_input.shape == (size, size, 2)
    canon = canonicalize_ultrasound(frame, int(segmenter.card["input"]["size"]), "none")
    expected_map = np.asarray(segmenter.model(canon.pixels[None, :, :, None], training=False))[0, ..., 0]
    np.testing.assert_allclose(guided_input[..., 1], resize(expected_map, (size, size)), atol=1e-5)
    np.testing.assert_allclose(guided_input[..., 0], resize(canon.pixels, (size, size)), atol=1e-6)
    saliency = Engine(EngineSettings(models_dir=tmp_path)).saliency(frame)
    assert saliency.classifier_input.shape == saliency.heat.shape == (size, size)


def test_a_lesion_view_classifier_gets_the_crop_around_the_guided_lesion_from_its_own_canonical_image(
    initialised_models, ultrasound_bytes, tmp_path
):
    """A card with `input.lesion_view` and a finer `canonical_size` makes the engine cut channels 3-4 from
    that finer image, with the rule training used; the two-view network saves, loads and explains."""
    import shutil

    import keras

    from breastapp.imaging.preprocess import canonicalize_ultrasound, resize
    from breastapp.ml.architectures import build
    from breastapp.ml.lesions import guided_lesion_view
    from breastapp.ml.pipeline import whole_image_map
    from breastapp.ml.registry import read_card, save_weights

    for path in initialised_models.iterdir():
        shutil.copy(path, tmp_path / path.name)
    card = {
        key: value for key, value in read_card(tmp_path, "us_cls").items() if key not in ("sha256", "name")
    }
    size, seg_size = 32, int(read_card(tmp_path, "us_seg_unet")["input"]["size"])
    card["build_kwargs"] = {"input_size": size, "n_classes": 3, "view_channels": 2}
    card["input"] = {
        **card["input"],
        "size": size,
        "channels": 4,
        "guide": {"segmenter": "us_seg_unet"},
        "canonical_size": 2 * seg_size,
        # threshold 0: the whole map is one component, so the view is cut even from untrained weights
        "lesion_view": {"threshold": 0.0, "margin": 0.5},
    }
    keras.utils.set_random_seed(0)
    save_weights(build("two_view_classifier", **card["build_kwargs"]), card, tmp_path, "us_cls")

    segmenter, classifier = (load_weights(tmp_path, name) for name in ("us_seg_unet", "us_cls"))
    assert classifier.model.input_shape == (None, size, size, 4)
    frame = decode(ultrasound_bytes, modality="US")
    (view_input,) = analyze_ultrasound(frame, segmenter, classifier).classifier_inputs
    assert view_input.shape == (size, size, 4)
    seg_canon = canonicalize_ultrasound(frame, seg_size, "none")
    prob = whole_image_map(segmenter.model, seg_canon.pixels, flip_tta=False)
    fine = canonicalize_ultrasound(frame, 2 * seg_size, "none")
    np.testing.assert_allclose(view_input[..., 0], resize(fine.pixels, (size, size)), atol=1e-6)
    np.testing.assert_allclose(
        view_input[..., 2:], guided_lesion_view(fine.pixels, prob, 0.0, 0.5, size), atol=1e-5
    )
    saliency = Engine(EngineSettings(models_dir=tmp_path)).saliency(frame)
    assert saliency.heat.shape == (size, size)
