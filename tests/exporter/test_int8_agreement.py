"""bench/int8_agreement.py: which stage (INT8 detector, INT8 classifier) flips which gender answers against the
all-FP32 pipeline, and how far the INT8 detector moves the face (issue #13's decomposition)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from footfall.models.chips import FaceBoxes

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "int8_agreement.py"


def _bench():
    spec = importlib.util.spec_from_file_location("int8_agreement", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["int8_agreement"] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def _faces(*shifts: float | None) -> FaceBoxes:
    """Detections as footfall.models.chips.detect_boxes keeps them: eyes 40 px apart, every landmark and box
    corner moved by the shift in pixels; None: no face found (NaN landmarks)."""
    points = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], np.float32)
    boxes = np.array([[10 + (dx or 0), 10 + (dx or 0), 90 + (dx or 0), 110 + (dx or 0)] for dx in shifts], np.float32)
    marks = np.stack([points + dx if dx is not None else np.full_like(points, np.nan) for dx in shifts])
    found = np.array([dx is not None for dx in shifts])
    return FaceBoxes(boxes, marks, found.astype(np.int16), np.ones(len(shifts), bool))


def test_disagreement_separates_decided_from_boundary_faces() -> None:
    bench = _bench()
    reference = np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.7, 0.3]])
    candidate = np.array([[0.4, 0.6], [0.45, 0.55], [0.3, 0.7], [0.8, 0.2]])
    truth = np.array([0, 1, 1, 0])
    figures = bench.disagreement(reference, candidate, truth, threshold=0.8)
    # Two faces flip: one the FP32 pipeline decided (0.9 ≥ 0.8), one on the boundary (0.55 < 0.6).
    assert figures["flipped"] == 2
    assert figures["flipped_decided_in_fp32"] == 1
    assert figures["flipped_on_boundary"] == 1
    # Reference right on 3 of 4 (face 1 wrong), candidate right on 3 of 4 (face 0 wrong): no net change.
    assert figures["accuracy_points"] == 0.0


def test_lean_is_the_mean_logit_shift_with_its_standard_error() -> None:
    bench = _bench()
    reference = np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    # Every face moved towards the first label by the same log-odds: a lean of log(3) with no spread.
    candidate = np.array([[0.75, 0.25]] * 3)
    figures = bench.disagreement(reference, candidate, np.array([0, 1, 0]), threshold=0.8)
    assert figures["lean_logit"] == pytest.approx(np.log(3), abs=1e-4) and figures["lean_logit_sem"] == 0.0
    # Moves that cancel out: no lean, and a standard error that says how sure that is.
    candidate = np.array([[0.75, 0.25], [0.25, 0.75], [0.5, 0.5]])
    figures = bench.disagreement(reference, candidate, np.array([0, 1, 0]), threshold=0.8)
    assert figures["lean_logit"] == pytest.approx(0.0, abs=1e-4)
    assert figures["lean_logit_sem"] == pytest.approx(np.log(3) / np.sqrt(3), abs=1e-4)


def test_grey_noise_moves_each_pixel_by_at_most_one_level_the_same_on_every_read(tmp_path: Path) -> None:
    import cv2

    bench = _bench()
    image = np.full((20, 20, 3), 128, np.uint8)
    image[0, 0] = (0, 255, 0)  # the ends stay in range
    assert cv2.imwrite(str(tmp_path / "face.png"), image)
    source = bench.GreyNoiseSource(tmp_path)
    first, again = source.read_bgr("face.png"), source.read_bgr("face.png")
    assert first is not None and again is not None and np.array_equal(first, again)
    change = first.astype(int) - image.astype(int)
    assert np.abs(change).max() == 1 and (change != 0).mean() > 0.5
    assert first.min() >= 0 and first.max() <= 255


def test_drift_is_in_eye_distances_and_skips_faces_one_side_missed() -> None:
    bench = _bench()
    figures = bench.drift(_faces(0.0, 0.0, None), _faces(4.0, 2.0, 0.0))
    assert figures["faces"] == 2
    # 4 px and 2 px against eyes 40 px apart: 0.1 and 0.05 eye distances, median 0.075.
    assert figures["landmarks_median"] == pytest.approx(0.075)
    assert figures["box_median"] == pytest.approx(0.075)


def test_bench_runs_on_the_shipped_bundles(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "agreement.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(data_dir), "--limit", "12", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["cpu"] in result.stdout and report["split"] == "val"
    assert set(report["datasets"]) == {"utkface-112", "wiki-144"}
    for row in report["datasets"].values():
        assert row["images"] == 12
        for pipeline in ("int8_detector", "int8_classifier", "both_int8", "fp32_grey_noise"):
            cell = row[pipeline]
            assert 0 <= cell["flipped_decided_in_fp32"] <= cell["flipped"] <= 12
            assert 0 <= cell["flipped_on_boundary"] <= cell["flipped"]
            # No pipeline leans by a tenth of a logit (measured: under 0.01 on the full val splits).
            assert abs(cell["lean_logit"]) < 0.1 and cell["lean_logit_sem"] >= 0
        # The INT8 detector finds the FP32 detector's face and moves its landmarks by a few hundredths of the eye
        # distance (median 0.023 / 0.025 on the full val splits); 0.15 leaves room for any CPU's rounding.
        assert row["detector_drift"]["faces"] >= 10
        assert row["detector_drift"]["landmarks_median"] < 0.15


def test_bench_refuses_a_bad_limit(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--limit", "0"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--limit must be at least 1" in result.stderr
