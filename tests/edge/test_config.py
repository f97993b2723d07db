"""Config validation: every error is one line naming the file, the line and the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from footfall.edge.aggregation import BucketCounts
from footfall.edge.config import WHOLE_FRAME_ZONE_ID, ConfigError, load_config, parse_config

from tests.edge.standin import build_standin_gender_bundle
from tests.int8_faults import broken_int8_copy, corrupt_model_copy, rehash

REPO = Path(__file__).resolve().parents[2]

VALID = """\
agent_id: box-01
site_id: mall-north
cameras:
  - id: entrance
    source: rtsp://user:pw@10.0.0.12/stream1
    zones:
      - id: door
        polygon: [[0.1, 0.2], [0.9, 0.2], [0.9, 1.0], [0.1, 1.0]]
    lines:
      - id: threshold
        points: [[0.0, 0.5], [1.0, 0.5]]
        direction: down
  - id: atrium
    source: 0
"""


def test_example_config_is_valid() -> None:
    config = load_config(REPO / "edge" / "config.example.yaml")
    assert [c.id for c in config.cameras] == ["entrance", "atrium"]
    assert config.cameras[1].counting_zones()[0].id == WHOLE_FRAME_ZONE_ID
    assert config.bucket_seconds == 60


def test_valid_config_defaults() -> None:
    config = parse_config(VALID, "agent.yaml")
    assert config.cameras[0].lines[0].direction == "down"
    assert config.cameras[1].source == 0
    assert config.client_id == "footfall-box-01"
    assert config.mqtt.port == 1883


@pytest.mark.parametrize("digit", ["\u0660", "\u00b2", "\uff10"])
def test_only_ascii_digits_name_a_usb_device(digit: str) -> None:
    # str.isdigit says yes to Arabic-Indic zero, superscript two and fullwidth zero: the first opened /dev/video0
    # and the second stopped the config with "invalid literal for int()". They are file names like any other.
    config = parse_config(VALID.replace("source: 0", f"source: '{digit}'"), "agent.yaml")
    assert isinstance(config.cameras[1].source, str) and config.cameras[1].source.endswith(digit)


@pytest.mark.parametrize(
    ("edit", "line", "field", "words"),
    [
        (
            ("[0.9, 0.2], [0.9, 1.0]", "[1.9, 0.2], [0.9, 1.0]"),
            8,
            "cameras[0].zones[0].polygon[1][0]",
            "less than or equal to 1",
        ),
        (("direction: down", "direction: left"), 10, "cameras[0].lines[0]", "runs along the line"),
        (("source: 0", "sourse: 0"), 14, "cameras[1].sourse", "unknown field"),
        # A repeated id is reported where it is repeated (both were said to be at line 1, or the camera's first line).
        (("id: threshold", "id: door"), 10, "cameras[0].lines[0].id", "zone and line ids must be unique per camera"),
        (("id: atrium", "id: entrance"), 13, "cameras[1].id", "camera ids must be unique; 'entrance' is cameras[0]'s"),
        (("site_id: mall-north", "site_id: mall north"), 2, "site_id", "pattern"),
        # Unquoted, YAML reads off as false and 42 as a number: the error said "should be ... or 'off'".
        (
            ("agent_id: box-01\n", "agent_id: box-01\ndemographics: off\n"),
            2,
            "demographics",
            'YAML reads off as a yes/no value, not as text: quote it (demographics: "off")',
        ),
        (("site_id: mall-north", "site_id: 0042"), 2, "site_id", "YAML reads 0042 as a number, not as text"),
        (("source: 0", "source: ftp://x/y"), 14, "cameras[1].source", "unsupported URL scheme"),
        # Unquoted, YAML reads true and off as yes/no values, which pydantic took as USB devices 1 and 0.
        (("source: 0", "source: true"), 14, "cameras[1].source", "YAML reads this word as a yes/no value"),
        (("source: 0", "source: off"), 14, "cameras[1].source", "quote a file name"),
        # '.inf' passed `ge=4` and then ignored every face; '.nan' passes every comparison.
        (
            ("agent_id: box-01\n", "agent_id: box-01\ndetection:\n  min_face_px: .inf\n"),
            3,
            "detection.min_face_px",
            "finite number",
        ),
        (
            ("agent_id: box-01\n", "agent_id: box-01\ntracking:\n  max_lost_seconds: .nan\n"),
            3,
            "tracking.max_lost_seconds",
            "finite number",
        ),
        (
            ("agent_id: box-01\n", "agent_id: box-01\nbucket_seconds: 7\n"),
            2,
            "bucket_seconds",
            "greater than or equal to 10",
        ),
        (
            ("agent_id: box-01\n", "agent_id: box-01\nbucket_seconds: 70\n"),
            2,
            "bucket_seconds",
            "does not divide an hour",
        ),
        (
            ("agent_id: box-01\n", "agent_id: box-01\nbucket_seconds: 86400\n"),
            2,
            "bucket_seconds",
            "less than or equal to 3600",
        ),
        (
            ("[0.9, 0.2], [0.9, 1.0], [0.1, 1.0]", "[0.9, 1.0], [0.9, 0.2], [0.1, 1.0]"),
            8,
            "cameras[0].zones[0].polygon",
            "cross",
        ),
        # Found by an adversarial review: an outline that went round twice passed and counted nobody (ray casting reads
        # every point as outside); one that runs back along itself likewise.
        (
            ("[0.9, 0.2], [0.9, 1.0], [0.1, 1.0]]", "[0.9, 0.2], [0.9, 1.0], [0.1, 1.0], [0.1, 0.2], [0.9, 0.2]]"),
            8,
            "cameras[0].zones[0].polygon",
            "polygon corner [0.1, 0.2] is given twice; its outline must go round once",
        ),
        (
            ("[0.9, 0.2], [0.9, 1.0], [0.1, 1.0]]", "[0.9, 0.2], [0.9, 1.0], [0.9, 0.6], [0.1, 1.0]]"),
            8,
            "cameras[0].zones[0].polygon",
            "polygon edges run along each other",
        ),
        # Entrances: the way in must be a direction, and every count of a camera needs an id of its own.
        (
            ("direction: down", "direction: any\n        entrance: true"),
            10,
            "cameras[0].lines[0]",
            "an entrance line needs the way in as its direction (left, right, up or down), not 'any'",
        ),
        (("id: door", "id: entrance"), 4, "cameras[0]", "zone or line id 'entrance' is the camera's own id"),
        (("id: atrium", "id: frame"), 13, "cameras[1]", "'frame' is the camera's own id"),  # its whole-frame zone
        (
            ("id: threshold", f"id: {'t' * 61}\n        entrance: true"),
            10,
            "cameras[0].lines[0]",
            "at most 60 characters (it gains '.out')",
        ),
    ],
)
def test_errors_name_file_line_and_field(edit: tuple[str, str], line: int, field: str, words: str) -> None:
    text = VALID.replace(*edit)
    assert text != VALID
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "agent.yaml")
    message = str(caught.value)
    assert "\n" not in message
    assert f"agent.yaml:{line}: {field}" in message, message
    assert words in message


ENTRANCE = VALID.replace("direction: down", "direction: down\n        entrance: true")


@pytest.mark.parametrize(
    ("host", "words"),
    [
        # The form `footfall server --mqtt` takes: --check-config said OK, the agent then failed at every retry with
        # 'Name or service not known'.
        ("mqtt://127.0.0.1:18831", "split it into host: 127.0.0.1 and port: 18831"),
        ("mqtts://broker.example.org", "split it into host: broker.example.org and port"),
        ("127.0.0.1:18831", "split it into host: 127.0.0.1 and port: 18831"),
        ("broker.example.org:1883", "split it into host: broker.example.org and port: 1883"),
        ("[::1]:1883", "split it into host: ::1 and port: 1883"),
        ("[2001:db8::7]", "without the brackets (host: 2001:db8::7)"),
        ("broker.example.org/footfall", "only the broker's name or address"),
        ("broker:north", "not an IPv6 address"),
    ],
)
def test_a_broker_host_with_a_scheme_port_or_path_is_refused(host: str, words: str) -> None:
    text = VALID + f"mqtt:\n  host: '{host}'\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "agent.yaml")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("agent.yaml:16: mqtt.host: "), message
    assert words in message, message
    assert "mqtt.port" in message or "only the broker's name" in message, message


def test_a_url_with_a_password_is_refused_without_repeating_it() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(VALID + "mqtt:\n  host: mqtt://box:s3cret@broker:1883\n", "agent.yaml")
    assert "s3cret" not in str(caught.value) and "host: broker and port: 1883" in str(caught.value)


@pytest.mark.parametrize("host", ["localhost", "broker.example.org", "10.0.0.5", "::1", "2001:db8::7", "fe80::1%eth0"])
def test_a_broker_host_by_name_or_address_is_accepted(host: str) -> None:
    assert parse_config(VALID + f"mqtt:\n  host: '{host}'\n", "agent.yaml").mqtt.host == host


def test_cli_check_config_refuses_a_broker_url_as_host(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(VALID + "mqtt: {host: 'mqtt://127.0.0.1:18831'}\n")
    result = _footfall("agent", "--config", str(config), "--check-config")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        f"error: {config}:15: mqtt.host: 'mqtt://127.0.0.1:18831' is a URL; the agent takes the broker's host and port"
        " apart: split it into host: 127.0.0.1 and port: 18831 (mqtt.host and mqtt.port)"
    ]


@pytest.mark.parametrize("zone_id", ["threshold.in", "threshold.out"])
def test_an_entrance_whose_in_or_out_id_is_taken_is_refused(zone_id: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(ENTRANCE.replace("id: door", f"id: {zone_id}"), "agent.yaml")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("agent.yaml:4: cameras[0]: entrance line 'threshold' counts under threshold.in and ")
    assert f"but {zone_id} is already a zone or line id; rename one of them" in message


def test_each_count_of_a_camera_has_its_own_id_and_measure() -> None:
    from footfall.edge.messages import CameraMessages
    from footfall.edge.zones import SceneGeometry

    config = parse_config(ENTRANCE, "agent.yaml")
    entrance, atrium = config.cameras
    assert entrance.measures() == {
        "door": "passes",
        "threshold.in": "in",
        "threshold.out": "out",
        "entrance": "camera",
    }
    assert atrium.measures() == {WHOLE_FRAME_ZONE_ID: "passes", "atrium": "camera"}
    for camera in config.cameras:
        # The counter counts under exactly these ids, and each makes a valid aggregate of its measure.
        assert SceneGeometry.for_camera(camera, 640, 360).ids == list(camera.measures())
        messages = CameraMessages.for_camera(config, camera.id)
        for zone_id, measure in camera.measures().items():
            message = messages.message(zone_id, 0, BucketCounts(people=1, unknown=1), seq=1)
            assert (message.zone_id, message.measure, message.dwell) == (zone_id, measure, None)


def test_missing_field_and_yaml_syntax() -> None:
    with pytest.raises(ConfigError, match=r"^agent.yaml:1: cameras: field required"):
        parse_config("agent_id: a\nsite_id: b\n", "agent.yaml")
    with pytest.raises(ConfigError, match=r"^agent.yaml:4: not valid YAML"):
        parse_config("agent_id: a\ncameras:\n  - id: c\n   source: 0\n", "agent.yaml")
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_config("- just\n- a list\n", "agent.yaml")


def test_an_unclosed_bracket_is_reported_where_it_opens() -> None:
    """PyYAML notices a missing ']' lines later (here at the next key); the error names the '[' line."""
    text = VALID.replace("points: [[0.0, 0.5], [1.0, 0.5]]", "points: [[0.0, 0.5], [1.0, 0.5]")
    assert text.splitlines()[10].endswith("points: [[0.0, 0.5], [1.0, 0.5]")  # line 11
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "agent.yaml")
    message = str(caught.value)
    assert message.startswith("agent.yaml:11: not valid YAML (in the '[' that opens here: "), message
    assert "on line 12" in message and "\n" not in message


def test_an_unclosed_quote_is_reported_where_it_opens() -> None:
    text = VALID.replace("site_id: mall-north", 'site_id: "mall-north')
    with pytest.raises(ConfigError, match=r"^agent.yaml:2: not valid YAML \(in the quoted string that opens here"):
        parse_config(text, "agent.yaml")


def test_relative_paths_resolve_against_the_config(tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text(
        VALID.replace("source: 0", "source: clips/a.mp4") + "outbox: {path: state/outbox.sqlite}\n"
    )
    config = load_config(tmp_path / "agent.yaml")
    assert config.outbox.path == tmp_path / "state" / "outbox.sqlite"
    assert config.cameras[1].source == str(tmp_path / "clips" / "a.mp4")


def _footfall(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "footfall", *args], capture_output=True, text=True, timeout=60, **kwargs
    )


def test_cli_bad_config_is_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "agent.yaml"
    bad.write_text(VALID.replace("source: 0", "source: 0\n    fps: -3"))
    result = _footfall("agent", "--config", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {bad}:15: cameras[1].fps: Input should be greater than 0"]
    missing = _footfall("agent", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "config file not found" in missing.stderr and "Traceback" not in missing.stderr


def _check_config(tmp_path: Path, detector: Path, gender: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "agent.yaml"
    config.write_text(VALID + f"bundles: {{detector: {detector}, gender: {gender}}}\n")
    return _footfall("agent", "--config", str(config), "--check-config")


def test_cli_check_config(tmp_path: Path, detector_bundle: Path, gender_bundle: Path) -> None:
    result = _check_config(tmp_path, detector_bundle, gender_bundle)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "OK" in lines[-1] and "cameras: entrance (1 zone, 1 line), atrium (1 zone, 0 lines);" in lines[-1]
    # One line per bundle served: its role, its name, the precision it would serve, and OK.
    detector = next(line for line in lines if line.startswith("detector "))
    assert "face-detector-centerface" in detector and "serves INT8" in detector and detector.endswith("OK")
    gender = next(line for line in lines if line.startswith("gender "))
    assert "serves " in gender and gender.endswith("OK")
    assert f"outbox      {tmp_path / 'footfall-outbox.sqlite'}: new (created at start) — OK" in lines
    assert any(line.startswith("cameras     streams and USB cameras are not opened here") for line in lines)
    broken = tmp_path / "broken.yaml"
    broken.write_text(VALID + f"bundles: {{detector: {tmp_path}}}\n")
    result = _footfall("agent", "--config", str(broken), "--check-config")
    assert result.returncode == 2 and "no manifest.json" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "problem", ["outbox is a folder", "outbox under a file", "password_env unset", "no video", "video is a folder"]
)
def test_cli_check_config_refuses_what_the_agent_could_not_run(
    tmp_path: Path, detector_bundle: Path, gender_bundle: Path, problem: str
) -> None:
    """The check said OK to configs whose agent then failed at start or retried for ever: an outbox path that is a
    folder or cannot be created, a password variable that is not set (the agent connected without a password), a
    video file that is not there. One line each, as the agent's own."""
    text = VALID + f"bundles: {{detector: {detector_bundle}, gender: {gender_bundle}}}\n"
    words = {
        "outbox is a folder": "the outbox path is a folder",
        "outbox under a file": "cannot create the outbox here",
        "password_env unset": "FOOTFALL_TEST_UNSET_PASSWORD is not set",
        "no video": "camera hall: video file not found",
        "video is a folder": "camera hall: is a folder, not a video file",  # said 'video file not found'
    }[problem]
    if problem == "outbox is a folder":
        text += f"outbox: {{path: {tmp_path}}}\n"
    elif problem == "outbox under a file":
        (tmp_path / "a-file").write_text("")
        text += f"outbox: {{path: {tmp_path / 'a-file' / 'outbox.sqlite'}}}\n"
    elif problem == "password_env unset":
        text += "mqtt: {username: box, password_env: FOOTFALL_TEST_UNSET_PASSWORD}\n"
    else:
        video = tmp_path / ("gone.mp4" if problem == "no video" else "clips")
        if problem == "video is a folder":
            video.mkdir()
        text = text.replace("cameras:\n", f"cameras:\n  - id: hall\n    source: {video}\n", 1)
    config = tmp_path / "agent.yaml"
    config.write_text(text)
    result = _footfall("agent", "--config", str(config), "--check-config")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and words in lines[0], result.stdout + result.stderr


