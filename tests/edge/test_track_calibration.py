"""bench/calibrate_tracks.py: per-label track thresholds chosen on clips of validation faces, written into a
bundle that the edge then loads and decides with."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from footfall.core.classifier import GenderClassifier
from footfall.core.manifest import MANIFEST_FILE

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "calibrate_tracks.py"


def test_calibration_writes_thresholds_the_edge_decides_with(
    data_dir: Path, detector_bundle: Path, gender_bundle: Path, tmp_path: Path
) -> None:
    bundle = shutil.copytree(gender_bundle, tmp_path / "gender")
    args = ["--data", str(data_dir), "--gender", str(bundle), "--detector", str(detector_bundle)]
    # Run as a user runs it (a script of bench/, not a module of the package).
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--clips", "1", "--people", "10", "--seed", "901", "--write"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["people_classified"] >= 6
    written = json.loads((bundle / MANIFEST_FILE).read_text())["classifier"]["track_thresholds"]
    assert set(written) == {"female", "male"} and all(0.5 <= t < 1 for t in written.values())
    assert report["balanced"]["thresholds"] == written
    rates = json.loads((bundle / MANIFEST_FILE).read_text())["classifier"]["decision_rates"]
    assert rates["counts"] == report["decision_rates"]
    # Everyone matched to a true person is in the rates: people never classified count as unknown, as the edge
    # decides them.
    never = report["people_never_classified"]
    assert sum(sum(row.values()) for row in rates["counts"].values()) == report["people_classified"] + sum(
        never.values()
    )
    assert all(rates["counts"][label]["unknown"] >= people for label, people in never.items())
    classifier = GenderClassifier(bundle)  # hashes and schema still pass the edge's checks
    for index, label in enumerate(["female", "male"]):
        above = np.full((1, 2), 1 - written[label])
        above[0, index] = written[label]
        assert classifier.decide(above, per_track=True)[0].label == label
        if written[label] > 0.51:
            below = np.full((1, 2), 1 - written[label] + 0.01)
            below[0, index] = written[label] - 0.01
            assert classifier.decide(below, per_track=True)[0].label == "unknown"


def test_calibration_refuses_what_it_could_not_finish_before_rendering_a_clip(tmp_path: Path) -> None:
    """A --people-json that cannot be written failed after the whole run (40 minutes at --clips 96) and lost it;
    --clips 0 divided by zero."""
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for args, words in (
        (["--people-json", str(a_file / "people.json")], "cannot write here"),
        (["--clips", "0"], "0 is less than 1"),
        (["--people", "many"], "'many' is not a whole number"),
        (["--gender", str(tmp_path / "missing")], "bundle folder not found"),
    ):
        result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and words in result.stderr, (args, result.stderr[-2000:])
        assert "Traceback" not in result.stderr
