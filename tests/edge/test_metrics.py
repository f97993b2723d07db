"""The agent's Prometheus metrics: the exposition parsed with Prometheus' own text parser, unit by unit and
scraped over HTTP from an agent counting a clip against a real mosquitto whose broker goes away mid-run."""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

import pytest
from footfall.core.wire import ModelServing
from footfall.edge.config import ConfigError, parse_config
from footfall.edge.metrics import AgentMetrics
from footfall.edge.outbox import Outbox
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from footfall.broker import free_port
from tests.edge.conftest import agent_yaml, make_walkby_clip, one_camera_agent
from tests.edge.test_outbox import Receiver, add
from tests.waiting import eventually

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((f"footfall_agent_{name}", frozenset(labels.items())))


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(k[1])[label]: v for k, v in samples.items() if k[0] == f"footfall_agent_{name}"}


def scrape(port: int) -> Samples | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return parse(response.read().decode())
    except OSError:
        return None


def test_metrics_exposition_parses_with_prometheus_names_and_labels(tmp_path: Path) -> None:
    metrics = AgentMetrics()
    camera = metrics.camera("cam1")
    for _ in range(5):
        camera.frames_read.inc()
    for _ in range(3):
        camera.frames_processed.inc()
        camera.detect.observe(0.012)
        camera.track.observe(0.0004)
        camera.classify.observe(0.003)
    camera.dropped_overwritten.inc()
    camera.dropped_rate_limit.inc()
    camera.faces_detected.inc(7)
    # Full counts of a bucket are queued again as they grow: the counter adds only the growth, and a bucket an
    # earlier run already counted 2 people in (restart mid-bucket) adds only what this run counted.
    metrics.people_queued("cam1", "door", 60, 3, lambda: 0, lambda: 1)
    metrics.people_queued("cam1", "door", 60, 5, lambda: pytest.fail("asked once per bucket"), lambda: 2)
    metrics.people_queued("cam1", "door", 120, 6, lambda: 2, lambda: 1)
    metrics.receipt(stored=4, refused=1)
    metrics.connected(True)
    metrics.connected(False)
    metrics.connected(True)
    metrics.watch_camera("cam1", lambda: True, lambda: 12.5, configured_fps=15.0)
    outbox = Outbox(tmp_path / "outbox.sqlite", clock=lambda: time.time() - 30)
    add(outbox, "door", 60, 5)
    add(outbox, "door", 120, 6)
    metrics.watch_outbox(outbox)
    metrics.set_models(
        [
            ModelServing(bundle="centerface", task="face-detection", precision="int8", parity="passed"),
            ModelServing(
                bundle="audience-v4",
                task="gender-classification",
                precision="fp32",
                parity="failed",
                reason="INT8 parity probe failed on this CPU",
            ),
        ]
    )
    samples = parse(generate_latest(metrics.registry).decode())

    assert value(samples, "frames_read_total", camera="cam1") == 5
    assert value(samples, "frames_processed_total", camera="cam1") == 3
    assert value(samples, "frames_dropped_total", camera="cam1", reason="overwritten") == 1
    assert value(samples, "frames_dropped_total", camera="cam1", reason="rate_limit") == 1
    assert value(samples, "faces_detected_total", camera="cam1") == 7
    assert value(samples, "people_counted_total", camera="cam1", zone="door") == 5 + 4
    assert value(samples, "stage_duration_seconds_count", camera="cam1", stage="detect") == 3
    assert value(samples, "stage_duration_seconds_bucket", camera="cam1", stage="detect", le="0.01") == 0
    assert value(samples, "stage_duration_seconds_bucket", camera="cam1", stage="detect", le="0.02") == 3
    assert value(samples, "stage_duration_seconds_bucket", camera="cam1", stage="track", le="0.0005") == 3
    assert value(samples, "receipts_total", result="stored") == 4
    assert value(samples, "receipts_total", result="refused") == 1
    assert value(samples, "mqtt_connected") == 1
    assert value(samples, "mqtt_reconnects_total") == 1
    assert value(samples, "camera_up", camera="cam1") == 1
    assert value(samples, "processing_fps", camera="cam1") == 12.5
    assert value(samples, "configured_fps", camera="cam1") == 15.0
    assert value(samples, "outbox_depth") == 2
    assert 29 <= (value(samples, "outbox_oldest_unconfirmed_age_seconds") or 0) < 60
    info = {dict(k[1])["model"]: dict(k[1]) for k in samples if k[0] == "footfall_agent_model_info"}
    assert info["centerface"]["precision"] == "int8" and info["audience-v4"]["precision"] == "fp32"
    assert info["audience-v4"]["reason"] == "INT8 parity probe failed on this CPU"
    assert all(name.startswith("footfall_agent_") for name, _ in samples)

    assert value(samples, "aggregates_dropped_total", reason="outbox_full") == 0  # there before any loss
    assert value(samples, "aggregates_dropped_total", reason="not_stored") == 0

    # Counts lost are counted: the outbox's cap dropping its oldest, a bucket held past the aggregator's hold.
    outbox.max_messages = 1
    add(outbox, "door", 180, 7)
    camera.aggregates_not_stored.inc(3)
    samples = parse(generate_latest(metrics.registry).decode())
    assert value(samples, "aggregates_dropped_total", reason="outbox_full") == 2
    assert value(samples, "aggregates_dropped_total", reason="not_stored") == 3

    # Closed outbox: the agent leaves the depth it stopped with; an empty outbox has no age.
    metrics.watch_outbox(None, final_depth=0)
    outbox.close()
    samples = parse(generate_latest(metrics.registry).decode())
    assert value(samples, "outbox_depth") == 0 and value(samples, "outbox_oldest_unconfirmed_age_seconds") == 0


