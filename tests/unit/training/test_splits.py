"""Patient-level splits: no patient on both sides, every image validated exactly once."""

from __future__ import annotations

from breastapp.ml.datasets.mias import load_mias
from breastapp.ml.datasets.splits import holdout_indices, kfold_indices, patient_folds


def test_mias_folds_are_patient_disjoint_and_cover_every_image(mias_root):
    records = load_mias(mias_root)
    splits = kfold_indices(records, 5, seed=3)
    validated = sorted(i for _, validation in splits for i in validation)
    assert validated == list(range(len(records)))
    for train, validation in splits:
        assert not {records[i].patient_id for i in train} & {records[i].patient_id for i in validation}
        assert "malignant" in {records[i].label for i in validation}  # stratified by worst label


def test_both_breasts_of_a_woman_land_in_the_same_fold(mias_root):
    records = {record.image_id: record for record in load_mias(mias_root)}
    folds = patient_folds(list(records.values()), 5)
    fold_of = {patient: k for k, fold in enumerate(folds) for patient in fold}
    assert fold_of[records["mdb001"].patient_id] == fold_of[records["mdb002"].patient_id]


def test_folds_are_reproducible_and_seed_dependent(mias_root):
    records = load_mias(mias_root)
    assert kfold_indices(records, 5, seed=1) == kfold_indices(records, 5, seed=1)
    assert kfold_indices(records, 5, seed=1) != kfold_indices(records, 5, seed=2)


def test_holdout_is_patient_level(folder_dataset):
    from breastapp.ml.datasets.folder import load_folder

    records = load_folder(folder_dataset)
    train, validation = holdout_indices(records, 0.3)
    assert not {records[i].patient_id for i in train} & {records[i].patient_id for i in validation}
    assert len(train) + len(validation) == len(records)
