"""``footfall doctor``: what a box would serve, checked on this CPU, in one command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from footfall.core.paths import DEFAULT_GENDER_BUNDLE

from tests.edge.conftest import SilentStream, agent_yaml
from tests.edge.standin import build_standin_gender_bundle
from tests.int8_faults import broken_int8_copy, corrupt_model_copy, unloadable_int8_copy


def doctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "footfall", "doctor", *args], capture_output=True, text=True, timeout=300
    )


def test_shipped_bundles_serve_int8_and_report_cpu_and_latency() -> None:
    result = doctor("--json", "--threads", "1")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["healthy"] is True and report["onnxruntime"]
    assert report["cpu"]["arch"] and isinstance(report["cpu"]["flags"], list)
    served = {b["task"]: b for b in report["bundles"]}
    for task in ("face-detection", "gender-classification"):
        assert (served[task]["precision"], served[task]["parity"]) == ("int8", "passed")
        assert served[task]["probe_error"] <= served[task]["tolerance"]
        assert all(ms > 0 for ms in served[task]["latency_ms"].values())
    # The shipped classifier estimates age too: the doctor says so, and what it is read as.
    age = served["gender-classification"]["estimates"]["age"]
    assert age["bands"][0] == "0-12" and age["bands"][-1] == "65+" and 0 < age["person_band_threshold"] < 1
    assert age["gender_only_graph"] is True, "a gender-only site runs the shipped bundle's pruned graph"
    assert {"face_batch16", "face_batch16_gender_only"} <= set(served["gender-classification"]["latency_ms"])
    assert "estimates" not in served["face-detection"]
    text = doctor("--threads", "1")
    assert text.returncode == 0 and "serves INT8" in text.stdout and "ok: every bundle serves as shipped" in text.stdout
    assert "estimates  gender (female, male); age 0-80+ years in bands 0-12 … 65+" in text.stdout
    assert "a 'gender-only' site runs the graph pruned to its gender output" in text.stdout
    assert "parity     gender-only graph passed" in text.stdout
    assert served["gender-classification"]["gender_only"]["parity"] == "passed"
    assert "(CPUExecutionProvider, 1 thread)" in text.stdout


def test_int8_that_strays_is_reported_with_the_precision_it_would_serve(tmp_path: Path) -> None:
    broken = broken_int8_copy(DEFAULT_GENDER_BUNDLE, tmp_path / "gender")
    result = doctor("--gender", str(broken), "--threads", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "parity     FAILED" in result.stdout and "serves FP32" in result.stdout
    assert "attention" in result.stdout.splitlines()[-1]


def test_a_pruned_graph_that_strays_alone_is_reported_too(tmp_path: Path) -> None:
    """A 'gender-only' site serves the graph pruned to the gender output, with a parity probe run of its own: it
    may stray where the whole graph does not, and the box is not healthy then."""
    broken = broken_int8_copy(DEFAULT_GENDER_BUNDLE, tmp_path / "gender", pruned_only=True)
    result = doctor("--gender", str(broken), "--threads", "1", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    served = {b["task"]: b for b in json.loads(result.stdout)["bundles"]}["gender-classification"]
    assert (served["precision"], served["parity"]) == ("int8", "passed"), "the whole graph is fine"
    assert (served["gender_only"]["precision"], served["gender_only"]["parity"]) == ("fp32", "failed")
    text = doctor("--gender", str(broken), "--threads", "1")
    assert "parity     gender-only graph FAILED" in text.stdout and "serves FP32" in text.stdout, text.stdout
    assert "attention" in text.stdout.splitlines()[-1]


def test_a_probe_that_cannot_run_is_reported_not_a_traceback(tmp_path: Path) -> None:
    """Found by attack: a bundle whose parity probe is unreadable (a damaged probe.npz, its hash rewritten) made
    doctor, the command that exists to report such a box, end in 'TypeError: unsupported format string passed to
    NoneType.__format__'. The edge serves FP32 then, and doctor says so and why."""
    from tests.int8_faults import rehash

    copy = tmp_path / "gender"
    shutil.copytree(DEFAULT_GENDER_BUNDLE, copy)
    (copy / "probe.npz").write_bytes(b"not a probe")
    rehash(copy)
    result = doctor("--gender", str(copy), "--threads", "1")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stdout + result.stderr
    assert "parity     FAILED: the probe could not run (" in result.stdout and "serves FP32" in result.stdout


