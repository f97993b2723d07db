"""Error slices: where a gender's faces are lost. Each evaluated face gets measurable attributes (pose from the
detector's landmarks, sharpness and brightness of the chip); faces are cut into thirds of each attribute (the
edges are this split's own terciles, reported with the figures) and every third gets its female and male recall.

The datasets carry no labels for hair, glasses or expression, so those slices cannot be measured here; pose,
blur and light are what a mall camera changes most, and age and race are in the per-group tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# What each attribute is, for reports and cards.
ATTRIBUTES: dict[str, str] = {
    "yaw": "head turn: nose offset from the eyes' midpoint, in eye distances (0 frontal)",
    "sharpness": "variance of the Laplacian of the grey chip (low: blurred)",
    "brightness": "mean grey level of the chip, 0-255",
}


def face_attributes(chip: np.ndarray, landmarks: np.ndarray | None, colour_order: str = "RGB") -> dict[str, float]:
    """The slice attributes of one face: ``chip`` the classifier's uint8 crop (in ``colour_order``),
    ``landmarks`` the detector's five points (eyes, nose, mouth corners) or None when no face was found (yaw
    unknown)."""
    code = cv2.COLOR_RGB2GRAY if colour_order == "RGB" else cv2.COLOR_BGR2GRAY
    grey = cv2.cvtColor(np.ascontiguousarray(chip), code)
    yaw = float("nan")
    if landmarks is not None:
        points = np.asarray(landmarks, float).reshape(5, 2)
        eyes = np.linalg.norm(points[1] - points[0])
        if eyes > 0:
            yaw = float(abs(points[2, 0] - (points[0, 0] + points[1, 0]) / 2) / eyes)
    return {
        "yaw": yaw,
        "sharpness": float(cv2.Laplacian(grey, cv2.CV_64F).var()),
        "brightness": float(grey.mean()),
    }


def slice_report(
    y_true: np.ndarray, predicted: np.ndarray, attributes: Sequence[dict[str, float]]
) -> dict[str, list[dict[str, float | int | str]]]:
    """Per attribute, per third of its values: the range, n, female recall, male recall and their gap (points;
    every face by its most likely label, as the confusion matrix counts)."""
    y_true, predicted = np.asarray(y_true, int), np.asarray(predicted, int)
    report: dict[str, list[dict[str, float | int | str]]] = {}
    for name in ATTRIBUTES:
        values = np.array([a[name] for a in attributes], float)
        known = ~np.isnan(values)
        if known.sum() < 30:
            continue
        edges = np.quantile(values[known], [1 / 3, 2 / 3])
        thirds = np.digitize(values, edges)
        rows = []
        for index, label in enumerate(("low", "middle", "high")):
            rows_mask = known & (thirds == index)
            women, men = rows_mask & (y_true == 0), rows_mask & (y_true == 1)
            female = float((predicted[women] == 0).mean()) if women.any() else float("nan")
            male = float((predicted[men] == 1).mean()) if men.any() else float("nan")
            low = float(values[rows_mask].min()) if rows_mask.any() else float("nan")
            high = float(values[rows_mask].max()) if rows_mask.any() else float("nan")
            rows.append(
                {
                    "third": label,
                    "range": f"{low:.3g}-{high:.3g}",
                    "n": int(rows_mask.sum()),
                    "female_recall": female,
                    "male_recall": male,
                    "gap_points": 100 * (female - male),
                }
            )
        report[name] = rows
    return report