@pytest.mark.parametrize("role", ["detector", "gender"])
def test_cli_check_config_opens_the_graphs(
    tmp_path: Path, detector_bundle: Path, gender_bundle: Path, role: str
) -> None:
    """A graph that is corrupt although the manifest's hashes were rewritten to match: every file check
    passes, so only loading the graph in onnxruntime, as the agent does at start, can refuse it."""
    bundles = {"detector": detector_bundle, "gender": gender_bundle}
    bundles[role] = corrupt_model_copy(bundles[role], tmp_path / f"corrupt-{role}")
    result = _check_config(tmp_path, bundles["detector"], bundles["gender"])
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "EP Error" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {role} bundle: {bundles[role]}/") and "onnxruntime cannot load it" in lines[0]


def test_cli_check_config_names_an_fp32_fallback(tmp_path: Path, detector_bundle: Path, gender_bundle: Path) -> None:
    """An INT8 graph that strays from its probe on this CPU: the agent would serve the FP32 reference."""
    broken = broken_int8_copy(detector_bundle, tmp_path / "detector")
    result = _check_config(tmp_path, broken, gender_bundle)
    assert result.returncode == 0, result.stderr
    detector = next(line for line in result.stdout.splitlines() if line.startswith("detector "))
    assert "serves FP32 fallback" in detector and "tolerance" in detector and detector.endswith("OK")
    assert "face-detector-centerface FP32 fallback" in result.stdout.splitlines()[-1]