def test_metrics_served_on_loopback_and_stopped() -> None:
    metrics = AgentMetrics()
    port = free_port()
    assert metrics.serve("127.0.0.1", port)
    try:
        samples = scrape(port)
        assert samples is not None and value(samples, "mqtt_connected") == 0
        other = AgentMetrics()
        assert not other.serve("127.0.0.1", port), "a busy port is reported, not fatal"
    finally:
        metrics.stop()
    assert scrape(port) is None


def test_metrics_config_defaults_and_errors() -> None:
    base = "agent_id: a\nsite_id: s\ncameras: [{id: c, source: x.mp4}]\n"
    config = parse_config(base)
    assert (config.metrics.enabled, config.metrics.host, config.metrics.port) == (True, "127.0.0.1", 9464)
    assert not parse_config(base + "metrics: {enabled: false}\n").metrics.enabled
    assert parse_config(base + "metrics: {host: 0.0.0.0, port: 9100}\n").metrics.port == 9100
    with pytest.raises(ConfigError, match=r"<config>:4: metrics.host: .*not an IP address to listen on"):
        parse_config(base + "metrics: {host: 'my box'}\n")
    with pytest.raises(ConfigError, match=r"metrics.port: Input should be less than or equal to 65535"):
        parse_config(base + "metrics: {port: 70000}\n")


