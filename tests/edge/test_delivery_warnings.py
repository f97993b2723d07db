"""What the publisher tells the operator about its broker and the server's receipts: each problem once per episode,
naming what to check (the README promises connection problems are logged once per outage).

The episodes are timed on the publisher's clock: the unit tests drive its paho callbacks with a fake one; the broker
tests run the publisher against a real mosquitto and wait on conditions, never on fixed sleeps."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from footfall.core.wire import AgentStatus, DeferredSeq, Receipt, ServerOnline, encode, parse_message
from footfall.edge.aggregation import BucketCounts
from footfall.edge.config import AgentConfig, CameraConfig, MqttConfig
from footfall.edge.delivery import (
    CLOCK_OFF,
    DEFERRED,
    QUICK_DROP_SECONDS,
    QUICK_DROPS,
    RECEIPT_WAIT_SECONDS,
    MqttPublisher,
)
from footfall.edge.messages import CameraMessages, bucket_key
from footfall.edge.outbox import Outbox

from footfall.broker import MosquittoBroker
from tests.waiting import eventually, wait_until

SITE, AGENT = "lab", "box-test"
TOPIC = f"footfall/v1/{SITE}/{AGENT}/aggregates"
CAM1 = CameraMessages(agent_id=AGENT, site_id=SITE, camera_id="cam1", bucket_seconds=60)
LOGGER = "footfall.edge.delivery"

RECEIPTS_MISSING = "the broker takes the aggregates but no server's receipt comes"
RECEIPTS_AGAIN = "the server's receipts arrive again"
CLASH = "the broker keeps dropping the connection soon after it is made"
CONNECTION_LOST = "broker connection lost; buffering in the outbox and retrying"
REFUSED = "broker refused the connection"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class StubClient:
    """Stands in for paho's client where a test drives the callbacks itself: every publish succeeds."""

    def __init__(self) -> None:
        self.published: list[str] = []

    def subscribe(self, *args: Any, **kwargs: Any) -> tuple[int, int]:
        return mqtt.MQTT_ERR_SUCCESS, 1

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> SimpleNamespace:
        self.published.append(topic)
        return SimpleNamespace(rc=mqtt.MQTT_ERR_SUCCESS, mid=len(self.published))


def _config(port: int = 1, **mqtt_fields: Any) -> AgentConfig:
    return AgentConfig(
        agent_id=AGENT,
        site_id=SITE,
        cameras=[CameraConfig(id="cam1", source="x.mp4")],
        mqtt=MqttConfig(host="127.0.0.1", port=port, **mqtt_fields),
    )


def _status(state: str) -> AgentStatus:
    return AgentStatus(agent_id=AGENT, site_id=SITE, state=state, sent_at=datetime.now(UTC))


def add(outbox: Outbox, zone: str, start: int, people: int) -> int:
    counts = BucketCounts(people=people, unknown=people)

    def payload(seq: int) -> bytes:
        return CAM1.message(zone, start, counts, seq).model_dump_json().encode()

    return outbox.add(bucket_key("cam1", zone, start), TOPIC, payload, counts)


def _records(caplog: pytest.LogCaptureFixture, message: str, level: int | None = None) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == LOGGER and r.getMessage().startswith(message) and (level is None or r.levelno == level)
    ]


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return record.fields  # type: ignore[attr-defined,no-any-return]


@pytest.fixture()
def driven(tmp_path: Path):
    """A publisher that is never started, on a fake clock, with a stub in place of paho's client."""
    clock = Clock()
    outbox = Outbox(tmp_path / "outbox.sqlite")
    publisher = MqttPublisher(_config(), outbox, _status, clock=clock)
    stub = StubClient()
    publisher.client = stub  # type: ignore[assignment]
    yield SimpleNamespace(publisher=publisher, clock=clock, outbox=outbox, client=stub)
    outbox.close()


def _connect(publisher: MqttPublisher, code: int = 0) -> None:
    publisher._on_connect(
        publisher.client, None, mqtt.ConnectFlags(False), mqtt.convert_connack_rc_to_reason_code(code), None
    )


def _drop(publisher: MqttPublisher) -> None:
    publisher._on_disconnect(
        publisher.client,
        None,
        mqtt.DisconnectFlags(False),
        mqtt.convert_disconnect_error_code_to_reason_code(mqtt.MQTT_ERR_CONN_LOST),
        None,
    )