def test_cli_check_config_opens_every_graph_the_floor_lets_the_box_serve(tmp_path: Path, detector_bundle: Path) -> None:
    """The shipped age bundle's graph pruned to the gender output, corrupt: a box whose floor allows age can be
    told 'gender-only' at any time and would then serve it, so the check refuses; with a floor of 'gender-only'
    that graph is the one served; with 'counts-only' no classifier is loaded at all."""
    from footfall.core.paths import DEFAULT_GENDER_BUNDLE

    whole = _check_config(tmp_path, detector_bundle, DEFAULT_GENDER_BUNDLE)
    assert whole.returncode == 0, whole.stderr
    assert [line.split()[0] for line in whole.stdout.splitlines()[:-1]] == [
        "detector",
        "gender",
        "gender-only",
        "outbox",
        "cameras",
    ]
    gender = corrupt_model_copy(DEFAULT_GENDER_BUNDLE, tmp_path / "corrupt", gender_only=True)
    for floor, refused in (("full", True), ("gender-only", True), ("counts-only", False)):
        config = tmp_path / f"{floor}.yaml"
        config.write_text(
            VALID + f"demographics: {floor}\nbundles: {{detector: {detector_bundle}, gender: {gender}}}\n"
        )
        result = _footfall("agent", "--config", str(config), "--check-config")
        assert result.returncode == (2 if refused else 0), (floor, result.stdout + result.stderr)
        if refused:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert len(lines) == 1 and "model-gender.onnx: onnxruntime cannot load it" in lines[0], lines
        else:
            assert not any(line.startswith("gender") for line in result.stdout.splitlines()), result.stdout


