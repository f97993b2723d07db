"""PNG plots of an evaluation report: confusion matrix, ROC, reliability diagram, per-group accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def write_plots(report: dict[str, Any], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    title = Path(report["csv"]).stem + (f" [{report['split']}]" if report.get("split") else "")

    fig, ax = plt.subplots(figsize=(4, 3.6))
    matrix = np.asarray(report["confusion_matrix"])
    ax.imshow(matrix, cmap="Blues")
    labels = report["labels"]
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (row, col), value in np.ndenumerate(matrix):
        ax.text(
            col,
            row,
            str(value),
            ha="center",
            va="center",
            color="white" if value > matrix.max() / 2 else "black",
        )
    ax.set_title(f"confusion matrix, {title}", fontsize=9)
    written.append(_save(fig, folder / "confusion_matrix.png"))

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(report["roc"]["fpr"], report["roc"]["tpr"], label=f"AUC {report['metrics']['roc_auc']:.4f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    ax.set_xlabel("false positive rate (female called male)")
    ax.set_ylabel("true positive rate (male called male)")
    ax.legend(loc="lower right")
    ax.set_title(f"ROC, {title}", fontsize=9)
    written.append(_save(fig, folder / "roc.png"))

    fig, ax = plt.subplots(figsize=(4, 4))
    bins = [b for b in report["reliability"] if b["count"]]
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    width = bins[0]["high"] - bins[0]["low"] if bins else 0.03
    ax.bar(centres, [b["accuracy"] for b in bins], width=width * 0.9, label="accuracy", alpha=0.8)
    ax.plot([0.5, 1], [0.5, 1], "--", color="grey", linewidth=0.8, label="perfect calibration")
    ax.set_xlim(0.5, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left")
    ax.set_title(f"reliability, ECE {report['metrics']['ece']:.4f}, {title}", fontsize=9)
    written.append(_save(fig, folder / "reliability.png"))

    for key, name in (("by_race", "race"), ("by_age", "age")):
        if key not in report:
            continue
        table = report[key]
        groups = list(table)
        x = np.arange(len(groups))
        fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(groups) + 1.5), 3.6))
        ax.bar(x - 0.2, [100 * table[g]["accuracy"] for g in groups], 0.4, label="accuracy (all)")
        ax.bar(x + 0.2, [100 * table[g]["answered_accuracy"] for g in groups], 0.4, label="accuracy (answered)")
        for i, g in enumerate(groups):
            ax.text(
                i,
                51,
                f"n={table[g]['n']}\nabst {100 * table[g]['abstention_rate']:.0f}%",
                ha="center",
                fontsize=7,
            )
        ax.set_xticks(x, groups)
        ax.set_ylim(50, 110)
        ax.set_yticks(range(50, 101, 10))
        ax.set_ylabel("%")
        ax.legend(loc="upper center", fontsize=8, ncol=2, frameon=False)
        ax.set_title(f"accuracy per {name} group, {title}", fontsize=9)
        written.append(_save(fig, folder / f"per_{name}.png"))
    if report.get("age", {}).get("n"):
        written += _age_plots(report["age"], title, folder)
    return written


def _age_plots(age: dict[str, Any], title: str, folder: Path) -> list[Path]:
    """Predicted against true age (each face, with the bands' edges), and the band confusion matrix."""
    import matplotlib.pyplot as plt
    from footfall.core.ages import AGE_BANDS, BAND_LOWER_EDGES

    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.scatter(age["true_years"], age["predicted_years"], s=4, alpha=0.35, linewidths=0)
    ax.plot([0, 100], [0, 100], "--", color="grey", linewidth=0.8, label="perfect")
    for edge in BAND_LOWER_EDGES[1:]:
        ax.axhline(edge, color="#ddd", linewidth=0.6, zorder=0)
        ax.axvline(edge, color="#ddd", linewidth=0.6, zorder=0)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 85)
    ax.set_xlabel("true age (years)")
    ax.set_ylabel("predicted age (expected, years)")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"age, MAE {age['mae']:.2f} years, {title}", fontsize=9)
    written = [_save(fig, folder / "age_scatter.png")]

    matrix = np.asarray(age["band_confusion"], float)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(AGE_BANDS)):
        for j in range(len(AGE_BANDS)):
            if matrix[i, j]:
                ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=6,
                        color="white" if shares[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_xticks(range(len(AGE_BANDS)), AGE_BANDS, rotation=45, fontsize=7)
    ax.set_yticks(range(len(AGE_BANDS)), AGE_BANDS, fontsize=7)
    ax.set_xlabel("most likely band")
    ax.set_ylabel("true band")
    ax.set_title(f"age bands (row shares), {title}", fontsize=9)
    written.append(_save(fig, folder / "age_bands.png"))
    return written


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