# -- publishes the broker takes, receipts that never come ----------------------------------------------------------
def test_no_receipt_for_long_is_said_once_naming_the_topic_and_what_to_check(
    driven: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by review: with the broker's ACL dropping the agent's publishes (a site_id the ACL does not name) or no
    server subscribed, the log said 'connected' and then only heartbeats with a growing outbox."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    publisher, clock = driven.publisher, driven.clock
    _connect(publisher)
    seq = add(driven.outbox, "a", 0, 2)
    assert publisher._send_due(10) == 1
    clock.now += RECEIPT_WAIT_SECONDS - 1
    publisher._watch()
    assert not _records(caplog, RECEIPTS_MISSING), "not yet: a server may be slow"
    clock.now += 2
    publisher._watch()
    (warning,) = _records(caplog, RECEIPTS_MISSING)
    assert warning.levelno == logging.WARNING
    fields = _fields(warning)
    assert fields["topic"] == f"footfall/v1/{SITE}/{AGENT}/#"
    assert (fields["site"], fields["agent"]) == (SITE, AGENT)
    assert "ACL" in warning.getMessage() and "footfall server" in warning.getMessage()
    # Once per episode: later looks, a reconnect and the resends that follow say nothing more at WARNING.
    for _ in range(3):
        clock.now += 600
        publisher._watch()
    _drop(publisher)
    _connect(publisher)
    assert publisher._send_due(10) == 1
    clock.now += 2 * RECEIPT_WAIT_SECONDS
    publisher._watch()
    assert len(_records(caplog, RECEIPTS_MISSING, logging.WARNING)) == 1
    # The receipts come again: said once; a later silence is a new episode.
    publisher._on_receipt(Receipt(agent_id=AGENT, site_id=SITE, stored=[seq]))
    publisher._on_receipt(Receipt(agent_id=AGENT, site_id=SITE))
    (recovered,) = _records(caplog, RECEIPTS_AGAIN)
    assert recovered.levelno == logging.INFO
    add(driven.outbox, "a", 60, 1)
    assert publisher._send_due(10) == 1
    clock.now += RECEIPT_WAIT_SECONDS + 1
    publisher._watch()
    assert len(_records(caplog, RECEIPTS_MISSING, logging.WARNING)) == 2


def test_no_warning_while_disconnected_or_when_nothing_waits(
    driven: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    publisher, clock = driven.publisher, driven.clock
    _connect(publisher)
    clock.now += 10 * RECEIPT_WAIT_SECONDS  # connected, nothing sent
    publisher._watch()
    add(driven.outbox, "a", 0, 2)
    assert publisher._send_due(10) == 1
    _drop(publisher)  # the broker is away: the heartbeat and 'connection lost' say so already
    clock.now += 10 * RECEIPT_WAIT_SECONDS
    publisher._watch()
    assert not _records(caplog, RECEIPTS_MISSING)


@pytest.mark.broker
def test_publishes_an_acl_drops_are_reported_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The reproduction: the broker's ACL names another site, so mosquitto acknowledges the agent's publishes (MQTT
    3.1.1 has no way to say no) and drops them."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    acl = tmp_path / "acl"
    acl.write_text(f"topic readwrite footfall/v1/mall-north/{AGENT}/#\ntopic read footfall/v1/_servers/#\n")
    broker = MosquittoBroker(workdir=tmp_path / "mosquitto", acl_file=acl).start()
    clock = Clock()
    outbox = Outbox(tmp_path / "outbox.sqlite")
    publisher = MqttPublisher(_config(broker.port), outbox, _status, clock=clock)
    publisher.start()
    try:
        add(outbox, "a", 0, 2)
        publisher.notify()
        wait_until(lambda: publisher.connected and publisher.sent >= 1)
        clock.now += RECEIPT_WAIT_SECONDS + 1
        wait_until(lambda: bool(_records(caplog, RECEIPTS_MISSING)))  # the sender looks at least once a second
        assert outbox.depth() == 1
    finally:
        publisher.stop()
        outbox.close()
        broker.stop()
    (warning,) = _records(caplog, RECEIPTS_MISSING)
    assert warning.levelno == logging.WARNING and _fields(warning)["topic"] == f"footfall/v1/{SITE}/{AGENT}/#"


# -- two boxes with one client id ----------------------------------------------------------------------------------
def test_connections_dropped_soon_after_they_are_made_suggest_a_client_id_clash(
    driven: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by review: two boxes with the same agent_id knocked each other off the broker every ~2 s; MQTT 3.1.1
    gives no reason, and the log said 'connection lost ... reason=Unspecified error' 20 times in 40 s."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    publisher, clock = driven.publisher, driven.clock
    for _ in range(QUICK_DROPS - 1):
        _connect(publisher)
        clock.now += 2
        _drop(publisher)
        clock.now += 1
    assert not _records(caplog, CLASH)
    for _ in range(5):
        _connect(publisher)
        clock.now += 2
        _drop(publisher)
        clock.now += 1
    (warning,) = _records(caplog, CLASH, logging.WARNING)
    assert _fields(warning)["client_id"] == f"footfall-{AGENT}"
    assert "same client id" in warning.getMessage() and "agent_id" in warning.getMessage()
    # Each drop of the episode was an outage of its own; past the warning they go to DEBUG.
    assert len(_records(caplog, CONNECTION_LOST, logging.WARNING)) == QUICK_DROPS
    # A connection that holds ends the episode; a new run of quick drops warns again.
    _connect(publisher)
    clock.now += QUICK_DROP_SECONDS + 1
    publisher._watch()
    _drop(publisher)
    for _ in range(QUICK_DROPS):
        _connect(publisher)
        clock.now += 2
        _drop(publisher)
    assert len(_records(caplog, CLASH, logging.WARNING)) == 2


def test_drops_of_connections_that_held_are_no_clash(driven: SimpleNamespace, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    publisher, clock = driven.publisher, driven.clock
    for _ in range(2 * QUICK_DROPS):
        _connect(publisher)
        clock.now += QUICK_DROP_SECONDS + 5
        _drop(publisher)
        clock.now += 1
    assert not _records(caplog, CLASH)
    assert len(_records(caplog, CONNECTION_LOST, logging.WARNING)) == 2 * QUICK_DROPS


@pytest.mark.broker
def test_two_agents_with_one_client_id_are_told(
    tmp_path: Path, mosquitto: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """The reproduction: two publishers of one agent_id on one broker take turns knocking each other off."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    outboxes = [Outbox(tmp_path / f"outbox{i}.sqlite") for i in range(2)]
    publishers = [MqttPublisher(_config(mosquitto.port), outbox, _status) for outbox in outboxes]
    for publisher in publishers:
        publisher.start()
    try:
        assert eventually(lambda: bool(_records(caplog, CLASH)), 60), "the broker drops one of them every ~2 s"
    finally:
        for publisher, outbox in zip(publishers, outboxes, strict=True):
            publisher.stop()
            outbox.close()
    warning = _records(caplog, CLASH)[0]
    assert warning.levelno == logging.WARNING and _fields(warning)["client_id"] == f"footfall-{AGENT}"


# -- a broker that refuses the agent -------------------------------------------------------------------------------
def test_a_refusal_is_said_once_per_outage_naming_the_fields(
    driven: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    publisher = driven.publisher
    for _ in range(4):
        _connect(publisher, 5)  # Not authorized
    first, *rest = _records(caplog, REFUSED)
    assert first.levelno == logging.WARNING and len(rest) == 3 and all(r.levelno == logging.DEBUG for r in rest)
    assert "mqtt.username" in first.getMessage() and "mqtt.password_env" in first.getMessage()
    assert _fields(first)["reason"] == "Not authorized"
    _connect(publisher)  # the operator fixed the password: the next refusal is a new outage
    _drop(publisher)
    _connect(publisher, 4)  # Bad user name or password
    assert len(_records(caplog, REFUSED, logging.WARNING)) == 2


@pytest.mark.broker
def test_a_broker_that_refuses_the_agent_is_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The reproduction: 'broker refused the connection reason=Not authorized' came at every retry (1, 2, 4, 8 s...)."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    broker = MosquittoBroker(workdir=tmp_path / "mosquitto")
    broker.config.write_text(broker.config.read_text().replace("allow_anonymous true", "allow_anonymous false"))
    broker.start()
    outbox = Outbox(tmp_path / "outbox.sqlite")
    publisher = MqttPublisher(_config(broker.port), outbox, _status)
    publisher.start()
    try:
        assert eventually(lambda: len(_records(caplog, REFUSED)) >= 2, 30), "paho retries"
    finally:
        publisher.stop()
        outbox.close()
        broker.stop()
    first, *rest = _records(caplog, REFUSED)
    assert first.levelno == logging.WARNING and _fields(first)["reason"] == "Not authorized"
    assert all(r.levelno == logging.DEBUG for r in rest)


def test_receipts_of_another_agent_end_no_episode(driven: SimpleNamespace, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    publisher, clock = driven.publisher, driven.clock
    _connect(publisher)
    add(driven.outbox, "a", 0, 2)
    publisher._send_due(10)
    clock.now += RECEIPT_WAIT_SECONDS + 1
    publisher._watch()
    publisher._on_receipt(Receipt(agent_id="box-other", site_id=SITE))
    assert not _records(caplog, RECEIPTS_AGAIN)
    assert [parse_message(r.payload).zone_id for r in driven.outbox.pending()] == ["a"]


# -- a server's online notice ------------------------------------------------------------------------------------------
RESENDING = "a server subscribed; re-sending what it has not confirmed"


def _notice(publisher: MqttPublisher, server: str, sent_at: datetime) -> SimpleNamespace:
    """An MQTT message as paho hands it over: a server's online notice on its topic."""
    payload = encode(ServerOnline(server_id=server, sent_at=sent_at))
    return SimpleNamespace(topic=publisher.server_online_topic, payload=payload)


def test_one_servers_notice_delivered_twice_is_said_and_answered_once(
    driven: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    """Found in review: 'a server subscribed; re-sending' twice within one second. QoS 1 delivers at least once (a
    server's client re-sends its notice when its connection dropped before the broker acknowledged it): a second copy
    of the same notice is the same subscription, and the outbox is not sent again for it. A later notice, or another
    server's, is a subscription of its own."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    publisher, outbox = driven.publisher, driven.outbox
    _connect(publisher)
    add(outbox, "a", 0, 2)
    assert publisher._send_due(10) == 1  # sent once; no receipt yet
    subscribed_at = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    notice = _notice(publisher, "server-1", subscribed_at)
    publisher._on_message(publisher.client, None, notice)
    assert publisher._send_due(10) == 1, "the notice makes the unconfirmed row go again"
    publisher._on_message(publisher.client, None, notice)  # the same notice, a second time
    assert publisher._send_due(10) == 0, "the second copy sent it once more"
    assert len(_records(caplog, RESENDING)) == 1
    for later in (
        _notice(publisher, "server-1", subscribed_at.replace(minute=5)),
        _notice(publisher, "server-2", subscribed_at),
    ):
        publisher._on_message(publisher.client, None, later)
        assert publisher._send_due(10) == 1
    assert [_fields(r)["server"] for r in _records(caplog, RESENDING)] == ["server-1", "server-1", "server-2"]


@pytest.mark.parametrize(("off_by", "said"), [(timedelta(hours=1), 3600), (-timedelta(hours=2), -7200)])
def test_a_box_whose_clock_is_off_the_servers_says_so_when_a_server_subscribes(
    driven: SimpleNamespace, caplog: pytest.LogCaptureFixture, off_by: timedelta, said: int
) -> None:
    """A box an hour fast had its counts refused for good, with nothing in its own log about its clock; now the server
    defers them and the box says, once per server subscription, how far its clock is off (its journal is where an
    installer looks). The notice's sent_at is the server's clock: read against this box's, it gives the offset."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    publisher = driven.publisher
    _connect(publisher)
    publisher._on_message(publisher.client, None, _notice(publisher, "server-1", datetime.now(UTC) - off_by))
    [record] = _records(caplog, CLOCK_OFF)
    assert record.levelno == logging.ERROR and abs(_fields(record)["ahead_s"] - said) <= 5
    publisher._on_message(publisher.client, None, _notice(publisher, "server-2", datetime.now(UTC)))
    assert len(_records(caplog, CLOCK_OFF)) == 1, "a server on the same clock as the box says nothing"


def test_counts_the_server_defers_are_said_once_and_are_no_missing_receipt(
    driven: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    """Found in review: a box an hour fast heard nothing back for its counts, and after five minutes its log blamed
    the broker's ACL, for as long as its clock stayed fast. The server's deferral is an answer, and says why."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    publisher, clock = driven.publisher, driven.clock
    _connect(publisher)
    seq = add(driven.outbox, "a", 0, 2)
    assert publisher._send_due(10) == 1
    for _ in range(3):  # the server defers it; the agent sends it again later; deferred again
        clock.now += RECEIPT_WAIT_SECONDS - 1
        publisher._on_receipt(
            Receipt(agent_id=AGENT, site_id=SITE, deferred=[DeferredSeq(seq=seq, retry_after_s=2700)])
        )
        clock.now += 2
        publisher._watch()
    assert not _records(caplog, RECEIPTS_MISSING)
    loud = _records(caplog, DEFERRED, logging.ERROR)
    assert len(loud) == 1 and _fields(loud[0])["retry_after_s"] == 2700
    assert driven.outbox.depth() == 1 and driven.outbox.due() == [], "kept, and not due before the time named"
