"""Pectoral muscle detection: synthetic MLO/CC breasts with known geometry, and real mini-MIAS films."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from breastapp.imaging.frame import Frame
from breastapp.imaging.pectoral import pectoral_mask, shows_pectoral
from breastapp.imaging.preprocess import PreprocessSettings, canonicalize_mammogram

ROWS, COLS = 400, 300
MUSCLE_TOP_WIDTH, MUSCLE_HEIGHT = 120, 220  # the edge runs from (row 0, col 120) to (row 220, col 0)


def breast_with(muscle: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(pixels, breast mask) of a textured half-ellipse against the left edge, with or without a muscle."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((ROWS, COLS), dtype=np.uint8)
    cv2.ellipse(mask, (0, ROWS // 2), (int(COLS * 0.8), ROWS // 2), 0, 0, 360, 1, thickness=-1)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (ROWS, COLS)).astype(np.float32), (0, 0), 4)
    pixels = np.where(mask > 0, 0.45 + 0.05 * texture / texture.std(), 0.0).astype(np.float32)
    if muscle:
        triangle = np.array([[0, 0], [MUSCLE_TOP_WIDTH, 0], [0, MUSCLE_HEIGHT]], dtype=np.int32)
        cv2.fillPoly(pixels, [triangle], 0.85)
    return np.clip(pixels, 0, 1), mask.astype(bool)


def true_muscle() -> np.ndarray:
    rows, cols = np.mgrid[0:ROWS, 0:COLS]
    return cols < MUSCLE_TOP_WIDTH * (1 - rows / MUSCLE_HEIGHT)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_a_bright_corner_triangle_is_found_with_its_edge():
    pixels, breast = breast_with(muscle=True)
    found = pectoral_mask(pixels, breast)
    assert iou(found, true_muscle() & breast) > 0.8
    assert not (found & ~breast).any(), "the muscle never extends beyond the breast"


def test_a_breast_without_a_muscle_gives_an_empty_mask():
    pixels, breast = breast_with(muscle=False)
    assert not pectoral_mask(pixels, breast).any()


def test_dense_tissue_along_the_whole_chest_wall_is_not_taken_for_a_muscle():
    pixels, breast = breast_with(muscle=False)
    pixels[:, :40] = np.where(breast[:, :40], 0.85, 0.0)  # a bright band from top to bottom, as in a CC view
    assert not pectoral_mask(pixels, breast).any()


def test_a_bright_band_along_the_top_is_not_taken_for_a_muscle():
    pixels, breast = breast_with(muscle=False)
    pixels[:30] = np.where(breast[:30], 0.85, 0.0)
    assert not pectoral_mask(pixels, breast).any()


def test_an_empty_breast_mask_gives_an_empty_muscle():
    pixels, _ = breast_with(muscle=True)
    assert not pectoral_mask(pixels, np.zeros_like(pixels, dtype=bool)).any()


@pytest.mark.parametrize(
    ("view", "shows"), [("MLO", True), ("ML", True), (None, True), ("CC", False), ("xccl", False)]
)
def test_views_without_a_muscle_are_not_searched(view, shows):
    assert shows_pectoral(view) is shows


def canonical(pixels: np.ndarray, view: str | None):
    frame = Frame(pixels=pixels, modality="MG", source_format="PNG", spacing_mm=(0.2, 0.2), view=view)
    return canonicalize_mammogram(frame, PreprocessSettings(contrast="none"))


def test_canonical_form_leaves_the_muscle_out_of_the_search_region():
    pixels, _ = breast_with(muscle=True)
    canon = canonical(pixels, "MLO")
    assert canon.pectoral_mask is not None
    assert iou(canon.pectoral_mask, true_muscle() & canon.breast_mask) > 0.8
    assert not (canon.search_mask & canon.pectoral_mask).any()
    assert (canon.search_mask | canon.pectoral_mask).sum() == canon.breast_mask.sum()


def test_a_cc_view_keeps_its_whole_breast_in_the_search_region():
    pixels, _ = breast_with(muscle=True)
    canon = canonical(pixels, "CC")
    assert canon.pectoral_mask is None
    assert np.array_equal(canon.search_mask, canon.breast_mask)


def test_a_right_breast_muscle_is_found_after_mirroring():
    pixels, _ = breast_with(muscle=True)
    canon = canonical(np.ascontiguousarray(pixels[:, ::-1]), "MLO")
    assert canon.flipped
    assert iou(canon.pectoral_mask, true_muscle() & canon.breast_mask) > 0.8


# mini-MIAS films (all MLO): mdb028 has a large muscle and a mass near it; mdb270's mass sits at the top
# of the breast right beside the muscle edge.
@pytest.mark.parametrize("reference", ["mdb028", "mdb270"])
def test_real_films_lose_their_muscle_but_keep_their_mass(shared_data, reference):
    from breastapp.ml.datasets.mias import load_mias
    from breastapp.ml.datasets.prepare import CanonicalSpec, to_sample

    record = next(r for r in load_mias(shared_data / "mini-mias") if r.image_id.startswith(reference))
    sample = to_sample(record, CanonicalSpec(modality="MG", spacing_mm=0.4, contrast="hist_eq"))
    assert sample.pectoral_mask is not None
    share_of_breast = sample.pectoral_mask.sum() / sample.breast_mask.sum()
    assert 0.01 < share_of_breast < 0.3
    muscle_rows = np.flatnonzero(sample.pectoral_mask.any(axis=1))
    assert muscle_rows[0] < sample.breast_mask.shape[0] * 0.1, "the muscle starts at the top of the film"
    inside = (sample.lesion_mask & sample.pectoral_mask).sum() / sample.lesion_mask.sum()
    assert inside < 0.5, "most of the annotated mass stays in the search region"


@pytest.mark.parametrize("contrast", ["clahe", "none"])
def test_the_muscle_does_not_move_with_the_networks_contrast(shared_data, contrast):
    """The detector is tuned on equalised films: a network trained on CLAHE or raw grey levels gets the
    same search region as one trained on equalised films."""
    from breastapp.ml.datasets.mias import load_mias
    from breastapp.ml.datasets.prepare import CanonicalSpec, to_sample

    record = next(r for r in load_mias(shared_data / "mini-mias") if r.image_id.startswith("mdb028"))
    equalised = to_sample(record, CanonicalSpec(modality="MG", spacing_mm=0.4, contrast="hist_eq"))
    other = to_sample(record, CanonicalSpec(modality="MG", spacing_mm=0.4, contrast=contrast))
    assert equalised.pectoral_mask is not None
    assert np.array_equal(other.pectoral_mask, equalised.pectoral_mask)
    assert not np.allclose(other.pixels, equalised.pixels), "the network's input does follow the contrast"


def test_a_full_field_dicom_film_loses_its_muscle_but_not_its_mass(j2k_mammogram):
    """NEMA's MG1 film (4664x3064, left MLO): the muscle edge runs from the top down to the chest wall,
    and the bright mass in the upper breast stays in the search region."""
    from breastapp.imaging.decode import decode

    frame = decode(j2k_mammogram.read_bytes())
    canon = canonicalize_mammogram(frame, PreprocessSettings(target_spacing_mm=0.4, contrast="hist_eq"))
    assert frame.view == "MLO" and canon.pectoral_mask is not None
    share = canon.pectoral_mask.sum() / canon.breast_mask.sum()
    assert 0.1 < share < 0.35
    rows, cols = canon.shape
    assert canon.pectoral_mask[: rows // 10, : cols // 10].mean() > 0.9, "the top of the chest wall is muscle"
    assert not canon.pectoral_mask[rows * 3 // 4 :].any(), "the lowest quarter of the breast is searched"
    # The mass: a bright blob around 38% of the height and a third of the width (seen on the film).
    mass_row, mass_col = int(0.38 * rows), int(0.33 * cols)
    assert canon.pixels[mass_row, mass_col] > np.quantile(canon.pixels[canon.search_mask], 0.9)
    assert canon.search_mask[mass_row - 15 : mass_row + 15, mass_col - 15 : mass_col + 15].all()
