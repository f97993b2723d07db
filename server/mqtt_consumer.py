"""MQTT ingest: a persistent MQTT 5 session on a shared subscription, acknowledged only after commit.

* ``$share/<group>/footfall/v1/+/+/aggregates``: replicas in one group split the aggregates between them.
* ``footfall/v1/+/+/status`` (not shared): every replica sees every agent's retained status.
* Persistent session (clean_start=False, session expiry 7 days) with a stable client id: QoS 1 messages
  published while the server is down wait in the broker and arrive after a restart.
* Manual acknowledgement: a message is acknowledged after the transaction that stored it (or dead-lettered
  it) committed. A crash before that means redelivery, which the idempotent upsert absorbs.
* Receipts: after that commit each agent gets a receipt naming the seqs stored or refused for good, and only
  then forgets them. The broker's own acknowledgement to the agent proves nothing: mosquitto 2.0, for one,
  does not restore shared subscriptions after a restart, so what agents publish before the servers
  re-subscribe reaches nobody. Each time this server (re)subscribes it says so on the server-online topic,
  and agents re-send whatever is still unconfirmed.
* Site settings: each site's demographics mode, retained on ``footfall/v1/<site>/settings``, sent on every
  (re)subscription and whenever an admin changes it (server/api/sites.py).
"""

from __future__ import annotations

import logging
import math
import queue
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from footfall.core.logs import FailureStreak, log_event
from footfall.core.wire import (
    DEFAULT_TOPIC_PREFIX,
    MAX_RECEIPT_SEQS,
    DeferredSeq,
    Receipt,
    RefusedSeq,
    ServerOnline,
    SiteSettings,
    encode,
    receipt_topic,
    server_online_topic,
    site_settings_topic,
    subscription_filters,
)
from footfall.server import site_settings
from footfall.server.db import TRANSIENT_DB_ERRORS
from footfall.server.ingest import BatchResult, Deferral, Handled, Incoming, Ingestor
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

logger = logging.getLogger("footfall.server.mqtt")


SESSION_EXPIRY_S = 7 * 24 * 3600
RECEIVE_MAXIMUM = 2000
# QoS 1 messages are acknowledged once stored, so the broker keeps at most RECEIVE_MAXIMUM of them in the inbox.
# QoS 0 messages (agents publish at QoS 1; anything at QoS 0 is another client's) are not flow-controlled: while
# RECEIVE_MAXIMUM + this many wait, they are dropped, which QoS 0 allows ("at most once"), rather than filling memory.
QOS0_INBOX_LIMIT = 1000


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool


def parse_mqtt_url(url: str) -> BrokerAddress:
    """``mqtt://user:pass@host:1883`` or ``mqtts://host:8883``; raises ValueError with a clear message."""
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parsed.hostname:
        raise ValueError(f"MQTT URL {url!r} must look like mqtt://user:password@host:1883 (or mqtts://)")
    tls = parsed.scheme in ("mqtts", "ssl")
    try:
        port = parsed.port or (8883 if tls else 1883)
    except ValueError:
        raise ValueError(f"MQTT URL {url!r} has an invalid port") from None
    return BrokerAddress(
        parsed.hostname,
        port,
        unquote(parsed.username) if parsed.username else None,
        unquote(parsed.password) if parsed.password else None,
        tls,
    )


class RefusedPublishes:
    """The broker's answers to what the server publishes, by kind (receipts, settings, online): an MQTT 5 broker says
    in the PUBACK when its ACL refuses a message, which it then drops. Each kind's refusal is logged at ERROR once
    per run of refusals, with the ACL rule the server's user lacks (an ACL from before a topic existed drops it
    without a word otherwise), and counted. MQTT 3.1.1 (a server without a group) is never told.

    The PUBACK can come before ``publish`` returns the message id, so an answer for an id not yet recorded waits."""

    def __init__(self, prefix: str):
        self.rules = {
            "receipts": f"topic write {prefix}/+/+/receipts",
            "settings": f"topic write {prefix}/+/settings",
            "online": f"topic write {server_online_topic(prefix)}",
        }
        # Both keyed by MQTT message id (1-65535, reused by the client): bounded whatever the broker answers.
        self._sent: dict[int, tuple[str, str]] = {}  # message id → (kind, topic), until the broker answers
        self._early: dict[int, ReasonCode] = {}  # answers for ids not yet recorded
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._streaks = {
            kind: FailureStreak(
                logger,
                "the MQTT broker refused a message the server published; agents do not get it",
                f"the MQTT broker takes the server's {kind} again",
            )
            for kind in self.rules
        }

    def sent(self, kind: str, topic: str, info: mqtt.MQTTMessageInfo) -> None:
        with self._lock:
            early = self._early.pop(info.mid, None)
            if early is None:
                self._sent[info.mid] = (kind, topic)
                return
        self._judge(kind, topic, early)

    def answered(self, mid: int, reason_code: ReasonCode) -> None:
        with self._lock:
            sent = self._sent.pop(mid, None)
            if sent is None:
                self._early[mid] = reason_code
                return
        self._judge(*sent, reason_code)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def _judge(self, kind: str, topic: str, reason_code: ReasonCode) -> None:
        streak = self._streaks[kind]
        if not reason_code.is_failure:
            streak.succeeded()
            return
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + 1
        streak.failed(
            topic=topic,
            reason=str(reason_code),
            fix=f"give the server's MQTT user '{self.rules[kind]}' in the broker's ACL (deploy/mosquitto/acl)",
        )