def test_cli_check_config_graph_with_a_garbled_name_is_one_line(tmp_path: Path, detector_bundle: Path) -> None:
    """A graph that parses but names a tensor in bytes that are not UTF-8: onnxruntime's own error cannot be
    decoded, and its Python wrapper would print a banner and retry on the same CPU provider."""
    gender = build_standin_gender_bundle(tmp_path / "gender")
    model = gender / "model.onnx"
    data = model.read_bytes()
    at = data.rindex(b"mean")  # the Gemm's input; the ReduceMean still writes "mean"
    model.write_bytes(data[:at] + b"\xffean" + data[at + 4 :])
    rehash(gender)
    result = _check_config(tmp_path, detector_bundle, gender)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: gender bundle: {model}: onnxruntime cannot load it")


@pytest.mark.parametrize(
    ("atrium_zone", "words"),
    [
        ("entrance", "id 'entrance' counts camera on camera 'entrance' but passes on camera 'atrium'"),
        ("threshold.in", "id 'threshold.in' counts in on camera 'entrance' but passes on camera 'atrium'"),
    ],
)
def test_an_id_that_two_cameras_would_send_as_different_counts_is_refused(atrium_zone: str, words: str) -> None:
    """Across the cameras of a box, an id must name one kind of count: the server adds up one id as one."""

    def with_atrium_zone(zone_id: str) -> str:
        return ENTRANCE.replace(
            "  - id: atrium\n    source: 0\n",
            f"  - id: atrium\n    source: 0\n    zones:\n      - id: {zone_id}\n"
            "        polygon: [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]\n",
        )

    text = with_atrium_zone(atrium_zone)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "agent.yaml")
    assert words in str(caught.value) and "\n" not in str(caught.value)
    # Reported at the second camera's zone that sends the id (it was line 1 of the file).
    line = text.splitlines().index(f"      - id: {atrium_zone}") + 1
    assert str(caught.value).startswith(f"agent.yaml:{line}: cameras[1].zones[0].id: "), str(caught.value)
    shared = parse_config(with_atrium_zone("door"), "agent.yaml")  # one zone seen by two cameras: allowed
    assert shared.cameras[1].measures()["door"] == "passes"


