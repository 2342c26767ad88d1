"""Patient-level splits and k-fold cross-validation.

Images of one patient (both breasts, CC and MLO views, several ultrasound frames) are strongly
correlated; splitting by image lets a network meet the test patient during training (the leakage the
B-Cir U-Net seed warns about). Every split here assigns whole patients, stratified by the patient's
worst label so that each fold sees malignant, benign and normal cases.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .records import ImageRecord, worst_pathology

LABEL_ORDER = ("malignant", "benign", "normal")


def patients_by_label(records: Sequence[ImageRecord]) -> dict[str, list[str]]:
    """Patients grouped by their worst image label (sorted for reproducibility)."""
    labels: dict[str, list[str]] = {}
    for record in records:
        labels.setdefault(record.patient_id, []).append(record.label)
    grouped: dict[str, list[str]] = {}
    for patient, patient_labels in sorted(labels.items()):
        grouped.setdefault(worst_pathology(patient_labels), []).append(patient)
    return grouped


def patient_folds(records: Sequence[ImageRecord], k: int, seed: int = 0) -> list[set[str]]:
    """k disjoint sets of patients covering every patient, each label dealt round-robin after a shuffle."""
    if k < 2:
        raise ValueError("k-fold cross-validation needs k >= 2")
    rng = np.random.default_rng(seed)
    folds: list[set[str]] = [set() for _ in range(k)]
    offset = 0
    grouped = patients_by_label(records)
    for label in sorted(grouped, key=_label_rank):
        patients = grouped[label]
        order = rng.permutation(len(patients))
        for position, index in enumerate(order):
            folds[(position + offset) % k].add(patients[index])
        offset += len(patients)  # continue the deal where the last label stopped: balanced sizes
    return folds


def kfold_indices(records: Sequence[ImageRecord], k: int, seed: int = 0) -> list[tuple[list[int], list[int]]]:
    """(train indices, validation indices) into `records` for each of k patient-level folds."""
    splits = []
    for fold in patient_folds(records, k, seed):
        validation = [i for i, record in enumerate(records) if record.patient_id in fold]
        train = [i for i, record in enumerate(records) if record.patient_id not in fold]
        splits.append((train, validation))
    return splits


def holdout_indices(
    records: Sequence[ImageRecord], validation_fraction: float = 0.2, seed: int = 0
) -> tuple[list[int], list[int]]:
    """One patient-level train/validation split (for early stopping of the final fit)."""
    k = max(2, round(1 / validation_fraction))
    return kfold_indices(records, k, seed)[0]


def _label_rank(label: str) -> int:
    return LABEL_ORDER.index(label) if label in LABEL_ORDER else len(LABEL_ORDER)
