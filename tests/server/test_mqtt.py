"""MQTT ingest against a real mosquitto: duplicates, replays, out-of-order updates, malformed messages,
queued delivery across a server restart and two replicas splitting a shared subscription."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import pytest

pytest.importorskip("paho.mqtt")

import paho.mqtt.client as mqtt
from footfall.core.wire import Receipt, parse_server_message
from footfall.server.db import Database
from footfall.server.ingest import Ingestor
from footfall.server.migrate import upgrade
from footfall.server.mqtt_consumer import MqttConsumer, parse_mqtt_url
from footfall.server.rollups import raw_vs_hourly
from footfall.server.tables import Agent, Bucket, DeadLetter, HourlyRollup
from sqlalchemy import event, func, select, text

from footfall.broker import MosquittoBroker
from tests.server.conftest import BASE, aggregate, encoded, fixed_date_ingestor, make_storing_fail, minutes
from tests.services import PostgresServer
from tests.waiting import wait_until

pytestmark = pytest.mark.broker
TOPIC = "footfall/v1/mall/agent-1/aggregates"


@pytest.fixture()
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture()
def publisher(mosquitto: MosquittoBroker) -> Iterator[Callable[..., None]]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-agent", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()

    def publish(payload: bytes | dict, topic: str = TOPIC, retain: bool = False) -> None:
        data = payload if isinstance(payload, bytes) else encoded(payload)
        client.publish(topic, data, qos=1, retain=retain).wait_for_publish(timeout=10)

    yield publish
    client.disconnect()
    client.loop_stop()


def _people(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.coalesce(func.sum(HourlyRollup.people), 0))))


def _count(db: Database, table) -> int:  # type: ignore[no-untyped-def]
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(table)))


def test_duplicates_replays_and_out_of_order_updates_count_once(
    mosquitto: MosquittoBroker, db: Database, publisher: Callable[..., None]
) -> None:
    ingestor = fixed_date_ingestor(db)
    consumer = MqttConsumer(mosquitto.url, ingestor, client_id="server-a").start()
    try:
        assert consumer.wait_connected()
        messages = [aggregate(start=BASE + minutes(i), seq=10 + i, female=6, male=4) for i in range(20)]
        for message in messages:
            publisher(message)
        wait_until(lambda: _count(db, Bucket) == 20)
        for message in messages + messages[:10]:  # replay after a reconnect, twice for some
            publisher(message)
        publisher(aggregate(start=BASE, seq=5, female=50, male=50))  # an older version of bucket 0
        publisher(aggregate(start=BASE + minutes(1), seq=99, female=7, male=4))  # a newer version of bucket 1
        wait_until(lambda: ingestor.counters.snapshot()["duplicates"] == 31)
        wait_until(lambda: _people(db) == 20 * 10 + 1)
        with db.read() as session:
            assert raw_vs_hourly(session) == []
    finally:
        consumer.stop()


def test_malformed_messages_are_dead_lettered_and_the_consumer_lives_on(
    mosquitto: MosquittoBroker, db: Database, publisher: Callable[..., None]
) -> None:
    consumer = MqttConsumer(mosquitto.url, fixed_date_ingestor(db), client_id="server-a").start()
    try:
        assert consumer.wait_connected()
        publisher(b"\x00\x01 not json")
        publisher({**aggregate(female=1), "people": 3})
        publisher(aggregate(agent="someone-else", female=5), topic=TOPIC)  # topic names agent-1
        publisher(aggregate(female=5, male=5), topic="footfall/v1/mall/agent-1/status")
        publisher(aggregate(female=5, male=5))
        wait_until(lambda: _count(db, DeadLetter) == 4 and _people(db) == 10)
        with db.read() as session:
            reasons = [d.reason for d in session.scalars(select(DeadLetter).order_by(DeadLetter.id))]
            topics = {d.topic for d in session.scalars(select(DeadLetter))}
        assert "not valid JSON" in reasons[0]
        assert "gender counts add up to 1 but people is 3" in reasons[1]
        assert "does not match the message's site_id 'mall' and agent_id 'someone-else'" in reasons[2]
        assert "a aggregate message was published on" in reasons[3]
        assert topics == {TOPIC, "footfall/v1/mall/agent-1/status"}
        assert consumer.connected
    finally:
        consumer.stop()


def test_messages_published_while_the_server_is_down_arrive_after_restart(
    mosquitto: MosquittoBroker, db: Database, publisher: Callable[..., None]
) -> None:
    first = MqttConsumer(mosquitto.url, fixed_date_ingestor(db), client_id="server-a").start()
    assert first.wait_connected()
    publisher(aggregate(female=5, male=5))
    wait_until(lambda: _people(db) == 10)
    first.stop()
    for i in range(1, 40):
        publisher(aggregate(start=BASE + minutes(i), female=5, male=5))
    mosquitto.stop()  # and the broker restarts too: its persistence keeps the session's queue
    mosquitto.start()
    second = MqttConsumer(mosquitto.url, fixed_date_ingestor(db), client_id="server-a").start()
    try:
        wait_until(lambda: _people(db) == 400)
    finally:
        second.stop()


def test_two_replicas_split_a_shared_subscription_without_double_counting(
    mosquitto: MosquittoBroker, db: Database, publisher: Callable[..., None]
) -> None:
    a = fixed_date_ingestor(db)
    b = fixed_date_ingestor(db)
    replicas = [
        MqttConsumer(mosquitto.url, a, client_id="server-a").start(),
        MqttConsumer(mosquitto.url, b, client_id="server-b").start(),
    ]
    try:
        assert all(r.wait_connected() for r in replicas)
        time.sleep(0.3)  # both subscriptions in place
        for i in range(200):
            publisher(aggregate(start=BASE + minutes(i), seq=i, female=3, male=3))
        wait_until(lambda: _people(db) == 1200)
        stored = a.counters.snapshot()["accepted"], b.counters.snapshot()["accepted"]
        assert sum(stored) == 200 and min(stored) > 0, stored  # each replica took a share
    finally:
        for replica in replicas:
            replica.stop()


def test_retained_status_updates_agent_status(
    mosquitto: MosquittoBroker, db: Database, publisher: Callable[..., None]
) -> None:
    status = {
        "kind": "status",
        "agent_id": "agent-1",
        "site_id": "mall",
        "state": "online",
        "sent_at": "2026-11-20T10:00:00Z",
        "fps": 9.5,
    }
    publisher(status, topic="footfall/v1/mall/agent-1/status", retain=True)
    consumer = MqttConsumer(mosquitto.url, fixed_date_ingestor(db), client_id="server-a").start()
    try:

        def agent_fps() -> float | None:
            with db.read() as session:
                agent = session.get(Agent, "agent-1")
                return agent.fps if agent else None

        wait_until(lambda: agent_fps() == 9.5)
    finally:
        consumer.stop()


def test_an_empty_group_subscribes_without_sharing(
    mosquitto: MosquittoBroker, db: Database, publisher: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from footfall.server.settings import Settings

    monkeypatch.setenv("FOOTFALL_MQTT_GROUP", "")
    settings = Settings.from_env()
    assert settings.mqtt_group == ""
    consumer = MqttConsumer(mosquitto.url, fixed_date_ingestor(db), group=settings.mqtt_group, client_id="solo").start()
    try:
        assert consumer.filters[0] == "footfall/v1/+/+/aggregates"
        assert consumer.wait_connected()
        time.sleep(0.2)
        publisher(aggregate(female=5, male=5))
        wait_until(lambda: _people(db) == 10)
    finally:
        consumer.stop()


def test_mqtt_urls_are_checked() -> None:
    assert parse_mqtt_url("mqtt://srv:p%40ss@broker:1884").password == "p@ss"
    assert parse_mqtt_url("mqtts://broker").port == 8883
    with pytest.raises(ValueError, match="must look like mqtt://"):
        parse_mqtt_url("http://broker")


class Receipts:
    """Listens like the agents do: every receipt the servers publish, per agent."""

    def __init__(self, port: int) -> None:
        self.by_agent: dict[str, list[Receipt]] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="receipts", protocol=mqtt.MQTTv5)
        self.client.on_message = lambda c, u, m: self.by_agent.setdefault(m.topic.split("/")[-2], []).append(
            parse_server_message(m.payload)
        )
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("footfall/v1/+/+/receipts", qos=1)
        self.client.loop_start()

    def stored(self, agent: str) -> set[int]:
        return {seq for r in self.by_agent.get(agent, []) if isinstance(r, Receipt) for seq in r.stored}

    def refused(self, agent: str) -> dict[int, str]:
        return {x.seq: x.reason for r in self.by_agent.get(agent, []) if isinstance(r, Receipt) for x in r.refused}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


POISON = (
    b'{"kind":"aggregate","agent_id":"demo-entrance","site_id":"demo-mall","camera_id":"c","zone_id":"p",'
    b'"bucket_start":"2026-11-16T09:00:00Z","bucket_seconds":60,"seq":100,"people":9223372036854775808,'
    b'"gender":{"female":9223372036854775808,"male":0,"unknown":0}}'
)


def test_one_poison_message_cannot_stop_ingest_for_other_agents_before_or_after_a_restart(
    mosquitto: MosquittoBroker, db: Database, publisher: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #15: this aggregate made the consumer retry its batch forever, for every agent, and again after
    a restart. Now it is dead-lettered, and so is a message that storing itself fails on (refused to its
    agent), while a second agent's aggregates are stored and confirmed."""
    make_storing_fail(monkeypatch, "cursed", OverflowError("Python int too large to convert to SQLite INTEGER"))
    receipts = Receipts(mosquitto.port)
    try:
        for attempt, client_id in enumerate(("server-a", "server-a")):  # the same server, restarted
            consumer = MqttConsumer(mosquitto.url, fixed_date_ingestor(db), client_id=client_id).start()
            try:
                assert consumer.wait_connected()
                publisher(POISON, topic="footfall/v1/demo-mall/demo-entrance/aggregates")
                publisher(aggregate(zone="cursed", seq=50 + attempt, female=3))
                publisher(aggregate(agent="agent-2", seq=10 + attempt, start=BASE + minutes(attempt), female=4),
                          topic="footfall/v1/mall/agent-2/aggregates")  # fmt: skip
                wait_until(lambda a=attempt: 10 + a in receipts.stored("agent-2"), timeout=20)
                wait_until(lambda a=attempt: 50 + a in receipts.refused("agent-1"), timeout=20)
                assert consumer.stalled_seconds() == 0.0
            finally:
                consumer.stop()
        assert _people(db) == 8
        assert "storing failed: OverflowError" in receipts.refused("agent-1")[50]
        with db.read() as session:
            reasons = [d.reason for d in session.scalars(select(DeadLetter))]
        assert sum("people: Input should be less than or equal to 1000000" in r for r in reasons) == 2
        assert sum(r.startswith("storing failed: OverflowError") for r in reasons) == 2
    finally:
        receipts.close()


