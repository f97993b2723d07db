"""The agent's Prometheus metrics (prometheus-client), served on ``metrics.host:metrics.port`` (loopback by
default) at ``/metrics``.

Every metric is named ``footfall_agent_*`` and lives in the agent's own registry, not the library's global
one (so a test can run several agents in one process, and nothing else's metrics leak in). The hot path pays
one counter increment or histogram observation per event through the per-camera handles of
:class:`CameraMetrics`; what can be read from the agent's state (outbox backlog, camera state, fps) is read
when Prometheus scrapes. Code that runs without metrics (``footfall process``, most tests) passes ``None``
and pays nothing.

==========================================================  ======================================================
``footfall_agent_frames_read_total{camera}``                frames the capture thread decoded
``footfall_agent_frames_processed_total{camera}``           frames that went through the pipeline
``footfall_agent_frames_dropped_total{camera,reason}``      frames never processed: ``overwritten`` (a newer one
                                                            came first: the pipeline is slower than the camera)
                                                            or ``rate_limit`` (above the camera's ``fps`` cap)
``footfall_agent_processing_fps{camera}``                   frames processed per second, last 30 s
``footfall_agent_configured_fps{camera}``                   the camera's configured ``fps`` cap
``footfall_agent_stage_duration_seconds{camera,stage}``     histogram; stage ``detect``, ``track``, ``classify``
``footfall_agent_faces_detected_total{camera}``             face detections (above the minimum size)
``footfall_agent_people_counted_total{camera,zone}``        people counted into the aggregates queued for delivery
``footfall_agent_outbox_depth``                             aggregates the server has not confirmed yet
``footfall_agent_outbox_oldest_unconfirmed_age_seconds``    age of the oldest of them (0 when none)
``footfall_agent_aggregates_dropped_total{reason}``         aggregates lost on the box: ``outbox_full`` (the
                                                            outbox's cap dropped its oldest rows) or
                                                            ``not_stored`` (the outbox could not take a bucket
                                                            for longer than the hold, a day)
``footfall_agent_receipts_total{result}``                   aggregates the server's receipts named, ``stored`` or
                                                            ``refused``
``footfall_agent_mqtt_connected``                           1 while connected to the broker
``footfall_agent_mqtt_reconnects_total``                    connections after the first one
``footfall_agent_camera_up{camera}``                        1 while the camera delivers frames
``footfall_agent_model_info{model,task,precision,parity,reason}``  1 per model: the graph served (``int8``,
                                                            or ``fp32`` when INT8 failed its parity probe here)
==========================================================  ======================================================
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from footfall.core.logs import log_event
from footfall.core.wire import DEMOGRAPHICS_MODES, ModelServing
from footfall.edge.outbox import OutboxError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from footfall.edge.outbox import Outbox

logger = logging.getLogger("footfall.edge.metrics")

T = TypeVar("T")

PREFIX = "footfall_agent"
STAGES = ("detect", "track", "classify")
# Stage times on a CPU run from well under a millisecond (tracking) to a few hundred (detection on a slow box).
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
KEEP_BUCKET_SECONDS = 3 * 3600  # how long an emitted bucket's people are remembered (re-emits are deltas)


@dataclass(frozen=True)
class CameraMetrics:
    """One camera's metric children, bound once so the hot path does no label lookups."""

    frames_read: Counter
    frames_processed: Counter
    dropped_overwritten: Counter
    dropped_rate_limit: Counter
    faces_detected: Counter
    aggregates_not_stored: Counter
    detect: Histogram
    track: Histogram
    classify: Histogram


class _OutboxCollector(Collector):
    """Outbox depth and the age of its oldest unconfirmed row, read from SQLite when scraped (one query)."""

    def __init__(self) -> None:
        self.outbox: Outbox | None = None
        self.final_depth = 0

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(f"{PREFIX}_outbox_depth", "Aggregates in the outbox the server has not confirmed yet."),
            GaugeMetricFamily(
                f"{PREFIX}_outbox_oldest_unconfirmed_age_seconds",
                "Age of the oldest aggregate the server has not confirmed (0 when the outbox is empty).",
            ),
        )

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth_family, age_family = self._families()
        outbox = self.outbox
        try:
            depth, oldest = outbox.backlog() if outbox is not None else (self.final_depth, None)
        except OutboxError:  # unknown while the outbox cannot be read (a lock held too long): NaN, not a guess
            depth_family.add_metric([], math.nan)
            age_family.add_metric([], math.nan)
        else:
            depth_family.add_metric([], depth)
            age_family.add_metric([], max(0.0, time.time() - oldest) if oldest is not None else 0.0)
        yield depth_family
        yield age_family