class MqttConsumer:
    """Receives wire messages from the broker and stores them in batches through the :class:`Ingestor`."""

    def __init__(
        self,
        url: str,
        ingestor: Ingestor,
        *,
        group: str = "footfall-server",
        client_id: str | None = None,
        prefix: str = DEFAULT_TOPIC_PREFIX,
        batch_size: int = 500,
        batch_wait_s: float = 0.02,
    ):
        self.address = parse_mqtt_url(url)
        self.ingestor = ingestor
        self.group = group
        self.prefix = prefix
        self.client_id = client_id or f"footfall-server-{socket.gethostname()}"[:64]
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self._inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.qos0_dropped = 0  # QoS 0 messages dropped because the inbox was full (see QOS0_INBOX_LIMIT)
        self._qos0_overflow = FailureStreak(
            logger, "mqtt inbox full: QoS 0 messages dropped", "mqtt inbox takes QoS 0 messages again",
            level=logging.WARNING,
        )  # fmt: skip
        self._storing = 0  # messages of the batch the writer is storing now
        self._stopping = threading.Event()
        self._writer: threading.Thread | None = None
        self._stalled_since: float | None = None  # monotonic time storing began to fail
        self._subscribed = threading.Event()  # set while connected and subscribed
        self._unsubscribed_since: float | None = time.monotonic()  # not yet connected and subscribed: since start
        self._refused = RefusedPublishes(prefix)
        self._unreachable = FailureStreak(
            logger, "cannot reach the MQTT broker; retrying", "mqtt broker reachable again", level=logging.WARNING
        )
        # Shared subscriptions need MQTT 5. Without a group (one server, e.g. the demo's embedded broker that
        # speaks only 3.1.1) a 3.1.1 persistent session does the same job.
        self.mqtt5 = bool(group)
        if self.mqtt5:
            self.client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5, manual_ack=True
            )
        else:
            self.client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=mqtt.MQTTv311,
                clean_session=False,
                manual_ack=True,
            )
        if self.address.username:
            self.client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            self.client.tls_set()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)

    @property
    def filters(self) -> list[str]:
        aggregates, status = subscription_filters(self.prefix)
        # Replicas in one group split the aggregates; every replica sees each (retained) status. No group:
        # one server only, plain subscription.
        return [f"$share/{self.group}/{aggregates}" if self.group else aggregates, status]

    def start(self) -> MqttConsumer:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        self._writer = threading.Thread(target=self._write_loop, name="mqtt-ingest-writer", daemon=True)
        self._writer.start()
        if self.mqtt5:
            self.client.connect_async(
                self.address.host, self.address.port, keepalive=30, clean_start=False, properties=properties
            )
        else:
            self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()
        log_event(
            logger,
            logging.INFO,
            "mqtt consumer starting",
            broker=f"{self.address.host}:{self.address.port}",
            client_id=self.client_id,
            group=self.group,
        )
        return self

    @property
    def connected(self) -> bool:
        """Connected *and* subscribed (the broker acknowledged the subscriptions)."""
        return self._subscribed.is_set()

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Waits until connected *and* subscribed; False when that took longer than ``timeout`` seconds."""
        return self._subscribed.wait(timeout)

    def stop(self) -> None:
        """Stores what was received, then disconnects (the session and unacknowledged messages stay)."""
        self._stopping.set()
        if self._writer is not None:
            self._writer.join(timeout=30)
        self.client.disconnect()
        self.client.loop_stop()
        self._subscribed.clear()

    # paho callbacks (network thread)

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log_event(logger, logging.ERROR, "mqtt connection refused", reason=str(reason_code))
            return
        if self.mqtt5:
            client.subscribe([(topic, SubscribeOptions(qos=1)) for topic in self.filters])
        else:
            client.subscribe([(topic, 1) for topic in self.filters])

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _mid: int,
        reason_codes: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        failed = [str(code) for code in reason_codes if code.is_failure]
        if failed:
            # e.g. the broker's ACL does not let this user read the topics: say so instead of idling.
            log_event(
                logger,
                logging.ERROR,
                "mqtt subscription refused",
                reasons=",".join(failed),
                filters=",".join(self.filters),
            )
            return
        self._subscribed.set()
        self._unsubscribed_since = None
        self._unreachable.succeeded(broker=f"{self.address.host}:{self.address.port}")
        log_event(logger, logging.INFO, "mqtt connected and subscribed", filters=",".join(self.filters))
        # Every site's settings, retained, before anything else this session sends: a mode changed while this
        # server was away (or a broker that lost its retained messages) reaches the agents before any receipt.
        try:
            with self.ingestor.db.read() as session:
                every = site_settings.every_site(session)
        except TRANSIENT_DB_ERRORS as exc:
            every = []  # the database is away; the next (re)subscription, or a change, sends them
            log_event(logger, logging.ERROR, "site settings not published", error=repr(exc)[:300])
        self.publish_site_settings(every)
        online = ServerOnline(server_id=self.client_id, sent_at=datetime.now(UTC))
        self._publish("online", server_online_topic(self.prefix), encode(online))

    def publish_site_settings(self, settings: list[SiteSettings]) -> None:
        """Retained on each site's settings topic: an agent that subscribes later still gets its site's. Sent through
        the client that sends receipts, so an agent gets a new mode before any receipt that refuses by it."""
        for item in settings:
            self._publish("settings", site_settings_topic(item.site_id, self.prefix), encode(item), retain=True)

    def publishes_refused(self) -> dict[str, int]:
        """Messages of each kind (receipts, settings, online) the broker refused since start (MQTT 5 only)."""
        return self._refused.counts()

    def _publish(self, kind: str, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc == mqtt.MQTT_ERR_SUCCESS or info.rc == mqtt.MQTT_ERR_NO_CONN:  # queued: the broker answers later
            self._refused.sent(kind, topic, info)

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: object,
        mid: int,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._refused.answered(mid, reason_code)

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._subscribed.clear()
        if self._unsubscribed_since is None:
            self._unsubscribed_since = time.monotonic()
        if not self._stopping.is_set():
            log_event(logger, logging.WARNING, "mqtt disconnected; reconnecting", reason=str(reason_code))

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: object) -> None:
        """A connection attempt failed (refused, unreachable, a name that does not resolve): said once per outage,
        so that a mistyped host or port is not a server that looks healthy and ingests nothing."""
        if not self._stopping.is_set():
            self._unreachable.failed(broker=f"{self.address.host}:{self.address.port}")

    def unsubscribed_seconds(self) -> float:
        """How long the consumer has not been connected and subscribed (since it started, or since it was
        disconnected); 0 while it is."""
        since = self._unsubscribed_since
        return 0.0 if since is None else time.monotonic() - since

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.qos == 0:
            if self._inbox.qsize() >= RECEIVE_MAXIMUM + QOS0_INBOX_LIMIT:
                self.qos0_dropped += 1
                self._qos0_overflow.failed(topic=message.topic, dropped=self.qos0_dropped)
                return
            if self._qos0_overflow.failing:  # the recovery is a QoS 0 message's to tell, and takes no lock before
                self._qos0_overflow.succeeded()
        self._inbox.put(message)

    # writer thread

    def _next_batch(self) -> list[mqtt.MQTTMessage]:
        try:
            first = self._inbox.get(timeout=0.1)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._inbox.get(timeout=remaining) if remaining > 0 else self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write_loop(self) -> None:
        while not (self._stopping.is_set() and self._inbox.empty()):
            batch = self._next_batch()
            if batch:
                self._storing = len(batch)
                try:
                    self._store(batch)
                finally:
                    self._storing = 0

    def inbox_depth(self) -> int:
        """Consumer lag: messages received from the broker and not yet stored (queued, or being stored)."""
        return self._inbox.qsize() + self._storing

    def stalled_seconds(self) -> float:
        """How long storing has been failing (the database unreachable); 0 while ingest keeps up."""
        since = self._stalled_since
        return 0.0 if since is None else time.monotonic() - since

    def _store(self, batch: list[mqtt.MQTTMessage]) -> None:
        """Stores ``batch``, then acknowledges it and sends its receipts. Only an unreachable database is waited
        for; any other failure is never retried as the same batch (see _store_failed)."""
        items = [Incoming(bytes(m.payload), "mqtt", m.topic, live=not m.retain) for m in batch]
        try:
            result = self._ingest_waiting(items)
        except Exception as exc:  # not TRANSIENT_DB_ERRORS: those are retried inside
            self._store_failed(batch, exc)
            return
        if result is None:
            return  # stopping with the database down: unacknowledged, the broker redelivers them to the next session
        self._ack(batch)
        self._send_receipts(result.handled)
        self._send_deferrals(result.deferred)

    def _ingest_waiting(self, items: list[Incoming]) -> BatchResult | None:
        """``ingestor.ingest(items)``, retried with back-off while the database cannot be reached
        (TRANSIENT_DB_ERRORS); None when the consumer stops meanwhile. Any other exception propagates at once."""
        delay = 0.5
        while True:
            try:
                # A message the database refuses is dead-lettered and refused by the ingestor itself; what it
                # raises is the database being unreachable, which waiting can cure.
                result = self.ingestor.ingest(items)
            except TRANSIENT_DB_ERRORS as exc:
                if self._stalled_since is None:
                    self._stalled_since = time.monotonic()
                log_event(
                    logger,
                    logging.ERROR,
                    "storing mqtt batch failed; will retry",
                    size=len(items),
                    error=repr(exc)[:300],
                    stalled_s=round(self.stalled_seconds(), 1),
                )
                if self._stopping.is_set():
                    return None
                self._stopping.wait(delay)  # one more try after a stop, as before it
                delay = min(delay * 2, 30.0)
                continue
            self._stalled_since = None
            return result

    def _store_failed(self, batch: list[mqtt.MQTTMessage], exc: Exception) -> None:
        """An exception other than an unreachable database got past the ingestor, which dead-letters a message
        that storing fails on by itself: a bug. Retrying the same batch would repeat it forever and hold up every
        agent (issue #15), so a batch is stored again message by message, where the ingestor isolates the one at
        fault; a single message is acknowledged without a receipt (its agent keeps it and re-sends it later)."""
        log_event(
            logger,
            logging.ERROR,
            "storing mqtt batch failed; not retried as a batch",
            size=len(batch),
            topics=",".join(sorted({m.topic for m in batch}))[:300],
            payload=bytes(batch[0].payload[:300]).decode("utf-8", "replace") if len(batch) == 1 else None,
            error=repr(exc)[:300],
        )
        logger.debug("storing mqtt batch failed", exc_info=exc)
        if len(batch) > 1:
            for message in batch:
                self._store([message])
            return
        self._ack(batch)

    def _ack(self, batch: list[mqtt.MQTTMessage]) -> None:
        for message in batch:
            if message.qos > 0:
                self.client.ack(message.mid, message.qos)

    def _send_deferrals(self, deferred: list[Deferral]) -> None:
        """Receipts of their own for aggregates dated ahead of this server's clock: when to send them again, so the
        agent neither sends them every few minutes for hours nor takes the silence for a broker that drops them."""
        for site_id, agent_id, chunk in _per_agent_receipt(deferred):
            # Up to the next tenth: sent again a moment early, it would only be deferred again.
            later = [DeferredSeq(seq=d.seq, retry_after_s=math.ceil(d.retry_after_s * 10) / 10) for d in chunk]
            self._send_receipt(Receipt(site_id=site_id, agent_id=agent_id, deferred=later))

    def _send_receipts(self, handled: list[Handled]) -> None:
        """One receipt per agent (split if long). A receipt lost on the way only means a re-send."""
        for site_id, agent_id, chunk in _per_agent_receipt(handled):
            stored = [h.seq for h in chunk if h.refused is None]
            refused = [RefusedSeq(seq=h.seq, reason=h.refused, code=h.code) for h in chunk if h.refused is not None]
            self._send_receipt(Receipt(site_id=site_id, agent_id=agent_id, stored=stored, refused=refused))

    def _send_receipt(self, receipt: Receipt) -> None:
        self._publish("receipts", receipt_topic(receipt.site_id, receipt.agent_id, self.prefix), encode(receipt))


_Answered = TypeVar("_Answered", Handled, Deferral)


def _per_agent_receipt(items: list[_Answered]) -> Iterator[tuple[str, str, list[_Answered]]]:
    """``items`` by agent, in chunks of at most MAX_RECEIPT_SEQS: what one receipt may name."""
    by_agent: dict[tuple[str, str], list[_Answered]] = defaultdict(list)
    for item in items:
        by_agent[(item.site_id, item.agent_id)].append(item)
    for (site_id, agent_id), answered in by_agent.items():
        for start in range(0, len(answered), MAX_RECEIPT_SEQS):
            yield site_id, agent_id, answered[start : start + MAX_RECEIPT_SEQS]
