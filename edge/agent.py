"""``footfall agent``: cameras → pipelines → durable outbox → MQTT, unattended for months.

Threads: per camera one capture thread (newest frame, reconnects) and one worker (the pipeline); one
MQTT publisher (outbox replay, acknowledgements); the main thread sends the heartbeat and handles
signals. The broker being away never stalls a camera: workers only ever write to the local outbox.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING

from footfall.core.bundle import BundleError
from footfall.core.cpu import describe_cpu, this_cpu
from footfall.core.logs import FailureStreak, log_event
from footfall.core.wire import (
    AgentStatus,
    CameraStatus,
    DemographicsMode,
    SiteSettings,
    aggregate_topic,
    encode,
)
from footfall.edge.aggregation import BaseLookup, BucketCounts, BucketNotStored, Emit
from footfall.edge.capture import CameraCapture
from footfall.edge.config import AgentConfig, CameraConfig
from footfall.edge.delivery import MqttPublisher
from footfall.edge.demographics import (
    classifies,
    estimates_age,
    remember,
    remembered,
    remembered_path,
    stricter,
    stripper,
    within_mode,
)
from footfall.edge.messages import CameraMessages, bucket_key, classifier_ref
from footfall.edge.outbox import Outbox, OutboxError, ResendPolicy
from footfall.edge.pipeline import CameraPipeline, FrameGate, Models, load_classifier, load_models

from footfall import __version__

if TYPE_CHECKING:
    from footfall.edge.metrics import AgentMetrics, CameraMetrics

logger = logging.getLogger("footfall.edge.agent")
NOT_READ = "not read: the site's demographics mode is 'off'"
# How often a running agent forgets bucket counts too old for a restart to reopen (outbox.state_days): pruned only at
# start, a months-long run kept every bucket (a month of 60 s buckets for 4 cameras is some 350,000 rows).
PRUNE_EVERY_S = 3600.0
# How long stopping waits for the cameras, all together: a capture inside OpenCV ends with its open or read timeout
# (10 s); the shipped unit gives the whole stop 30 s (TimeoutStopSec) before a SIGKILL loses the open buckets.
CAMERA_STOP_SECONDS = 15.0


@dataclass
class CameraRuntime:
    camera: CameraConfig
    capture: CameraCapture
    pipeline: CameraPipeline
    thread: threading.Thread | None = None
    halt: threading.Event = field(default_factory=threading.Event)  # set: this camera stops (mode 'off')
    metrics: CameraMetrics | None = None
    done: bool = False
    frames: int = 0
    latency_s: float = 0.0
    window: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, frames) for the fps

    def online(self) -> bool:
        return self.capture.state == "online"

    def fps(self) -> float:
        now = time.monotonic()
        self.window.append((now, self.frames))
        self.window = [w for w in self.window if now - w[0] <= 30] or [(now, self.frames)]
        first_t, first_n = self.window[0]
        return (self.frames - first_n) / (now - first_t) if now - first_t > 0.5 else 0.0


class Agent:
    def __init__(self, config: AgentConfig, *, models: Models | None = None):
        self.config = config
        self._models = models
        self.stop_event = threading.Event()
        self.signalled = threading.Event()  # a SIGTERM or Ctrl-C: the one during the final drain cuts it short
        self._mode_lock = threading.Lock()  # ``mode``: set by paho's thread (settings), and the main loop (failed load)
        self.outbox: Outbox | None = None
        self.publisher: MqttPublisher | None = None
        self.metrics: AgentMetrics | None = None
        self.cameras: list[CameraRuntime] = []
        self.topic = aggregate_topic(config.site_id, config.agent_id, config.mqtt.topic_prefix)
        # The cameras' buckets that cannot be stored stay in memory and go again at the next flush (aggregation).
        self._store_trouble = FailureStreak(
            logger,
            "aggregates cannot be stored in the outbox; keeping them in memory and retrying",
            "aggregates are stored in the outbox again",
        )
        self._outbox_depth = 0  # the last depth read: what the status reports while the outbox cannot be read
        # Set as the agent closes the outbox: a camera thread that outlived the stop stores nothing after it.
        self._closed = False
        self._strip_trouble = FailureStreak(
            logger,
            "cannot remove what the site's mode forbids from the outbox; retrying",
            "the outbox holds nothing the site's mode forbids again",
        )
        # Demographics (edge/demographics.py): ``mode`` is what aggregates follow from the moment it is known
        # (set under ``_mode_lock``, see _on_settings); ``applied`` is what the main loop has made of it
        # (classifier loaded or not, age head read or not, cameras read or not), which the status reports.
        self.floor: DemographicsMode = config.demographics
        self.told: DemographicsMode = "full"
        self.mode: DemographicsMode = config.demographics
        self.applied: DemographicsMode = config.demographics
        self._strip_due = False  # the mode left 'full': the main loop strips age or gender from the outbox
        self._next_prune = time.monotonic() + PRUNE_EVERY_S

    # -- wiring ---------------------------------------------------------------------------------------
    def _emitter(self, camera_id: str) -> Emit:
        messages = CameraMessages.for_camera(self.config, camera_id)

        def emit(zone_id: str, bucket_start: int, counts: BucketCounts) -> None:
            assert self.outbox is not None

            def payload(seq: int) -> bytes:
                classifier = classifier_ref(self._models.classifier if self._models else None)
                message = messages.message(zone_id, bucket_start, counts, seq, classifier=classifier)
                # Nobody's age (gender-only) or gender (counts-only) leaves the box, not even a bucket's older.
                return encode(within_mode(message, self.mode))

            if self.mode == "off":
                return  # what was still open when the cameras stopped: the site collects nothing now
            if self._closed:  # reported lost as the agent stopped (_shutdown): nothing retries it now
                raise BucketNotStored("the agent has stopped; its outbox is closed")

            outbox = self.outbox

            def store() -> int:
                return outbox.add(bucket_key(camera_id, zone_id, bucket_start), self.topic, payload, counts)

            try:
                if self.metrics is None:
                    seq = store()
                else:  # counts the bucket's growth once it is stored
                    seq = self.metrics.people_queued(
                        camera_id,
                        zone_id,
                        bucket_start,
                        counts.people,
                        lambda: self._people_before(camera_id, zone_id, bucket_start),
                        store,
                    )
            except OutboxError as exc:
                self._store_trouble.failed(camera=camera_id, error=str(exc))
                raise BucketNotStored(str(exc)) from None
            self._store_trouble.succeeded(camera=camera_id)
            log_event(
                logger,
                logging.DEBUG,
                "aggregate queued",
                camera=camera_id,
                zone=zone_id,
                bucket=datetime.fromtimestamp(bucket_start, UTC).isoformat(),
                people=counts.people,
                seq=seq,
            )
            if self.publisher is not None:
                self.publisher.notify()

        return emit

    def _people_before(self, camera_id: str, zone_id: str, bucket_start: int) -> int:
        assert self.outbox is not None
        stored = self.outbox.bucket_counts(bucket_key(camera_id, zone_id, bucket_start))
        return stored.people if stored else 0

    def _base_lookup(self, camera_id: str) -> BaseLookup:
        def lookup(zone_id: str, bucket_start: int) -> BucketCounts | None:
            assert self.outbox is not None
            if self._closed:
                raise BucketNotStored("the agent has stopped; its outbox is closed")
            try:
                return self.outbox.bucket_counts(bucket_key(camera_id, zone_id, bucket_start))
            except OutboxError as exc:
                self._store_trouble.failed(camera=camera_id, error=str(exc))
                raise BucketNotStored(str(exc)) from None

        return lookup

    def status(self, state: str) -> AgentStatus:
        # Figures of frames being processed now: a camera reconnecting, halted or of an agent going offline has none
        # (its last 30 s rate and latency would read as current).
        reading = [state == "online" and not rt.halt.is_set() and rt.capture.state == "online" for rt in self.cameras]
        cameras = [
            CameraStatus(
                camera_id=rt.camera.id,
                state=rt.capture.state if state == "online" and not rt.halt.is_set() else "offline",
                fps=round(rt.fps(), 2) if now_reading else 0.0,
                error=NOT_READ if rt.halt.is_set() else (rt.capture.error[:500] if rt.capture.error else None),
            )
            for rt, now_reading in zip(self.cameras, reading, strict=True)
        ]
        latencies = [
            rt.latency_s for rt, now_reading in zip(self.cameras, reading, strict=True) if now_reading and rt.frames
        ]
        return AgentStatus(
            agent_id=self.config.agent_id,
            site_id=self.config.site_id,
            state=state,
            sent_at=datetime.now(UTC),
            fps=round(sum(c.fps for c in cameras), 2),
            latency_ms=round(1000 * max(latencies, default=0.0), 1),
            outbox_depth=self._read_depth(),
            cameras=cameras,
            version=__version__,
            models=self._models.serving() if self._models else [],
            cpu=this_cpu(),
            demographics=self.applied,
        )

    def _read_depth(self) -> int:
        """The outbox's depth, or the last one read while it cannot be read."""
        if self.outbox is not None:
            with contextlib.suppress(OutboxError):
                self._outbox_depth = self.outbox.depth()
        return self._outbox_depth

    # -- threads --------------------------------------------------------------------------------------
    def _work(self, runtime: CameraRuntime) -> None:
        gate = FrameGate(runtime.camera.fps)
        live = not runtime.camera.is_file
        try:
            while not self.stop_event.is_set() and not runtime.halt.is_set():
                classifier = self._models.classifier if self._models else None
                estimate_age = self._models.estimate_age if self._models else False
                pipeline = runtime.pipeline
                if pipeline.classifier is not classifier or pipeline.estimate_age != estimate_age:
                    pipeline.use_classifier(classifier, estimate_age=estimate_age)  # the mode changed: between frames
                frame = runtime.capture.get(timeout=0.5)
                if frame is None:
                    if runtime.capture.ended:
                        break
                    if live:
                        runtime.pipeline.tick(time.time())
                    continue
                if not gate.admit(frame.t):
                    if runtime.pipeline.metrics is not None:
                        runtime.pipeline.metrics.dropped_rate_limit.inc()
                    continue
                runtime.pipeline.process(frame.image, frame.t)
                runtime.frames += 1
                # Capture-to-result latency for a live camera; processing time for a file.
                runtime.latency_s = time.time() - frame.t if live else runtime.pipeline.last_latency
        except Exception:  # a bug in one camera's pipeline must not take the others down silently
            logger.exception("camera pipeline failed", extra={"fields": {"camera": runtime.camera.id}})
        finally:
            try:
                runtime.pipeline.finish()
            except Exception:  # the agent waits for ``done``: it must be set however the finish ends
                logger.exception("camera pipeline failed to finish", extra={"fields": {"camera": runtime.camera.id}})
            finally:
                runtime.done = True

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handle(signum: int, _frame: FrameType | None) -> None:
            log_event(logger, logging.INFO, "stopping", signal=signal.Signals(signum).name)
            self.signalled.set()
            self.stop_event.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    # -- run ------------------------------------------------------------------------------------------
    def run(self, *, drain_seconds: float = 30.0) -> int:
        """Runs until stopped (SIGTERM/SIGINT) or, when every camera is a video file, until they end.

        Returns 0 when the server confirmed everything counted, 1 when aggregates are left in the outbox
        (they are sent on the next start) or could not be stored in it at all (lost, and logged as such).
        """
        config = self.config
        self.outbox = Outbox(
            config.outbox.path,
            max_messages=config.outbox.max_messages,
            resend=ResendPolicy(config.mqtt.resend_seconds, config.mqtt.resend_max_seconds),
        )
        try:
            self.outbox.bind(config.site_id, config.agent_id)
        except OutboxError:
            self.outbox.close()
            raise
        self.outbox.prune_state()
        self.told = remembered(remembered_path(config.outbox.path)) or "full"
        self.mode = self.applied = stricter(self.floor, self.told)
        if self.mode != "full":  # rows queued before a floor was set or the mode was told: none leaves with more
            self._strip_outbox()
        if self._models is None:  # a site in 'counts-only' or 'off' mode never loads the classifier
            self._models = load_models(
                config, with_classifier=classifies(self.mode), estimate_age=estimates_age(self.mode)
            )
        elif not classifies(self.mode):
            self._models.classifier = None
        elif self._models.classifier is not None and not self._models.classifier.fits(age=estimates_age(self.mode)):
            self._models.classifier = load_classifier(config, estimate_age=estimates_age(self.mode))
        self._models.estimate_age = estimates_age(self.mode)
        models = self._models
        metrics = self.metrics = start_metrics() if config.metrics.enabled else None
        for camera in config.cameras:
            camera_metrics = metrics.camera(camera.id) if metrics else None
            pipeline = CameraPipeline(
                config,
                camera,
                models,
                self._emitter(camera.id),
                base_lookup=self._base_lookup(camera.id),
                metrics=camera_metrics,
            )
            runtime = CameraRuntime(camera, CameraCapture(camera, metrics=camera_metrics), pipeline)
            runtime.metrics = camera_metrics
            self.cameras.append(runtime)
            if metrics is not None:
                metrics.watch_camera(camera.id, runtime.online, runtime.fps, configured_fps=camera.fps)
        if metrics is not None:
            metrics.watch_outbox(self.outbox)
            metrics.set_models(models.serving())
            metrics.set_demographics(self.applied)
            metrics.serve(config.metrics.host, config.metrics.port)
        self.publisher = MqttPublisher(config, self.outbox, self.status, metrics=metrics, on_settings=self._on_settings)
        self._install_signals()
        log_event(
            logger,
            logging.INFO,
            "agent starting",
            agent=config.agent_id,
            site=config.site_id,
            cameras=len(config.cameras),
            pending=self.outbox.depth(),
            version=__version__,
            models=" ".join(f"{m.bundle}:{m.precision}" for m in models.serving()),
            cpu=describe_cpu(),
            demographics=self.applied,
            demographics_floor=self.floor,
        )
        self.publisher.start()
        for runtime in self.cameras:
            if self.applied == "off":
                runtime.halt.set()  # not read until the mode allows it
            else:
                self._start_camera(runtime)
        finite = all(c.is_file and not c.loop for c in config.cameras)
        finished = False
        next_beat = time.monotonic() + config.mqtt.heartbeat_seconds
        while not self.stop_event.wait(0.2):
            if self._strip_due:
                self._strip_due = False
                self._strip_outbox()
            if self.applied != self.mode:
                self._apply_mode(self.mode)
            if finite and self.applied != "off" and all(rt.done for rt in self.cameras):
                log_event(logger, logging.INFO, "all video files processed; delivering what is left")
                finished = True
                break
            if time.monotonic() >= next_beat:
                next_beat += config.mqtt.heartbeat_seconds
                self._heartbeat()
            self._prune_when_due()
        # On a signal, do not hold up a service manager for long: what is not delivered stays in the outbox.
        return self._shutdown(drain_seconds if finished else min(drain_seconds, 5.0))

    def _prune_when_due(self) -> None:
        """Forgets old bucket counts every PRUNE_EVERY_S; an outbox that cannot do it now (locked, a full disk) is
        tried again PRUNE_EVERY_S later: nothing is lost meanwhile, the table only grows a little more."""
        if time.monotonic() < self._next_prune:
            return
        assert self.outbox is not None
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        try:
            self.outbox.prune_state()
        except OutboxError as exc:
            log_event(
                logger, logging.WARNING, "cannot forget old bucket counts now; trying again later", error=str(exc)
            )

    # -- demographics mode ----------------------------------------------------------------------------------
    def _on_settings(self, settings: SiteSettings) -> None:
        """The site's settings arrived (paho's thread, before any receipt sent after them). Remembers the mode
        told; when the mode to apply changes, new aggregates follow it at once (``mode``), and the main loop strips
        the age or gender from what the outbox still holds and applies the rest (classifier, age head, cameras)."""
        if settings.site_id != self.config.site_id:
            return  # not our site's (a shared broker with a broad ACL): never take another site's mode
        if settings.demographics != self.told:
            self.told = settings.demographics
            remember(remembered_path(self.config.outbox.path), self.told)
        wanted = stricter(self.floor, self.told)
        if wanted == self.mode:
            return
        # From here on, every payload an emitter builds leaves out what the mode forbids (it reads ``mode`` when
        # the outbox asks for it); the rows queued before are the main loop's to strip.
        with self._mode_lock:
            self.mode = wanted
        self._strip_due = wanted != "full"
        if self.publisher is not None:
            self.publisher.notify()

    def _strip_outbox(self) -> None:
        """Rewrites each unconfirmed aggregate that carries what the mode forbids (age bands in gender-only mode,
        gender and age in counts-only or off) as the same counts without it, under a new seq (main thread: a long
        outbox takes a while, and paho's thread must go on handling receipts meanwhile). The server refuses
        gender from a counts-only site and age from a gender-only one; a refusal of an old seq says to send it
        again without them (delivery), and the rewritten row is no longer named by it, so no count is lost."""
        assert self.outbox is not None
        mode = self.mode
        change = stripper(mode)
        if change is None:
            return
        removed = "age bands" if classifies(mode) else "gender"
        try:
            stripped = self.outbox.rewrite(change)
        except OutboxError as exc:
            # Tried again on the next turn of the main loop; meanwhile the server refuses what the mode forbids and
            # says to send it again without it, so nothing of it is stored.
            self._strip_trouble.failed(removing=removed, error=str(exc))
            self._strip_due = True
            return
        self._strip_trouble.succeeded()
        if stripped:
            log_event(
                logger,
                logging.INFO,
                f"{removed} removed from aggregates not confirmed yet; sent again under new seqs",
                aggregates=stripped,
                mode=mode,
            )
            if self.publisher is not None:
                self.publisher.notify()

    def _degrade_to(self, mode: DemographicsMode) -> None:
        """Makes the mode to apply at least as strict as ``mode``: a site told 'off' meanwhile (paho's thread, under
        the same lock) stays off, and the main loop applies that next."""
        with self._mode_lock:
            self.mode = stricter(self.mode, mode)

    def _apply_mode(self, mode: DemographicsMode) -> None:
        """Makes the agent do what ``mode`` says (main thread): loads or drops the classifier, reads its age head
        or not, stops or starts the cameras; then says so in one log line, the metrics and a status message."""
        assert self._models is not None
        if mode == "off":
            for runtime in self.cameras:
                runtime.halt.set()
            self._stop_cameras(self.cameras)
        current = self._models.classifier
        if classifies(mode) and (current is None or not current.fits(age=estimates_age(mode))):
            # Loaded, or loaded again with the graphs the mode asks for: a gender-only site runs no age head.
            try:
                self._models.classifier = load_classifier(self.config, estimate_age=estimates_age(mode))
            except BundleError as exc:
                # The one loaded goes on deciding gender unless it would run an age head at a site that estimates
                # no age (its pruned graph is what failed): then, as without any, the box counts without gender.
                if current is not None and (estimates_age(mode) or not current.runs_age_head):
                    log_event(
                        logger,
                        logging.ERROR,
                        "cannot load the classifier's graphs for this mode; keeping the one loaded",
                        error=str(exc),
                        mode=mode,
                    )
                else:  # keep counting without gender rather than stop
                    log_event(logger, logging.ERROR, "cannot load the classifier; counting without it", error=str(exc))
                    self._models.classifier = None
                    mode = "counts-only"
                    self._degrade_to(mode)
        elif not classifies(mode):
            self._models.classifier = None  # unloaded: each pipeline drops its reference before its next frame
        # Each pipeline reads this before its next frame, as it does the classifier.
        self._models.estimate_age = estimates_age(mode)
        if self.applied == "off" and mode != "off":
            for runtime in self.cameras:
                self._start_camera(runtime)
        self.applied = mode
        classifier = self._models.classifier
        age_estimated = classifier is not None and classifier.has_age and self._models.estimate_age
        log_event(
            logger,
            logging.INFO,
            "demographics mode applied",
            mode=mode,
            told=self.told,
            floor=self.floor,
            classifier="loaded" if classifier is not None else "none",
            age="estimated" if age_estimated else "not estimated",
            age_head="runs" if classifier is not None and classifier.runs_age_head else "not run",
            cameras="stopped" if mode == "off" else "reading",
        )
        if self.metrics is not None:
            self.metrics.set_demographics(mode)
            self.metrics.set_models(self._models.serving())
        if self.publisher is not None:
            self.publisher.publish_status()

    def _start_camera(self, runtime: CameraRuntime) -> None:
        if runtime.thread is not None:  # read again after 'off': a new capture (a video file starts over)
            runtime.capture = CameraCapture(runtime.camera, metrics=runtime.metrics)
        runtime.halt.clear()
        runtime.done = False
        runtime.capture.start()
        runtime.thread = threading.Thread(target=self._work, args=(runtime,), name=f"pipeline-{runtime.camera.id}")
        runtime.thread.start()

    def _stop_cameras(self, runtimes: list[CameraRuntime]) -> None:
        """Tells every camera to stop, then waits for them against one deadline (CAMERA_STOP_SECONDS): told one at a
        time, each waited for in turn, four dead streams kept a stopping agent 46 s. A pipeline that has not ended
        by then is what _shutdown reports; a capture still inside OpenCV holds nothing counted and ends with it."""
        for runtime in runtimes:
            runtime.capture.request_stop()
        deadline = time.monotonic() + CAMERA_STOP_SECONDS
        for runtime in runtimes:  # the pipelines first: they hold what was counted
            if runtime.thread is not None:
                runtime.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        late = [rt.camera.id for rt in runtimes if not rt.capture.join(max(0.0, deadline - time.monotonic()))]
        if late:
            log_event(
                logger,
                logging.WARNING,
                "camera captures did not stop in time (inside an OpenCV open or read); they end with the agent",
                cameras=",".join(late),
            )

    def _heartbeat(self) -> None:
        assert self.publisher is not None
        status = self.status("online")
        self.publisher.publish_status()
        log_event(
            logger,
            logging.INFO,
            "heartbeat",
            fps=status.fps,
            latency_ms=status.latency_ms,
            outbox=status.outbox_depth,
            broker="connected" if self.publisher.connected else "disconnected",
            cameras=",".join(f"{c.camera_id}:{c.state}" for c in status.cameras),
        )

    def _shutdown(self, drain_seconds: float) -> int:
        self.stop_event.set()
        # The signal that stopped the run has had its say (a drain of at most 5 s); another one, during the drain,
        # ends the wait: what is not delivered stays in the outbox for the next start.
        self.signalled.clear()
        self._stop_cameras(self.cameras)
        assert self.publisher is not None and self.outbox is not None
        lost = self._store_what_is_left(drain_seconds)
        self.publisher.stop(drain_seconds=drain_seconds, cancel=self.signalled)
        left = self.publisher.pending()
        if self.metrics is not None:
            self.metrics.watch_outbox(None, final_depth=self._outbox_depth if left is None else left)
        # A camera still running (stuck in a frame or its finish past the wait above) has not stored what it counted
        # since its last stored bucket, and cannot now: the outbox closes under it.
        stuck = [rt.camera.id for rt in self.cameras if rt.thread is not None and rt.thread.is_alive()]
        self._closed = True
        self.outbox.close()
        if self.metrics is not None:
            self.metrics.stop()
        if stuck:
            log_event(
                logger,
                logging.ERROR,
                "cameras did not stop in time; what they counted and had not stored yet is lost",
                cameras=",".join(stuck),
                outbox=str(self.config.outbox.path),
            )
        if lost:
            log_event(
                logger,
                logging.ERROR,
                "aggregates could not be stored in the outbox and are lost; see the outbox errors above",
                buckets=sum(buckets for _, buckets, _ in lost),
                people=sum(people for _, _, people in lost),
                cameras=",".join(camera for camera, _, _ in lost),
                outbox=str(self.config.outbox.path),
            )
        if stuck or lost:
            return 1
        if left is None:
            log_event(
                logger,
                logging.WARNING,
                "stopped without being able to read the outbox; what it holds is sent on the next start",
                outbox=str(self.config.outbox.path),
            )
            return 1
        if left:
            log_event(
                logger,
                logging.WARNING,
                "stopped with aggregates the server has not confirmed yet; they are kept in the "
                "outbox and sent on the next start",
                pending=left,
                outbox=str(self.config.outbox.path),
            )
            return 1
        log_event(logger, logging.INFO, "agent stopped; outbox empty")
        return 0

    def _store_what_is_left(self, seconds: float) -> list[tuple[str, int, int]]:
        """Tries again, for up to ``seconds``, to store the buckets the outbox refused during the run (a lock another
        program held, a full disk freed meanwhile): the cameras have stopped, so this is their last chance. Returns,
        per camera, the buckets still not stored and the people counted in them."""
        deadline = time.monotonic() + seconds
        while True:
            # A camera whose thread did not stop in time is still using its pipeline: its buckets are not touched.
            stopped = [rt for rt in self.cameras if rt.thread is None or not rt.thread.is_alive()]
            waiting = [(rt, *rt.pipeline.unstored()) for rt in stopped]
            waiting = [(rt, buckets, people) for rt, buckets, people in waiting if buckets]
            if not waiting or time.monotonic() >= deadline:
                return [(rt.camera.id, buckets, people) for rt, buckets, people in waiting]
            for rt, _, _ in waiting:
                rt.pipeline.store_left()
            if any(rt.pipeline.unstored()[0] for rt, _, _ in waiting):
                time.sleep(0.2)  # a failure that comes at once (a full disk) is not tried in a tight loop


def start_metrics() -> AgentMetrics:
    """The agent's metrics (served once the cameras are wired); prometheus-client comes with the edge extra."""
    try:
        from footfall.edge.metrics import AgentMetrics
    except ImportError as exc:
        raise SystemExit(
            f"metrics need prometheus-client ({exc}): pip install 'footfall[edge]', or set metrics.enabled: false"
        ) from None
    return AgentMetrics()