def test_health_says_when_ingest_has_stalled(
    mosquitto: MosquittoBroker, sqlite_url: str, publisher: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database the consumer cannot reach is retried with back-off, not dropped; /healthz turns 503."""
    from fastapi.testclient import TestClient
    from footfall.server import app as app_module
    from footfall.server.settings import Settings

    from footfall.broker import free_port

    monkeypatch.setattr(app_module, "STALLED_AFTER_S", 0.5)
    unreachable = Database(f"postgresql+psycopg://footfall@127.0.0.1:{free_port()}/gone")
    consumer = MqttConsumer(mosquitto.url, fixed_date_ingestor(unreachable), client_id="server-z").start()
    app = app_module.create_app(Settings(database_url=sqlite_url, retention_days=None), start_background=False)
    app.state.context.background.append(consumer)
    try:
        with TestClient(app) as client:
            assert consumer.wait_connected()
            assert client.get("/healthz").status_code == 200
            publisher(aggregate(female=5))
            wait_until(lambda: client.get("/healthz").status_code == 503)
            body = client.get("/healthz").json()
            assert body["status"] == "stalled" and body["ingest_stalled_seconds"] >= 0.5
    finally:
        consumer.stop()
        unreachable.dispose()


def test_only_an_unreachable_database_is_retried_and_a_bug_never_retries_its_batch(
    mosquitto: MosquittoBroker, db: Database, publisher: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception other than OperationalError/InterfaceError getting past the ingestor (a bug: it dead-letters
    what storing fails on) is logged, the batch is stored message by message and the one at fault is given up
    (no receipt: its agent re-sends it later), while the database dropping out is waited for."""
    from sqlalchemy.exc import OperationalError

    calls = {"buggy": 0, "flaky": 0}
    original = Ingestor.ingest

    def ingest(self, items):  # type: ignore[no-untyped-def]
        payloads = b"".join(item.payload for item in items)
        if b'"buggy"' in payloads:
            calls["buggy"] += 1
            raise RuntimeError("a bug in the refusal path")
        if b'"flaky"' in payloads and calls["flaky"] < 2:
            calls["flaky"] += 1
            raise OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))
        return original(self, items)

    monkeypatch.setattr(Ingestor, "ingest", ingest)
    receipts = Receipts(mosquitto.port)
    consumer = MqttConsumer(mosquitto.url, fixed_date_ingestor(db), client_id="server-b", batch_wait_s=0.2).start()
    try:
        assert consumer.wait_connected()
        publisher(aggregate(zone="buggy", seq=1, female=9))
        publisher(aggregate(zone="flaky", seq=2, female=6))
        publisher(aggregate(zone="entrance", seq=3, female=5))
        wait_until(lambda: {2, 3} <= receipts.stored("agent-1"), timeout=20)
        assert calls["flaky"] == 2  # retried with back-off until the database answered
        given_up = calls["buggy"]
        time.sleep(1.0)
        assert calls["buggy"] == given_up <= 2  # the batch once, then the message alone; never again
        assert 1 not in receipts.stored("agent-1") and 1 not in receipts.refused("agent-1")
        assert _people(db) == 11 and consumer.stalled_seconds() == 0.0
    finally:
        consumer.stop()
        receipts.close()
    restarted = MqttConsumer(mosquitto.url, fixed_date_ingestor(db), client_id="server-b").start()
    try:
        assert restarted.wait_connected()
        time.sleep(0.5)
        assert calls["buggy"] == given_up  # acknowledged: the broker does not hand it back either
    finally:
        restarted.stop()


