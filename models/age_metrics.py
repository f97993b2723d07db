"""Age head: its band threshold chosen on validation and the figures ``footfall evaluate``
and the model card report (MAE, band accuracy, within one band, children's recall, band confusion).

Everything here works on age *distributions* (rows of probabilities over the ages a bundle's age head stands
for) and true ages in years; bands are :mod:`footfall.core.ages`'.
"""

from __future__ import annotations

import numpy as np
from footfall.core.ages import AGE_BANDS, BAND_LOWER_EDGES, CHILD_BAND, median_ages


def band_matrix(ages: np.ndarray) -> np.ndarray:
    """Units × bands: 1 where an age unit falls in a band (the same sum the edge's classifier does)."""
    bands = np.searchsorted(np.asarray(BAND_LOWER_EDGES, float), np.asarray(ages, float), side="right") - 1
    matrix: np.ndarray = np.eye(len(AGE_BANDS))[np.clip(bands, 0, len(AGE_BANDS) - 1)]
    return matrix


def true_bands(ages_years: np.ndarray) -> np.ndarray:
    """The band index of each true age."""
    edges = np.asarray(BAND_LOWER_EDGES, float)
    result: np.ndarray = np.clip(np.searchsorted(edges, np.asarray(ages_years, float), side="right") - 1, 0, None)
    return result


def choose_band_threshold(
    band_probs: np.ndarray, ages_years: np.ndarray, *, target_accuracy: float, max_abstention: float
) -> float:
    """The lowest top-band probability below which a band decision abstains: answering the most confident
    faces, as many as reach ``target_accuracy`` answered band accuracy, never abstaining on more than
    ``max_abstention`` of them. 0 means never abstain."""
    if len(band_probs) == 0:
        return 0.0
    confidence = band_probs.max(axis=1)
    correct = band_probs.argmax(axis=1) == true_bands(ages_years)
    order = np.argsort(-confidence, kind="mergesort")
    conf_sorted, correct_sorted = confidence[order], correct[order]
    answered = np.cumsum(correct_sorted) / np.arange(1, len(order) + 1)
    min_answered = max(int(np.ceil((1.0 - max_abstention) * len(order))), 1)
    for k in range(len(order), min_answered - 1, -1):
        if k < len(order) and conf_sorted[k] == conf_sorted[k - 1]:
            continue
        if answered[k - 1] >= target_accuracy:
            return 0.0 if k == len(order) else float(conf_sorted[k - 1])
    return 0.0 if min_answered >= len(order) else float(conf_sorted[min_answered - 1])


def age_report(
    age_probs: np.ndarray, ages_years: np.ndarray, grid: np.ndarray, threshold: float, *, keep_points: bool = False
) -> dict:
    """Figures of an age head on faces of known age: MAE of the median age (the estimate), band accuracy of the most
    likely band (every face), within one band, abstention and answered band accuracy under ``threshold``,
    children's recall (true 0-12 whose most likely band is 0-12; and decided 0-12, the threshold applied), and
    the band confusion matrix (rows true);
    ``keep_points`` adds each face's predicted and true years (for the plot)."""
    known = ~np.isnan(np.asarray(ages_years, float))
    probs, truth = np.asarray(age_probs, float)[known], np.asarray(ages_years, float)[known]
    if len(truth) == 0:
        return {"n": 0}
    estimate = median_ages(probs, grid)
    bands = probs @ band_matrix(grid)
    predicted, actual = bands.argmax(axis=1), true_bands(truth)
    answered = bands.max(axis=1) >= threshold
    child = AGE_BANDS.index(CHILD_BAND)
    confusion = np.zeros((len(AGE_BANDS), len(AGE_BANDS)), int)
    np.add.at(confusion, (actual, predicted), 1)
    children = actual == child
    report = {
        "n": len(truth),
        "mae": float(np.abs(estimate - truth).mean()),
        "band_accuracy": float((predicted == actual).mean()),
        "within_one_band": float((np.abs(predicted - actual) <= 1).mean()),
        "band_abstention": float(1.0 - answered.mean()),
        "answered_band_accuracy": float((predicted == actual)[answered].mean()) if answered.any() else float("nan"),
        "children": int(children.sum()),
        "children_recall": float((predicted[children] == child).mean()) if children.any() else float("nan"),
        # The same with the band threshold applied: a child whose band decision abstains is not a 0-12 decision.
        "children_decided_recall": (
            float(((predicted == child) & answered)[children].mean()) if children.any() else float("nan")
        ),
        "band_confusion": confusion.tolist(),
    }
    if keep_points:
        report.update(predicted_years=estimate.round(2).tolist(), true_years=truth.tolist())
    return report