@pytest.mark.broker
@pytest.mark.slow
def test_agent_metrics_match_the_run_and_outbox_depth_follows_the_broker(
    data_dir: Path, mosquitto, tmp_path: Path, detector_bundle: Path, gender_bundle: Path, models
) -> None:
    import cv2
    from footfall.edge.agent import Agent

    clip, truth = make_walkby_clip(data_dir, tmp_path / "clip", people=5, seed=3)
    capture = cv2.VideoCapture(str(clip))
    clip_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    port = free_port()
    text = agent_yaml(
        clip,
        truth["camera"],
        outbox=tmp_path / "outbox.sqlite",
        port=mosquitto.port,
        detector=detector_bundle,
        gender=gender_bundle,
    )
    config = parse_config(text + f"metrics: {{port: {port}}}\n")
    receiver = Receiver(mosquitto.port)
    agent = Agent(config, models=models)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(agent.run(drain_seconds=40)), daemon=True)
    thread.start()
    try:
        assert eventually(lambda: value(scrape(port) or {}, "mqtt_connected") == 1, 30), (
            "agent connected, metrics served"
        )
        mosquitto.stop()  # the broker goes away while the agent counts
        down: dict[str, float] = {}

        def piled_up() -> bool:
            samples = scrape(port) or {}
            down.update(
                depth=value(samples, "outbox_depth") or 0,
                age=value(samples, "outbox_oldest_unconfirmed_age_seconds") or 0,
                connected=value(samples, "mqtt_connected") or 0,
            )
            return down["depth"] >= 2 and down["connected"] == 0

        assert eventually(piled_up, 60), f"outbox depth must rise while the broker is down: {down}"
        assert thread.is_alive(), "the agent keeps running without its broker"
        mosquitto.start()
        drained_over_http = eventually(
            lambda: not thread.is_alive() or value(scrape(port) or {}, "outbox_depth") == 0, 60
        )
        assert drained_over_http
        thread.join(timeout=60)
    finally:
        if thread.is_alive():
            agent.stop_event.set()
            thread.join(timeout=30)
    assert result == [0], "the server confirmed everything"
    assert scrape(port) is None, "the metrics endpoint stops with the agent"

    assert agent.metrics is not None
    samples = parse(generate_latest(agent.metrics.registry).decode())
    runtime = agent.cameras[0]
    assert value(samples, "outbox_depth") == 0
    assert value(samples, "frames_read_total", camera="cam1") == runtime.capture.frames_read == clip_frames
    assert value(samples, "frames_processed_total", camera="cam1") == runtime.frames == runtime.pipeline.frames
    dropped = by_label(samples, "frames_dropped_total", "reason")
    assert runtime.frames + sum(dropped.values()) == clip_frames
    assert value(samples, "stage_duration_seconds_count", camera="cam1", stage="detect") == runtime.frames
    assert (value(samples, "faces_detected_total", camera="cam1") or 0) > 0
    people = by_label(samples, "people_counted_total", "zone")
    assert receiver.wait_for(lambda: receiver.totals() == {z: int(n) for z, n in people.items() if n}), (
        receiver.totals(),
        people,
    )
    assert sum(people.values()) > 0
    stored = value(samples, "receipts_total", result="stored") or 0
    assert len(receiver.latest) <= stored <= receiver.received, "every bucket's last message confirmed"
    assert value(samples, "receipts_total", result="refused") == 0
    assert (value(samples, "mqtt_reconnects_total") or 0) >= 1
    assert value(samples, "camera_up", camera="cam1") == 0, "end of the video: camera down"
    assert value(samples, "configured_fps", camera="cam1") == config.cameras[0].fps
    precisions = by_label(samples, "model_info", "precision")
    assert set(precisions) <= {"int8", "fp32"} and len(precisions) >= 1
    receiver.close()


def test_people_the_outbox_refuses_are_not_counted_until_it_stores_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """people_counted_total says 'people counted into the aggregates queued for delivery'. It was raised before the
    outbox stored the bucket, so a bucket the outbox refused (a full disk) read as counted, and stayed so if the
    agent then stopped with it lost. It is raised once the bucket is stored, by the growth the store made."""
    from footfall.edge.aggregation import BucketCounts, BucketNotStored
    from footfall.edge.outbox import OutboxError

    agent = one_camera_agent(outbox := Outbox(tmp_path / "outbox.sqlite"))
    agent.metrics = AgentMetrics()
    emit = agent._emitter("cam1")

    def counted() -> float:
        assert agent.metrics is not None
        samples = parse(generate_latest(agent.metrics.registry).decode())
        return value(samples, "people_counted_total", camera="cam1", zone="door") or 0

    def full_disk(*args: object) -> int:
        raise OutboxError("database or disk is full")

    try:
        with monkeypatch.context() as patched:
            patched.setattr(outbox, "add", full_disk)
            with pytest.raises(BucketNotStored, match="disk is full"):
                emit("door", 60, BucketCounts(people=4, unknown=4))
        assert counted() == 0, "nothing was queued"
        emit("door", 60, BucketCounts(people=4, unknown=4))  # the aggregator's retry, once there is room
        assert counted() == 4
        emit("door", 60, BucketCounts(people=6, unknown=6))  # the bucket grows: its growth is added
        assert counted() == 6
    finally:
        outbox.close()
