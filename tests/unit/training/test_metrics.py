"""Metrics equal hand-computed values on tiny cases."""

from __future__ import annotations

import numpy as np
import pytest

from breastapp.ml.evaluate.classification import (
    auc,
    bootstrap_auc_ci,
    confusion_matrix,
    per_class_report,
    roc_curve,
    sensitivity_specificity,
    threshold_for_sensitivity,
)
from breastapp.ml.evaluate.froc import candidates, froc_curve, match_image, sensitivity_at
from breastapp.ml.evaluate.segmentation import OverlapSums, components, segmentation_table


def _mask(shape, *boxes):
    mask = np.zeros(shape, bool)
    for r0, c0, r1, c1 in boxes:
        mask[r0:r1, c0:c1] = True
    return mask


def test_equation_4_sums_areas_before_dividing():
    # image 1: truth 4 px, prediction 2 of them -> I=2, U=4. image 2: truth 0, prediction 4 px -> I=0, U=4.
    first = (_mask((4, 4), (0, 0, 1, 2)), _mask((4, 4), (0, 0, 2, 2)))
    second = (_mask((4, 4), (2, 2, 4, 4)), _mask((4, 4)))
    table = segmentation_table([first, second])
    assert table["whole_set"]["dice"] == pytest.approx(2 * 2 / (2 + 8))  # 0.4, not the mean of 2/3 and 0
    assert table["whole_set"]["iou"] == pytest.approx(2 / 8)
    # true-positive lesions only: the detected lesion of image 1 against the prediction touching it
    assert table["true_positive_lesions"]["dice"] == pytest.approx(2 * 2 / (2 + 4))
    assert table["true_positive_lesions"]["iou"] == pytest.approx(0.5)


def test_missed_lesions_do_not_enter_the_true_positive_line():
    truth = _mask((10, 10), (0, 0, 2, 2), (6, 6, 8, 8))
    predicted = _mask((10, 10), (0, 0, 2, 2))  # finds the first lesion exactly, misses the second
    table = segmentation_table([(predicted, truth)])
    assert table["true_positive_lesions"]["dice"] == 1.0
    assert table["whole_set"]["dice"] == pytest.approx(2 * 4 / (4 + 8))


def test_a_set_where_no_lesion_was_found_has_no_outline_quality_to_report():
    truth = _mask((10, 10), (0, 0, 2, 2))
    predicted = _mask((10, 10), (6, 6, 8, 8))  # a false positive only
    table = segmentation_table([(predicted, truth)])
    assert np.isnan(table["true_positive_lesions"]["dice"]) and np.isnan(
        table["true_positive_lesions"]["iou"]
    )
    assert table["whole_set"]["dice"] == 0.0


def test_empty_set_is_perfect_agreement():
    sums = OverlapSums()
    sums.add(np.zeros((3, 3), bool), np.zeros((3, 3), bool))
    assert sums.dice == 1.0 and sums.iou == 1.0


def test_froc_counts_hits_false_positives_and_duplicates():
    truth = _mask((20, 20), (2, 2, 8, 8))
    probability = np.zeros((20, 20), np.float32)
    probability[3:5, 3:5] = 0.9  # hits the lesion (centroid inside)
    probability[10:12, 10:12] = 0.6  # false positive
    probability[7, 7] = 0.3  # a second candidate on the lesion: ignored (not a FP)
    found = candidates(probability, 0.1)
    assert sorted(round(c.score, 1) for c in found) == [0.3, 0.6, 0.9]
    matched = match_image(found, components(truth))
    other_image = match_image(candidates(np.where(_mask((20, 20), (0, 0, 2, 2)), 0.5, 0.0), 0.1), [])
    curve = froc_curve([matched, other_image], [1, 0])
    # scores descending: 0.9 hit (sens 1, fp 0), 0.6 FP (1 FP / 2 images), 0.5 FP (2 / 2), 0.3 duplicate
    assert list(curve["sensitivity"]) == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert list(curve["fppi"]) == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert sensitivity_at(curve, (0.25, 1.0)) == {0.25: 1.0, 1.0: 1.0}


