"""The one ingest path for MQTT and HTTP: parse, check, and idempotently upsert into raw buckets and rollups.

An aggregate is the full count of its (agent, camera, zone, bucket) key; the stored row is the one with the
highest ``seq``. Rollups are adjusted by the difference between the new and the replaced row inside the same
transaction, so they always equal the sum of the raw buckets, however often a message is redelivered,
replayed or arrives out of order. A malformed message is stored in ``dead_letters`` with its reason and
never stops the batch.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from footfall.core.logs import OncePer, log_event
from footfall.core.wire import (
    FUTURE_TOLERANCE_S,
    AgentStatus,
    AggregateMessage,
    RefusalCode,
    WireError,
    parse_message,
)
from footfall.server import agents, classifiers
from footfall.server.catalog import (
    DEFAULT_MAX_AGENTS,
    DEFAULT_MAX_SITES,
    DEFAULT_MAX_ZONES_PER_SITE,
    AgentAdmission,
    ZoneRef,
    ensure_zones,
    first_measures,
    measure_conflict,
    sites_beyond_cap,
    zones_beyond_cap,
)
from footfall.server.db import TRANSIENT_DB_ERRORS, Database
from footfall.server.localtime import EARLIEST, LATEST, hour_floor
from footfall.server.release import DEFAULT_K, DEFAULT_RELEASE_DELAY, effective_k, read_until, seen_until
from footfall.server.rollups import COUNTS as COUNT_FIELDS
from footfall.server.rollups import CameraPartDeltas, HourlyDeltas, apply_hourly_deltas, release_k
from footfall.server.rollups import ages as age_cells
from footfall.server.rollups.observed import ObservedDeltas, apply_observed_deltas
from footfall.server.sql import locked
from footfall.server.tables import Bucket, DeadLetter, Meta, Site
from prometheus_client import Histogram
from sqlalchemy import bindparam, select, tuple_, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

logger = logging.getLogger("footfall.server.ingest")

MAX_PAYLOAD_STORED = 16_384
# A bucket that starts further ahead than FUTURE_TOLERANCE_S, by up to this much, is deferred: neither stored nor
# refused; its agent is told when the server's clock will have caught up (a receipt's ``deferred``), keeps it in its
# outbox and sends it then. A box whose clock runs hours fast (drifted, or set to local time as UTC: up to 14 h) then
# keeps its counts; they come late, filed by its own clock, and the agents list says how far ahead it is. Further
# ahead still, the box's date is wrong and the counts are refused: waiting would keep them in its outbox for days.
DEFER_AHEAD_S = 86_400
DEFERRED_LINE = (
    "counts dated ahead of the server's clock deferred: the agent keeps them and sends them again; set its clock right "
    "(NTP)"
)
# More than a year back, so that a year of history can be filed; a clock that restarted at 2000-01-01 cannot.
DEFAULT_MAX_BUCKET_AGE_DAYS = 400
PURGED_BEFORE_KEY = "raw_purged_before"  # meta; "raw_purged_before:<site>" for a site with its own retention


@dataclass(frozen=True)
class SiteControls:
    """What the operator set for a site (admin API) that ingest applies: its demographics mode, its own k (None:
    the server's) and its raw-data retention watermark (buckets before it are final in the rollups)."""

    demographics: str = "full"
    k: int | None = None
    purged_before: int = 0


def site_controls(session: Session, site_ids: set[str]) -> dict[str, SiteControls]:
    """The controls of ``site_ids``, read with a share lock on PostgreSQL: an admin's change of a site's mode or k
    (an UPDATE of its row, committed with the recomputed release) waits for this transaction, or this one waits
    for it and reads the new values; so no aggregate is judged by, or released with, a setting already replaced.
    A site not created yet has the defaults."""
    if not site_ids:
        return {}
    query = select(Site.site_id, Site.demographics, Site.k).where(Site.site_id.in_(sorted(site_ids)))
    rows = session.execute(locked(query.order_by(Site.site_id), session, read=True)).all()
    keys = {f"{PURGED_BEFORE_KEY}:{site}": site for site in site_ids}
    watermarks = {
        keys[key]: int(value)
        for key, value in session.execute(select(Meta.key, Meta.value).where(Meta.key.in_(sorted(keys))))
    }
    found = {site: SiteControls(demographics, k, watermarks.get(site, 0)) for site, demographics, k in rows}
    return found | {site: SiteControls(purged_before=watermarks.get(site, 0)) for site in site_ids - found.keys()}


# What the dead letter of an aggregate refused by its site's controls (refusal_by_site's code) does not keep: what
# the site refuses to hold (an 'off' site's counts, a 'counts-only' site's genders, a 'gender-only' site's ages), so
# that a refusal does not keep for the dead letters' 90 days what storing would not have; and past the site's
# raw-data retention window (its only 'rejected'), the counts retention deleted.
NOT_KEPT: dict[RefusalCode, tuple[str, ...]] = {
    "off": ("age", "dwell", "gender", "people"),
    "counts-only": ("age", "gender"),
    "gender-only": ("age",),
    "rejected": ("age", "dwell", "gender", "people"),
}


class PastRetention(WireError):
    """An aggregate older than the raw-data retention window: refused, and its counts not kept."""


def refusal_by_site(message: AggregateMessage, controls: SiteControls) -> tuple[str, RefusalCode] | None:
    """Why the site's controls refuse ``message`` and the receipt's code for it, or None. Judged by the mode at
    receipt, whenever the bucket started. A 'counts-only' refusal loses no count: its code tells the agent to
    send the same counts again without gender under a new seq (and an agent that has heard of the mode strips
    what it still holds by itself), whichever of the settings and the receipt reaches it first; a 'gender-only'
    refusal of an aggregate with age bands likewise (code 'gender-only': the same counts again without age)."""
    if controls.demographics == "off":
        return (
            f"site_id: site {message.site_id!r} is in demographics mode 'off': it collects nothing, so no "
            "aggregate of it is stored (its agents stop counting when told)",
            "off",
        )
    if controls.demographics == "counts-only" and message.gender is not None:
        return (
            f"gender: site {message.site_id!r} is in demographics mode 'counts-only': an aggregate must carry no "
            "gender (null); this one was classified (an agent that has not applied the mode yet, or a copy sent "
            "before it did); the agent sends its counts again without gender",
            "counts-only",
        )
    if controls.demographics == "gender-only" and message.age is not None:
        return (
            f"age: site {message.site_id!r} is in demographics mode 'gender-only': an aggregate must carry no age "
            "bands (absent); this one estimated age (an agent that has not applied the mode yet, or a copy sent "
            "before it did); the agent sends its counts again without age",
            "gender-only",
        )
    if int(message.bucket_start.timestamp()) < controls.purged_before:
        return (
            f"bucket_start: {message.bucket_start.isoformat()} is older than the site's raw-data retention "
            "window; its hour is final in the rollups and cannot be changed",
            "rejected",
        )
    return None


@dataclass(frozen=True)
class Incoming:
    """One message as received, before parsing."""

    payload: bytes
    source: str  # "mqtt" or "http"
    topic: str | None = None
    bound_agent: str | None = None  # an agent key may only ingest for its own agent
    bound_site: str | None = None  # and for its own site (a key bound to one)
    # Published by the broker just now, to an established subscription (MQTT's retain flag 0): not a retained copy
    # replayed on subscribe. An agent's last will comes so when its connection dies (see agents.store_statuses).
    live: bool = False


@dataclass(frozen=True)
class Rejection:
    index: int
    reason: str
    code: RefusalCode = "rejected"


@dataclass(frozen=True)
class Handled:
    """An aggregate this batch dealt with for good: stored (or superseded), or refused with a reason. The
    MQTT consumer turns these into receipts, so the agent may forget them."""

    site_id: str
    agent_id: str
    seq: int
    refused: str | None = None
    code: RefusalCode = "rejected"  # what the agent should do about a refusal (core.wire.RefusalCode)


@dataclass(frozen=True)
class Deferral:
    """An aggregate left for its agent to send again in ``retry_after_s`` (see DEFER_AHEAD_S); ``index`` is its
    place in the batch."""

    index: int
    reason: str
    site_id: str
    agent_id: str
    seq: int
    retry_after_s: float


@dataclass
class BatchResult:
    accepted: int = 0
    duplicates: int = 0
    statuses: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    deferred: list[Deferral] = field(default_factory=list)
    handled: list[Handled] = field(default_factory=list)
    last_buckets: dict[str, int] = field(default_factory=dict)  # agent id → newest valid bucket_start in the batch


# The result label of footfall_server_messages_ingested_total (server/metrics.py).
INGEST_RESULTS = ("stored", "duplicate", "status", "refused", "deferred")
# Time to store one batch, in seconds: a handful of messages takes milliseconds, thousands up to seconds.
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class IngestCounters:
    """Process-wide counters by path ("mqtt", "http") and result, the one source of the admin API's ingest
    stats and of the Prometheus metrics (server/metrics.py); the dead-letter table keeps the durable record.
    Also the time to store each batch, and the newest bucket seen from each agent."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    batch_seconds: Histogram = field(
        default_factory=lambda: Histogram(
            "footfall_server_db_batch_duration_seconds",
            "Time to store one batch of messages in the database (one transaction), by path.",
            ["path"],
            buckets=BATCH_BUCKETS,
            registry=None,  # collected by the app's own registry (server/metrics.py), never the global one
        ),
        repr=False,
    )
    _last_bucket: dict[str, int] = field(default_factory=dict, repr=False)

    def add(self, result: BatchResult, path: str) -> None:
        with self.lock:
            for name, value in zip(
                INGEST_RESULTS,
                (result.accepted, result.duplicates, result.statuses, len(result.rejected), len(result.deferred)),
                strict=True,
            ):
                self.counts[(path, name)] = self.counts.get((path, name), 0) + value
            for agent, start in result.last_buckets.items():
                self._last_bucket[agent] = max(start, self._last_bucket.get(agent, start))

    def by_path(self) -> dict[tuple[str, str], int]:
        with self.lock:
            return dict(self.counts)

    def snapshot(self) -> dict[str, int]:
        """Totals over both paths, under the admin API's names."""
        counts = self.by_path()
        total = {name: sum(v for (_, result), v in counts.items() if result == name) for name in INGEST_RESULTS}
        return {
            "accepted": total["stored"],
            "duplicates": total["duplicate"],
            "statuses": total["status"],
            "rejected": total["refused"],
            "deferred": total["deferred"],
        }

    def seed_last_buckets(self, newest: dict[str, int]) -> None:
        """Merges what the database holds (read once per process) into the newest buckets seen."""
        with self.lock:
            for agent, start in newest.items():
                self._last_bucket[agent] = max(start, self._last_bucket.get(agent, start))

    def last_buckets(self) -> dict[str, int]:
        """Agent id → start (Unix time) of the newest bucket seen from it."""
        with self.lock:
            return dict(self._last_bucket)


def _ahead_reason(ahead_s: float) -> str:
    return (
        f"bucket_start: {ahead_s / 60:.0f} minutes ahead of the server's clock (is the agent's clock right?); "
        f"deferred, not stored: send it again once the server's clock is within {FUTURE_TOLERANCE_S // 60} minutes "
        "of it"
    )


def _check_topic(message: AggregateMessage | AgentStatus, item: Incoming) -> None:
    if item.topic is None:
        return
    parts = item.topic.split("/")
    if len(parts) < 3 or parts[-3] != message.site_id or parts[-2] != message.agent_id:
        raise WireError(
            f"topic {item.topic!r} does not match the message's site_id {message.site_id!r} "
            f"and agent_id {message.agent_id!r}"
        )
    expected_kind = "aggregates" if message.kind == "aggregate" else "status"
    if parts[-1] != expected_kind:
        raise WireError(f"a {message.kind} message was published on {item.topic!r}")


def _check_agent(message: AggregateMessage | AgentStatus, item: Incoming) -> None:
    if item.bound_agent is not None and message.agent_id != item.bound_agent:
        raise WireError(f"agent_id: this API key may only send for agent {item.bound_agent!r}")
    if item.bound_site is not None and message.site_id != item.bound_site:
        raise WireError(f"site_id: this API key may only send for site {item.bound_site!r}")


class Ingestor:
    """Stores batches of incoming messages; safe to call from several threads and several server replicas."""

    def __init__(
        self,
        db: Database,
        default_tz: str = "UTC",
        clock: Callable[[], float] = time.time,
        *,
        open_hour: bool = False,
        release_delay: int = DEFAULT_RELEASE_DELAY,
        max_zones_per_site: int = DEFAULT_MAX_ZONES_PER_SITE,
        max_sites: int = DEFAULT_MAX_SITES,
        max_agents: int = DEFAULT_MAX_AGENTS,
        max_bucket_age_days: int = DEFAULT_MAX_BUCKET_AGE_DAYS,
    ):
        """``open_hour`` and ``release_delay`` are the server's read settings (footfall.server.release): which
        hours readers may have seen, and so which cells a late change may move only in steps of at least k."""
        self.db = db
        self.default_tz = default_tz
        self.clock = clock
        self.max_bucket_age_days = max_bucket_age_days
        self.open_hour = open_hour
        self.release_delay = release_delay
        self.max_zones_per_site = max_zones_per_site
        self.max_sites = max_sites
        self.max_agents = max_agents
        self.counters = IngestCounters()
        self._deferred_lines: dict[str, OncePer] = {}
        self._deferred_lock = threading.Lock()

    def ingest(self, items: Sequence[Incoming]) -> BatchResult:
        """Parses and stores ``items`` in one transaction (retried on a lost insert race).

        A message that passes the wire schema but that storing fails on for a reason of its own (anything but
        the database being unreachable) cannot hold up the others: the batch is stored message by message, and
        the one that fails is dead-lettered with the error and refused to its agent, so no caller retries it
        forever. An unreachable database (``TRANSIENT_DB_ERRORS``) is raised, for the caller to retry with
        back-off."""
        try:
            return self._ingest_batch(items)
        except TRANSIENT_DB_ERRORS:
            raise
        except Exception as exc:
            if len(items) == 1:
                return self._refuse(items[0], exc)
            log_event(logger, logging.WARNING, "batch failed; storing its messages one by one", size=len(items))
            merged = BatchResult()
            for offset, item in enumerate(items):
                part = self.ingest([item])
                merged.accepted += part.accepted
                merged.duplicates += part.duplicates
                merged.statuses += part.statuses
                merged.rejected += [Rejection(r.index + offset, r.reason, r.code) for r in part.rejected]
                merged.deferred += [dataclasses.replace(d, index=d.index + offset) for d in part.deferred]
                merged.handled += part.handled
                for agent, start in part.last_buckets.items():
                    merged.last_buckets[agent] = max(start, merged.last_buckets.get(agent, start))
            return merged

    def _deferred_line(self, agent_id: str) -> OncePer:
        """The log line of an agent's deferred counts, said once a minute: a fast box sends them again and again."""
        with self._deferred_lock:
            line = self._deferred_lines.get(agent_id)
            if line is None:
                if len(self._deferred_lines) >= 1000:  # many boxes fast at once: forget, never grow
                    self._deferred_lines.clear()
                line = self._deferred_lines[agent_id] = OncePer(logger, DEFERRED_LINE, count_as="batches")
            return line

    def _refuse(self, item: Incoming, exc: Exception) -> BatchResult:
        """Dead-letters one message that storing failed on, and refuses it to its agent."""
        reason = f"storing failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:2000]
        result = BatchResult(rejected=[Rejection(0, reason)])
        try:
            message = parse_message(item.payload)
        except Exception:  # a refusal is what it must end in, whatever the payload does to the parser
            message = None
        if isinstance(message, AggregateMessage):
            result.handled.append(Handled(message.site_id, message.agent_id, message.seq, reason))
        with self.db.write() as session:
            session.execute(DeadLetter.__table__.insert(), [self._dead_letter(item, reason)])
        log_event(logger, logging.ERROR, "message refused", source=item.source, topic=item.topic, reason=reason)
        self.counters.add(result, item.source)
        return result

    def _dead_letter(self, item: Incoming, reason: str, not_kept: tuple[str, ...] = ()) -> dict[str, object]:
        """The dead-letter row of a refused message; ``not_kept`` names fields of a parsed aggregate left out of
        it (:data:`NOT_KEPT`), which the reason then says."""
        payload = item.payload[:MAX_PAYLOAD_STORED].decode("utf-8", "replace")
        if not_kept:  # only ever asked for an aggregate that parsed, so its payload is a JSON object
            kept = {key: value for key, value in json.loads(item.payload).items() if key not in not_kept}
            payload = json.dumps(kept, separators=(",", ":"))
            reason = f"{reason} (not kept: {', '.join(not_kept)})"
        return {
            "received_at": int(self.clock()),
            "source": item.source,
            "topic": item.topic,
            # PostgreSQL's text columns refuse NUL: a payload holding one is kept with U+FFFD in its place.
            "reason": reason[:2000].replace("\x00", "\ufffd"),
            "payload": payload.replace("\x00", "\ufffd"),
        }

    def _ingest_batch(self, items: Sequence[Incoming]) -> BatchResult:
        for attempt in range(5):
            try:
                started = time.perf_counter()
                with self.db.write() as session:
                    result = self._ingest(session, items)
                path = items[0].source if items else "http"
                self.counters.batch_seconds.labels(path).observe(time.perf_counter() - started)
                self.counters.add(result, path)
                return result
            except (IntegrityError, OperationalError) as exc:
                # Two replicas inserted the same new key at once, or the database was briefly locked:
                # the transaction rolled back as a whole, so retrying cannot double-count.
                if attempt == 4:
                    raise
                log_event(
                    logger,
                    logging.WARNING,
                    "ingest batch retried",
                    attempt=attempt + 1,
                    error=str(exc.orig)[:200],
                )
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _ingest(self, session: Session, items: Sequence[Incoming]) -> BatchResult:
        now = self.clock()
        result = BatchResult()
        purged_before = self._purged_before(session)
        aggregates: list[tuple[int, AggregateMessage]] = []
        statuses: list[AgentStatus] = []
        live_goodbyes: set[int] = set()  # the statuses (by place in ``statuses``) that say 'offline' live
        replayed: set[int] = set()  # and those that are the broker's retained copies, replayed on subscribe
        dead: list[dict[str, object]] = []
        admission = AgentAdmission(session, self.max_agents)
        for index, item in enumerate(items):
            sender: AggregateMessage | None = None  # known once the message is proven to be its agent's
            try:
                message = parse_message(item.payload)
                _check_topic(message, item)
                _check_agent(message, item)
                if isinstance(message, AggregateMessage):
                    start = int(message.bucket_start.timestamp())
                    if start > now + DEFER_AHEAD_S:
                        sender = message  # refused for good, in its receipt too
                        raise WireError(
                            f"bucket_start: {message.bucket_start.isoformat()} is in the future, more than a day "
                            "ahead of the server's clock (is the agent's date right?)"
                        )
                    if start > now + FUTURE_TOLERANCE_S:  # before admission: a deferred message takes no agent's place
                        ahead = start - now
                        result.deferred.append(
                            Deferral(
                                index,
                                _ahead_reason(ahead),
                                message.site_id,
                                message.agent_id,
                                message.seq,
                                ahead - FUTURE_TOLERANCE_S,
                            )
                        )
                        continue
                if not admission.admits(message.agent_id):
                    raise WireError(
                        f"agent_id: {message.agent_id!r} would be agent {self.max_agents + 1} of this server, more "
                        "than it may have (FOOTFALL_MAX_AGENTS); does a config name its agent by something that "
                        "changes?"
                    )
                if isinstance(message, AggregateMessage):
                    sender = message
                    if start < now - self.max_bucket_age_days * 86_400:
                        raise WireError(
                            f"bucket_start: {message.bucket_start.isoformat()} is more than "
                            f"{self.max_bucket_age_days} days old (FOOTFALL_MAX_BUCKET_AGE_DAYS); is the agent's "
                            "clock right? (a box often starts at 2000-01-01 after losing power)"
                        )
                    if not EARLIEST <= message.bucket_start < LATEST:
                        raise WireError(
                            f"bucket_start: {message.bucket_start.isoformat()} lies outside the years footfall "
                            f"answers for ({EARLIEST.year}-{LATEST.year - 1}; is the agent's clock right?)"
                        )
                    if start < purged_before:
                        raise PastRetention(
                            f"bucket_start: {message.bucket_start.isoformat()} is older than the raw-data "
                            "retention window; its hour is final in the rollups and cannot be changed"
                        )
                    aggregates.append((index, message))
                else:
                    # A status from a fast clock is filed as sent before now (agents.store_statuses), so that it
                    # cannot pin the agent's state; from further ahead than a day, it is refused.
                    if message.sent_at.timestamp() > now + DEFER_AHEAD_S:
                        raise WireError(
                            f"sent_at: {message.sent_at.isoformat()} is in the future, more than a day ahead of the "
                            "server's clock (is the agent's date right?)"
                        )
                    if item.live and message.state == "offline":
                        live_goodbyes.add(len(statuses))
                    if item.source == "mqtt" and not item.live:
                        replayed.add(len(statuses))
                    statuses.append(message)
            except WireError as exc:
                reason = str(exc)
                result.rejected.append(Rejection(index, reason))
                if sender is not None:
                    result.handled.append(Handled(sender.site_id, sender.agent_id, sender.seq, reason[:2000]))
                not_kept = NOT_KEPT["rejected"] if isinstance(exc, PastRetention) else ()
                dead.append(self._dead_letter(item, reason, not_kept))
        for agent_id in sorted({d.agent_id for d in result.deferred}):
            waits = [d.retry_after_s for d in result.deferred if d.agent_id == agent_id]
            ahead_s = round(max(waits) + FUTURE_TOLERANCE_S)
            self._deferred_line(agent_id).occurred(agent=agent_id, deferred=len(waits), ahead_s=ahead_s)
        controls = site_controls(session, {m.site_id for _, m in aggregates})
        allowed: list[tuple[int, AggregateMessage]] = []
        for index, message in aggregates:  # the operator's controls of the site (admin API)
            refusal = refusal_by_site(message, controls[message.site_id])
            if refusal is None:
                allowed.append((index, message))
                continue
            reason, code = refusal
            result.rejected.append(Rejection(index, reason, code))
            result.handled.append(Handled(message.site_id, message.agent_id, message.seq, reason, code))
            dead.append(self._dead_letter(items[index], reason, NOT_KEPT[code]))
        new_sites_beyond = sites_beyond_cap(session, {m.site_id for _, m in allowed}, self.max_sites)
        within: list[tuple[int, AggregateMessage]] = []
        for index, message in allowed:  # a key naming sites by something that changes would fill the server
            if message.site_id not in new_sites_beyond:
                within.append((index, message))
                continue
            reason = (
                f"site_id: {message.site_id!r} would be site {self.max_sites + 1} of this server, more than it may "
                "have (FOOTFALL_MAX_SITES); does the agent's config name its site by something that changes?"
            )
            result.rejected.append(Rejection(index, reason))
            result.handled.append(Handled(message.site_id, message.agent_id, message.seq, reason))
            dead.append(self._dead_letter(items[index], reason))
        allowed = within
        beyond = zones_beyond_cap(session, {(m.site_id, m.zone_id) for _, m in allowed}, self.max_zones_per_site)
        aggregates = []
        for index, message in allowed:  # an agent naming zones by something that changes would fill the database
            if (message.site_id, message.zone_id) not in beyond:
                aggregates.append((index, message))
                continue
            reason = (
                f"zone_id: {message.zone_id!r} would be zone {self.max_zones_per_site + 1} of site "
                f"{message.site_id!r}, more than a site may have (FOOTFALL_MAX_ZONES_PER_SITE); does the agent's "
                "config name zones by something that changes?"
            )
            result.rejected.append(Rejection(index, reason))
            result.handled.append(Handled(message.site_id, message.agent_id, message.seq, reason))
            dead.append(self._dead_letter(items[index], reason))
        zones = ensure_zones(session, first_measures(m for _, m in aggregates), self.default_tz)
        kept: list[tuple[int, AggregateMessage]] = []
        for index, message in aggregates:  # a measure that disagrees with its zone's would mix kinds of count
            conflict = measure_conflict(message, zones)
            if conflict is None:
                kept.append((index, message))
                continue
            result.rejected.append(Rejection(index, conflict))
            result.handled.append(Handled(message.site_id, message.agent_id, message.seq, conflict))
            dead.append(self._dead_letter(items[index], conflict))
        aggregates = kept
        if dead:
            session.execute(DeadLetter.__table__.insert(), dead)
            for entry in dead:
                log_event(
                    logger,
                    logging.WARNING,
                    "message rejected",
                    source=entry["source"],
                    topic=entry["topic"],
                    reason=entry["reason"],
                )
        if aggregates:
            opened: set[str] = set()  # agents of which a bucket came for the first time
            accepted = self._store_aggregates(session, [m for _, m in aggregates], now, controls, zones, opened)
            result.accepted = accepted
            result.duplicates = len(aggregates) - accepted
            result.handled.extend(Handled(m.site_id, m.agent_id, m.seq) for _, m in aggregates)
            for _, m in aggregates:
                start = int(m.bucket_start.timestamp())
                result.last_buckets[m.agent_id] = max(start, result.last_buckets.get(m.agent_id, start))
            agents.heard_from(session, {m.agent_id: m.site_id for _, m in aggregates}, opened, now)
        if statuses:
            agents.store_statuses(session, statuses, now, live_goodbyes, replayed)
            classifiers.register(session, statuses, now)
            result.statuses = len(statuses)
        return result

    @staticmethod
    def _purged_before(session: Session) -> int:
        value = session.scalar(select(Meta.value).where(Meta.key == PURGED_BEFORE_KEY))
        return int(value) if value else 0

    def _store_aggregates(
        self,
        session: Session,
        messages: list[AggregateMessage],
        now: float,
        controls: dict[str, SiteControls],
        zones: dict[tuple[str, str], ZoneRef],
        opened: set[str],
    ) -> int:
        """Stores the newest message of each bucket; returns how many changed a bucket, and adds to ``opened`` the
        agents of which a bucket came for the first time."""
        # The newest message per key within the batch; the rest are duplicates of it.
        newest: dict[tuple[str, str, int, int], AggregateMessage] = {}
        for message in messages:
            key = (
                message.agent_id,
                message.camera_id,
                zones[(message.site_id, message.zone_id)].pk,
                int(message.bucket_start.timestamp()),
            )
            held = newest.get(key)
            if held is None or message.seq > held.seq:
                newest[key] = message
        existing = self._existing(session, list(newest))
        inserts: list[dict[str, object]] = []
        updates: list[dict[str, object]] = []
        hourly: HourlyDeltas = defaultdict(lambda: [0.0] * len(COUNT_FIELDS))
        by_classifier: classifiers.ClassifierDeltas = defaultdict(classifiers.Decided)
        by_age: age_cells.AgeDeltas = defaultdict(int)
        camera_parts: CameraPartDeltas = defaultdict(int)
        seconds_reported: ObservedDeltas = defaultdict(int)
        age_rows: list[dict[str, object]] = []
        replaced: list[tuple[str, str, int, int]] = []
        changed = [
            (key, message, existing.get(key))
            for key, message in newest.items()
            if existing.get(key) is None or existing[key]["seq"] < message.seq
        ]
        old_ages = age_cells.stored_tables(session, [key for key, _, old in changed if old is not None])
        tz_of_zone = {zone.pk: zone.timezone for zone in zones.values()}
        for key, message, old in changed:
            row = _row(message)
            delta = hourly[(key[2], hour_floor(key[3]))]
            for i, name in enumerate(COUNT_FIELDS):
                delta[i] += row[name] - (old[name] if old else 0)
            hour = hour_floor(key[3])
            # How much of the hour the camera watched (footfall.server.rollups.observed); a bucket sent again adds none.
            seconds_reported[(key[2], hour, key[0], key[1])] += row["bucket_seconds"] - (
                old["bucket_seconds"] if old else 0
            )
            if zones[(message.site_id, message.zone_id)].measure != "camera":  # a part of its camera's people
                camera_parts[(key[2], key[1], hour)] += int(row["people"]) - (int(old["people"]) if old else 0)
            # The bucket moves from its old classifier key to its new one (the same key: no change of buckets).
            decider = by_classifier[(key[2], hour, classifiers.side_key(row["classifier"]))]
            decider.people += int(row["people"])
            decider.buckets += 1
            if old:
                before = by_classifier[(key[2], hour, classifiers.side_key(old["classifier"]))]
                before.people -= int(old["people"])
                before.buckets -= 1
                old_table = old_ages.get(key) or age_cells.unbanded(old["female"], old["male"], old["unknown"])
                age_cells.add_table(by_age, key[2], hour, old_table, -1)
                replaced.append(key)
            age_cells.add_table(by_age, key[2], hour, message.age_counts(), 1)
            age_rows.extend(
                {"agent_id": key[0], "camera_id": key[1], "zone_pk": key[2], "bucket_start": key[3], **cell}
                for cell in _age_rows(message)
            )
            record = {
                "agent_id": key[0],
                "camera_id": key[1],
                "zone_pk": key[2],
                "bucket_start": key[3],
                "received_at": int(now),
                **row,
            }
            (updates if old else inserts).append(record)
        if inserts:
            session.execute(Bucket.__table__.insert(), inserts)
            opened.update(str(record["agent_id"]) for record in inserts)
        if updates:
            table = Bucket.__table__
            session.connection().execute(
                update(table)
                .where(
                    table.c.agent_id == bindparam("b_agent"),
                    table.c.camera_id == bindparam("b_camera"),
                    table.c.zone_pk == bindparam("b_zone"),
                    table.c.bucket_start == bindparam("b_start"),
                )
                .values({name: bindparam(name) for name in _UPDATED}),
                [
                    {
                        "b_agent": r["agent_id"],
                        "b_camera": r["camera_id"],
                        "b_zone": r["zone_pk"],
                        "b_start": r["bucket_start"],
                        **{k: r[k] for k in _UPDATED},
                    }
                    for r in updates
                ],
            )
        age_cells.replace_tables(session, [key for key in replaced if key in old_ages], age_rows)
        server_k = release_k(session) or DEFAULT_K
        k_of_zone = {zone.pk: effective_k(controls[site].k, server_k) for (site, _), zone in zones.items()}
        apply_hourly_deltas(
            session,
            hourly,
            tz_of_zone,
            k_of_zone,
            by_classifier,
            by_age,
            lambda: seen_until(self.clock(), self.open_hour, self.release_delay),
            camera_parts,
            lambda: read_until(self.clock(), self.open_hour, self.release_delay),
        )
        apply_observed_deltas(session, seconds_reported)
        return len(inserts) + len(updates)

    @staticmethod
    def _existing(session: Session, keys: list[tuple[str, str, int, int]]) -> dict[tuple[Any, ...], dict[str, Any]]:
        found: dict[tuple[Any, ...], dict[str, Any]] = {}
        table = Bucket.__table__
        columns = (table.c.agent_id, table.c.camera_id, table.c.zone_pk, table.c.bucket_start)
        for offset in range(0, len(keys), 500):
            query = select(
                *columns,
                table.c.seq,
                table.c.bucket_seconds,
                table.c.classifier,
                *(table.c[name] for name in COUNT_FIELDS),
            ).where(tuple_(*columns).in_(keys[offset : offset + 500]))
            query = locked(query, session)  # concurrent replicas update one key one after the other
            for row in session.execute(query):
                found[tuple(row[:4])] = {
                    "seq": row.seq,
                    "bucket_seconds": row.bucket_seconds,
                    "classifier": row.classifier,
                    **{name: row._mapping[name] for name in COUNT_FIELDS},
                }
        return found


_UPDATED = ("seq", "bucket_seconds", "received_at", "classifier", *COUNT_FIELDS)


def _age_rows(message: AggregateMessage) -> list[dict[str, Any]]:
    """The non-zero cells of the message's age table (``bucket_ages``); none when it carried no ``age``."""
    if message.age is None:
        return []
    return [
        {"gender": gender, "band": band, "people": people}
        for gender, bands in message.age_counts().items()
        for band, people in bands.items()
        if people
    ]


def _row(message: AggregateMessage) -> dict[str, Any]:
    dwell = message.dwell
    return {
        "seq": message.seq,
        "bucket_seconds": message.bucket_seconds,
        "people": message.people,
        "female": message.gender_counts.female,
        "male": message.gender_counts.male,
        "unknown": message.gender_counts.unknown,
        "dwell_samples": dwell.samples if dwell else 0,
        "dwell_seconds": dwell.samples * dwell.mean_seconds if dwell else 0.0,
        "classifier": classifiers.bucket_classifier(message),
    }
