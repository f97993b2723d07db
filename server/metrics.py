"""Prometheus metrics of one server app, in the text format at ``GET /metrics`` (server/API.md, "Metrics").

Each app has a registry of its own (never the client library's process-wide default), so several apps in one
process, as in the tests, never share or collide. What is counted elsewhere is read, not counted twice: the
ingest counts and the batch-storing histogram live in the :class:`~footfall.server.ingest.IngestCounters`
(which the admin API's ``/admin/ingest-stats`` reads too), the MQTT lag and stall in the consumer, and agents
in the database; :class:`ServerCollector` turns them into metric families at scrape time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, runtime_checkable

from footfall.core.logs import OncePer
from footfall.server.db import TRANSIENT_DB_ERRORS, Database, QueryTimeout
from footfall.server.ingest import IngestCounters
from footfall.server.tables import Agent, Bucket
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from footfall import __version__

logger = logging.getLogger("footfall.server.metrics")

PREFIX = "footfall_server"
UNMATCHED = "unmatched"  # the route label of a request no route answered (404): never the raw path
# A scrape's reads of the database stop after this long (a table locked by a migration, say), well within
# Prometheus's default 10 s scrape timeout, so that the scrape still answers, with database_up 0.
DATABASE_READ_LIMIT_S = 5.0
DATABASE_CANNOT_ANSWER: tuple[type[Exception], ...] = (*TRANSIENT_DB_ERRORS, QueryTimeout)
# Latency buckets in seconds: API reads take milliseconds, a large ingest batch up to seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@runtime_checkable
class Consumer(Protocol):
    """What the collector reads from an MQTT consumer (footfall.server.mqtt_consumer.MqttConsumer)."""

    @property
    def connected(self) -> bool: ...

    def stalled_seconds(self) -> float: ...

    def inbox_depth(self) -> int: ...

    def publishes_refused(self) -> dict[str, int]: ...


class ServerCollector(Collector):
    """Metric families read at scrape time: ingest counts, MQTT lag and stall, agents, build info."""

    def __init__(
        self,
        db: Database,
        counters: IngestCounters,
        workers: Callable[[], Iterable[object]],
        *,
        offline_after_s: float,
        stalled_after_s: float,
        schema_revision: Callable[[], str | None],
        clock: Callable[[], float] = time.time,
    ):
        self.db = db
        self.counters = counters
        self.workers = workers  # the app's background work; the MQTT consumer among it, if any
        self.offline_after_s = offline_after_s
        self.stalled_after_s = stalled_after_s
        self.schema_revision = schema_revision
        self.clock = clock
        self._last_buckets_seeded = False
        self.database_down = OncePer(
            logger,
            "metrics scraped without the database's figures: it cannot answer",
            recovery="metrics scraped with the database's figures again",
            count_as="scrapes_without",
        )

    def describe(self) -> Iterable[Metric]:
        return []  # collected at scrape time only: registering must not query the database

    def collect(self) -> Iterator[Metric]:
        yield from self._ingest()
        yield from self._mqtt()
        # What the database holds is left out of a scrape it cannot answer, and database_up says why: the ingest
        # and MQTT figures above, the ones that tell what an outage does, are served all the same.
        try:
            from_database = list(self._agents())
            revision, database_up = self.schema_revision() or "", 1.0
            self.database_down.ended()
        except DATABASE_CANNOT_ANSWER as exc:
            self.database_down.occurred(error=repr(exc)[:300])
            from_database, revision, database_up = [], "", 0.0
        up = GaugeMetricFamily(
            f"{PREFIX}_database_up",
            "1 when this scrape's reads of the database answered; 0 when they failed or ran past "
            f"{DATABASE_READ_LIMIT_S:g} s (the database down, refusing connections, or a table locked), and the agent "
            "figures are then left out. A database that answers reads but takes no writes (full, read-only) reads 1: "
            "footfall_server_ingest_stalled tells that.",
        )
        up.add_metric([], database_up)
        yield up
        yield from from_database
        info = InfoMetricFamily(f"{PREFIX}_build", "The server's version and its database schema revision.")
        info.add_metric([], {"version": __version__, "schema_revision": revision})
        yield info

    def _ingest(self) -> Iterator[Metric]:
        counts = self.counters.by_path()
        ingested = CounterMetricFamily(
            f"{PREFIX}_messages_ingested",
            "Messages this process handled, by path (mqtt, http) and result: stored (an aggregate that created or "
            "superseded a bucket), duplicate (an aggregate already stored with an equal or higher seq), status (an "
            "agent status stored), refused (dead-lettered), deferred (dated ahead of the server's clock; its agent "
            "sends it again).",
            labels=["path", "result"],
        )
        for (path, result), value in sorted(counts.items()):
            ingested.add_metric([path, result], value)
        yield ingested
        dead = CounterMetricFamily(
            f"{PREFIX}_dead_letters", "Messages this process wrote to the dead-letter table (refused ones)."
        )
        dead.add_metric([], sum(v for (_, result), v in counts.items() if result == "refused"))
        yield dead
        yield from self.counters.batch_seconds.collect()

    def _mqtt(self) -> Iterator[Metric]:
        consumers = [worker for worker in self.workers() if isinstance(worker, Consumer)]
        stalled_s = max((c.stalled_seconds() for c in consumers), default=0.0)
        inbox = GaugeMetricFamily(
            f"{PREFIX}_mqtt_inbox_messages",
            "Consumer lag: MQTT messages received from the broker and not yet stored (0 without a consumer).",
        )
        inbox.add_metric([], sum(c.inbox_depth() for c in consumers))
        yield inbox
        connected = GaugeMetricFamily(
            f"{PREFIX}_mqtt_connected", "1 while the MQTT consumer is connected and subscribed; absent without one."
        )
        for consumer in consumers[:1]:
            connected.add_metric([], 1.0 if consumer.connected else 0.0)
        yield connected
        seconds = GaugeMetricFamily(
            f"{PREFIX}_ingest_stalled_seconds",
            "How long storing MQTT batches has been failing; 0 while ingest keeps up.",
        )
        seconds.add_metric([], stalled_s)
        yield seconds
        stalled = GaugeMetricFamily(
            f"{PREFIX}_ingest_stalled",
            f"1 when MQTT ingest has stored nothing for {self.stalled_after_s:g} s or more (/healthz answers 503).",
        )
        stalled.add_metric([], 1.0 if stalled_s >= self.stalled_after_s else 0.0)
        yield stalled
        refused = CounterMetricFamily(
            f"{PREFIX}_mqtt_publishes_refused",
            "Messages the server published that the broker refused (its ACL), by kind: receipts, settings, online. "
            "Agents never get them; MQTT 5 only (a server in a group): a 3.1.1 broker drops them without a word.",
            labels=["kind"],
        )
        for kind in ("receipts", "settings", "online"):
            refused.add_metric([kind], sum(c.publishes_refused().get(kind, 0) for c in consumers))
        yield refused

    def _agents(self) -> Iterator[Metric]:
        now = self.clock()
        online = offline = 0
        with self.db.read(limit_s=DATABASE_READ_LIMIT_S) as session:
            for state, last_seen in session.execute(select(Agent.state, Agent.last_seen)):
                if state == "online" and now - last_seen <= self.offline_after_s:
                    online += 1
                else:
                    offline += 1
            if not self._last_buckets_seeded:
                # Once per process, the newest bucket of each agent in the database; from then on the ingestor
                # keeps them as it stores aggregates (no scan of the buckets table per scrape).
                rows = session.execute(select(Bucket.agent_id, func.max(Bucket.bucket_start)).group_by(Bucket.agent_id))
                self.counters.seed_last_buckets({agent: int(start) for agent, start in rows})
                self._last_buckets_seeded = True
        agents = GaugeMetricFamily(
            f"{PREFIX}_agents",
            "Agents by state: online means it said so and was heard from within FOOTFALL_AGENT_OFFLINE_AFTER.",
            labels=["state"],
        )
        agents.add_metric(["online"], online)
        agents.add_metric(["offline"], offline)
        yield agents
        last = GaugeMetricFamily(
            f"{PREFIX}_agent_last_bucket_timestamp_seconds",
            "Start (Unix time) of the newest bucket seen from each agent; take max() over replicas.",
            labels=["agent_id"],
        )
        for agent, start in sorted(self.counters.last_buckets().items()):
            last.add_metric([agent], start)
        yield last


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})


class ServerMetrics:
    """One app's registry: the HTTP metrics the middleware records, and a :class:`ServerCollector`."""

    def __init__(self, collector: ServerCollector):
        self.collector = collector
        self.registry = CollectorRegistry(auto_describe=False)
        self.http_requests = Counter(
            f"{PREFIX}_http_requests",
            'HTTP requests answered, by route template (never the raw path), method ("other" for non-standard ones) '
            "and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(collector)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        # Any client may send any method token: only the standard ones get a series of their own.
        method_label = method if method in HTTP_METHODS else "other"
        self.http_requests.labels(route, method_label, str(status)).inc()
        self.http_duration.labels(route, method_label).observe(seconds)