def test_int8_this_onnxruntime_cannot_load_is_reported_with_the_fp32_it_would_serve(tmp_path: Path) -> None:
    """Found in review: an INT8 graph naming an operator this onnxruntime lacks made doctor print one error line
    and nothing else (nothing at all on stdout with --json). The agent serves the FP32 reference then, and doctor
    says so in the bundle's section."""
    bundle = unloadable_int8_copy(DEFAULT_GENDER_BUNDLE, tmp_path / "gender")
    result = doctor("--gender", str(bundle), "--threads", "1", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    served = {b["task"]: b for b in report["bundles"]}
    gender = served["gender-classification"]
    assert (gender["precision"], gender["parity"], gender["probe_error"]) == ("fp32", "failed", None), gender
    assert "No Op registered for QuantizeLinearV2" in gender["reason"] and gender["latency_ms"]
    assert (served["face-detection"]["precision"], served["face-detection"]["parity"]) == ("int8", "passed")
    assert report["cpu"]["arch"] and report["onnxruntime"] and report["healthy"] is False


def test_a_bundle_that_cannot_be_served_is_reported_in_its_own_section(tmp_path: Path) -> None:
    """A bundle no graph of which can be served (here its model cut in half, the hashes rewritten to match): the
    agent would not start. Doctor says so in that bundle's section and inside its JSON, still checks everything
    else, prints one error line on stderr and exits 2."""
    bundle = corrupt_model_copy(DEFAULT_GENDER_BUNDLE, tmp_path / "gender")
    result = doctor("--gender", str(bundle), "--threads", "1", "--json")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.onnx: onnxruntime cannot load it" in lines[0], result.stderr
    report = json.loads(result.stdout)
    assert report["cpu"]["arch"] and report["onnxruntime"] and report["healthy"] is False
    detector, gender = report["bundles"]
    assert (detector["task"], detector["precision"], detector["parity"]) == ("face-detection", "int8", "passed")
    assert detector["latency_ms"]
    assert (gender["path"], gender["task"]) == (str(bundle), "gender-classification"), gender
    assert "model.onnx: onnxruntime cannot load it" in gender["error"] and "precision" not in gender
    text = doctor("--gender", str(bundle), "--threads", "1")
    assert text.returncode == 2 and "Traceback" not in text.stderr, text.stdout + text.stderr
    out = text.stdout.splitlines()
    assert out[0].startswith("cpu ") and any(line.startswith("onnxruntime ") for line in out), text.stdout
    assert any(line.startswith("bundle       face-detector-centerface") for line in out), text.stdout
    at = out.index(f"bundle       gender-classification at {bundle}")
    assert out[at + 1].startswith("  ERROR      cannot be served: ") and "cannot load it" in out[at + 1], text.stdout
    assert "attention" in out[-1]


def test_corrupt_bundle_is_one_line(tmp_path: Path) -> None:
    broken = broken_int8_copy(DEFAULT_GENDER_BUNDLE, tmp_path / "gender")
    model = broken / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    result = doctor("--gender", str(broken))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'model.onnx' does not match its sha256" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_camera_of_a_config_is_named(tmp_path: Path, detector_bundle: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        agent_yaml(
            tmp_path / "no-such-clip.mp4",
            {},
            outbox=tmp_path / "outbox.sqlite",
            port=1883,
            detector=detector_bundle,
            gender=DEFAULT_GENDER_BUNDLE,
        )
    )
    result = doctor("--config", str(config), "--threads", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    camera = next(line for line in result.stdout.splitlines() if line.startswith("camera"))
    assert "cam1" in camera and "UNREACHABLE" in camera


def test_a_config_the_agent_would_refuse_is_a_section_and_the_rest_is_still_checked(
    tmp_path: Path, detector_bundle: Path
) -> None:
    """Review: with a config it could not read, ``doctor --json`` printed nothing and checked nothing; a config whose
    MQTT password variable is not set passed doctor ("ok") while ``agent --check-config`` refused it."""
    clip = tmp_path / "clip.mp4"
    yaml = agent_yaml(
        clip, {}, outbox=tmp_path / "outbox.sqlite", port=1883, detector=detector_bundle, gender=DEFAULT_GENDER_BUNDLE
    )
    unset = tmp_path / "unset.yaml"
    unset.write_text(yaml.replace("heartbeat_seconds", "password_env: FOOTFALL_DOCTOR_TEST_UNSET, heartbeat_seconds"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("agent_id: [unclosed\n")
    for config, words in ((unset, "FOOTFALL_DOCTOR_TEST_UNSET is not set"), (broken, str(broken))):
        result = doctor("--config", str(config), "--threads", "1", "--json")
        assert result.returncode == 2, result.stdout + result.stderr
        report = json.loads(result.stdout)
        assert report["config"]["usable"] is False and words in " ".join(report["config"]["problems"]), report
        assert len(report["bundles"]) == 2 and report["healthy"] is False  # the bundles were still checked
        errors = result.stderr.strip().splitlines()
        assert len(errors) == 1 and errors[0].startswith("error: ") and words in errors[0], result.stderr
        text = doctor("--config", str(config), "--threads", "1")
        assert text.returncode == 2 and "  ERROR      " in text.stdout and "bundle       " in text.stdout, text.stdout
    # The agent's own check says the same of the same config.
    check = subprocess.run(
        [sys.executable, "-m", "footfall", "agent", "--config", str(unset), "--check-config"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 2 and "FOOTFALL_DOCTOR_TEST_UNSET is not set" in check.stderr, check.stderr


def test_a_classifier_without_an_age_head_is_said_to_carry_no_bands(tmp_path: Path) -> None:
    gender_bundle = build_standin_gender_bundle(tmp_path / "gender-only")  # gender output only
    text = doctor("--gender", str(gender_bundle), "--threads", "1")  # one run: each measures latency for seconds
    assert "no age head: aggregates carry no age bands" in text.stdout, text.stdout


def test_a_stream_that_accepts_but_never_answers_is_unreachable_and_doctor_exits_normally(
    tmp_path: Path, detector_bundle: Path, silent_stream: SilentStream
) -> None:
    """An RTSP server that takes the connection and says nothing: doctor left a thread inside cv2.VideoCapture
    and the process died at exit with SIGABRT (rc 134). The stream's open and read time out in FFmpeg now."""
    import time

    config = tmp_path / "agent.yaml"
    config.write_text(
        agent_yaml(
            silent_stream.url,
            {},
            outbox=tmp_path / "outbox.sqlite",
            port=1883,
            detector=detector_bundle,
            gender=DEFAULT_GENDER_BUNDLE,
        )
    )
    started = time.monotonic()
    result = doctor("--config", str(config), "--threads", "1", "--json")
    elapsed = time.monotonic() - started
    assert result.returncode == 1, f"rc {result.returncode}: {result.stderr[-2000:]}"
    assert silent_stream.held, "the doctor never connected"
    [camera] = json.loads(result.stdout)["cameras"]
    assert camera["reachable"] is False and "no answer within" in camera["detail"], camera
    assert elapsed < 120, elapsed


def test_the_text_report_is_shown_section_by_section_as_each_check_ends(
    tmp_path: Path, detector_bundle: Path, silent_stream: SilentStream
) -> None:
    """Found in review: with dead cameras in the config, doctor printed nothing until every check had ended (half a
    minute for four). Each section now appears as its check ends: the CPU, the bundles, a line saying the cameras
    are being tried, then each camera. Here the second camera takes the connection and never answers, so its check
    waits for its open timeout (5 s) while everything before it is already on the screen."""
    import socket
    import threading
    import time

    with socket.socket() as probe:  # a port nothing listens on: the first camera is refused at once
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    config = tmp_path / "agent.yaml"
    text = agent_yaml(
        f"rtsp://127.0.0.1:{closed_port}/stream",
        {},
        outbox=tmp_path / "outbox.sqlite",
        port=1883,
        detector=detector_bundle,
        gender=DEFAULT_GENDER_BUNDLE,
    )
    config.write_text(text.replace("mqtt:", f"  - id: cam2\n    source: {silent_stream.url}\nmqtt:", 1))
    command = subprocess.Popen(
        [sys.executable, "-m", "footfall", "doctor", "--config", str(config), "--threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    arrived: list[tuple[float, str]] = []  # each line of stdout and when this process could read it

    def read() -> None:
        assert command.stdout is not None
        for line in command.stdout:
            arrived.append((time.monotonic(), line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        command.wait(timeout=300)
    finally:
        if command.poll() is None:
            command.kill()
    reader.join(timeout=30)
    assert command.returncode == 1, command.stderr.read() if command.stderr else ""
    lines = [line for _, line in arrived]
    assert silent_stream.held, "the second camera was never tried"

    def when(prefix: str) -> float:
        return next(at for at, line in arrived if line.startswith(prefix))

    # The silent camera's open waits 5 s: what came before it was readable seconds before its line.
    silent_camera = when("camera       cam2")
    for earlier in ("cpu ", "onnxruntime ", "bundle ", "camera       cam1"):
        assert silent_camera - when(earlier) > 3.0, (earlier, arrived)
    sections = [next(i for i, line in enumerate(lines) if line.startswith(p)) for p in ("cpu ", "bundle ", "checking ")]
    assert sections == sorted(sections), lines
    checking = sections[-1]
    assert lines[checking] == "checking     2 cameras, up to 10 s each …", lines
    assert "cam1" in lines[checking + 1] and "UNREACHABLE" in lines[checking + 1], lines
    # Probed first, as the agent does: the reason names the refusal (OpenCV's failure said "unreachable, wrong URL or
    # credentials?").
    assert f"connection refused (127.0.0.1:{closed_port})" in lines[checking + 1], lines
    assert "cam2" in lines[checking + 2] and "no answer within 5 s" in lines[checking + 2], lines
    assert silent_camera - when("checking ") > 3.0, arrived
    assert "attention" in lines[-1], lines