# A self-signed certificate (valid until 2126) and its key, only for telling PEM files from others.
TEST_CERTIFICATE = """\
-----BEGIN CERTIFICATE-----
MIIBhjCCAS2gAwIBAgIUQk+3pos0Ewn6/Pp2Vgmn3FzyAe8wCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNZm9vdGZhbGwtdGVzdDAgFw0yNjEyMDQwODIwMjZaGA8yMTI2
MTExMDA4MjAyNlowGDEWMBQGA1UEAwwNZm9vdGZhbGwtdGVzdDBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABHVowT12hfHGPXtHVO8eNXySX12yHWFjcmOXowEhe4GB
Le4XrMiXxx/m6v2KpdS2r02VNrSkjPyasyLGqwMWxsWjUzBRMB0GA1UdDgQWBBSc
r7GWiN44b7ZxodN/ZgRVPkIJSzAfBgNVHSMEGDAWgBScr7GWiN44b7ZxodN/ZgRV
PkIJSzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIFu0DEaYpv24
EaNysxq47FigI+A63sc1qxO/BA/Nc6UDAiAxdo8t5IFbJGIa/MpUwRCJQpTjMnDl
oUdBq5ylyMZSBw==
-----END CERTIFICATE-----
"""
TEST_KEY = """\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgwO7/PTHY4pskRdfL
Ycy9C5LGT1iAjdLpaHEVgtzUDqyhRANCAAR1aME9doXxxj17R1TvHjV8kl9dsh1h
Y3Jjl6MBIXuBgS3uF6zIl8cf5ur9iqXUtq9NlTa0pIz8mrMixqsDFsbF
-----END PRIVATE KEY-----
"""


