"""Publishing the outbox over MQTT (QoS 1), the retained status topic, its last will and the heartbeat.

The publisher runs in its own thread and never blocks the pipelines: they write to the outbox and carry
on; this thread sends whatever is due whenever the broker is reachable, a bounded window at a time.
A row leaves the outbox only when the server's receipt names its seq; the broker's PUBACK merely frees
a place in the window. Unconfirmed rows are sent again after a back-off, after every reconnect, and at
once when a server announces that it has (re)subscribed; a message that arrives twice is harmless
because the server keeps the highest seq of each bucket.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
from footfall.core.logs import FailureStreak, OncePer, log_event
from footfall.core.wire import (
    FUTURE_TOLERANCE_S,
    AgentStatus,
    Receipt,
    ServerOnline,
    SiteSettings,
    WireError,
    encode,
    parse_server_message,
    receipt_topic,
    server_online_topic,
    site_settings_topic,
    status_topic,
)
from footfall.edge.config import AgentConfig, ConfigError, TlsConfig
from footfall.edge.demographics import without_age, without_gender
from footfall.edge.outbox import Outbox, OutboxError

if TYPE_CHECKING:
    from footfall.edge.metrics import AgentMetrics
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

logger = logging.getLogger("footfall.edge.delivery")

EARLY_ACK_SECONDS = 5.0
NOTICES_KEPT = 64  # servers whose last online notice is remembered, to tell a second copy of it from a new one
# How long the sender waits before it tries an outbox that failed again (a lock held by another process, a full
# disk): doubling from the first to the last.
OUTBOX_RETRY_SECONDS = (0.5, 10.0)
# Refusal codes (core.wire.RefusalCode) the agent answers by sending the same counts again under new seqs,
# without what the site's mode refuses: the rewrite for Outbox.rewrite, and what it leaves out (for the log).
RESEND_WITHOUT: dict[str, tuple[Callable[[bytes], Callable[[int], bytes] | None], str]] = {
    "counts-only": (without_gender, "gender"),
    "gender-only": (without_age, "age bands"),
}
# How long, while connected, the agent waits for the server's receipt of what it published before it says that none
# comes (the broker takes publishes its ACL drops, and those no subscriber holds, without a word under MQTT 3.1.1).
# A server answers within seconds of its commit; one whose database is down answers nothing either, and is told too.
RECEIPT_WAIT_SECONDS = 300.0
# A connection the broker drops within this many seconds of making it, QUICK_DROPS times in a row, is most likely
# taken over by another client with the same client id (MQTT 3.1.1 gives no reason): said once per run of them.
QUICK_DROP_SECONDS = 10.0
QUICK_DROPS = 3
# Refusals that the config's credentials answer (paho's reason codes for CONNACK 4 and 5 under MQTT 3.1.1).
CREDENTIAL_REFUSALS = frozenset({"Bad user name or password", "Not authorized"})
# Said (at most every 10 minutes) when the server's receipts defer counts: this box dates them ahead of its clock.
DEFERRED = (
    "the server defers counts this box dates more than 15 minutes ahead of its clock: they wait here and go again "
    "once its clock has caught up (retry_after_s); set this box's clock right (NTP)"
)
# Said when a server's online notice shows this box's clock more than FUTURE_TOLERANCE_S off the server's.
CLOCK_OFF = (
    "this box's clock is more than 15 minutes off the server's (ahead_s: how far ahead; negative: behind): counts are "
    "filed by it, and those dated more than 15 minutes ahead wait here until the server's clock catches up; set the "
    "clock right (NTP)"
)


class MqttPublisher:
    def __init__(
        self,
        config: AgentConfig,
        outbox: Outbox,
        status: Callable[[str], AgentStatus],
        *,
        window: int = 50,
        metrics: AgentMetrics | None = None,
        on_settings: Callable[[SiteSettings], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        """``clock``: times the episodes the log reports (receipts that do not come, connections dropped soon after
        they were made); a test passes a fake one."""
        self.config = config
        self.clock = clock
        # Told the site's settings (the retained message, on every subscribe and each change), in paho's thread:
        # before any receipt that follows it, so buffered rows are fixed before the server refuses by them.
        self.on_settings = on_settings
        self.metrics = metrics
        self.outbox = outbox
        self.status = status
        self.window = window
        prefix = config.mqtt.topic_prefix
        self.status_topic = status_topic(config.site_id, config.agent_id, prefix)
        self.receipt_topic = receipt_topic(config.site_id, config.agent_id, prefix)
        self.server_online_topic = server_online_topic(prefix)
        self.settings_topic = site_settings_topic(config.site_id, prefix)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._inflight: set[int] = set()  # mids of aggregates the broker has not acknowledged yet
        # PUBACKs that arrived before publish() returned their mid to us (mid -> when). Status messages'
        # acks land here too and are never claimed; they are forgotten after a few seconds, long before
        # paho could hand the same mid out again (it counts up to 65535).
        self._early_acks: dict[int, float] = {}
        self._connected = False
        self._stopping = False
        # Every unconfirmed row is to be made due again (a reconnect, a server's online notice): done by the sender
        # thread, which owns the outbox's failures; paho's thread must never die of one.
        self._resend_due = False
        self._outbox_trouble = FailureStreak(
            logger,
            "the outbox cannot be read or updated; retrying, nothing is dropped",
            "the outbox works again; sending what it holds",
        )
        # A receipt the outbox cannot take (a full disk): its rows stay and go again, said once per run of failures.
        self._receipt_trouble = FailureStreak(
            logger,
            "a receipt could not be applied to the outbox; its rows stay and are sent again",
            "receipts are applied to the outbox again",
            level=logging.WARNING,
        )
        # Why the broker cannot be reached (a name that does not resolve, a refused port, TLS against a plain
        # listener): said once per outage, where the heartbeat only says 'disconnected'.
        self._unreachable = FailureStreak(logger, "cannot reach the broker; retrying", None, level=logging.WARNING)
        # The broker answers, and says no: once per outage too, naming what the operator can change.
        self._refused_credentials = FailureStreak(
            logger,
            "broker refused the connection: check mqtt.username and mqtt.password_env (the variable holding the "
            "password) against the broker's password file; retrying",
            None,
            level=logging.WARNING,
        )
        self._refused = FailureStreak(logger, "broker refused the connection; retrying", None, level=logging.WARNING)
        # Publishes the broker takes and no receipt answers: an ACL that does not match this agent's topics drops
        # them without a word (MQTT 3.1.1), and so does a broker no footfall server subscribes to.
        self.agent_topics = f"{prefix}/{config.site_id}/{config.agent_id}/#"
        self._deferred = OncePer(logger, DEFERRED, count_as="receipts", seconds=600.0, level=logging.ERROR)
        self._receipts_missing = FailureStreak(
            logger,
            "the broker takes the aggregates but no server's receipt comes: check that the broker's ACL lets this "
            "agent publish to its topic (site_id and agent_id as the ACL names them) and read its receipts, and "
            "that a footfall server (footfall server --mqtt) is subscribed",
            "the server's receipts arrive again",
            level=logging.WARNING,
        )
        # When the first aggregate published since the last receipt (or the connect) went out, by ``clock``; None
        # while nothing waits for an answer or the agent is not connected.
        self._unanswered_since: float | None = None
        self._unanswered_reported = False  # this wait was handed to _receipts_missing already
        # Connections the broker dropped soon after making them: another client with the same client id takes it over.
        self._connected_at: float | None = None
        self._quick_drops = 0
        self._taken_over = FailureStreak(
            logger,
            "the broker keeps dropping the connection soon after it is made: another client with the same client id "
            "may be connected; is agent_id unique per box (or mqtt.client_id, where set)?",
            "the broker connection holds again",
            level=logging.WARNING,
        )
        # The last online notice handled per server (its sent_at): QoS 1 delivers at least once, and a second copy of
        # one notice is not a second subscription (paho's thread only).
        self._notices_heard: dict[str, datetime] = {}
        self.sent = 0
        self.client = self._make_client()
        self._thread = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)

    def _make_client(self) -> mqtt.Client:
        settings = self.config.mqtt
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.config.client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        if settings.username:
            client.username_pw_set(settings.username, settings.resolved_password())
        if settings.tls:
            tls = settings.tls if isinstance(settings.tls, TlsConfig) else TlsConfig()
            try:
                client.tls_set(
                    ca_certs=str(tls.ca_file) if tls.ca_file else None,
                    certfile=str(tls.cert_file) if tls.cert_file else None,
                    keyfile=str(tls.key_file) if tls.key_file else None,
                    cert_reqs=ssl.CERT_REQUIRED,
                )
            except (ssl.SSLError, OSError) as exc:
                # The config's check loaded these files; one changed since. One line for the user, as the check's.
                raise ConfigError(tls.problem() or f"mqtt.tls: cannot load the TLS files ({exc})") from None
            client.tls_insecure_set(tls.insecure)
        will = self.status("offline")
        client.will_set(self.status_topic, encode(will), qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=15)
        client.max_inflight_messages_set(self.window)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        settings = self.config.mqtt
        log_event(logger, logging.INFO, "connecting to broker", host=settings.host, port=settings.port)
        self.client.connect_async(settings.host, settings.port, keepalive=settings.keepalive)
        self.client.loop_start()
        self._thread.start()

    def stop(self, drain_seconds: float = 0.0, *, cancel: threading.Event | None = None) -> None:
        """Waits up to ``drain_seconds`` (or until ``cancel`` is set) for the server to confirm everything,
        publishes 'offline' and disconnects."""
        self.wait_drained(drain_seconds, cancel=cancel)
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
        if self._connected:
            info = self.client.publish(self.status_topic, encode(self.status("offline")), qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=2)
        connected = self._connected
        self.client.disconnect()
        if connected:
            self.client.loop_stop()
        # Else paho's network thread may be asleep in its reconnect backoff; it is a daemon thread and
        # must not hold up a stop (a service manager waits only so long).
        self._thread.join(timeout=5)

    def wait_drained(self, timeout: float, *, cancel: threading.Event | None = None) -> bool:
        """Waits until the server has confirmed every row (or ``timeout`` passes, or ``cancel`` is set)."""
        deadline = time.monotonic() + timeout
        cancel = cancel or threading.Event()
        while self.pending() != 0 and time.monotonic() < deadline:
            self.notify()
            if cancel.wait(0.05):
                break
        return self.pending() == 0

    def pending(self) -> int | None:
        """Rows the server has not confirmed, or None while the outbox cannot be read."""
        try:
            return self.outbox.depth()
        except OutboxError:
            return None

    @property
    def connected(self) -> bool:
        return self._connected

    def notify(self) -> None:
        """Called after the outbox got a row: wake the sender."""
        with self._lock:
            self._wake.notify_all()

    def publish_status(self) -> None:
        if self._connected:
            self.client.publish(self.status_topic, encode(self.status("online")), qos=1, retain=True)

    # -- paho callbacks (network thread) --------------------------------------------------------------
    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            reason = str(reason_code)
            refused = self._refused_credentials if reason in CREDENTIAL_REFUSALS else self._refused
            settings = self.config.mqtt
            refused.failed(
                reason=reason,
                username=settings.username,
                password_env=settings.password_env,
                client_id=self.config.client_id,
            )
            return
        self._unreachable.succeeded()
        self._refused_credentials.succeeded()
        self._refused.succeeded()
        log_event(logger, logging.INFO, "connected to broker", pending=self.pending())
        # A clean session: subscribe on every connect. Receipts that came while we were away are lost, which
        # costs only a re-send.
        client.subscribe([(self.receipt_topic, 1), (self.server_online_topic, 1), (self.settings_topic, 1)])
        client.publish(self.status_topic, encode(self.status("online")), qos=1, retain=True)
        # What was sent before may not have reached the server (the broker may even have restarted):
        # everything unconfirmed goes again, oldest first.
        with self._lock:
            self._resend_due = True
            self._connected = True
            self._connected_at = self.clock()
            self._unanswered_since = None
            self._inflight.clear()
            self._early_acks.clear()
            self._wake.notify_all()
        if self.metrics is not None:
            self.metrics.connected(True)

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        # paho calls this from inside its ``except OSError`` around the connection attempt, and passes no reason.
        error = sys.exc_info()[1]
        settings = self.config.mqtt
        self._unreachable.failed(
            host=settings.host,
            port=settings.port,
            error=str(error) if error is not None else "unknown",
            tls=bool(settings.tls),
        )

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            was_connected = self._connected
            self._connected = False
            connected_at, self._connected_at = self._connected_at, None
            self._unanswered_since = None
            self._inflight.clear()
            self._early_acks.clear()
        if self.metrics is not None:
            self.metrics.connected(False)
        if not was_connected or self._stopping:
            return
        # Each drop is an outage of its own; in a run of quick ones (said once, below) they go to DEBUG.
        log_event(
            logger,
            logging.DEBUG if self._taken_over.failing else logging.WARNING,
            "broker connection lost; buffering in the outbox and retrying",
            reason=str(reason_code),
            pending=self.pending(),
        )
        lasted = self.clock() - connected_at if connected_at is not None else None
        if lasted is None or lasted >= QUICK_DROP_SECONDS:
            self._quick_drops = 0
            self._taken_over.succeeded()
            return
        self._quick_drops += 1
        if self._quick_drops >= QUICK_DROPS:
            self._taken_over.failed(
                client_id=self.config.client_id,
                drops=self._quick_drops,
                lasted_s=round(lasted, 1),
                reason=str(reason_code),
            )

    def _on_publish(
        self, client: mqtt.Client, userdata: object, mid: int, reason_code: ReasonCode, properties: Properties
    ) -> None:
        with self._lock:
            if mid in self._inflight:
                self._inflight.discard(mid)
                self._wake.notify_all()
                return
            now = time.monotonic()
            self._early_acks[mid] = now
            if len(self._early_acks) > 64:
                self._early_acks = {m: at for m, at in self._early_acks.items() if now - at < EARLY_ACK_SECONDS}

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            parsed = parse_server_message(message.payload)
        except WireError as exc:
            log_event(
                logger, logging.WARNING, "ignored a malformed server message", topic=message.topic, error=str(exc)
            )
            return
        if isinstance(parsed, Receipt):
            self._on_receipt(parsed)
        elif isinstance(parsed, SiteSettings):
            if self.on_settings is not None:
                self.on_settings(parsed)
        else:
            self._on_server_online(parsed)

    def _on_server_online(self, notice: ServerOnline) -> None:
        """A server (re)subscribed: what a broker dropped while no server held it goes again, at once. The same notice
        delivered twice (QoS 1 is at least once: a server's client re-sends what the broker had not acknowledged when
        the connection dropped) is one subscription, said and answered once: the review found the line twice within
        a second."""
        if self._notices_heard.get(notice.server_id) == notice.sent_at:
            log_event(logger, logging.DEBUG, "a server's online notice came again; ignored", server=notice.server_id)
            return
        if len(self._notices_heard) >= NOTICES_KEPT:  # a broker shared by many servers: forget, never grow
            self._notices_heard.clear()
        self._notices_heard[notice.server_id] = notice.sent_at
        # The notice is sent as the server subscribes and is never kept for later (not retained; a clean session), so
        # this box's clock read against its sent_at is off by the network's delay, seconds. (A notice held up by its
        # server's connection dropping as it was sent would read this box as ahead: the server's agents list, from
        # the statuses, has the lead too.)
        lead = time.time() - notice.sent_at.timestamp()
        if abs(lead) > FUTURE_TOLERANCE_S:
            log_event(logger, logging.ERROR, CLOCK_OFF, server=notice.server_id, ahead_s=round(lead))
        log_event(
            logger,
            logging.INFO,
            "a server subscribed; re-sending what it has not confirmed",
            server=notice.server_id,
            pending=self.pending(),
        )
        with self._lock:
            self._resend_due = True
            self._wake.notify_all()

    def _on_receipt(self, receipt: Receipt) -> None:
        if (receipt.site_id, receipt.agent_id) != (self.config.site_id, self.config.agent_id):
            return  # not ours (a shared broker with a broad ACL): never drop our rows on its say-so
        with self._lock:
            self._unanswered_since, self._unanswered_reported = None, False
        self._receipts_missing.succeeded()
        final: list[int] = []
        resend: dict[str, list[int]] = {}
        for refused in receipt.refused:
            if refused.code in RESEND_WITHOUT:  # the same counts go again without what the site refuses
                resend.setdefault(refused.code, []).append(refused.seq)
                continue
            # Durable in the server's dead letters; re-sending cannot fix it, so it must at least be loud here.
            log_event(logger, logging.ERROR, "the server refused an aggregate", seq=refused.seq, reason=refused.reason)
            final.append(refused.seq)
        try:
            self.outbox.confirm([*receipt.stored, *final])
            if receipt.deferred:
                retry_after = {d.seq: d.retry_after_s for d in receipt.deferred}
                self.outbox.defer(retry_after)
                self._deferred.occurred(deferred=len(retry_after), retry_after_s=round(min(retry_after.values())))
            for code, seqs in resend.items():
                strip, what = RESEND_WITHOUT[code]
                again = self.outbox.rewrite(strip, seqs=seqs)
                log_event(
                    logger,
                    logging.INFO,
                    f"the site is {code}: aggregates sent again without {what}",
                    refused=len(seqs),
                    sent_again=again,
                )
                self.notify()
        except OutboxError as exc:
            # The rows stay: they go again after their back-off and the server, which keeps the highest seq of
            # each bucket, answers them again. Nothing is lost, some are sent twice.
            self._receipt_trouble.failed(error=str(exc))
        else:
            self._receipt_trouble.succeeded()
        if self.metrics is not None:
            self.metrics.receipt(len(receipt.stored), len(receipt.refused))

    # -- sender thread ----------------------------------------------------------------------------------
    def _watch(self) -> None:
        """Says what the connection's timing shows (the sender calls it at least once a second): a receipt that has
        not come for RECEIPT_WAIT_SECONDS while connected, once per episode; and a connection that held for
        QUICK_DROP_SECONDS, which ends a run of quick drops."""
        with self._lock:
            if not self._connected:
                return
            now = self.clock()
            waited = now - self._unanswered_since if self._unanswered_since is not None else None
            report = waited is not None and waited >= RECEIPT_WAIT_SECONDS and not self._unanswered_reported
            if report:
                self._unanswered_reported = True
            held = self._connected_at is not None and now - self._connected_at >= QUICK_DROP_SECONDS
        if report:
            self._receipts_missing.failed(
                topic=self.agent_topics,
                prefix=self.config.mqtt.topic_prefix,
                site=self.config.site_id,
                agent=self.config.agent_id,
                waited_s=round(waited or 0.0),
                pending=self.pending(),
            )
        if held:  # the run's count starts again when this connection drops (see _on_disconnect)
            self._taken_over.succeeded(client_id=self.config.client_id)

    def _run(self) -> None:
        retry = OUTBOX_RETRY_SECONDS[0]
        retry_at = 0.0  # after an outbox failure, when to try it again (time.monotonic)
        while True:
            self._watch()
            with self._lock:
                if self._stopping:
                    return
                # A deadline, not one wait: a broker's ack wakes this thread, and a full disk, failing each time
                # after the publish, had the same row published 2,477 times in 12 s.
                backing_off = retry_at - time.monotonic()
                if backing_off > 0:
                    self._wake.wait(timeout=min(backing_off, 1.0))  # _watch runs at least once a second
                    continue
                if not self._connected or len(self._inflight) >= self.window:
                    self._wake.wait(timeout=1.0)
                    continue
                room = self.window - len(self._inflight)
            try:
                rows = self._send_due(room)
            except OutboxError as exc:
                self._outbox_trouble.failed(error=str(exc))
                retry_at = time.monotonic() + retry
                retry = min(2 * retry, OUTBOX_RETRY_SECONDS[1])
                continue
            if self._outbox_trouble.failing:
                self._outbox_trouble.succeeded(pending=self.pending())
            retry = OUTBOX_RETRY_SECONDS[0]
            if not rows:
                with self._lock:
                    if not self._stopping:
                        self._wake.wait(timeout=1.0)  # a new row, a connect or a resend notice wakes us sooner

    def _send_due(self, room: int) -> int:
        """Publishes up to ``room`` due rows (after making every row due, when a reconnect asked for it); returns how
        many were due. Raises :class:`OutboxError` when the outbox fails: the rows stay, and go on the next try (a
        row published but not marked sent is published again, which the server's seq check makes harmless)."""
        with self._lock:
            resend, self._resend_due = self._resend_due, False
        if resend:
            try:
                self.outbox.resend_all()
            except OutboxError:
                with self._lock:
                    self._resend_due = True
                raise
        rows = self.outbox.due(limit=room)
        for row in rows:
            if not self._connected:
                break
            info = self.client.publish(row.topic, row.payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break  # connection dropped under us; the reconnect makes every row due again
            with self._lock:
                acked_at = self._early_acks.pop(info.mid, None)
                if acked_at is None or time.monotonic() - acked_at >= EARLY_ACK_SECONDS:
                    self._inflight.add(info.mid)
                if self._unanswered_since is None and self._connected:
                    self._unanswered_since = self.clock()
            self.sent += 1
            self.outbox.mark_sent(row.id)
        return len(rows)
