"""The one-line validation summary and the chance caution every result carries (ml/validation_summary.py)."""

from __future__ import annotations

import pytest

from breastapp.ml.registry import SHIPPED_NAMES, read_card
from breastapp.ml.validation_summary import chance_caution, validation_line
from tests.support.paths import REPO_ROOT


def classifier_card(auc_interval, crop_margin=None) -> dict:
    return {
        "name": "cls",
        "role": "classification",
        "trained": True,
        "input": {"crop_margin": crop_margin},
        "thresholds": {"malignancy": 0.2981},
        "training_data": {"dataset": "busi", "images": 10, "patients": 10, "lesions": 8},
        "split": {"kind": "5-fold cross-validation by patient, stratified by worst label"},
        "metrics": {
            "cross_validation": {
                "pooled_out_of_fold": {
                    "n": 10,
                    "accuracy": 0.8,
                    "malignant_auc": 0.7,
                    "malignant_auc_ci95": list(auc_interval),
                    "sensitivity_at_threshold": 0.9,
                    "specificity_at_threshold": 0.75,
                }
            }
        },
    }


def test_a_classifier_line_gives_its_data_folds_and_figures_at_its_threshold():
    assert validation_line(classifier_card((0.6, 0.8))) == (
        "BUSI, 5-fold cross-validation by patient: 10 images, accuracy 0.800, malignant AUC 0.700 "
        "(95% CI 0.600-0.800); at its threshold 0.298: sensitivity 0.900, specificity 0.750"
    )
    assert ": 10 lesions," in validation_line(classifier_card((0.6, 0.8), crop_margin=0.5))


def test_a_segmentation_line_gives_lesion_sensitivity_at_2_fppi_and_dice():
    card = {
        "name": "seg",
        "role": "segmentation",
        "trained": True,
        "training_data": {"dataset": "mias", "images": 195, "patients": 117, "lesions": 44},
        "split": {"kind": "5-fold cross-validation by patient, stratified by worst label"},
        "metrics": {
            "cross_validation": {
                "summary": {
                    "sensitivity_at_2_fppi": {"mean": 0.6963, "std": 0.06},
                    "mean_lesion_image_dice": {"mean": 0.3081, "std": 0.04},
                }
            }
        },
    }
    assert validation_line(card) == (
        "mini-MIAS, 5-fold cross-validation by patient: 195 images, 44 lesions, lesion sensitivity 0.696 "
        "at 2 false positives per image, mean lesion Dice 0.308"
    )
    assert chance_caution(card) == ""  # the caution is about malignancy rankings only


@pytest.mark.parametrize(
    ("interval", "cautioned"), [((0.51, 0.9), False), ((0.5, 0.9), True), ((0.42, 0.78), True)]
)
def test_a_classifier_is_cautioned_when_its_auc_interval_reaches_chance(interval, cautioned):
    caution = chance_caution(classifier_card(interval))
    assert bool(caution) is cautioned
    if cautioned:
        assert caution.startswith("cls did not separate benign from malignant better than chance")
        assert f"95% CI {interval[0]:.3f}-{interval[1]:.3f}, on 10 images" in caution


def test_untrained_weights_claim_no_figures_and_no_caution():
    card = {**classifier_card((0.4, 0.6)), "trained": False}
    assert validation_line(card) == "" and chance_caution(card) == ""
    assert validation_line({"name": "old", "role": "segmentation", "trained": True}) == ""  # no metrics


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_every_shipped_card_has_a_validation_line_naming_its_dataset(name):
    card = read_card(REPO_ROOT / "models", name)
    line = validation_line(card)
    dataset = {"busi": "BUSI", "mias": "mini-MIAS"}[card["training_data"]["dataset"]]
    assert line.startswith(f"{dataset}, 5-fold cross-validation by patient: ")
    low = card["metrics"]["cross_validation"].get("pooled_out_of_fold", {}).get("malignant_auc_ci95", [1])[0]
    assert bool(chance_caution(card)) is (low <= 0.5)
