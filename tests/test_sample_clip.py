"""The bundled demo clip: readable by OpenCV, as its ground truth says, small, with provenance, and its
faces found by the shipped face detector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE

SAMPLES = Path(__file__).resolve().parents[1] / "edge" / "samples"
CLIP = SAMPLES / "mall-walkby.mp4"


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads(CLIP.with_suffix(".json").read_text())


def test_clip_is_small_and_matches_its_ground_truth(truth: dict) -> None:
    cv2 = pytest.importorskip("cv2")
    assert CLIP.stat().st_size <= 3.2e6, "the clip ships in every wheel: keep it about 3 MB"
    capture = cv2.VideoCapture(str(CLIP))
    assert capture.isOpened()
    assert capture.get(cv2.CAP_PROP_FRAME_WIDTH) == truth["width"]
    assert capture.get(cv2.CAP_PROP_FRAME_HEIGHT) == truth["height"]
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(truth["fps"])
    frames = 0
    while capture.grab():
        frames += 1
    capture.release()
    assert frames == truth["frames"]
    assert 20 <= truth["duration_s"] <= 40


def test_ground_truth_has_both_genders_and_directions(truth: dict) -> None:
    walkers = truth["walkers"]
    assert truth["people"] == len(walkers) >= 6
    assert {w["gender"] for w in walkers} == {"female", "male"}
    assert {w["direction"] for w in walkers} == {"left_to_right", "right_to_left"}
    for walker in walkers:
        first, last = walker["face_fully_visible_frames"]
        assert 0 <= walker["enter_frame"] < first < last < walker["exit_frame"] < truth["frames"]
    # Empty corridor at both ends, so a looping player never joins the last and the first visit.
    assert min(w["enter_frame"] for w in walkers) > 0
    assert max(w["exit_frame"] for w in walkers) < truth["frames"] - 1


def test_every_source_photograph_is_documented(truth: dict) -> None:
    provenance = (SAMPLES / "PROVENANCE.md").read_text()
    for source in truth["sources"].values():
        assert source["file"] in provenance and source["sha256"] in provenance


@pytest.mark.slow
def test_detector_finds_every_walker_at_its_rendered_size(truth: dict) -> None:
    cv2 = pytest.importorskip("cv2")
    pytest.importorskip("onnxruntime")
    if not (DEFAULT_DETECTOR_BUNDLE / "manifest.json").is_file():
        pytest.fail(f"the face-detector bundle is missing at {DEFAULT_DETECTOR_BUNDLE}")
    from footfall.core.detector import FaceDetector

    detector = FaceDetector(DEFAULT_DETECTOR_BUNDLE, input_width=640, threads=1)
    capture = cv2.VideoCapture(str(CLIP))
    frames = []
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append((index, frame))
        index += 1
    capture.release()
    for walker in truth["walkers"]:
        first, last = walker["face_fully_visible_frames"]
        middle = (first + last) // 2
        detections = detector(frames[middle][1])
        widths = sorted(round(d.width) for d in detections)
        expected = walker["face_width_px"]
        # At mid-crossing, a face of about the rendered width is found (other walkers may be in view too).
        assert any(abs(width - expected) <= 0.25 * expected for width in widths), (
            f"walker {walker['id']} ({expected} px) at frame {middle}: detected widths {widths}"
        )