def test_froc_candidates_follow_the_engines_region_rule():
    """Specks smaller than the minimum lesion area are no candidates; at most the largest N count."""
    from breastapp.ml.evaluate.scoring import score_segmentation
    from breastapp.ml.lesions import min_region_px

    probability = np.zeros((40, 40), np.float32)
    probability[2:8, 2:8] = 0.9  # 36 px: the lesion
    probability[20:24, 20:24] = 0.8  # 16 px: a false positive the engine shows
    probability[30, 30] = probability[35, 5] = 0.95  # 1-px specks the engine never shows
    smallest = min_region_px(2.0, 8, pixel_mm2=0.16)  # 2 mm² at 0.4 mm per pixel = 12.5 px
    assert smallest == pytest.approx(12.5) and min_region_px(2.0, 8, None) == 8
    assert [c.score for c in candidates(probability, 0.5, smallest)] == pytest.approx([0.9, 0.8])
    assert [c.score for c in candidates(probability, 0.5, 1, max_candidates=1)] == pytest.approx([0.9])
    truth = _mask((40, 40), (0, 0, 10, 10))
    every_speck = score_segmentation([probability], [truth], 0.5, 0.5)["froc"]
    engine_rule = score_segmentation([probability], [truth], 0.5, 0.5, min_area_px=smallest)["froc"]
    assert every_speck["fppi"][-1] == 3.0 and engine_rule["fppi"][-1] == 1.0


def test_roc_and_auc_by_hand():
    labels, scores = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    curve = roc_curve(labels, scores)
    assert list(curve["tpr"]) == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert list(curve["fpr"]) == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert auc(labels, scores) == pytest.approx(0.75)  # 3 of 4 positive/negative pairs ordered right
    assert auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts one half


def test_bootstrap_interval_resamples_patients_and_brackets_the_auc():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 30)
    scores = labels * 0.3 + rng.random(60)
    groups = np.arange(60) // 2  # two images per patient
    low, high, used = bootstrap_auc_ci(labels, scores, groups, n_resamples=300, seed=1)
    assert low < auc(labels, scores) < high and used > 250
    assert (low, high, used) == bootstrap_auc_ci(labels, scores, groups, n_resamples=300, seed=1)


def test_operating_point_and_threshold_rule():
    labels, scores = [0, 0, 1, 1, 1], [0.2, 0.6, 0.3, 0.7, 0.9]
    assert sensitivity_specificity(labels, scores, 0.5) == (pytest.approx(2 / 3), 0.5)
    assert threshold_for_sensitivity(labels, scores, 0.6) == 0.7  # highest threshold with 2 of 3 found
    assert threshold_for_sensitivity(labels, scores, 1.0) == 0.3


