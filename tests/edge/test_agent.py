"""The agent end to end against a real mosquitto: broker outage mid-run, privacy, bad inputs."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from footfall.edge.config import load_config
from footfall.edge.offline import process_video

from footfall.broker import free_port
from tests.edge.conftest import agent_yaml, make_walkby_clip, one_camera_agent
from tests.edge.test_outbox import Receiver
from tests.waiting import eventually

pytestmark = [pytest.mark.broker, pytest.mark.slow]

IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"RIFF", b"\x1aE\xdf\xa3", b"P6\n", b"P5\n")
MEDIA_SUFFIXES = {
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".webp",
    ".ppm",
    ".pgm",
    ".tif",
    ".tiff",
    ".mp4",
    ".avi",
    ".mkv",
    ".mov",
    ".mjpg",
    ".mjpeg",
    ".h264",
    ".npy",
    ".npz",
}


def start_agent(config: Path, *, env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "footfall", "agent", "--config", str(config), "--drain-seconds", "40"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )


def outbox_depth(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.fixture(scope="module")
def long_clip(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    return make_walkby_clip(data_dir, tmp_path_factory.mktemp("long"), people=16, seed=5)


def test_broker_outage_mid_run_delivers_what_an_uninterrupted_run_counts(
    long_clip, mosquitto, tmp_path: Path, detector_bundle: Path, gender_bundle: Path, models
) -> None:
    clip, truth = long_clip
    config_path = tmp_path / "agent.yaml"
    outbox = tmp_path / "outbox.sqlite"
    config_path.write_text(
        agent_yaml(
            clip,
            truth["camera"],
            outbox=outbox,
            port=mosquitto.port,
            detector=detector_bundle,
            gender=gender_bundle,
        )
    )
    # What an uninterrupted run counts, per zone (the same pipeline, without a broker).
    reference = process_video(clip, load_config(config_path), progress=False, models=models)
    expected = {zone: counts["people"] for zone, counts in reference["zones"].items()}
    assert sum(expected.values()) > 0
    expected["cam1"] = reference["camera_visitors"]["people"]  # the camera's distinct visitors, sent as "cam1"

    receiver = Receiver(mosquitto.port)
    agent = start_agent(config_path)
    try:
        assert receiver.wait_for(lambda: any(s.state == "online" for s in receiver.statuses), timeout=60)
        mosquitto.stop()  # the broker goes away while the agent is counting
        assert receiver.wait_for(lambda: outbox_depth(outbox) >= 3, timeout=90), "aggregates must pile up in the outbox"
        assert agent.poll() is None, "the agent must keep running without its broker"
        mosquitto.start()
        _, stderr = agent.communicate(timeout=150)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert agent.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    assert "broker connection lost" in stderr
    assert receiver.wait_for(lambda: receiver.totals() == expected, timeout=30), (receiver.totals(), expected)
    assert outbox_depth(outbox) == 0
    receiver.close()


def _media_files(roots: list[Path]) -> list[Path]:
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            head = path.read_bytes()[:16]
            if path.suffix.lower() in MEDIA_SUFFIXES or head.startswith(IMAGE_SIGNATURES) or b"ftyp" in head[:12]:
                found.append(path)
    return found


def test_privacy_no_image_written_and_no_image_data_sent(
    walkby_clip, mosquitto, tmp_path: Path, detector_bundle: Path, gender_bundle: Path
) -> None:
    clip, truth = walkby_clip
    home, tmpdir, work = tmp_path / "home", tmp_path / "tmp", tmp_path / "work"
    for folder in (home, tmpdir, work):
        folder.mkdir()
    outbox = work / "state" / "outbox.sqlite"
    config_path = work / "agent.yaml"
    config_path.write_text(
        agent_yaml(
            clip,
            truth["camera"],
            outbox=outbox,
            port=mosquitto.port,
            detector=detector_bundle,
            gender=gender_bundle,
        )
    )
    env = {
        **os.environ,
        "HOME": str(home),
        "TMPDIR": str(tmpdir),
        "TMP": str(tmpdir),
        "TEMP": str(tmpdir),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local"),
    }
    receiver = Receiver(mosquitto.port)
    raw: list[bytes] = []
    receiver.client.on_message = lambda c, u, m: (
        raw.append(m.payload),
        Receiver._on_message(receiver, c, u, m),
    )
    agent = start_agent(config_path, env=env, cwd=work)
    _, stderr = agent.communicate(timeout=150)
    assert agent.returncode == 0, stderr[-2000:]
    assert receiver.wait_for(lambda: sum(receiver.totals().values()) > 0)
    receiver.close()

    assert _media_files([home, tmpdir, work]) == []
    assert outbox.exists()
    for database in outbox.parent.iterdir():
        data = database.read_bytes()
        assert not any(sig in data for sig in (b"\xff\xd8\xff", b"\x89PNG")), database
    assert raw, "no message was received"
    base64_run = re.compile(rb"[A-Za-z0-9+/=]{120,}")
    for payload in raw:
        assert len(payload) < 4096
        assert not base64_run.search(payload)
        assert not any(sig in payload for sig in IMAGE_SIGNATURES[:4])
    # Logs carry no image data either.
    assert not base64_run.search(stderr.encode())


def test_unreachable_camera_is_retried_and_reported_offline(
    mosquitto, tmp_path: Path, detector_bundle: Path, gender_bundle: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}/video.mjpg"
    config_path = tmp_path / "agent.yaml"
    config_path.write_text(
        agent_yaml(
            url,
            {},
            outbox=tmp_path / "outbox.sqlite",
            port=mosquitto.port,
            detector=detector_bundle,
            gender=gender_bundle,
        )
    )
    receiver = Receiver(mosquitto.port)
    agent = start_agent(config_path)
    try:
        offline = lambda: any(  # noqa: E731
            s.state == "online" and s.cameras and s.cameras[0].state == "offline" and s.cameras[0].error
            for s in receiver.statuses
        )
        assert receiver.wait_for(offline, timeout=60), receiver.statuses
        time.sleep(2.5)  # long enough for a second attempt (backoff 1 s, then 2 s)
    finally:
        agent.send_signal(signal.SIGTERM)
        _, stderr = agent.communicate(timeout=60)
        receiver.close()
    assert agent.returncode == 0, stderr
    assert "Traceback" not in stderr
    retries = [line for line in stderr.splitlines() if "camera offline; retrying" in line]
    assert len(retries) >= 2 and "camera=cam1" in retries[0] and "cannot open" in retries[0]
    status = next(s for s in reversed(receiver.statuses) if s.state == "online")
    assert "cannot open" in (status.cameras[0].error or "")
    assert receiver.statuses[-1].state == "offline"  # the agent said goodbye on SIGTERM


def _process(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "footfall", "process", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("kind", ["garbage", "truncated", "missing", "empty"])
def test_corrupt_or_missing_video_is_one_clear_line(kind: str, tmp_path: Path, walkby_clip, gender_bundle) -> None:
    clip, _ = walkby_clip
    video = tmp_path / "clip.mp4"
    if kind == "garbage":
        video.write_bytes(os.urandom(50_000))
    elif kind == "truncated":
        video.write_bytes(clip.read_bytes()[:3000])
    elif kind == "empty":
        video.write_bytes(b"")
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"agent_id: a\nsite_id: s\ncameras: [{{id: c, source: x.mp4}}]\nbundles: {{gender: {gender_bundle}}}\n"
    )
    result = _process(str(video), "--config", str(config), "--no-progress")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {video}: "), result.stderr
    assert result.stdout == ""


def test_int8_that_fails_its_parity_check_is_served_in_fp32_and_reported(
    mosquitto, tmp_path: Path, detector_bundle: Path
) -> None:
    """A broken INT8 graph (what a CPU with faulty integer kernels would compute) is caught at start: one
    log line, the FP32 reference served, and the heartbeat, the server's agent list and its dashboard
    data say so, with the CPU's flags."""
    from footfall.core.paths import DEFAULT_GENDER_BUNDLE
    from footfall.core.wire import encode

    from tests.int8_faults import broken_int8_copy
    from tests.server.conftest import make_server

    broken = broken_int8_copy(DEFAULT_GENDER_BUNDLE, tmp_path / "gender-broken")
    config_path = tmp_path / "agent.yaml"
    url = f"http://127.0.0.1:{free_port()}/video.mjpg"  # no camera needed to report the models served
    config_path.write_text(
        agent_yaml(
            url, {}, outbox=tmp_path / "outbox.sqlite", port=mosquitto.port, detector=detector_bundle, gender=broken
        )
    )
    receiver = Receiver(mosquitto.port)
    agent = start_agent(config_path)
    try:
        assert receiver.wait_for(lambda: any(s.models for s in receiver.statuses), timeout=60), receiver.statuses
    finally:
        agent.send_signal(signal.SIGTERM)
        _, stderr = agent.communicate(timeout=60)
        receiver.close()
    assert agent.returncode == 0, stderr
    parity_lines = [line for line in stderr.splitlines() if "parity" in line]
    assert len(parity_lines) == 1 and " error " in parity_lines[0], parity_lines
    assert "bundle=audience-v7" in parity_lines[0] and "serving the FP32 reference" in parity_lines[0]
    assert "Traceback" not in stderr
    status = next(s for s in receiver.statuses if s.models)
    served = {m.task: m for m in status.models}
    assert (served["gender-classification"].precision, served["gender-classification"].parity) == ("fp32", "failed")
    assert "tolerance" in (served["gender-classification"].reason or "")
    assert (served["face-detection"].precision, served["face-detection"].parity) == ("int8", "passed")
    assert status.cpu is not None and status.cpu.arch

    server = make_server(f"sqlite:///{tmp_path / 'server.db'}")
    api = next(server)
    try:
        assert api.ingest(encode(status)).status_code == 200
        (row,) = api.get("/api/v1/agents").json()
        models = {m["task"]: m for m in row["models"]}
        assert models["gender-classification"]["precision"] == "fp32"
        assert models["gender-classification"]["parity"] == "failed"
        assert models["face-detection"]["precision"] == "int8"
        assert row["cpu"]["flags"] == status.cpu.flags
    finally:
        server.close()


