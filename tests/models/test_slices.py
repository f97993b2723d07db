"""Error slices: attributes of a face, and recall per third of each attribute."""

from __future__ import annotations

import numpy as np
from footfall.models.slices import face_attributes, slice_report


def test_attributes_read_pose_from_landmarks_and_blur_from_the_chip() -> None:
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    blurred = np.full((64, 64, 3), 128, np.uint8)
    frontal = np.array([[20, 25], [44, 25], [32, 38], [24, 50], [40, 50]], float)
    turned = frontal.copy()
    turned[2, 0] = 44  # the nose half an eye distance to the side
    a, b = face_attributes(sharp, frontal), face_attributes(blurred, turned)
    assert a["yaw"] == 0.0 and b["yaw"] == 0.5
    assert a["sharpness"] > 100 * max(b["sharpness"], 1e-9) and b["brightness"] == 128.0
    assert np.isnan(face_attributes(sharp, None)["yaw"])  # no face found: pose unknown


def test_a_slice_where_women_are_lost_shows_its_gap() -> None:
    rng = np.random.default_rng(1)
    n = 600
    y_true = np.arange(n) % 2
    yaw = rng.uniform(0, 0.6, n)
    predicted = y_true.copy()
    lost = (y_true == 0) & (yaw > 0.4)  # women turned away are read as men
    predicted[lost] = 1
    attributes = [{"yaw": y, "sharpness": 50.0 + i, "brightness": 100.0} for i, y in enumerate(yaw)]
    report = slice_report(y_true, predicted, attributes)
    low, _, high = report["yaw"]
    assert low["female_recall"] == 1.0 and high["female_recall"] < 0.1 and high["male_recall"] == 1.0
    assert high["gap_points"] < -90 and sum(row["n"] for row in report["yaw"]) == n
    assert "brightness" in report  # all equal: one third holds them all, still reported