class AgentMetrics:
    """The agent's metrics in their own registry; :meth:`serve` exposes them over HTTP."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        camera = ["camera"]
        self.frames_read = Counter(
            f"{PREFIX}_frames_read", "Frames decoded from the camera.", camera, registry=registry
        )
        self.frames_processed = Counter(
            f"{PREFIX}_frames_processed", "Frames that went through the pipeline.", camera, registry=registry
        )
        self.frames_dropped = Counter(
            f"{PREFIX}_frames_dropped",
            "Frames never processed: overwritten by a newer one (pipeline slower than the camera) or above the "
            "camera's fps cap (rate_limit).",
            ["camera", "reason"],
            registry=registry,
        )
        self.processing_fps = Gauge(
            f"{PREFIX}_processing_fps", "Frames processed per second over the last 30 s.", camera, registry=registry
        )
        self.configured_fps = Gauge(
            f"{PREFIX}_configured_fps",
            "The camera's configured fps cap (processing_fps well below it: the box is too slow).",
            camera,
            registry=registry,
        )
        self.stage_duration = Histogram(
            f"{PREFIX}_stage_duration_seconds",
            "Time one frame spends in a pipeline stage (detect, track, classify).",
            ["camera", "stage"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.faces_detected = Counter(
            f"{PREFIX}_faces_detected", "Face detections above the minimum size.", camera, registry=registry
        )
        self.people_counted = Counter(
            f"{PREFIX}_people_counted",
            "People counted into the aggregates queued for delivery, per zone or line.",
            ["camera", "zone"],
            registry=registry,
        )
        self.aggregates_dropped = Counter(
            f"{PREFIX}_aggregates_dropped",
            "Aggregates lost on the box: outbox_full (the outbox's cap dropped its oldest rows), not_stored (the "
            "outbox could not take a bucket for longer than the hold).",
            ["reason"],
            registry=registry,
        )
        self.receipts = Counter(
            f"{PREFIX}_receipts",
            "Aggregates named in the server's receipts: stored, or refused (kept in the server's dead letters).",
            ["result"],
            registry=registry,
        )
        self.mqtt_connected = Gauge(
            f"{PREFIX}_mqtt_connected", "1 while the agent is connected to the MQTT broker.", registry=registry
        )
        self.mqtt_reconnects = Counter(
            f"{PREFIX}_mqtt_reconnects", "Connections to the broker after the first one.", registry=registry
        )
        self.camera_up = Gauge(f"{PREFIX}_camera_up", "1 while the camera delivers frames.", camera, registry=registry)
        self.model_info = Gauge(
            f"{PREFIX}_model_info",
            "The graph served per model: int8, or fp32 when the INT8 graph failed its parity probe on this CPU.",
            ["model", "task", "precision", "parity", "reason"],
            registry=registry,
        )
        self.demographics_mode = Gauge(
            f"{PREFIX}_demographics_mode",
            "1 for the demographics mode the agent applies now (full, gender-only: no age estimated, counts-only: "
            "no classifier, off: no camera read), 0 for the others.",
            ["mode"],
            registry=registry,
        )
        self._outbox = _OutboxCollector()
        registry.register(self._outbox)
        for result in ("stored", "refused"):
            self.receipts.labels(result=result)
        for reason in ("outbox_full", "not_stored"):  # there from the start, so that an alert sees the first loss
            self.aggregates_dropped.labels(reason=reason)
        self._ever_connected = False
        self._people: dict[tuple[str, str, int], int] = {}
        self._people_lock = threading.Lock()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- wiring -------------------------------------------------------------------------------------------
    def camera(self, camera_id: str) -> CameraMetrics:
        stage = self.stage_duration
        return CameraMetrics(
            frames_read=self.frames_read.labels(camera=camera_id),
            frames_processed=self.frames_processed.labels(camera=camera_id),
            dropped_overwritten=self.frames_dropped.labels(camera=camera_id, reason="overwritten"),
            dropped_rate_limit=self.frames_dropped.labels(camera=camera_id, reason="rate_limit"),
            faces_detected=self.faces_detected.labels(camera=camera_id),
            aggregates_not_stored=self.aggregates_dropped.labels(reason="not_stored"),
            detect=stage.labels(camera=camera_id, stage="detect"),
            track=stage.labels(camera=camera_id, stage="track"),
            classify=stage.labels(camera=camera_id, stage="classify"),
        )

    def watch_camera(
        self,
        camera_id: str,
        up: Callable[[], bool],
        fps: Callable[[], float],
        *,
        configured_fps: float | None = None,
    ) -> None:
        """Camera state and fps, read from the agent when scraped; ``configured_fps`` is the camera's cap."""
        if configured_fps is not None:
            self.configured_fps.labels(camera=camera_id).set(configured_fps)
        self.camera_up.labels(camera=camera_id).set_function(lambda: 1.0 if up() else 0.0)
        self.processing_fps.labels(camera=camera_id).set_function(fps)

    def watch_outbox(self, outbox: Outbox | None, *, final_depth: int = 0) -> None:
        """The outbox to read depth and age from; None (before it is closed) leaves ``final_depth``."""
        self._outbox.final_depth = final_depth
        self._outbox.outbox = outbox
        if outbox is not None:
            outbox.on_dropped = self.aggregates_dropped.labels(reason="outbox_full").inc

    def set_models(self, serving: list[ModelServing]) -> None:
        self.model_info.clear()
        for model in serving:
            self.model_info.labels(
                model=model.bundle,
                task=model.task,
                precision=model.precision,
                parity=model.parity,
                reason=(model.reason or "")[:120],
            ).set(1)

    def set_demographics(self, mode: str) -> None:
        for each in DEMOGRAPHICS_MODES:
            self.demographics_mode.labels(mode=each).set(1 if each == mode else 0)

    # -- events -------------------------------------------------------------------------------------------
    def people_queued(
        self,
        camera_id: str,
        zone_id: str,
        bucket_start: int,
        people: int,
        before: Callable[[], int],
        store: Callable[[], T],
    ) -> T:
        """Queues a bucket's full count with ``store()`` and, once it is stored, adds what the bucket gained since
        it was last queued. ``before()`` is what the bucket held before this run (an agent restarted mid-bucket
        adds to it); asked once per bucket, before ``store()`` overwrites it. A count ``store()`` refuses (it
        raises) adds nothing: the counter says what was queued for delivery, not what was seen."""
        key = (camera_id, zone_id, bucket_start)
        with self._people_lock:
            previous = self._people.get(key)
        if previous is None:
            previous = before()
        stored = store()
        with self._people_lock:
            if key not in self._people and len(self._people) > 256:
                newest = max(k[2] for k in self._people)
                self._people = {k: v for k, v in self._people.items() if k[2] > newest - KEEP_BUCKET_SECONDS}
            self._people[key] = people
        if people > previous:
            self.people_counted.labels(camera=camera_id, zone=zone_id).inc(people - previous)
        return stored

    def receipt(self, stored: int, refused: int) -> None:
        if stored:
            self.receipts.labels(result="stored").inc(stored)
        if refused:
            self.receipts.labels(result="refused").inc(refused)

    def connected(self, up: bool) -> None:
        if up:
            if self._ever_connected:
                self.mqtt_reconnects.inc()
            self._ever_connected = True
        self.mqtt_connected.set(1 if up else 0)

    # -- serving ------------------------------------------------------------------------------------------
    def serve(self, host: str, port: int) -> bool:
        """Serves ``/metrics`` on ``host:port``; False (logged) when the port cannot be bound: the agent counts
        on without it rather than stopping over its metrics."""
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            log_event(
                logger,
                logging.WARNING,
                "cannot serve metrics (port in use?); counting goes on without them",
                address=f"{host}:{port}",
                error=str(exc),
            )
            return False
        log_event(logger, logging.INFO, "serving metrics", url=f"http://{host}:{self.port}/metrics")
        return True

    @property
    def port(self) -> int | None:
        """The bound port (the one the OS chose when configured as 0)."""
        return int(self._server.server_address[1]) if self._server is not None else None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
