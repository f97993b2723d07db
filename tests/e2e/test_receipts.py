"""End-to-end receipts: the agent forgets an aggregate only when the server says it committed it.

The case that needs them, with the real broker: mosquitto 2.0 does not restore a shared subscription when
it restarts, so whatever an agent publishes between the broker's restart and the server's re-subscription
is acknowledged to the agent (PUBACK) and delivered to nobody. Trusting the PUBACK loses those counts.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytest.importorskip("paho.mqtt")

from footfall.core.wire import AgentStatus, ServerOnline, aggregate_topic
from footfall.edge.aggregation import BucketCounts
from footfall.edge.config import AgentConfig, CameraConfig, MqttConfig
from footfall.edge.delivery import DEFERRED, MqttPublisher
from footfall.edge.messages import CameraMessages, bucket_key
from footfall.edge.outbox import Outbox, ResendPolicy
from footfall.server.db import Database
from footfall.server.ingest import DEFERRED_LINE, Ingestor
from footfall.server.migrate import upgrade
from footfall.server.mqtt_consumer import MqttConsumer
from footfall.server.tables import Bucket
from sqlalchemy import func, select

from footfall.broker import MosquittoBroker
from tests.e2e.conftest import Product

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]

SITE, AGENT = "lab", "box-receipts"
CAM1 = CameraMessages(agent_id=AGENT, site_id=SITE, camera_id="cam1", bucket_seconds=60)


@pytest.fixture()
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'server.db'}")
    upgrade(db.engine)
    yield db
    db.dispose()


def stored_people(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.coalesce(func.sum(Bucket.people), 0))))


class Box:
    """The agent's delivery half: an outbox and its publisher. Resends are slow here (60 s) on purpose, so
    only a reconnect or a server's online notice can explain a prompt recovery."""

    def __init__(
        self,
        path: Path,
        port: int,
        *,
        busy_timeout: float = 5.0,
        resend: ResendPolicy = ResendPolicy(60, 60),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = AgentConfig(
            agent_id=AGENT,
            site_id=SITE,
            cameras=[CameraConfig(id="cam1", source="x.mp4")],
            mqtt=MqttConfig(host="127.0.0.1", port=port),
        )
        self.outbox = Outbox(path, resend=resend, busy_timeout=busy_timeout, clock=clock)
        self.publisher = MqttPublisher(self.config, self.outbox, self.status)
        self.people = 0
        now = int(time.time())
        self.day_ago = now - now % 3600 - 24 * 3600

    def status(self, state: str) -> AgentStatus:
        return AgentStatus(agent_id=AGENT, site_id=SITE, state=state, sent_at=datetime.now(UTC))

    def count(self, minute: int, people: int) -> None:
        counts = BucketCounts(people=people, unknown=people)
        start = self.day_ago + minute * 60

        def payload(seq: int) -> bytes:
            return CAM1.message("frame", start, counts, seq).model_dump_json().encode()

        self.outbox.add(bucket_key("cam1", "frame", start), aggregate_topic(SITE, AGENT), payload, counts)
        self.people += people
        self.publisher.notify()

    def close(self) -> None:
        self.publisher.stop()
        self.outbox.close()


def test_counts_published_before_the_server_resubscribes_are_sent_again(
    tmp_path: Path, mosquitto: MosquittoBroker, database: Database
) -> None:
    server = MqttConsumer(mosquitto.url, Ingestor(database), group="footfall-server", client_id="srv").start()
    box = Box(tmp_path / "outbox.sqlite", mosquitto.port)
    box.publisher.start()
    try:
        assert server.wait_connected()
        for minute in range(3):
            box.count(minute, 2)
        assert box.publisher.wait_drained(15), "the server's receipts must empty the outbox"
        assert stored_people(database) == 6

        # The broker restarts while the server is away; it forgets the server's shared subscription.
        server.stop()
        mosquitto.stop(graceful=True)
        mosquitto.start()
        Product.wait_until(lambda: box.publisher.connected, 30, "the agent to reconnect")
        sent = box.publisher.sent
        for minute in range(3, 6):
            box.count(minute, 3)
        Product.wait_until(lambda: box.publisher.sent >= sent + 3, 10, "the broker to take the new counts")
        time.sleep(1.0)
        assert box.outbox.depth() == 3, "the broker's PUBACK must not count as delivery"
        assert stored_people(database) == 6

        # The server comes back, subscribes and says so: the agent sends again what nobody confirmed.
        server = MqttConsumer(mosquitto.url, Ingestor(database), group="footfall-server", client_id="srv").start()
        assert server.wait_connected()
        assert box.publisher.wait_drained(15), f"{box.outbox.depth()} counts never confirmed"
        assert stored_people(database) == box.people == 15
    finally:
        box.close()
        server.stop()


def test_a_refused_count_is_dropped_with_its_reason_logged(
    tmp_path: Path, mosquitto: MosquittoBroker, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    server = MqttConsumer(mosquitto.url, Ingestor(database), group="", client_id="srv-refuse").start()
    box = Box(tmp_path / "outbox.sqlite", mosquitto.port)
    box.publisher.start()
    try:
        assert server.wait_connected()
        # A bucket three days in the future: the box's date is wrong; the server dead-letters it for good.
        box.count(60 * 24 * 4, 1)
        box.count(0, 4)
        assert box.publisher.wait_drained(15)
        assert stored_people(database) == 4
        refusals = [r for r in caplog.records if r.getMessage() == "the server refused an aggregate"]
        assert len(refusals) == 1 and "future" in refusals[0].fields["reason"]  # type: ignore[attr-defined]
    finally:
        box.close()
        server.stop()


def test_counts_from_a_clock_running_fast_wait_in_the_outbox_until_the_servers_clock_catches_up(
    tmp_path: Path, mosquitto: MosquittoBroker, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A box whose clock runs an hour fast: the server refused its counts for good, and the agent forgot them.
    Now the server defers them, saying when to send them again; the agent keeps them until then (neither sending
    them every few seconds nor at a server's online notice) and they are stored once the server's clock is within
    15 minutes of them: nothing lost, nothing doubled."""
    caplog.set_level(logging.WARNING)
    later = [0.0]  # how far both clocks have moved on, for the hour that the test does not wait
    ingestor = Ingestor(database, clock=lambda: time.time() + later[0])
    server = MqttConsumer(mosquitto.url, ingestor, group="", client_id="srv-fast-box").start()
    box = Box(
        tmp_path / "outbox.sqlite", mosquitto.port, resend=ResendPolicy(0.5, 0.5), clock=lambda: time.time() + later[0]
    )
    box.publisher.start()
    try:
        assert server.wait_connected()
        box.count(24 * 60 + 120, 3)  # starts 1-2 hours after this hour began: more than an hour ahead
        box.count(0, 4)
        Product.wait_until(lambda: stored_people(database) == 4, 15, "the counts on time to be stored")
        Product.wait_until(
            lambda: any(r.getMessage().startswith(DEFERRED) for r in caplog.records), 15, "the server's deferral"
        )
        [deferral] = [r for r in caplog.records if r.getMessage().startswith(DEFERRED)]
        assert 45 * 60 <= deferral.fields["retry_after_s"] <= 105 * 60  # type: ignore[attr-defined]
        sent = box.publisher.sent
        box.publisher._on_server_online(ServerOnline(server_id="srv-other", sent_at=datetime.now(UTC)))
        time.sleep(2.0)  # four resend periods of the rows that are not deferred
        assert box.publisher.sent == sent, "a deferred count went again before the time the server named"
        assert box.outbox.depth() == 1 and stored_people(database) == 4, "kept by the agent, not stored"
        assert any(r.getMessage().startswith(DEFERRED_LINE) for r in caplog.records), "the server says so too"

        later[0] = 2 * 3600.0  # both clocks two hours on: the server's has caught up with the box's bucket
        assert box.publisher.wait_drained(15), "the fast count must be stored once the clock caught up"
        assert stored_people(database) == box.people == 7
        refusals = [r for r in caplog.records if r.getMessage() == "the server refused an aggregate"]
        assert refusals == []
    finally:
        box.close()
        server.stop()


def test_an_outbox_locked_through_a_broker_restart_delays_delivery_and_loses_nothing(
    tmp_path: Path, mosquitto: MosquittoBroker, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process (a backup tool, an operator's sqlite3 shell) holds the outbox's write lock while the broker
    restarts. The reconnect's 'send everything again' cannot be written: it must wait for the lock, not kill paho's
    network thread (the agent would never reconnect) or the sender (nothing would be sent again)."""
    caplog.set_level(logging.INFO, logger="footfall.edge.delivery")
    server = MqttConsumer(mosquitto.url, Ingestor(database), group="", client_id="srv-locked").start()
    box = Box(tmp_path / "outbox.sqlite", mosquitto.port, busy_timeout=0.1)
    box.publisher.start()
    lock = sqlite3.connect(tmp_path / "outbox.sqlite", isolation_level=None)
    try:
        assert server.wait_connected()
        box.count(0, 2)
        assert box.publisher.wait_drained(15)

        lock.execute("BEGIN EXCLUSIVE")
        mosquitto.stop(graceful=True)
        mosquitto.start()
        Product.wait_until(
            lambda: any("outbox cannot be read or updated" in r.getMessage() for r in caplog.records),
            30,
            "the sender to meet the locked outbox",
        )
        lock.execute("ROLLBACK")

        Product.wait_until(lambda: box.publisher.connected, 30, "the agent to reconnect")
        assert server.wait_connected()
        box.count(1, 3)
        assert box.publisher.wait_drained(15), f"{box.outbox.depth()} counts never confirmed"
        assert stored_people(database) == box.people == 5
        assert box.publisher._thread.is_alive(), "the sender survived the locked outbox"
        assert any(r.getMessage() == "the outbox works again; sending what it holds" for r in caplog.records)
    finally:
        lock.close()
        box.close()
        server.stop()
