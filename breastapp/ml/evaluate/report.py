"""report.md for an evaluation folder: what was evaluated, on what, and every figure with its plot."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from breastapp.constants import RESEARCH_BANNER
from breastapp.ml.lesions import MAX_REGIONS


def _fmt(value) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.3f}"  # NaN: nothing to measure (no lesion found)
    return str(value)


def segmentation_section(
    results: dict, examples, comparison: list[dict] | None = None, ensemble: str | None = None
) -> str:
    lines = [
        "## Segmentation",
        "Threshold: each network's own card threshold (an ensemble: its first network's, as the engine "
        "runs it). Candidates for the FROC: connected regions of the probability map above that threshold "
        "inside the lesion search region (mammograms: the "
        "breast without its pectoral muscle), scored by their maximum; as in the engine, regions smaller "
        "than the card's minimum lesion area are dropped and at most the "
        f"{MAX_REGIONS} largest per image count. "
        "A candidate hits a lesion when its centroid lies inside the lesion (one hit per lesion; "
        "extra candidates on a found lesion are ignored; all others are false positives).",
        "",
        "| weights | threshold | images | lesions | Dice whole set | IoU whole set | Dice TP lesions "
        "| IoU TP lesions "
        "| mean lesion-image Dice | sens@0.5 | sens@1 | sens@2 | sens@4 FPPI "
        "| at the threshold: sensitivity | FP per image |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        t, s = r["table"], r["sensitivity_at"]
        lines.append(
            f"| {label} | {r['threshold']:.2f} | {r['images']} | {r['lesions']} "
            f"| {_fmt(t['whole_set']['dice'])} | {_fmt(t['whole_set']['iou'])} "
            f"| {_fmt(t['true_positive_lesions']['dice'])} | {_fmt(t['true_positive_lesions']['iou'])} "
            f"| {_fmt(r['mean_lesion_image_dice'])} | {_fmt(s[0.5])} | {_fmt(s[1.0])} "
            f"| {_fmt(s[2.0])} | {_fmt(s[4.0])} "
            f"| {_fmt(float(r['froc']['sensitivity'][-1]))} | {float(r['froc']['fppi'][-1]):.2f} |"
        )
    lines += [
        "",
        "Whole set / TP lesions: the two lines of seed 003's Table I (equation 4: areas summed over the "
        "set before dividing). At the threshold: every region the engine would report counted, the last "
        "point of the FROC.",
        "",
        "![FROC](froc.png)",
        "",
        *operating_points_table(results),
        "",
        *found_by_size_table(results),
        *found_by_density_table(results),
        *missed_lesions_table(results),
        *comparison_tables(comparison or [], ensemble),
        "### Examples (TP green, FP white, FN red)",
        "",
    ]
    lines += [f"![{name}]({name})" for name in examples]
    return "\n".join(lines)


def operating_points_table(results: dict) -> list[str]:
    """Markdown lines: each network's figures at every swept threshold (scoring.SWEPT_THRESHOLDS)."""
    lines = [
        "### Operating points",
        "",
        "What the engine would report if the card's threshold were another value: outlines and FROC "
        "candidates both cut at that threshold (the FROC above stops at each card's own threshold). "
        "Lowering it adds regions, but a region that grows into the tissue around a lesion can move its "
        "centroid off the lesion, so sensitivity need not rise.",
        "",
        "| weights | threshold | Dice whole set | mean lesion-image Dice | sensitivity | FP per image |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        lines += [
            f"| {label} | {p['threshold']:.2f} | {_fmt(p['dice_whole_set'])} "
            f"| {_fmt(p['mean_lesion_image_dice'])} | {_fmt(p['sensitivity'])} "
            f"| {p['false_positives_per_image']:.2f} |"
            for p in r["operating_points"]
        ]
    return lines


def comparison_tables(rows: list[dict], ensemble: str) -> list[str]:
    """Markdown lines: each network against the first, and whether the ensemble helps (compare.py)."""
    between = [row for row in rows if row["label"] != ensemble]
    of_ensemble = [row for row in rows if row["label"] == ensemble]
    lines = []
    if between:
        lines += [
            "### Network against network",
            "",
            "Each network against the first named (the engine's default when it comes first): the "
            f"difference (network minus first) with its 95% interval. {COMPARISON_METHOD}",
            "",
            *comparison_rows(between),
        ]
    if of_ensemble:
        lines += [
            "### Does the ensemble help?",
            "",
            "The ensemble against each network alone: the difference (ensemble minus alone) with its 95% "
            f"interval. {COMPARISON_METHOD}",
            "",
            *comparison_rows(of_ensemble),
        ]
    return lines


COMPARISON_METHOD = (
    "Both are scored on the same images; the interval comes from resamples of whole patients, drawn the "
    "same for both. Better when the whole interval is above zero, worse when it is below; otherwise these "
    "images cannot tell the two apart."
)


def comparison_rows(rows: list[dict]) -> list[str]:
    lines = [
        "| weights | against | metric | weights' figure | against's figure | difference (95% CI) | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['label']} | {row['against']} | {row['metric']} | {_fmt(row['b'])} | {_fmt(row['a'])} "
            f"| {row['difference']:+.3f} ({row['low']:+.3f} to {row['high']:+.3f}; {row['resamples']} "
            f"resamples) | {row['verdict']} |"
        )
    return lines + [""]


def found_by_size_table(results: dict) -> list[str]:
    """Markdown lines: lesions found at each card's threshold, by lesion diameter (none without a
    physical pixel size)."""
    return _found_by_table(
        results,
        "by_size",
        "### Lesions found, by size",
        "Found at each card's own threshold (the last point of its FROC), by the diameter of the circle "
        "with the lesion's area.",
    )