def test_an_unreachable_broker_is_logged_and_turns_healthz_503(
    sqlite_url: str, db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by attack: `footfall server --mqtt mqtt://127.0.0.1:1` logged 'mqtt consumer starting' and nothing more,
    and /healthz answered ok: a mistyped host or port looked like a healthy server that ingested nothing."""
    import logging

    from fastapi.testclient import TestClient
    from footfall.server import app as app_module
    from footfall.server.settings import Settings

    from footfall.broker import free_port

    monkeypatch.setattr(app_module, "STALLED_AFTER_S", 0.5)
    caplog.set_level(logging.INFO, logger="footfall.server")
    consumer = MqttConsumer(f"mqtt://127.0.0.1:{free_port()}", fixed_date_ingestor(db), client_id="nobody").start()
    app = app_module.create_app(Settings(database_url=sqlite_url, retention_days=None), start_background=False)
    app.state.context.background.append(consumer)
    try:
        with TestClient(app) as client:
            wait_until(lambda: client.get("/healthz").status_code == 503)
            body = client.get("/healthz").json()
            assert body["status"] == "mqtt_unreachable" and body["mqtt_unreachable_seconds"] >= 0.5, body
            wait_until(lambda: any("cannot reach the MQTT broker" in r.getMessage() for r in caplog.records))
    finally:
        consumer.stop()


def test_wait_connected_gives_up_after_its_timeout(db: Database) -> None:
    from footfall.broker import free_port

    consumer = MqttConsumer(f"mqtt://127.0.0.1:{free_port()}", fixed_date_ingestor(db), client_id="nobody").start()
    try:
        started = time.monotonic()
        assert consumer.wait_connected(0.3) is False
        assert 0.3 <= time.monotonic() - started < 2.0 and not consumer.connected
    finally:
        consumer.stop()


def test_qos0_messages_beyond_the_inbox_limit_are_dropped_and_qos1_ones_never(db: Database) -> None:
    """Found by review: QoS 0 messages are not flow-controlled by the broker, and with storing stalled 3,000 of
    100 KB grew the server by 346 MiB, without bound. QoS 1 messages (the agents') are bounded by the broker's
    receive maximum and always queued."""
    from footfall.server import mqtt_consumer

    consumer = MqttConsumer("mqtt://127.0.0.1:1", fixed_date_ingestor(db), client_id="server-q")  # never started
    limit = mqtt_consumer.RECEIVE_MAXIMUM + mqtt_consumer.QOS0_INBOX_LIMIT

    def message(qos: int) -> mqtt.MQTTMessage:
        sent = mqtt.MQTTMessage(topic=b"footfall/v1/mall/agent-1/aggregates")
        sent.qos, sent.payload = qos, encoded(aggregate(female=5))
        return sent

    for _ in range(limit + 25):
        consumer._on_message(consumer.client, None, message(0))
    assert consumer._inbox.qsize() == limit and consumer.qos0_dropped == 25
    consumer._on_message(consumer.client, None, message(1))
    assert consumer._inbox.qsize() == limit + 1 and consumer.qos0_dropped == 25


AGENT_WITH_A_WILL = """
import sys, time
import paho.mqtt.client as mqtt
port, topic, will, online = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="agent-1", protocol=mqtt.MQTTv311)
client.will_set(topic, will, qos=1, retain=True)  # made at connect, as the agent's: its sent_at is the connect's
client.connect("127.0.0.1", port, keepalive=60)
client.loop_start()
client.publish(topic, online, qos=1, retain=True).wait_for_publish(timeout=10)
print("online", flush=True)
time.sleep(600)
"""


def test_an_agent_that_dies_reads_offline_at_once_by_its_last_will(mosquitto: MosquittoBroker, db: Database) -> None:
    """The broker publishes an agent's last will when its connection dies without a goodbye. The will is made at
    connect, so its sent_at is older than every heartbeat since, and the server ignored it as a late retained
    copy: a crashed agent's state stayed 'online' and it read offline only after FOOTFALL_AGENT_OFFLINE_AFTER
    (180 s) of silence. A will the broker publishes now is news; the same will replayed as a retained copy to a
    server that subscribes later changes nothing, and the agent's next heartbeat puts it online again."""
    import subprocess
    import sys

    topic = "footfall/v1/mall/agent-1/status"
    status = {"kind": "status", "agent_id": "agent-1", "site_id": "mall", "fps": 9.5}
    will = encoded({**status, "state": "offline", "sent_at": "2026-11-20T10:00:00Z", "fps": 0.0})
    online = encoded({**status, "state": "online", "sent_at": "2026-11-20T10:05:00Z"})

    def state() -> str | None:
        with db.read() as session:
            agent = session.get(Agent, "agent-1")
            return agent.state if agent else None

    consumer = MqttConsumer(mosquitto.url, fixed_date_ingestor(db), client_id="server-a").start()
    agent = subprocess.Popen(
        [sys.executable, "-c", AGENT_WITH_A_WILL, str(mosquitto.port), topic, will, online],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert consumer.wait_connected()
        assert agent.stdout is not None and agent.stdout.readline().strip() == "online"
        wait_until(lambda: state() == "online")
        agent.kill()  # no goodbye: the broker sees the connection drop and publishes the will
        agent.wait(timeout=30)
        wait_until(lambda: state() == "offline", timeout=60)
    finally:
        agent.kill()
        consumer.stop()
    # A server subscribing later gets the will as the broker's retained copy: it stays offline (nothing older than
    # what is stored wins), and the agent's next heartbeat puts it online again.
    ingestor = fixed_date_ingestor(db)
    later = MqttConsumer(mosquitto.url, ingestor, client_id="server-b").start()
    try:
        assert later.wait_connected()
        wait_until(lambda: ingestor.counters.snapshot()["statuses"] == 1)
        assert state() == "offline"
        heartbeat = encoded({**status, "state": "online", "sent_at": "2026-11-20T10:10:00Z"})
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="agent-1", protocol=mqtt.MQTTv311)
        client.connect("127.0.0.1", mosquitto.port)
        client.loop_start()
        client.publish(topic, heartbeat, qos=1, retain=True).wait_for_publish(timeout=10)
        client.disconnect()
        client.loop_stop()
        wait_until(lambda: state() == "online")
    finally:
        later.stop()


def test_a_publish_the_broker_refuses_is_logged_with_the_acl_line_and_counted(
    tmp_path, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """An ACL from before a topic existed (old deployments' deploy/mosquitto/acl had no settings line) drops the
    server's messages on it: agents never learned a site's mode, and nothing said why. MQTT 5 (a server in a
    group) is told of the refusal in the PUBACK."""
    import logging

    from footfall.server.site_settings import settings_of

    acl = tmp_path / "acl"
    # Anonymous clients (the server here) may read everything and publish nothing but what agents send.
    acl.write_text("topic read footfall/v1/#\ntopic write footfall/v1/+/+/aggregates\n")
    broker = MosquittoBroker(workdir=tmp_path / "broker", acl_file=acl).start()
    caplog.set_level(logging.INFO, logger="footfall.server")
    consumer = MqttConsumer(broker.url, fixed_date_ingestor(db), group="footfall-server", client_id="srv").start()
    try:
        assert consumer.wait_connected()
        consumer.publish_site_settings([settings_of("mall", "counts-only")])
        wait_until(lambda: consumer.publishes_refused().get("settings", 0) >= 1)
        said = [(r.levelname, r.fields) for r in caplog.records if "broker refused" in r.getMessage()]  # type: ignore[attr-defined]
        fields = next(f for level, f in said if f.get("topic") == "footfall/v1/mall/settings" and level == "ERROR")
        assert fields["reason"] == "Not authorized", fields
        assert "'topic write footfall/v1/+/settings'" in fields["fix"], fields
        # The announcement on (re)subscribing was refused too, under its own kind.
        wait_until(lambda: consumer.publishes_refused().get("online", 0) >= 1)
    finally:
        consumer.stop()
        broker.stop()


@pytest.fixture()
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of the test's own, durable as production must be, for tests that crash or reconfigure
    it (never the suite's shared one)."""
    try:
        server = PostgresServer(durable=True).start()
    except (FileNotFoundError, OSError) as exc:
        pytest.fail(f"PostgreSQL is not available: {exc}")
    yield server
    server.stop()


@pytest.mark.postgres
def test_a_database_that_crashes_mid_ingest_loses_and_doubles_nothing(
    mosquitto: MosquittoBroker, publisher: Callable[..., None], own_postgres: PostgresServer
) -> None:
    """PostgreSQL killed (every pooled connection cut) while agents keep publishing: the consumer stops
    acknowledging, retries, and once the database is back holds every bucket exactly once. Durable, as production
    must be: with synchronous_commit off, the crash lost the 20 buckets committed (and receipted) just before it."""
    postgres = own_postgres
    database = Database(postgres.url)
    consumer = None
    try:
        assert database.durability_problems() == []
        upgrade(database.engine)
        consumer = MqttConsumer(mosquitto.url, fixed_date_ingestor(database), client_id="server-pg").start()
        assert consumer.wait_connected()
        for minute in range(20):
            publisher(aggregate(start=BASE + minutes(minute), female=5, male=5))
        wait_until(lambda: _people(database) == 200)
        postgres.halt()
        for minute in range(20, 40):  # while the database is down
            publisher(aggregate(start=BASE + minutes(minute), female=5, male=5))
        publisher(aggregate(start=BASE + minutes(3), female=5, male=5))  # and a replay of one it had
        wait_until(lambda: consumer.inbox_depth() > 0)
        postgres.resume()
        wait_until(lambda: _people(database) == 400, timeout=90)
        assert _count(database, Bucket) == 40
        assert _count(database, DeadLetter) == 0
        wait_until(lambda: consumer.inbox_depth() == 0)
    finally:
        if consumer is not None:
            consumer.stop()
        database.dispose()


def test_a_sqlite_server_commits_so_that_a_power_cut_keeps_what_its_receipts_confirmed(db: Database) -> None:
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL; NORMAL may roll back
    assert db.durability_problems() == []


@pytest.mark.postgres
def test_a_server_on_a_database_that_may_lose_commits_says_so_at_start(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The suite's own PostgreSQL runs without fsync and synchronous commits, for speed: as an operator might.
    from footfall.server.app import create_app
    from footfall.server.settings import Settings

    with caplog.at_level(logging.WARNING, logger="footfall.server"):
        app = create_app(Settings(database_url=postgres_url, retention_days=None), start_background=False)
    app.state.context.db.dispose()
    (warning,) = [record for record in caplog.records if "may lose commits" in record.getMessage()]
    assert warning.fields["settings"] == "fsync=off,synchronous_commit=off,full_page_writes=off"  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_a_read_only_database_refuses_no_count_and_ingest_resumes_when_it_takes_writes(
    mosquitto: MosquittoBroker, publisher: Callable[..., None], own_postgres: PostgresServer
) -> None:
    """A PostgreSQL that takes no writes (a standby during a failover, default_transaction_read_only) fails every
    statement alike, as a database down does. Storing each message on its own dead-lettered them all and refused
    them to their agents, which forget what is refused: every count of the outage lost. Now MQTT waits, HTTP
    answers 503, reads still answer, and once writes are taken again each bucket is stored once."""
    from fastapi.testclient import TestClient
    from footfall.server.app import create_app
    from footfall.server.auth import create_key
    from footfall.server.settings import Settings

    from tests.server.conftest import FIXED_DATES_MAX_AGE_DAYS

    postgres = own_postgres

    def read_only(on: bool) -> None:
        with Database(postgres.url).engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql(f"ALTER SYSTEM SET default_transaction_read_only = {'on' if on else 'off'}")
            connection.exec_driver_sql("SELECT pg_reload_conf()")

    settings = Settings(database_url=postgres.url, retention_days=None, max_bucket_age_days=FIXED_DATES_MAX_AGE_DAYS)
    app = create_app(settings, start_background=False)
    database: Database = app.state.context.db
    consumer = None
    try:
        with database.write() as session:
            agent_key = create_key(session, "agent", "agent")[0]
            viewer_key = create_key(session, "viewer", "viewer")[0]
        consumer = MqttConsumer(mosquitto.url, fixed_date_ingestor(database), client_id="server-ro").start()
        assert consumer.wait_connected()
        for minute in range(5):
            publisher(aggregate(start=BASE + minutes(minute), female=5, male=5))
        wait_until(lambda: _people(database) == 50)
        connects = []
        event.listen(database.engine, "connect", lambda *_: connects.append(1))
        read_only(True)
        wait_until(lambda: not _takes_writes(database))
        for minute in range(5, 10):
            publisher(aggregate(start=BASE + minutes(minute), female=5, male=5))
        wait_until(lambda: consumer.stalled_seconds() > 0)
        with TestClient(app) as client:
            answer = client.post(
                "/api/v1/ingest",
                content=b"[" + encoded(aggregate(start=BASE + minutes(10), female=5, male=5, agent="agent-2")) + b"]",
                headers={"X-API-Key": agent_key, "Content-Type": "application/json"},
            )
            assert answer.status_code == 503, answer.text
            assert answer.json()["status"] == "database_unavailable"
            assert answer.headers["Retry-After"]
            sites = client.get("/api/v1/sites", headers={"X-API-Key": viewer_key})
            assert sites.status_code == 200, sites.text  # reads need no writes
        assert _count(database, DeadLetter) == 0
        # Each refusal let its connection go: after a failover, new ones may reach the new primary.
        assert len(connects) >= 2, connects
        read_only(False)
        wait_until(lambda: _people(database) == 100, timeout=60)
        assert _count(database, Bucket) == 10
        assert _count(database, DeadLetter) == 0
    finally:
        if consumer is not None:
            consumer.stop()
        database.dispose()


def _takes_writes(database: Database) -> bool:
    with database.read() as session:
        return session.execute(text("SHOW transaction_read_only")).scalar() == "off"
