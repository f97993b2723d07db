"""The bundled demo clip: readable by OpenCV, as its ground truth says, small, with provenance, and its
faces found by the shipped face detector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from footfall.core.bundle import load_bundle
from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE, DEFAULT_GENDER_BUNDLE

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


@pytest.mark.slow
def test_the_demo_camera_counts_the_clips_walkers_once_and_its_entrance_both_ways(truth: dict, tmp_path: Path) -> None:
    """The demo's entrance is near the corridor's left (west) end, walking left is coming in: every walker crosses
    the whole corridor, so those walking left come in, the others go out, and each is one camera visitor
    (the three zones and lines count everyone three times)."""
    pytest.importorskip("cv2")
    pytest.importorskip("onnxruntime")
    from footfall.edge.config import parse_config
    from footfall.edge.offline import process_video

    from footfall.demo import agent_config

    demo = parse_config(agent_config(CLIP, 1883, tmp_path, 60))
    camera = demo.cameras[0].model_copy(update={"loop": False, "realtime": False})
    (entrance,) = [line for line in camera.lines if line.entrance]
    summary = process_video(CLIP, demo.model_copy(update={"cameras": [camera]}), progress=False)
    walking_in = sum(1 for w in truth["walkers"] if w["direction"] == "right_to_left")
    assert summary["people"] == summary["camera_visitors"]["people"] == truth["people"]
    assert summary["entrances"] == {entrance.id: {"in": walking_in, "out": truth["people"] - walking_in}}
    assert all(zone["people"] == truth["people"] for zone in summary["zones"].values())


@pytest.mark.slow
def test_footfall_process_reports_a_corrected_share_whose_interval_holds_the_clips_truth(truth: dict) -> None:
    """Issue #14: the sample clip's counted share leans male (its truth is 5 women of 9); ``footfall process``
    prints the share corrected for the shipped bundle's decision rates beside the raw counts, and its 95 %
    interval contains the truth. The rates come from validation-face clips, never from this clip."""
    pytest.importorskip("cv2")
    pytest.importorskip("onnxruntime")
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "footfall", "process", str(CLIP), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    women = sum(1 for walker in truth["walkers"] if walker["gender"] == "female")
    assert (women, truth["people"]) == (5, 9)
    section = summary["female_share"]
    assert section["why_none"] is None, section  # the shipped bundle carries its decision rates
    shipped = load_bundle(DEFAULT_GENDER_BUNDLE).manifest
    assert section["classifier"] == f"{shipped.name}@{shipped.version}"
    overall = section["camera_visitors"]
    assert overall["people"] == summary["camera_visitors"]["people"] == truth["people"]
    assert overall["low"] <= women / truth["people"] <= overall["high"], overall
    row = next(line for line in result.stderr.splitlines() if line.startswith("camera "))
    assert f"{100 * overall['share']:.1f} % ({100 * overall['low']:.1f}-{100 * overall['high']:.1f} %)" in row
    assert "95 % interval over sampling and the rates' uncertainty" in result.stderr


@pytest.mark.parametrize("floor", ["gender-only", "counts-only"])
def test_footfall_process_keeps_to_the_configs_demographics_floor(
    floor: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `footfall process --out` writes is what the box would send: a config whose floor is 'gender-only'
    writes no age bands (its classifier runs pruned to the gender output), 'counts-only' no gender either. Every
    onnxruntime session is watched: the classifier graphs that ran are the pruned one alone, or none."""
    pytest.importorskip("cv2")
    ort = pytest.importorskip("onnxruntime")
    from footfall.core.wire import AggregateMessage
    from footfall.edge.config import parse_config
    from footfall.edge.offline import process_video

    from footfall.demo import agent_config

    demo = parse_config(agent_config(CLIP, 1883, tmp_path, 60))
    camera = demo.cameras[0].model_copy(update={"loop": False, "realtime": False})
    config = demo.model_copy(update={"cameras": [camera], "demographics": floor})
    ran: set[Path] = set()

    class WatchedSession(ort.InferenceSession):  # type: ignore[misc,name-defined]
        def __init__(self, path: str, *args: object, **kwargs: object) -> None:
            super().__init__(path, *args, **kwargs)
            self.graph = Path(path).resolve()

        def run(self, *args: object, **kwargs: object) -> object:
            ran.add(self.graph)
            return super().run(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", WatchedSession)
    sent: list[AggregateMessage] = []
    summary = process_video(CLIP, config, progress=False, aggregates=sent)
    assert summary["people"] >= 1 and sent
    gender_bundle = config.bundles.gender.resolve()
    classifier_graphs = {graph.name for graph in ran if graph.parent == gender_bundle}
    # The pruned INT8 graph, and its pruned FP32 reference too on a CPU where the INT8 one fails its parity probe.
    pruned = {"model-gender.onnx", "model-gender-fp32.onnx"}
    if floor == "gender-only":
        assert classifier_graphs and classifier_graphs <= pruned, classifier_graphs
    else:
        assert not classifier_graphs, classifier_graphs
    assert any(graph.parent == config.bundles.detector.resolve() for graph in ran), "the detector ran"
    assert all(m.age is None for m in sent), f"{floor}: no age bands leave the box"
    genders = [m.gender for m in sent if m.measure == "passes" and m.people]
    assert genders and all((g is None) == (floor == "counts-only") for g in genders), genders
    assert summary["age_bands"] is None, "the summary estimates no age either"


def test_footfall_process_refuses_a_config_whose_floor_is_off(tmp_path: Path) -> None:
    from footfall.edge.config import ConfigError, parse_config
    from footfall.edge.offline import process_video

    from footfall.demo import agent_config

    config = parse_config(agent_config(CLIP, 1883, tmp_path, 60)).model_copy(update={"demographics": "off"})
    with pytest.raises(ConfigError, match="floor is 'off'"):
        process_video(CLIP, config, progress=False)