def _tls_files(tmp_path: Path) -> dict[str, Path]:
    files = {"cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem", "text": tmp_path / "notes.txt"}
    files["cert"].write_text(TEST_CERTIFICATE)
    files["key"].write_text(TEST_KEY)
    files["text"].write_text("not a certificate\n")
    return files


@pytest.mark.parametrize(
    ("tls", "field", "words"),
    [
        ("{{ca_file: {text}}}", "mqtt.tls.ca_file", "{text} is not a PEM CA certificate"),
        ("{{ca_file: {tmp}/gone.pem}}", "mqtt.tls.ca_file", "{tmp}/gone.pem does not exist"),
        ("{{cert_file: {text}, key_file: {key}}}", "mqtt.tls.cert_file", "{text} is not a PEM certificate"),
        ("{{cert_file: {cert}, key_file: {text}}}", "mqtt.tls", "key_file {text} is not the PEM private key"),
        ("{{cert_file: {cert}}}", "mqtt.tls", "cert_file and key_file go together"),
        ("{{insecure: maybe}}", "mqtt.tls.insecure", "valid boolean"),
        ("{{cafile: {cert}}}", "mqtt.tls.cafile", "unknown field"),
        ("maybe", "mqtt.tls", "true, false or a mapping"),
    ],
)
def test_a_tls_file_that_cannot_be_loaded_is_one_line_naming_the_field(
    tmp_path: Path, tls: str, field: str, words: str
) -> None:
    """A CA file that is not PEM passed the config and killed the agent with an ssl.SSLError traceback; and every
    TLS error began with 'mqtt.tls: Input should be a valid boolean', pydantic's complaint for the other member of
    `tls: bool | TlsConfig`."""
    files = _tls_files(tmp_path)
    names = {"tmp": tmp_path, "text": files["text"], "cert": files["cert"], "key": files["key"]}
    text = VALID + "mqtt:\n  tls: " + tls.format(**names) + "\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "agent.yaml")
    message = str(caught.value)
    assert "\n" not in message and f"agent.yaml:16: {field}: " in message, message
    assert words.format(**names) in message, message
    assert message.count("agent.yaml") == 1, message  # only the real problem
    if "valid boolean" not in words:
        assert "valid boolean" not in message, message


