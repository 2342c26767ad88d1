"""Dataset parsers: mini-MIAS Info.txt exactly (bottom-left origin), BUSI, CBIS-DDSM layout, folders."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from breastapp.ml.datasets import load_dataset
from breastapp.ml.datasets.cbis import load_cbis
from breastapp.ml.datasets.folder import load_folder
from breastapp.ml.datasets.mias import load_mias, mias_patient, parse_info_line
from breastapp.ml.datasets.prepare import CanonicalSpec, lesion_mask_original, load_samples, to_sample
from breastapp.ml.datasets.records import DENSITY


def test_info_line_with_coordinates_puts_origin_bottom_left():
    reference, tissue, abnormality, lesion = parse_info_line("mdb001 G CIRC B 535 425 197")
    assert (reference, tissue, abnormality) == ("mdb001", "G", "CIRC")
    assert lesion.kind == "mass" and lesion.pathology == "benign"
    assert lesion.center_rc == (1024 - 425, 535) and lesion.radius_px == 197


def test_info_lines_without_coordinates_are_kept_but_unlocatable():
    _, _, _, mass = parse_info_line("mdb059 F CIRC B")
    _, _, _, calcification = parse_info_line("mdb216 D CALC M *NOTE 3* ")
    assert mass.kind == "mass" and not mass.locatable
    assert calcification.kind == "calcification" and calcification.pathology == "malignant"
    assert not calcification.locatable
    assert parse_info_line("mdb003 D NORM ")[3] is None
    assert parse_info_line("Thank you for downloading the MIAS database") is None


def test_consecutive_references_are_one_patient():
    assert mias_patient("mdb001") == mias_patient("mdb002")
    assert mias_patient("mdb003") == mias_patient("mdb004") != mias_patient("mdb002")


def test_real_mini_mias_lists_every_image_and_its_lesions(mias_root):
    records = {record.image_id: record for record in load_mias(mias_root)}
    assert len(records) == len(list((mias_root / "images").glob("*.png")))
    assert [lesion.center_rc for lesion in records["mdb005"].lesions] == [
        (1024 - 133, 477),
        (1024 - 168, 500),
    ]
    assert records["mdb003"].label == "normal" and not records["mdb003"].lesions
    assert records["mdb144"].label == "malignant"  # one benign and one malignant mass: the worst wins
    # background tissue (G, D, F in Info.txt), named so that the densities sort from fatty to dense
    densities = [records[ref].metadata[DENSITY] for ref in ("mdb001", "mdb003", "mdb005")]
    assert densities == ["2 fatty-glandular", "3 dense-glandular", "1 fatty"]


def _inside_minus_ring(image: np.ndarray, row: float, col: float, radius: float) -> float:
    rows, cols = np.mgrid[: image.shape[0], : image.shape[1]]
    distance = np.hypot(rows - row, cols - col)
    return float(
        image[distance <= radius].mean() - image[(distance > radius) & (distance <= 2 * radius)].mean()
    )


def test_mias_circles_lie_on_the_bright_masses(mias_root):
    """With row = 1024 - Y the circles sit on masses brighter than their surroundings; reading Y as the
    row (top-left origin) would put most of them on ordinary tissue."""
    image = cv2.imread(str(mias_root / "images" / "mdb028.png"), cv2.IMREAD_GRAYSCALE).astype(float)
    lesion = {r.image_id: r for r in load_mias(mias_root)}["mdb028"].lesions[0]
    assert _inside_minus_ring(image, *lesion.center_rc, lesion.radius_px) > 20
    masses = [
        (r, lesion) for r in load_mias(mias_root) for lesion in r.lesions_of("mass") if lesion.locatable
    ]
    better = 0
    for record, lesion in masses:
        pixels = cv2.imread(str(record.image_path), cv2.IMREAD_GRAYSCALE).astype(float)
        right = _inside_minus_ring(pixels, *lesion.center_rc, lesion.radius_px)
        wrong = _inside_minus_ring(pixels, 1024 - lesion.center_rc[0], lesion.center_rc[1], lesion.radius_px)
        better += right > wrong
    assert better >= 0.8 * len(masses)


def test_canonical_mask_follows_the_mass_into_canonical_space(mias_root):
    record = {r.image_id: r for r in load_mias(mias_root)}["mdb028"]
    sample = to_sample(record, CanonicalSpec(modality="MG", spacing_mm=0.4))
    assert sample.pixels.shape == (512, 512)
    assert sample.lesion_mask.sum() == pytest.approx(np.pi * (record.lesions[0].radius_px / 2) ** 2, rel=0.1)
    assert sample.breast_mask[sample.lesion_mask].mean() > 0.9  # the mass lies in the breast
    inside, outside = (
        sample.pixels[sample.lesion_mask].mean(),
        sample.pixels[sample.breast_mask & ~sample.lesion_mask].mean(),
    )
    assert inside > outside


def test_busi_pairs_images_with_masks_and_classes(busi_root, tmp_path):
    records = load_dataset("busi", busi_root)
    assert {record.label for record in records} == {"benign", "malignant", "normal"}
    assert all(record.lesions for record in records if record.label != "normal")
    assert not any(record.lesions for record in records if record.label == "normal")
    malignant = next(record for record in records if record.label == "malignant")
    samples = load_samples(
        [malignant],
        CanonicalSpec(modality="US", spacing_mm=None, contrast="none", size=128),
        tmp_path,
        kinds=("lesion",),
    )
    assert samples[0].pixels.shape == (128, 128) and samples[0].lesion_mask.any()
    cached = load_samples(
        [malignant],
        CanonicalSpec(modality="US", spacing_mm=None, contrast="none", size=128),
        tmp_path,
        kinds=("lesion",),
    )
    assert np.array_equal(cached[0].lesion_mask, samples[0].lesion_mask)
    assert not list(tmp_path.rglob("*.part"))  # written to a temporary file, then renamed into place


def test_a_half_written_cache_file_is_rebuilt_not_fatal(busi_root, tmp_path):
    spec = CanonicalSpec(modality="US", spacing_mm=None, contrast="none", size=128)
    malignant = next(r for r in load_dataset("busi", busi_root) if r.label == "malignant")
    fresh = load_samples([malignant], spec, tmp_path, kinds=("lesion",))[0]
    (cache_file,) = tmp_path.rglob("*.npz")
    cache_file.write_bytes(cache_file.read_bytes()[:100])  # as a run killed mid-write used to leave it
    rebuilt = load_samples([malignant], spec, tmp_path, kinds=("lesion",))[0]
    assert np.array_equal(rebuilt.lesion_mask, fresh.lesion_mask)
    assert load_samples([malignant], spec, tmp_path, kinds=("lesion",))[0].pixels.shape == (128, 128)
    assert cache_file.stat().st_size > 100  # rewritten whole


def test_cbis_tree_resolves_renamed_folders_and_swapped_masks(cbis_tree):
    records = load_cbis(cbis_tree)
    assert [record.patient_id for record in records] == ["P_00001", "P_00001", "P_00002"]
    assert [record.label for record in records] == ["malignant", "malignant", "benign"]
    assert {record.metadata[DENSITY] for record in records} == {"BI-RADS 3"}  # the "breast_density" column
    for record in records:
        mask = lesion_mask_original(record.lesions[0], (64, 48))
        assert mask.sum() == 64  # the 8x8 ROI mask, never the 16x16 crop
    sample = to_sample(records[2], CanonicalSpec(modality="MG", spacing_mm=0.2))
    assert sample.lesion_mask.any()


def test_folder_layout_reads_labels_patients_and_masks(folder_dataset):
    records = load_folder(folder_dataset)
    assert len(records) == 12
    assert records[0].patient_id == records[1].patient_id == "p0"
    assert records[0].lesions and not records[2].lesions  # benign has its mask; normal has none


def test_folder_masks_are_masses_on_mammograms_and_plain_lesions_on_ultrasound(folder_dataset):
    from breastapp.ml.datasets.records import LESION, MASS
    from breastapp.ml.train.recipes import select_records

    assert {r.lesions[0].kind for r in load_folder(folder_dataset) if r.lesions} == {LESION}  # all US
    labels = folder_dataset / "labels.csv"
    labels.write_text(labels.read_text().replace(",US\n", ",MG\n"))
    records = load_folder(folder_dataset)
    assert {r.lesions[0].kind for r in records if r.lesions} == {MASS}
    # The mammography mass recipes keep a user's lesion images (they train and score masses only).
    assert len(select_records("mg_seg_bcir", records)) == len(records)


def test_folder_layout_rejects_unknown_labels(folder_dataset):
    (folder_dataset / "labels.csv").write_text("image,label\ncase00.png,suspicious\n")
    with pytest.raises(ValueError, match="line 2"):
        load_folder(folder_dataset)