def found_by_density_table(results: dict) -> list[str]:
    """Markdown lines: lesions found at each card's threshold, by the breast density the dataset states
    (none when it states none)."""
    return _found_by_table(
        results,
        "by_density",
        "### Lesions found, by breast density",
        "Found at each card's own threshold, by the density of the breast the lesion lies in, as the "
        "dataset states it (mini-MIAS: background tissue; CBIS-DDSM: BI-RADS density). Dense tissue hides "
        "masses; a network that finds them only in fatty breasts helps least where readers need it most.",
    )


def _found_by_table(results: dict, key: str, title: str, explanation: str) -> list[str]:
    """One row per network of "found of lesions" per group (`scoring.found_by_size` / `found_by_group`)."""
    grouped = {label: r[key] for label, r in results.items() if key in r}
    if not grouped:
        return []
    groups = [row["label"] for row in next(iter(grouped.values()))]
    lines = [
        title,
        "",
        explanation,
        "",
        "| weights | " + " | ".join(groups) + " |",
        "|---" * (len(groups) + 1) + "|",
    ]
    for label, rows in grouped.items():
        lines.append(
            f"| {label} | " + " | ".join(f"{row['found']} of {row['lesions']}" for row in rows) + " |"
        )
    return lines + [""]


# Rows of the missed-lesions table per network: enough to see a pattern, short enough to read.
MISSED_ROWS = 40


def missed_lesions_table(results: dict) -> list[str]:
    """Markdown lines: every lesion each network missed at its threshold, with the highest probability
    inside it and why (scoring.missed_lesions), smallest first; at most MISSED_ROWS per network."""
    rows = [(label, miss) for label, r in results.items() for miss in r.get("missed", [])]
    if not rows:
        return ["### Lesions missed", "", "None: every network hit every lesion at its threshold.", ""]
    lines = [
        "### Lesions missed",
        "",
        "Each lesion no reported region hit at the network's own threshold, smallest first: the highest "
        "probability inside it says how close the network came, and the reason which remedy applies "
        "(a network that does not respond needs better training or more data; a region that only "
        "overlaps the lesion is lost to the centroid hit rule).",
        "",
        "| weights | image | lesion size | highest probability inside | why missed |",
        "|---|---|---|---|---|",
    ]
    for label in results:
        missed = sorted((miss for name, miss in rows if name == label), key=lambda miss: miss["area_px"])
        for miss in missed[:MISSED_ROWS]:
            size = f"{miss['diameter_mm']:.1f} mm" if miss.get("diameter_mm") else f"{miss['area_px']} px"
            probability = f"{miss['max_probability']:.2f}"
            lines.append(f"| {label} | {miss['image_id']} | {size} | {probability} | {miss['reason']} |")
        if len(missed) > MISSED_ROWS:
            lines.append(f"| {label} | ... and {len(missed) - MISSED_ROWS} more | | | |")
    return lines + [""]


def classification_section(
    report,
    counts,
    classes,
    auc_value,
    interval,
    threshold,
    sensitivity,
    specificity,
    n_cases,
    n_patients,
    threshold_name="the card threshold",
) -> str:
    low, high, used = interval
    lines = [
        "## Classification",
        f"{n_cases} cases from {n_patients} patients. Accuracy {report['accuracy']:.3f}.",
        "",
        f"Malignant vs rest: AUC {auc_value:.3f}, 95% bootstrap CI {low:.3f}-{high:.3f} "
        f"({used} patient resamples). At {threshold_name} {threshold:.3f}: sensitivity {sensitivity:.3f}, "
        f"specificity {specificity:.3f}.",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name in classes:
        row = report[name]
        lines.append(
            f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |"
        )
    lines += ["", "Confusion matrix (rows: true, columns: predicted): " + ", ".join(classes), ""]
    lines += ["| | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(str(v) for v in counts[i]) + " |" for i, name in enumerate(classes)]
    lines += ["", "![ROC](roc.png) ![confusion](confusion.png)"]
    return "\n".join(lines)


def write_report(
    out_dir: Path,
    cards: list[dict],
    dataset: str,
    data: Path,
    body: str,
    curves,
    out_of_fold: bool = False,
    provenance: list[str] | None = None,
) -> Path:
    """report.md: the weights, the data, how far the figures measure generalisation (`provenance`: where
    each network's out-of-fold maps came from), then `body` and the learning curves."""
    lines = [
        f"# Evaluation: {' + '.join(card['name'] for card in cards)} on {dataset}",
        "",
        f"> {RESEARCH_BANNER}",
        "",
        f"Data: `{data}` ({dataset}). Written {datetime.now(UTC).isoformat(timespec='seconds')}.",
        "",
        "| weights | architecture | sha256 | trained on |",
        "|---|---|---|---|",
    ]
    for card in cards:
        trained_on = (card.get("training_data") or {}).get("dataset", "?")
        lines.append(f"| {card['name']} | {card['architecture']} | {card['sha256'][:12]} | {trained_on} |")
    caveat = (
        "Scored on the cross-validation's out-of-fold predictions: every image by the fold that did not "
        "train on it (not by the shipped final weights, which have seen every image)."
        if out_of_fold
        else "If the evaluation data overlaps the training data, these figures are NOT a measure of "
        "generalisation: the card's cross-validated metrics are."
    )
    lines += ["", caveat, ""]
    if provenance:
        lines += [*provenance, ""]
    lines += [body]
    if curves:
        lines += ["", "## Learning curves", ""] + [f"![{name}]({name})" for name in curves]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