def test_confusion_matrix_and_per_class_table():
    classes = ("benign", "malignant", "normal")
    true = ["benign", "benign", "malignant", "normal", "normal"]
    predicted = ["benign", "malignant", "malignant", "normal", "benign"]
    counts = confusion_matrix(true, predicted, classes)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    report = per_class_report(counts, classes)
    assert report["benign"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert report["malignant"]["precision"] == 0.5 and report["malignant"]["recall"] == 1.0
    assert report["malignant"]["f1"] == pytest.approx(2 / 3)
    assert report["accuracy"] == pytest.approx(3 / 5)


def test_fold_summary_ignores_folds_without_a_value():
    from breastapp.ml.train.folds import mean_and_spread

    summary = mean_and_spread([0.5, float("nan"), 0.7])
    assert summary["mean"] == pytest.approx(0.6) and summary["std"] == pytest.approx(0.1)
    assert np.isnan(summary["folds"][1])


def test_operating_points_cut_outlines_and_candidates_at_each_threshold():
    """Hand-computed sweep: a low threshold merges the mass with the tissue beside it and loses the hit."""
    from breastapp.ml.evaluate.scoring import operating_points

    truth = _mask((20, 20), (2, 2, 6, 6))  # a 16-px mass
    probability = np.zeros((20, 20), np.float32)
    probability[2:18, 6:20] = 0.4  # 224 px of tissue touching the mass on its right
    probability[2:6, 2:6] = 0.85  # the mass itself
    low, middle, high = operating_points([probability], [truth], thresholds=(0.3, 0.5, 0.9))
    # 0.3: one 240-px region whose centroid (row ~9, column ~12) lies outside the mass: a false positive
    assert low["sensitivity"] == 0.0 and low["false_positives_per_image"] == 1.0
    assert low["dice_whole_set"] == pytest.approx(2 * 16 / (240 + 16))
    # 0.5: the mass alone, outlined exactly and found
    assert middle == {
        "threshold": 0.5,
        "dice_whole_set": pytest.approx(1.0),
        "mean_lesion_image_dice": pytest.approx(1.0),
        "sensitivity": 1.0,
        "false_positives_per_image": 0.0,
    }
    # 0.9: nothing reported
    assert high["sensitivity"] == 0.0 and high["false_positives_per_image"] == 0.0
    assert high["dice_whole_set"] == 0.0 and high["mean_lesion_image_dice"] == 0.0


def test_lesions_found_by_size_bins_each_lesion_by_its_equivalent_diameter():
    """At 0.4 mm per pixel: a 16-px-wide square is ~7.2 mm across (equal-area circle), a 40-px one ~18 mm;
    only the large one is hit."""
    from breastapp.ml.evaluate.scoring import found_by_size, score_segmentation, size_bin_labels

    truth = _mask((100, 100), (5, 5, 21, 21), (50, 50, 90, 90))
    probability = np.zeros((100, 100), np.float32)
    probability[55:85, 55:85] = 0.9  # on the large lesion only
    scores = score_segmentation(
        [probability, np.zeros((10, 10))], [truth, np.zeros((10, 10), bool)], 0.5, 0.5
    )
    rows = found_by_size(scores["lesion_hits"], 0.4)
    assert (
        [row["label"] for row in rows] == size_bin_labels() == ["< 10 mm", "10-20 mm", "20-30 mm", "≥ 30 mm"]
    )
    assert [(row["lesions"], row["found"]) for row in rows] == [(1, 0), (1, 1), (0, 0), (0, 0)]
    assert 2 * np.sqrt(16 * 16 / np.pi) * 0.4 == pytest.approx(7.2, abs=0.05)


def test_lesions_found_by_group_counts_each_lesion_under_its_images_group():
    """Three images: a dense breast with two lesions (one found), a fatty one with one found lesion, and
    one whose density is not stated (left out of every group)."""
    from breastapp.ml.evaluate.report import found_by_density_table
    from breastapp.ml.evaluate.scoring import found_by_group, score_segmentation

    dense = _mask((40, 40), (2, 2, 8, 8), (20, 20, 28, 28))
    fatty = _mask((40, 40), (10, 10, 18, 18))
    unstated = _mask((40, 40), (30, 30, 36, 36))
    maps = [np.where(_mask((40, 40), (2, 2, 8, 8)), 0.9, 0.0), np.where(fatty, 0.9, 0.0), np.zeros((40, 40))]
    scores = score_segmentation(maps, [dense, fatty, unstated], 0.5, 0.5)
    assert scores["lesion_images"] == [0, 0, 1, 2]
    rows = found_by_group(scores["lesion_hits"], scores["lesion_images"], ["BI-RADS 4", "BI-RADS 1", None])
    assert rows == [
        {"label": "BI-RADS 1", "lesions": 1, "found": 1},
        {"label": "BI-RADS 4", "lesions": 2, "found": 1},
    ]
    table = found_by_density_table({"mg_seg_unet": {"by_density": rows}, "us_seg_unet": {}})
    assert "| weights | BI-RADS 1 | BI-RADS 4 |" in table
    assert "| mg_seg_unet | 1 of 1 | 1 of 2 |" in table
    assert found_by_density_table({"us_seg_unet": {}}) == []  # no density stated: no table


def test_each_missed_lesion_says_how_close_the_network_came_and_why_it_was_missed():
    """Four lesions, one per reason: found, no response, overlapped by a region whose centroid lies
    beside it, and above the threshold only in a speck smaller than the engine reports."""
    from breastapp.ml.evaluate.scoring import NO_RESPONSE, REGION_DROPPED, SPILLED_OVER, score_segmentation

    truth = _mask((100, 100), (5, 5, 15, 15), (5, 40, 15, 50), (40, 5, 50, 15), (40, 40, 50, 50))
    probability = np.zeros((100, 100), np.float32)
    probability[5:15, 5:15] = 0.9  # the first lesion, outlined exactly: found
    probability[5:15, 40:50] = 0.3  # the second: below the threshold everywhere
    probability[40:50, 10:40] = 0.8  # a region over the third's right half and far beyond it
    probability[44:46, 44:46] = 0.95  # the fourth: 4 pixels above the threshold, under the 8-pixel minimum
    scores = score_segmentation([probability], [truth], 0.5, 0.5, min_area_px=8)
    assert scores["lesion_hits"] == [(100, True), (100, False), (100, False), (100, False)]
    missed = [(m["image"], m["lesion"], m["area_px"], m["reason"]) for m in scores["missed"]]
    assert missed == [(0, 1, 100, NO_RESPONSE), (0, 2, 100, SPILLED_OVER), (0, 3, 100, REGION_DROPPED)]
    assert [m["max_probability"] for m in scores["missed"]] == pytest.approx([0.3, 0.8, 0.95])


def test_the_report_lists_missed_lesions_smallest_first_with_their_size_in_mm():
    from breastapp.ml.evaluate.report import missed_lesions_table
    from breastapp.ml.evaluate.scoring import NO_RESPONSE, SPILLED_OVER

    def miss(image_id, area_px, diameter_mm, probability, reason):
        keys = ("image_id", "area_px", "diameter_mm", "max_probability", "reason")
        return dict(zip(keys, (image_id, area_px, diameter_mm, probability, reason), strict=True))

    mammography = [miss("mdb244", 2124, 20.8, 0.99, SPILLED_OVER), miss("mdb080", 314, 8.0, 0.0, NO_RESPONSE)]
    ultrasound = [miss("benign (3)", 900, None, 0.2, NO_RESPONSE)]
    results = {"mg_seg_unet": {"missed": mammography}, "us_seg_unet": {"missed": ultrasound}}
    rows = [line for line in missed_lesions_table(results) if line.startswith("| ") and "---" not in line][1:]
    assert rows == [
        f"| mg_seg_unet | mdb080 | 8.0 mm | 0.00 | {NO_RESPONSE} |",
        f"| mg_seg_unet | mdb244 | 20.8 mm | 0.99 | {SPILLED_OVER} |",
        f"| us_seg_unet | benign (3) | 900 px | 0.20 | {NO_RESPONSE} |",
    ]
    assert "None: every network hit every lesion" in "\n".join(missed_lesions_table({"a": {"missed": []}}))


def _mass_and_three_false_positives():
    """A found mass (0.85) and three blobs of tissue far from it, at probabilities between grid steps."""
    truth = _mask((40, 40), (2, 2, 6, 6))
    probability = np.zeros((40, 40), np.float32)
    probability[2:6, 2:6] = 0.85
    probability[20:24, 2:6] = 0.72
    probability[20:24, 20:24] = 0.52
    probability[2:6, 30:34] = 0.33
    return probability, truth


@pytest.mark.parametrize("budget, expected", [(2.0, 0.35), (1.0, 0.55), (0.0, 0.75)])
def test_budget_rule_takes_the_lowest_threshold_within_the_false_positive_budget(budget, expected):
    from breastapp.ml.train.segmentation import choose_threshold

    probability, truth = _mass_and_three_false_positives()
    # 0.30 keeps all three blobs (3 FP); 0.35 drops the 0.33 blob; 0.55 the 0.52; 0.75 the 0.72
    assert choose_threshold([probability], [truth], fp_budget_per_image=budget) == expected


def test_budget_rule_ignores_regions_smaller_than_the_engine_reports_and_falls_back_to_fewest():
    from breastapp.ml.train.segmentation import choose_threshold

    probability, truth = _mass_and_three_false_positives()
    probability[30, 30] = 0.45  # one pixel: below a 4-px minimum region, the engine never shows it
    assert choose_threshold([probability], [truth], fp_budget_per_image=2.0, min_area_px=4) == 0.35
    assert choose_threshold([probability], [truth], fp_budget_per_image=2.0, min_area_px=1) == 0.45
    probability[30:34, 30:34] = (
        0.99  # a false positive no grid threshold removes: fewest FP, highest threshold
    )
    assert choose_threshold([probability], [truth], fp_budget_per_image=0.0) == 0.95


def test_without_a_budget_the_rule_is_maximum_whole_set_dice():
    from breastapp.ml.train.segmentation import choose_threshold

    probability, truth = _mass_and_three_false_positives()
    # Above 0.72 only the mass is left, outlined exactly (Dice 1); 0.85 itself drops the mass
    assert choose_threshold([probability], [truth]) == 0.75


def _one_lesion_images(found_flags, false_positives):
    """`score_segmentation`-like per-image fields: one lesion per image, found (score 0.9) or not, plus
    `false_positives` false candidates (score 0.5) on every image."""
    matched = [([(0.9, 0)] if found else []) + [(0.5, None)] * false_positives for found in found_flags]
    return {"matched": matched, "lesion_counts": [1] * len(found_flags)}


def test_paired_bootstrap_difference_and_verdicts_by_hand():
    from breastapp.ml.evaluate.compare import (
        BETTER,
        UNCLEAR,
        WORSE,
        compare_networks,
        mean_lesion_image_dice,
        sensitivity_at_fppi,
        verdict,
    )

    groups = np.arange(20) // 2  # 10 patients, two images each
    alone = {**_one_lesion_images([True] * 10 + [False] * 10, 1), "image_dice": [0.5] * 20}
    ensemble = {**_one_lesion_images([True] * 20, 1), "image_dice": [0.6] * 10 + [float("nan")] * 10}
    # by hand: alone finds 10 of 20 lesions, the ensemble 20 of 20, both with 1 FP per image (<= 2 FPPI)
    assert sensitivity_at_fppi(alone["matched"], alone["lesion_counts"], np.arange(20)) == 0.5
    assert sensitivity_at_fppi(ensemble["matched"], ensemble["lesion_counts"], np.arange(20)) == 1.0
    # a patient drawn twice counts twice; images without a lesion have no outline (NaN) and are left out
    assert sensitivity_at_fppi(alone["matched"], alone["lesion_counts"], [0, 0, 19]) == pytest.approx(2 / 3)
    assert mean_lesion_image_dice(ensemble["image_dice"], [0, 15, 15]) == pytest.approx(0.6)
    rows = compare_networks({"net": alone, "ensemble": ensemble}, groups, "ensemble", n_resamples=300)
    detection, outline = rows
    assert (detection["label"], detection["against"]) == ("ensemble", "net")
    assert detection["metric"] == "sensitivity at 2 FPPI"
    assert (detection["a"], detection["b"], detection["difference"]) == (0.5, 1.0, 0.5)
    assert 0 < detection["low"] <= 0.5 <= detection["high"] and detection["verdict"] == BETTER
    assert outline["difference"] == pytest.approx(0.1) and outline["verdict"] == BETTER
    # two networks and their ensemble: the second against the first, then the ensemble against each
    both = compare_networks(
        {"first": ensemble, "second": alone, "mean": alone}, groups, "mean", n_resamples=50
    )
    pairs = [(row["label"], row["against"]) for row in both[::2]]
    assert pairs == [("second", "first"), ("mean", "first"), ("mean", "second")]
    assert both[0]["verdict"] == WORSE and both[0]["difference"] == -0.5
    # against itself every resample's difference is zero, which no interval can call a gain or a loss
    assert [(row["low"], row["high"], row["verdict"]) for row in both[4:]] == [(0.0, 0.0, UNCLEAR)] * 2
    assert (verdict(-0.2, -0.01), verdict(-0.1, 0.1), verdict(0.01, 0.2)) == (WORSE, UNCLEAR, BETTER)
    # the false-positive budget binds: 3 FP per image puts every hit beyond 2 FPPI
    crowded = {"matched": [[(0.4, None)] * 3 + [(0.3, 0)]] * 20, "lesion_counts": [1] * 20}
    assert sensitivity_at_fppi(crowded["matched"], crowded["lesion_counts"], np.arange(20)) == 0.0


def test_report_compares_networks_and_says_whether_the_ensemble_helps():
    from breastapp.ml.evaluate.report import comparison_tables

    row = {"metric": "sensitivity at 2 FPPI", "a": 0.5, "b": 0.6, "difference": 0.1, "low": -0.05}
    rows = [
        {**row, "label": "b_net", "against": "a_net", "high": 0.2, "resamples": 300, "verdict": "x"},
        {**row, "label": "mean", "against": "a_net", "high": 0.2, "resamples": 300, "verdict": "y"},
    ]
    lines = comparison_tables(rows, "mean")
    between = lines.index("### Network against network")
    helps = lines.index("### Does the ensemble help?")
    row_line = "| sensitivity at 2 FPPI | 0.600 | 0.500 | +0.100 (-0.050 to +0.200; 300 resamples) |"
    assert between < lines.index(f"| b_net | a_net {row_line} x |") < helps
    assert helps < lines.index(f"| mean | a_net {row_line} y |")
    assert comparison_tables([], "mean") == []  # one network: nothing to compare
