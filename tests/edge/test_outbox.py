"""The durable outbox and its delivery to a real mosquitto: nothing lost, nothing double-counted."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from footfall.core.wire import AgentStatus, parse_message
from footfall.edge.aggregation import BucketCounts
from footfall.edge.config import AgentConfig, CameraConfig, MqttConfig
from footfall.edge.delivery import MqttPublisher
from footfall.edge.messages import aggregate_message, bucket_key
from footfall.edge.outbox import Outbox

TOPIC = "footfall/v1/lab/box-test/aggregates"


def add(outbox: Outbox, zone: str, start: int, people: int) -> int:
    counts = BucketCounts(people=people, unknown=people)

    def payload(seq: int) -> bytes:
        message = aggregate_message(
            agent_id="box-test",
            site_id="lab",
            camera_id="cam1",
            zone_id=zone,
            bucket_start=start,
            bucket_seconds=60,
            counts=counts,
            seq=seq,
        )
        return message.model_dump_json().encode()

    return outbox.add(bucket_key("cam1", zone, start), TOPIC, payload, counts)


def test_rows_survive_a_restart_and_seq_keeps_rising(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    outbox = Outbox(path)
    first = add(outbox, "a", 0, 1)
    second = add(outbox, "b", 0, 2)
    assert second > first
    outbox.close()  # as a crash would leave it: nothing acknowledged
    reopened = Outbox(path)
    rows = reopened.pending()
    assert [parse_message(r.payload).zone_id for r in rows] == ["a", "b"]
    assert add(reopened, "c", 0, 3) > second
    assert reopened.bucket_counts(bucket_key("cam1", "b", 0)) == BucketCounts(people=2, unknown=2)
    reopened.acknowledge(rows[0].id)
    assert reopened.depth() == 2


def test_newer_count_of_a_bucket_replaces_the_unsent_one(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    add(outbox, "a", 0, 1)
    add(outbox, "a", 0, 5)
    rows = outbox.pending()
    assert len(rows) == 1 and parse_message(rows[0].payload).people == 5


def test_cap_drops_the_oldest_with_a_loud_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", max_messages=10)
    with caplog.at_level(logging.WARNING, logger="footfall.edge.outbox"):
        for start in range(12):
            add(outbox, "a", start * 60, 1)
    assert outbox.depth() == 10
    assert outbox.dropped == 2
    assert any("outbox full" in r.getMessage() for r in caplog.records)
    starts = [parse_message(r.payload).bucket_start.timestamp() for r in outbox.pending()]
    assert min(starts) == 120  # the two oldest went


class Receiver:
    """Subscribes like the server does: keeps the highest seq per bucket key, on a persistent session."""

    def __init__(self, port: int):
        self.latest: dict[tuple, object] = {}
        self.received = 0
        self.statuses: list[AgentStatus] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"receiver-{port}", clean_session=False
        )
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe("footfall/v1/#", qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        parsed = parse_message(message.payload)
        with self.lock:
            if parsed.kind == "status":
                self.statuses.append(parsed)
                return
            self.received += 1
            if parsed.key not in self.latest or self.latest[parsed.key].seq < parsed.seq:
                self.latest[parsed.key] = parsed

    def totals(self) -> dict[str, int]:
        with self.lock:
            totals: dict[str, int] = {}
            for message in self.latest.values():
                totals[message.zone_id] = totals.get(message.zone_id, 0) + message.people
            return totals

    def wait_for(self, predicate, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _config(port: int) -> AgentConfig:
    return AgentConfig(
        agent_id="box-test",
        site_id="lab",
        cameras=[CameraConfig(id="cam1", source="x.mp4")],
        mqtt=MqttConfig(host="127.0.0.1", port=port),
    )


def _status(state: str) -> AgentStatus:
    from datetime import UTC, datetime

    return AgentStatus(agent_id="box-test", site_id="lab", state=state, sent_at=datetime.now(UTC))


@pytest.mark.broker
def test_ack_removes_and_restart_replays(tmp_path: Path, mosquitto) -> None:
    receiver = Receiver(mosquitto.port)
    path = tmp_path / "outbox.sqlite"
    outbox = Outbox(path)
    publisher = MqttPublisher(_config(mosquitto.port), outbox, _status)
    publisher.start()
    try:
        for start in range(5):
            add(outbox, "a", start * 60, start + 1)
            publisher.notify()
        assert publisher.wait_drained(10), "acknowledged rows must leave the outbox"
        assert receiver.wait_for(lambda: len(receiver.latest) == 5)
        # Broker down: the rows wait in the outbox; the publisher never blocks the caller.
        mosquitto.stop()
        started = time.monotonic()
        for start in range(5, 12):
            add(outbox, "a", start * 60, start + 1)
            publisher.notify()
        assert time.monotonic() - started < 2
        time.sleep(0.5)
        assert outbox.depth() == 7
    finally:
        publisher.stop()
        outbox.close()
    # The agent restarts while the broker is still down, then the broker comes back.
    outbox = Outbox(path)
    assert outbox.depth() == 7
    publisher = MqttPublisher(_config(mosquitto.port), outbox, _status)
    publisher.start()
    mosquitto.start()
    try:
        assert publisher.wait_drained(30), (
            f"{outbox.depth()} rows never acknowledged after the broker came back"
        )
        assert receiver.wait_for(lambda: len(receiver.latest) == 12, timeout=20)
        assert receiver.totals() == {"a": sum(range(1, 13))}
    finally:
        publisher.stop()
        outbox.close()
        receiver.close()
