"""PNG plots for evaluation reports (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_froc(curves: dict[str, dict], path: Path, fppi_points=(0.5, 1, 2, 4)) -> None:
    """FROC curves (one per label) with the report's FPPI points marked."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5, 4))
    for label, curve in curves.items():
        axis.step(curve["fppi"], curve["sensitivity"], where="post", label=label)
    for point in fppi_points:
        axis.axvline(point, color="grey", linewidth=0.5, linestyle=":")
    axis.set_xlim(0, max(fppi_points) * 1.5)
    axis.set_ylim(0, 1.02)
    axis.set_xlabel("false positives per image")
    axis.set_ylabel("lesion sensitivity")
    axis.set_title("FROC")
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_roc(curve: dict, auc_value: float, interval, path: Path, title: str = "malignant vs rest") -> None:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.plot(
        curve["fpr"], curve["tpr"], label=f"AUC {auc_value:.3f} (95% CI {interval[0]:.2f}-{interval[1]:.2f})"
    )
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":")
    axis.set_xlabel("1 - specificity")
    axis.set_ylabel("sensitivity")
    axis.set_title(f"ROC, {title}")
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_confusion(counts: np.ndarray, classes, path: Path) -> None:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(1.4 * len(classes) + 1.5, 1.2 * len(classes) + 1.2))
    axis.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        axis.text(j, i, str(value), ha="center", va="center", color="black")
    axis.set_xticks(range(len(classes)), classes)
    axis.set_yticks(range(len(classes)), classes)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
