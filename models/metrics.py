"""Classification measures for a binary gender model, with abstention and per-group breakdowns.

Conventions: ``y_true`` holds class indices (0 female, 1 male: the label order), ``probs`` is ``N×2``
calibrated probabilities, ``answered`` marks the cases the model did not abstain on. ROC AUC uses the
probability of class 1 as the score. Accuracy, balanced accuracy, F1 and the confusion matrix count every
case by its most likely class (abstention does not hide errors from them); the abstention rate and the
accuracy on answered cases describe the decision rule on top.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

AGE_GROUPS: tuple[tuple[str, float, float], ...] = (
    ("0-12", 0, 13),
    ("13-19", 13, 20),
    ("20-39", 20, 40),
    ("40-59", 40, 60),
    ("60+", 60, float("inf")),
)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: int = 2) -> np.ndarray:
    """``matrix[t, p]`` counts cases of true class ``t`` predicted as ``p``."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return matrix


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if y_true.size else float("nan")


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, classes: int = 2) -> float:
    """Mean recall over the classes present."""
    matrix = confusion_matrix(y_true, y_pred, classes)
    support = matrix.sum(axis=1)
    present = support > 0
    if not present.any():
        return float("nan")
    return float((np.diag(matrix)[present] / support[present]).mean())


def f1_score(y_true: np.ndarray, y_pred: np.ndarray, positive: int = 1) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    tp = int(((y_pred == positive) & (y_true == positive)).sum())
    fp = int(((y_pred == positive) & (y_true != positive)).sum())
    fn = int(((y_pred != positive) & (y_true == positive)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def roc_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-positive rates, true-positive rates and thresholds (descending), ties handled together."""
    y_true, scores = np.asarray(y_true), np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    scores, y_true = scores[order], y_true[order]
    distinct = np.where(np.diff(scores))[0]
    ends = np.r_[distinct, y_true.size - 1]
    tps = np.cumsum(y_true == 1)[ends]
    fps = (ends + 1) - tps
    positives, negatives = max(tps[-1], 1), max(fps[-1], 1) if fps.size else 1
    tpr = np.r_[0.0, tps / positives]
    fpr = np.r_[0.0, fps / negatives]
    return fpr, tpr, np.r_[np.inf, scores[ends]]


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (the probability that a random positive outranks a random negative)."""
    y_true = np.asarray(y_true)
    if y_true.size == 0 or (y_true == 1).all() or (y_true == 0).all():
        return float("nan")
    fpr, tpr, _ = roc_curve(y_true, scores)
    return float(np.trapezoid(tpr, fpr))


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> list[dict[str, float]]:
    """Per confidence bin: count, mean confidence, accuracy (bins over [0.5, 1] for two classes)."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    edges = np.linspace(0.5, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = index == b
        rows.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": int(mask.sum()),
                "confidence": float(confidence[mask].mean()) if mask.any() else float("nan"),
                "accuracy": float(correct[mask].mean()) if mask.any() else float("nan"),
            }
        )
    return rows


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-class confidence: Σ_bins (n_b / N) · |accuracy_b − confidence_b|."""
    probs = np.asarray(probs, float)
    if len(probs) == 0:
        return float("nan")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y_true)
    total = len(probs)
    return float(
        sum(
            row["count"] / total * abs(row["accuracy"] - row["confidence"])
            for row in reliability_bins(confidence, correct, bins)
            if row["count"]
        )
    )


def binary_report(y_true: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, float | int]:
    """The headline measures of one split."""
    y_true, probs = np.asarray(y_true, int), np.asarray(probs, float)
    y_pred = probs.argmax(axis=1)
    answered = probs.max(axis=1) >= threshold
    matrix = confusion_matrix(y_true, y_pred)
    return {
        "n": len(y_true),
        "accuracy": accuracy(y_true, y_pred),
        "balanced_accuracy": balanced_accuracy(y_true, y_pred),
        "f1_male": f1_score(y_true, y_pred, positive=1),
        "roc_auc": roc_auc(y_true, probs[:, 1]) if len(probs) else float("nan"),
        "ece": expected_calibration_error(probs, y_true),
        "abstention_rate": float(1.0 - answered.mean()) if len(y_true) else float("nan"),
        "answered_accuracy": accuracy(y_true[answered], y_pred[answered]),
        "tn_female_as_female": int(matrix[0, 0]),
        "fp_female_as_male": int(matrix[0, 1]),
        "fn_male_as_female": int(matrix[1, 0]),
        "tp_male_as_male": int(matrix[1, 1]),
    }


def age_group(age: float | None) -> str | None:
    if age is None or np.isnan(age):
        return None
    for name, low, high in AGE_GROUPS:
        if low <= age < high:
            return name
    return None


def group_report(
    y_true: np.ndarray,
    probs: np.ndarray,
    groups: Sequence[str | None],
    threshold: float,
    order: Sequence[str] | None = None,
) -> dict[str, dict[str, float | int]]:
    """Per group (cases whose group is ``None`` are left out): n, accuracy, answered accuracy, abstention,
    and the accuracy on each gender (a group's errors can hide in one gender)."""
    y_true, probs = np.asarray(y_true, int), np.asarray(probs, float)
    groups_arr = np.asarray([g if g is not None else "" for g in groups], dtype=object)
    names = list(order) if order else sorted({g for g in groups if g is not None})
    y_pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, int)
    answered = probs.max(axis=1) >= threshold if len(probs) else np.zeros(0, bool)
    table = {}
    for name in names:
        mask = groups_arr == name
        if not mask.any():
            continue
        t, p, a = y_true[mask], y_pred[mask], answered[mask]
        table[name] = {
            "n": int(mask.sum()),
            "accuracy": accuracy(t, p),
            "answered_accuracy": accuracy(t[a], p[a]),
            "abstention_rate": float(1.0 - a.mean()),
            "female_accuracy": accuracy(t[t == 0], p[t == 0]),
            "male_accuracy": accuracy(t[t == 1], p[t == 1]),
        }
    return table


def coverage_curve(y_true: np.ndarray, probs: np.ndarray, thresholds: Sequence[float]) -> list[dict[str, float]]:
    """Coverage (answered fraction) and accuracy on answered cases at each threshold."""
    y_true, probs = np.asarray(y_true, int), np.asarray(probs, float)
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == y_true
    rows = []
    for threshold in thresholds:
        answered = confidence >= threshold
        rows.append(
            {
                "threshold": float(threshold),
                "coverage": float(answered.mean()),
                "answered_accuracy": float(correct[answered].mean()) if answered.any() else float("nan"),
            }
        )
    return rows