def test_pem_tls_files_are_accepted(tmp_path: Path) -> None:
    files = _tls_files(tmp_path)
    tls = f"{{ca_file: {files['cert']}, cert_file: {files['cert']}, key_file: {files['key']}}}"
    config = parse_config(VALID + f"mqtt:\n  tls: {tls}\n", "agent.yaml")
    assert not isinstance(config.mqtt.tls, bool) and config.mqtt.tls.key_file == files["key"]
    assert parse_config(VALID + "mqtt: {tls: true}\n").mqtt.tls is True


def test_relative_tls_files_are_found_beside_the_config_wherever_the_agent_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox, bundles and video files of a config are relative to the config file; its TLS files were relative
    to wherever the agent was started, so `footfall agent --config /etc/footfall/agent.yaml` run from another folder
    refused 'ca_file ca.pem does not exist' (or, worse, loaded another folder's)."""
    folder = tmp_path / "etc"
    folder.mkdir()
    _tls_files(folder)
    config = folder / "agent.yaml"
    config.write_text(VALID + "mqtt:\n  tls: {ca_file: cert.pem, cert_file: ./cert.pem, key_file: key.pem}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    tls = load_config(config).mqtt.tls
    assert not isinstance(tls, bool)
    assert (tls.ca_file, tls.cert_file, tls.key_file) == (folder / "cert.pem", folder / "cert.pem", folder / "key.pem")


def test_a_tls_file_spoilt_after_the_config_was_read_is_one_line_at_connect(tmp_path: Path) -> None:
    """The files are loaded again when the agent makes its MQTT client: one that changed since is a ConfigError
    (one line, exit 2), not an ssl.SSLError traceback."""
    from footfall.edge.config import TlsConfig
    from footfall.edge.delivery import MqttPublisher
    from footfall.edge.outbox import Outbox

    files = _tls_files(tmp_path)
    config = parse_config(VALID + f"mqtt:\n  tls: {{ca_file: {files['cert']}}}\n")
    files["cert"].write_text("overwritten\n")
    spoilt = config.model_copy(
        update={"mqtt": config.mqtt.model_copy(update={"tls": TlsConfig.model_construct(ca_file=files["cert"])})}
    )

    def status(state: str):
        raise AssertionError("the will is made after TLS")

    with pytest.raises(ConfigError, match=r"^mqtt\.tls\.ca_file: .* is not a PEM CA certificate"):
        MqttPublisher(spoilt, Outbox(tmp_path / "outbox.sqlite"), status)


@pytest.mark.parametrize("check", [True, False])
def test_cli_a_ca_file_that_is_not_pem_is_one_line(tmp_path: Path, check: bool) -> None:
    files = _tls_files(tmp_path)
    config = tmp_path / "agent.yaml"
    config.write_text(VALID + f"mqtt:\n  tls:\n    ca_file: {files['text']}\n")
    result = _footfall("agent", "--config", str(config), *(["--check-config"] if check else []))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert lines == [
        f"error: {config}:17: mqtt.tls.ca_file: {files['text']} is not a PEM CA certificate "
        "(no certificate or crl found)"
    ], lines


def test_cli_check_config_opens_each_video_file(tmp_path: Path, detector_bundle: Path, gender_bundle: Path) -> None:
    """A camera whose source is a file that is no video (a text file) passed the check; the agent then retried it
    for ever."""
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n")
    config = tmp_path / "agent.yaml"
    config.write_text(
        VALID.replace("cameras:\n", f"cameras:\n  - id: hall\n    source: {notes}\n", 1)
        + f"bundles: {{detector: {detector_bundle}, gender: {gender_bundle}}}\n"
    )
    result = _footfall("agent", "--config", str(config), "--check-config")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stdout + result.stderr
    assert f"camera hall: {notes}: not a video OpenCV can read" in lines[0], lines


def test_a_polygon_closed_by_hand_is_one_outline_and_one_gone_round_twice_is_refused() -> None:
    from footfall.edge.config import ZoneConfig

    closed = ZoneConfig(id="z", polygon=[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)])
    assert len(closed.polygon) == 5
    twice = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)] * 2
    with pytest.raises(ValueError, match="given twice; its outline must go round once"):
        ZoneConfig(id="z", polygon=twice)