# -- demographics mode (issue #18) --------------------------------------------------------------------------


def _tell(port: int, mode: str, site: str = "lab") -> None:
    """What the server does: the site's settings, retained on its settings topic."""
    from datetime import UTC, datetime

    import paho.mqtt.publish as publish
    from footfall.core.wire import SiteSettings, encode, site_settings_topic

    told = SiteSettings(site_id=site, demographics=mode, sent_at=datetime.now(UTC))  # type: ignore[arg-type]
    publish.single(site_settings_topic(site), encode(told), qos=1, retain=True, hostname="127.0.0.1", port=port)


def test_a_counts_only_site_runs_no_classifier_sends_no_gender_and_remembers_it_across_a_restart(
    walkby_clip, mosquitto, tmp_path: Path, detector_bundle: Path, gender_bundle: Path
) -> None:
    clip, truth = walkby_clip
    config_path, outbox = tmp_path / "agent.yaml", tmp_path / "outbox.sqlite"
    config_path.write_text(
        agent_yaml(
            clip, truth["camera"], outbox=outbox, port=mosquitto.port, detector=detector_bundle, gender=gender_bundle
        )
    )
    _tell(mosquitto.port, "counts-only")
    receiver = Receiver(mosquitto.port)
    agent = start_agent(config_path)
    try:
        _, stderr = agent.communicate(timeout=180)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert agent.returncode == 0, stderr[-2000:]
    assert receiver.wait_for(lambda: receiver.received > 0 and sum(receiver.totals().values()) > 0, timeout=30)
    with receiver.lock:
        sent = list(receiver.latest.values())
        statuses = [s for s in receiver.statuses if s.state == "online"]
    assert all(message.gender is None for message in sent), "a counts-only site's aggregates carry no gender"
    assert statuses and statuses[-1].demographics == "counts-only"
    assert {m.task for m in statuses[-1].models} == {"face-detection"}, "no classifier is loaded"
    applied = [line for line in stderr.splitlines() if "demographics mode applied" in line]
    assert len(applied) == 1 and "mode=counts-only" in applied[0] and "classifier=none" in applied[0], applied
    receiver.close()

    # Restarted with the broker away: it goes on in the mode it was told, and never loads the classifier.
    mosquitto.stop()
    again = subprocess.run(
        [sys.executable, "-m", "footfall", "agent", "--config", str(config_path), "--drain-seconds", "1"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    starting = next(line for line in again.stderr.splitlines() if "agent starting" in line)
    assert "demographics=counts-only" in starting and "gender" not in starting.split("models=")[1].split()[0], starting
    assert "Traceback" not in again.stderr


def test_switching_to_counts_only_strips_gender_from_what_is_unconfirmed_and_the_floor_holds(tmp_path: Path) -> None:
    """No broker, no camera: the agent's own reaction to the settings, on its outbox."""
    from datetime import UTC, datetime

    from footfall.core.wire import SiteSettings, parse_message
    from footfall.edge.agent import Agent
    from footfall.edge.aggregation import BucketCounts
    from footfall.edge.config import AgentConfig, CameraConfig
    from footfall.edge.demographics import remembered, remembered_path
    from footfall.edge.outbox import Outbox

    def config(**extra: object) -> AgentConfig:
        return AgentConfig(
            agent_id="box-test",
            site_id="lab",
            cameras=[CameraConfig(id="cam1", source="http://127.0.0.1/stream.mjpg")],
            outbox={"path": tmp_path / "outbox.sqlite"},  # type: ignore[arg-type]
            **extra,  # type: ignore[arg-type]
        )

    def told(mode: str, site: str = "lab") -> SiteSettings:
        return SiteSettings(site_id=site, demographics=mode, sent_at=datetime.now(UTC))  # type: ignore[arg-type]

    def rows(outbox: Outbox) -> list:
        return [parse_message(row.payload) for row in outbox.pending()]

    agent = Agent(config())
    agent.outbox = Outbox(tmp_path / "outbox.sqlite")
    emit = agent._emitter("cam1")
    emit("door", 1_763_280_000, BucketCounts(people=3, female=1, male=1, unknown=1))
    emit("hall", 1_763_280_000, BucketCounts(people=2, female=2))
    before = rows(agent.outbox)
    assert all(m.gender is not None for m in before)

    agent._on_settings(told("counts-only", site="lab"))
    assert agent.mode == "counts-only" and agent._strip_due, "paho's thread leaves the strip to the main loop"
    agent._strip_outbox()  # what the main loop does next
    after = rows(agent.outbox)
    assert [(m.zone_id, m.people, m.gender) for m in after] == [("door", 3, None), ("hall", 2, None)]
    assert min(m.seq for m in after) > max(m.seq for m in before)
    # A refusal of the copies sent before the switch leaves the stripped rows to be sent.
    assert agent.outbox.confirm([m.seq for m in before]) == 0 and agent.outbox.depth() == 2
    assert remembered(remembered_path(tmp_path / "outbox.sqlite")) == "counts-only"
    emit("door", 1_763_280_060, BucketCounts(people=4, male=4))
    assert rows(agent.outbox)[-1].gender is None, "a counts-only agent's new aggregates carry no gender"

    agent._on_settings(told("off", site="elsewhere"))  # another site's settings change nothing here
    assert agent.mode == "counts-only"
    agent._on_settings(told("off"))
    emit("door", 1_763_280_120, BucketCounts(people=1, unknown=1))
    assert agent.outbox.depth() == 3, "an 'off' site counts nothing"
    agent._on_settings(told("full"))
    assert agent.mode == "full"
    agent.outbox.close()

    floored = Agent(config(demographics="counts-only"))
    floored.outbox = Outbox(tmp_path / "outbox.sqlite")
    floored._on_settings(told("full"))
    assert floored.mode == "counts-only", "the server cannot loosen the box's own floor"
    floored._on_settings(told("off"))
    assert floored.mode == "off", "a stricter site mode still applies"
    floored.outbox.close()


def test_an_aggregate_the_outbox_cannot_take_is_kept_and_stored_once_it_can(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The agent's emitter on a locked outbox: it says the bucket is not stored (the aggregator keeps it), logs the
    failure once however often it recurs, and stores the bucket when the lock goes."""
    import logging

    from footfall.core.wire import parse_message
    from footfall.edge.agent import Agent
    from footfall.edge.aggregation import BucketCounts, BucketNotStored, ZoneAggregator
    from footfall.edge.config import AgentConfig, CameraConfig
    from footfall.edge.outbox import Outbox

    path = tmp_path / "outbox.sqlite"
    config = AgentConfig(
        agent_id="box-test",
        site_id="lab",
        cameras=[CameraConfig(id="cam1", source="http://127.0.0.1/stream.mjpg")],
        outbox={"path": path},  # type: ignore[arg-type]
    )
    agent = Agent(config)
    agent.outbox = Outbox(path, busy_timeout=0.05)
    aggregator = ZoneAggregator(["door"], 60, agent._emitter("cam1"), base_lookup=agent._base_lookup("cam1"))
    start = 1_763_280_000
    for person, label in enumerate(("female", "male", "female")):
        aggregator.count_person(person, "door", start + 10 * person, label)
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    caplog.set_level(logging.DEBUG, logger="footfall.edge.agent")
    for _ in range(3):
        assert aggregator.flush_due(start + 120) == 0
    with pytest.raises(BucketNotStored):
        agent._emitter("cam1")("door", start, BucketCounts(people=1, unknown=1))
    failures = [r for r in caplog.records if r.getMessage().startswith("aggregates cannot be stored")]
    assert [r.levelno for r in failures][:1] == [logging.ERROR] and len(failures) >= 4
    assert all(r.levelno == logging.DEBUG for r in failures[1:]), "one loud line per run of failures"
    lock.execute("ROLLBACK")
    lock.close()
    assert aggregator.flush_due(start + 180) == 1
    [message] = [parse_message(row.payload) for row in agent.outbox.pending()]
    assert (message.people, message.gender.female, message.gender.male) == (3, 2, 1)  # type: ignore[union-attr]
    assert any(r.getMessage() == "aggregates are stored in the outbox again" for r in caplog.records)
    agent.outbox.close()


def test_an_off_site_reads_no_camera_until_it_is_switched_back(
    walkby_clip, mosquitto, tmp_path: Path, detector_bundle: Path, gender_bundle: Path
) -> None:
    clip, truth = walkby_clip
    config_path = tmp_path / "agent.yaml"
    text = agent_yaml(
        clip, truth["camera"], outbox=tmp_path / "outbox.sqlite", port=mosquitto.port, detector=detector_bundle,
        gender=gender_bundle,
    )  # fmt: skip
    config_path.write_text(text.replace("    realtime: false\n", "    realtime: true\n    loop: true\n"))
    _tell(mosquitto.port, "off")
    receiver = Receiver(mosquitto.port)
    agent = start_agent(config_path)

    def last_status():  # type: ignore[no-untyped-def]
        with receiver.lock:
            online = [s for s in receiver.statuses if s.state == "online"]
        return online[-1] if online else None

    try:
        assert receiver.wait_for(lambda: (s := last_status()) is not None and s.demographics == "off", timeout=90)
        status = last_status()
        assert status.cameras[0].state != "online" and not any(m.task == "gender-classification" for m in status.models)
        _tell(mosquitto.port, "full")
        assert receiver.wait_for(
            lambda: (
                (s := last_status()) is not None
                and s.demographics == "full"
                and s.cameras[0].state == "online"
                and any(m.task == "gender-classification" for m in s.models)
            ),
            timeout=90,
        ), last_status()
    finally:
        agent.send_signal(signal.SIGTERM)
        _, stderr = agent.communicate(timeout=60)
        receiver.close()
    assert agent.returncode in (0, 1), stderr[-2000:]  # 1: a looping camera's last buckets still unconfirmed
    applied = [line.split("mode=")[1].split()[0] for line in stderr.splitlines() if "demographics mode applied" in line]
    assert applied == ["off", "full"], applied
    assert "Traceback" not in stderr


@pytest.mark.parametrize("lock_goes", [False, True], ids=["lock-held-to-the-end", "lock-goes-as-the-agent-stops"])
def test_counts_the_outbox_could_not_take_are_stored_while_the_agent_stops_or_reported_lost(
    lock_goes: bool,
    tmp_path: Path,
    walkby_clip,
    detector_bundle: Path,
    gender_bundle: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another program holds the outbox's write lock from the agent's start: what the camera counted stays in memory
    and is tried again while the agent stops. When the lock goes then, it is stored (and sent on the next start, no
    broker here); when it never goes, the agent says how much is lost and exits non-zero. It logged 'agent stopped;
    outbox empty' and exited 0."""
    import logging
    import threading

    from footfall.edge.agent import Agent

    clip, _ = walkby_clip
    path = tmp_path / "outbox.sqlite"
    config_path = tmp_path / "agent.yaml"
    config_path.write_text(
        # Hour buckets: none is due before the clip ends, so the camera does not wait on the lock at every frame.
        agent_yaml(
            clip, {}, outbox=path, port=free_port(), detector=detector_bundle, gender=gender_bundle, bucket_seconds=3600
        )
        + "metrics: {enabled: false}\n"
    )
    holder: list[sqlite3.Connection] = []

    def release() -> None:
        for connection in holder:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            connection.close()
        holder.clear()

    class LockAtStart(logging.Handler):
        """Takes the outbox's write lock as the agent starts (it has opened the outbox, no camera runs yet), and lets
        it go, with ``lock_goes``, once the cameras have finished (their last attempt to store failed)."""

        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "agent starting":
                holder.append(sqlite3.connect(path, isolation_level=None, check_same_thread=False))
                holder[0].execute("BEGIN EXCLUSIVE")
            elif lock_goes and record.getMessage().startswith("all video files processed"):
                release()

    locker = LockAtStart()
    agent_logger = logging.getLogger("footfall.edge.agent")
    agent_logger.addHandler(locker)
    caplog.set_level(logging.INFO, logger="footfall.edge")
    codes: list[int] = []
    agent = Agent(load_config(config_path))
    runner = threading.Thread(target=lambda: codes.append(agent.run(drain_seconds=1.0)))  # signals: main thread only
    try:
        runner.start()
        runner.join(timeout=300)
    finally:
        agent_logger.removeHandler(locker)
        release()
    assert not runner.is_alive() and codes == [1]
    messages = [r.getMessage() for r in caplog.records]
    assert "aggregates cannot be stored in the outbox; keeping them in memory and retrying" in messages
    assert "agent stopped; outbox empty" not in messages
    lost = [r for r in caplog.records if r.getMessage().startswith("aggregates could not be stored")]
    if lock_goes:
        assert not lost and "aggregates are stored in the outbox again" in messages
        assert outbox_depth(path) >= 1, "stored while the agent stopped: sent on the next start"
        return
    [record] = lost
    assert record.levelno == logging.ERROR
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["cameras"] == "cam1" and fields["buckets"] >= 1 and fields["people"] >= 1, fields
    assert outbox_depth(path) == 0, "nothing reached the outbox: it is lost, as the agent said"


def test_a_second_agent_on_an_outbox_in_use_stops_at_start_with_one_line(tmp_path: Path) -> None:
    from footfall.edge.outbox import Outbox

    path = tmp_path / "outbox.sqlite"
    running = Outbox(path)  # as the first agent holds it
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"agent_id: a\nsite_id: s\ncameras: [{{id: c, source: x.mp4}}]\noutbox: {{path: {path}}}\n"
        "metrics: {enabled: false}\n"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-m", "footfall", "agent", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        running.close()
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"in use by another process (pid {os.getpid()})" in lines[0], result.stderr


def test_a_signal_during_the_final_drain_ends_it_and_keeps_the_counts_for_the_next_start(
    tmp_path: Path, walkby_clip, detector_bundle: Path, gender_bundle: Path
) -> None:
    """Found by attack: a finished agent waiting (--drain-seconds) for a broker that is away ignored SIGTERM, and a
    service manager had to kill it. The counts are in the outbox either way: the wait may end at once."""
    from tests.waiting import eventually

    clip, truth = walkby_clip
    outbox = tmp_path / "outbox.sqlite"
    config = tmp_path / "agent.yaml"
    config.write_text(
        agent_yaml(
            clip, truth["camera"], outbox=outbox, port=free_port(), detector=detector_bundle, gender=gender_bundle
        )
        + "metrics: {enabled: false}\n"
    )
    log = tmp_path / "agent.log"
    with log.open("w") as stderr:
        agent = subprocess.Popen(
            [sys.executable, "-m", "footfall", "agent", "--config", str(config), "--drain-seconds", "3600"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
        try:
            assert eventually(lambda: "delivering what is left" in log.read_text(), timeout=240), log.read_text()
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=60)  # without the fix: 3,600 s
        finally:
            if agent.poll() is None:
                agent.kill()
    text = log.read_text()
    assert agent.returncode == 1, text[-2000:]  # aggregates left in the outbox, sent on the next start
    assert "Traceback" not in text and outbox_depth(outbox) > 0


def test_a_camera_that_does_not_stop_in_time_is_reported_and_writes_nothing_after_the_outbox_closes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A camera's thread still running when the agent stops (stuck in a frame, or in its finish, past the time it is
    waited for) was left out of what the agent reports lost: it said 'agent stopped; outbox empty' and exited 0 while
    the camera's counts never reached the outbox. They are reported lost and the exit status is 1; what the thread
    emits later is refused without a word of 'retrying' (the outbox is closed, nothing retries)."""
    import logging
    import threading

    from footfall.edge.agent import CameraRuntime
    from footfall.edge.aggregation import BucketCounts, BucketNotStored
    from footfall.edge.outbox import Outbox

    agent = one_camera_agent(Outbox(tmp_path / "outbox.sqlite"))
    config = agent.config
    emit = agent._emitter("cam1")
    release = threading.Event()
    late: list[BaseException | None] = []

    class Stuck(threading.Thread):
        """The camera's thread, in a frame that takes longer than the agent waits (30 s, shortened here)."""

        def run(self) -> None:
            release.wait(60)
            try:
                emit("a", 0, BucketCounts(people=3, unknown=3))  # its finish, once the frame is done
                late.append(None)
            except BucketNotStored as exc:
                late.append(exc)

        def join(self, timeout: float | None = None) -> None:
            super().join(0.05)

    class Publisher:
        def stop(self, drain_seconds: float = 0.0, *, cancel: threading.Event | None = None) -> None:
            pass

        def pending(self) -> int:
            assert agent.outbox is not None
            return agent.outbox.depth()

    class Capture:
        def request_stop(self) -> None:
            pass

        def join(self, timeout: float | None = None) -> bool:
            return True

    class Pipeline:
        def unstored(self) -> tuple[int, int]:
            return (0, 0) if late else (1, 3)

        def store_left(self) -> None:
            raise AssertionError("a running camera's pipeline is not touched")

    thread = Stuck(name="pipeline-cam1")
    agent.cameras = [CameraRuntime(camera=config.cameras[0], capture=Capture(), pipeline=Pipeline(), thread=thread)]  # type: ignore[arg-type]
    agent.publisher = Publisher()  # type: ignore[assignment]
    thread.start()
    caplog.set_level(logging.INFO, logger="footfall.edge")
    try:
        code = agent._shutdown(0.2)
    finally:
        release.set()
        threading.Thread.join(thread, timeout=30)  # the thread's own end, not the agent's short wait
    assert code == 1
    messages = [r.getMessage() for r in caplog.records]
    assert "agent stopped; outbox empty" not in messages
    [stuck] = [r for r in caplog.records if r.levelno == logging.ERROR and "did not stop" in r.getMessage()]
    assert stuck.fields["cameras"] == "cam1"  # type: ignore[attr-defined]
    assert len(late) == 1 and isinstance(late[0], BucketNotStored), late
    assert not any("retrying" in m for m in messages), messages


class _Drained:
    """What _shutdown needs of a publisher and of a pipeline that has stored everything it counted."""

    def __init__(self, agent) -> None:  # type: ignore[no-untyped-def]
        self.agent = agent

    def stop(self, drain_seconds: float = 0.0, *, cancel: object = None) -> None:
        pass

    def pending(self) -> int:
        return self.agent.outbox.depth()

    def unstored(self) -> tuple[int, int]:
        return (0, 0)


def test_stopping_tells_every_camera_first_and_waits_for_them_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Reproduced: four RTSP cameras that never answer and a video file; SIGTERM, and the agent exited 46 s later,
    past systemd's TimeoutStopSec=30 (which would have killed it, losing the open buckets). Each camera was told to
    stop only once the one before had been waited for (up to 15 s each) and went on opening its stream meanwhile. All
    are told at once now, waited for against one deadline, and none opens anything once stopping has begun."""
    import logging
    import threading

    from footfall.edge import agent as agent_module
    from footfall.edge import capture as capture_module
    from footfall.edge.agent import CameraRuntime
    from footfall.edge.capture import CameraCapture
    from footfall.edge.config import CameraConfig
    from footfall.edge.outbox import Outbox

    released = threading.Event()
    opens: list[float] = []

    def stuck_open(source: object, **_: object) -> None:
        """An open inside OpenCV, which nothing interrupts (a stream that answers and then stalls)."""
        opens.append(time.monotonic())
        released.wait(60)

    monkeypatch.setattr(capture_module, "open_capture", stuck_open)
    monkeypatch.setattr(capture_module, "probe_stream", lambda *args, **kwargs: None, raising=False)
    monkeypatch.setattr(agent_module, "CAMERA_STOP_SECONDS", 1.0, raising=False)
    agent = one_camera_agent(Outbox(tmp_path / "outbox.sqlite"))
    drained = _Drained(agent)
    cameras = [CameraConfig(id=f"s{i}", source=f"rtsp://10.0.0.{i}/live") for i in range(4)]
    captures = [CameraCapture(camera).start() for camera in cameras]
    agent.cameras = [CameraRuntime(camera=c.camera, capture=c, pipeline=drained) for c in captures]  # type: ignore[arg-type]
    agent.publisher = drained  # type: ignore[assignment]
    caplog.set_level(logging.INFO, logger="footfall.edge")
    try:
        assert eventually(lambda: len(opens) >= 1 and all(c.state == "connecting" for c in captures), 30)
        stopping = time.monotonic()
        code = agent._shutdown(0.2)
        took = time.monotonic() - stopping
    finally:
        released.set()
        for capture in captures:
            capture.stop()
    assert took < 3, f"stopping took {took:.1f} s"
    assert not [t for t in opens if t >= stopping], "a camera opened its stream after stopping had begun"
    assert code == 0  # a capture still in its open holds nothing counted: the pipelines have stored everything
    [late] = [r for r in caplog.records if "captures did not stop" in r.getMessage()]
    assert late.levelno == logging.WARNING and len(late.fields["cameras"].split(",")) == len(opens)  # type: ignore[attr-defined]


def test_an_agent_stopped_while_its_site_is_off_stops_cleanly(tmp_path: Path) -> None:
    """A site told 'off' before the agent started: its cameras were never started, and stopping the agent raised
    'cannot join thread before it is started' from the first one."""
    from footfall.edge.agent import CameraRuntime
    from footfall.edge.capture import CameraCapture
    from footfall.edge.outbox import Outbox

    agent = one_camera_agent(Outbox(tmp_path / "outbox.sqlite"))
    drained = _Drained(agent)
    camera = agent.config.cameras[0]
    agent.cameras = [CameraRuntime(camera=camera, capture=CameraCapture(camera), pipeline=drained)]  # type: ignore[arg-type]
    agent.cameras[0].halt.set()
    agent.publisher = drained  # type: ignore[assignment]
    assert agent._shutdown(0.2) == 0


def test_a_running_agent_forgets_old_bucket_counts_every_hour(tmp_path: Path) -> None:
    """Bucket counts too old for a restart to reopen were forgotten only when the agent started, so a box that ran
    for months kept every bucket it ever counted (a month of 60 s buckets for 4 cameras: some 350,000 rows)."""
    from footfall.edge import agent as agent_module
    from footfall.edge.aggregation import BucketCounts
    from footfall.edge.outbox import Outbox

    clock = [time.time() - 3 * 86_400]  # three days ago, older than the two days a restart may reopen
    outbox = Outbox(tmp_path / "outbox.sqlite", clock=lambda: clock[0])
    outbox.add("cam1/a/0", "t", lambda seq: b"{}", BucketCounts(people=2, unknown=2))
    clock[0] = time.time()
    agent = one_camera_agent(outbox)
    try:
        agent._prune_when_due()  # not due yet: the agent pruned as it started
        assert outbox.bucket_counts("cam1/a/0") is not None
        agent._next_prune -= agent_module.PRUNE_EVERY_S  # an hour later
        agent._prune_when_due()
        assert outbox.bucket_counts("cam1/a/0") is None
    finally:
        outbox.close()


def test_the_heartbeat_reports_no_frame_rate_or_latency_for_a_camera_that_is_not_reading(tmp_path: Path) -> None:
    """Found in a new-user review: while a camera reconnected (or its site was 'off'), heartbeats kept its last
    30 s frame rate and latency (fps 4.32, latency 29.6 ms), and the final 'offline' status carried a latency:
    figures of frames no longer processed. A camera reports a rate only while it reads, the latency is of cameras
    that read, and an agent going offline reports neither."""
    from types import SimpleNamespace

    from footfall.edge.agent import CameraRuntime
    from footfall.edge.outbox import Outbox

    agent = one_camera_agent(Outbox(tmp_path / "outbox.sqlite"))
    capture = SimpleNamespace(state="online", error=None)
    runtime = CameraRuntime(camera=agent.config.cameras[0], capture=capture, pipeline=None)  # type: ignore[arg-type]
    agent.cameras = [runtime]
    runtime.window = [(time.monotonic() - 10.0, 0)]
    runtime.frames, runtime.latency_s = 40, 0.0296
    reading = agent.status("online")
    assert reading.cameras[0].fps > 3 and reading.fps == reading.cameras[0].fps and reading.latency_ms == 29.6
    capture.state, capture.error = "connecting", "x.mp4: stream stopped delivering frames"
    reconnecting = agent.status("online")
    assert (reconnecting.cameras[0].state, reconnecting.cameras[0].fps, reconnecting.fps) == ("connecting", 0.0, 0.0)
    assert reconnecting.latency_ms == 0.0
    capture.state = "online"
    gone = agent.status("offline")
    assert (gone.fps, gone.latency_ms) == (0.0, 0.0)


# The installed `footfall` command as its script runs it, once Python is up (it says so on stdout): a Ctrl-C during
# Python's own start (its site module) is Python's to report.
AS_INSTALLED = "import sys; print('up', flush=True); from footfall.cli import main; sys.argv[0] = 'footfall'; main()"


def test_ctrl_c_while_the_agent_starts_is_one_line_not_a_traceback(
    tmp_path: Path, detector_bundle: Path, gender_bundle: Path
) -> None:
    """Found in review: Ctrl-C in the first half second of `footfall agent` printed a KeyboardInterrupt traceback from
    the middle of an import (typer and the commands were imported before anything could catch it), and inside
    onnxruntime's import it came out as 'ImportError: initialization failed'. Stopped before the agent took over its
    signals, it says so in one line and exits 130; stopped later, the agent stops as it always does on SIGINT."""
    from footfall.demo import sample_clip

    config = tmp_path / "agent.yaml"
    text = agent_yaml(
        sample_clip(),
        {},
        outbox=tmp_path / "outbox.sqlite",
        port=free_port(),
        detector=detector_bundle,
        gender=gender_bundle,
    )
    # A clip played in a loop: the agent runs until it is stopped, whenever the Ctrl-C comes.
    config.write_text(text.replace("realtime: false", "realtime: true\n    loop: true") + "metrics: {enabled: false}\n")
    before_the_agent = 0
    for delay in (0.01, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0):
        agent = subprocess.Popen(
            [sys.executable, "-c", AS_INSTALLED, "agent", "--config", str(config), "--drain-seconds", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert agent.stdout is not None and agent.stdout.readline() == "up\n"
        time.sleep(delay)  # when the Ctrl-C comes is what this test varies; nothing is waited for
        agent.send_signal(signal.SIGINT)
        _, stderr = agent.communicate(timeout=120)
        assert not any(word in stderr for word in ("Traceback", "KeyboardInterrupt", "ImportError")), (delay, stderr)
        if "stopping signal=SIGINT" in stderr:  # the agent's own stop: the outbox is kept for the next start
            assert agent.returncode in (0, 1), (delay, agent.returncode, stderr)
            continue
        assert agent.returncode == 130, (delay, agent.returncode, stderr)
        assert stderr.strip().splitlines()[-1].endswith("footfall: stopped signal=SIGINT"), (delay, stderr)
        before_the_agent += 1
    assert before_the_agent, "no Ctrl-C came while the agent was starting"
