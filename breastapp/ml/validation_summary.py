"""How good a network was when it was validated, in one line a radiologist reads next to its result.

Read from the weights' model card (its cross-validated figures, `metrics.cross_validation`), so every
result carries the evidence behind the network that produced it, and a caution when that evidence does
not show the network beating chance. Plain text only: no TensorFlow, Flask or SQL here.
"""

from __future__ import annotations

DATASET_NAMES = {"busi": "BUSI", "mias": "mini-MIAS", "cbis": "CBIS-DDSM", "folder": "a local dataset"}
CHANCE_AUC = 0.5


def validation_line(card: dict) -> str:
    """One line: the data the weights were cross-validated on and their headline figures at the card's
    operating point; "" for weights without cross-validated figures (untrained, or an older card)."""
    cv = card.get("metrics", {}).get("cross_validation")
    if not card.get("trained", False) or not cv:
        return ""
    data = card.get("training_data", {})
    folds = card.get("split", {}).get("kind", "").split("-fold")[0]
    where = (
        f"{DATASET_NAMES.get(data.get('dataset'), data.get('dataset', 'unknown data'))}, "
        f"{folds}-fold cross-validation by patient"
    )
    if card["role"] == "classification":
        return f"{where}: {_classification_figures(card, cv)}"
    return f"{where}: {_segmentation_figures(card, cv)}"


def _classification_figures(card: dict, cv: dict) -> str:
    pooled = cv["pooled_out_of_fold"]
    low, high = pooled["malignant_auc_ci95"]
    threshold = card["thresholds"]["malignancy"]
    return (
        f"{pooled['n']} {_examples_unit(card)}, accuracy {pooled['accuracy']:.3f}, "
        f"malignant AUC {pooled['malignant_auc']:.3f} (95% CI {low:.3f}-{high:.3f}); at its threshold "
        f"{threshold:.3f}: sensitivity {pooled['sensitivity_at_threshold']:.3f}, specificity "
        f"{pooled['specificity_at_threshold']:.3f}"
    )


def _examples_unit(card: dict) -> str:
    """What a classifier's examples are: lesion crops (mammography) or whole images (ultrasound)."""
    return "lesions" if card.get("input", {}).get("crop_margin") is not None else "images"


def _segmentation_figures(card: dict, cv: dict) -> str:
    summary = cv["summary"]
    data = card.get("training_data", {})
    return (
        f"{data.get('images')} images, {data.get('lesions')} lesions, lesion sensitivity "
        f"{summary['sensitivity_at_2_fppi']['mean']:.3f} at 2 false positives per image, mean lesion "
        f"Dice {summary['mean_lesion_image_dice']['mean']:.3f}"
    )


def chance_caution(card: dict) -> str:
    """A warning for a classifier whose malignancy ranking was not shown to beat chance (the 95% interval
    of its cross-validated AUC reaches 0.5): its benign/malignant labels are then unvalidated, and the
    reader must be told so beside them, not only in models/README.md. "" otherwise."""
    if card.get("role") != "classification" or not card.get("trained", False):
        return ""
    pooled = card.get("metrics", {}).get("cross_validation", {}).get("pooled_out_of_fold")
    if not pooled:
        return ""
    low, high = pooled["malignant_auc_ci95"]
    if low > CHANCE_AUC:
        return ""
    return (
        f"{card['name']} did not separate benign from malignant better than chance when it was validated "
        f"(malignant AUC {pooled['malignant_auc']:.3f}, 95% CI {low:.3f}-{high:.3f}, on {pooled['n']} "
        f"{_examples_unit(card)}): treat its benign/malignant labels and malignancy probabilities as "
        "unvalidated"
    )
