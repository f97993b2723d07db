"""One camera's processing: detect faces on a downscaled frame → track → classify per track → count.

Frames and crops exist only in memory for the duration of one call; nothing here writes an image.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from footfall.core.bundle import BundleError, default_threads
from footfall.core.classifier import GenderClassifier
from footfall.core.detector import FaceDetector
from footfall.core.logs import log_event
from footfall.core.wire import ModelServing
from footfall.edge.aggregation import BaseLookup, Emit, ZoneAggregator
from footfall.edge.config import AgentConfig, CameraConfig
from footfall.edge.counting import PersonAged, PersonCounter, PersonFinished
from footfall.edge.scenecut import SceneCutDetector
from footfall.edge.tracking import FaceTracker, TrackerEvents, appearance_descriptor
from footfall.edge.zones import SceneGeometry

if TYPE_CHECKING:
    from footfall.edge.metrics import CameraMetrics

logger = logging.getLogger(__name__)

# A gap in frame time at least this long is logged (frames that stopped for a minute, or a clock set forward); any
# step back is.
GAP_LOGGED_S = 60.0


@dataclass
class Models:
    detector: FaceDetector
    classifier: GenderClassifier | None
    # Whether the classifier's age head (if it has one) is read: False at a site in 'gender-only' mode.
    estimate_age: bool = True

    def serving(self) -> list[ModelServing]:
        """Which graph of each bundle runs, and why (for the heartbeat and ``footfall doctor``)."""
        return [self.detector.serving] + ([self.classifier.serving] if self.classifier else [])


def load_models(config: AgentConfig, *, with_classifier: bool = True, estimate_age: bool = True) -> Models:
    """Loads (and verifies) both bundles for serving on this CPU: an INT8 graph that fails its parity probe
    here is replaced by the bundle's FP32 reference (logged once, and reported by :meth:`Models.serving`).
    Raises BundleError naming the bundle (``detector bundle: …``, ``gender bundle: …``) and what is wrong."""
    threads = config.detection.threads or default_threads()  # outside the try: FOOTFALL_ORT_THREADS is no bundle's
    try:
        detector = FaceDetector(
            config.bundles.detector, input_width=config.detection.input_width, threads=threads, self_check=True
        )
    except BundleError as exc:
        raise BundleError(f"detector bundle: {exc}") from None
    classifier = load_classifier(config, estimate_age=estimate_age) if with_classifier else None
    return Models(detector, classifier, estimate_age)


def load_classifier(config: AgentConfig, *, estimate_age: bool = True) -> GenderClassifier:
    """Loads (and verifies) the gender bundle, as :func:`load_models` does; raises BundleError naming it.
    Without ``estimate_age`` it serves the bundle's graphs pruned to the gender output: no age head runs."""
    threads = config.detection.threads or default_threads()
    try:
        return GenderClassifier(config.bundles.gender, threads=threads, self_check=True, age=estimate_age)
    except BundleError as exc:
        raise BundleError(f"gender bundle: {exc}") from None


class CameraPipeline:
    def __init__(
        self,
        config: AgentConfig,
        camera: CameraConfig,
        models: Models,
        emit: Emit,
        *,
        base_lookup: BaseLookup | None = None,
        metrics: CameraMetrics | None = None,
    ):
        self.config = config
        self.metrics = metrics  # None: no metrics, no cost
        self.camera = camera
        self.models = models
        # The classifier this pipeline runs (None: people are counted, never classified; a counts-only site).
        self.classifier = models.classifier
        self.estimate_age = models.estimate_age
        self.emit = emit
        self.base_lookup = base_lookup
        detector_threshold = models.detector.contract.score_threshold
        self.high_score = config.detection.score_threshold or detector_threshold
        self.low_score = max(0.05, self.high_score * 0.6)
        self.tracker = FaceTracker(
            high_score=self.high_score,
            low_score=self.low_score,
            confirm_hits=config.tracking.confirm_hits,
            max_lost_seconds=config.tracking.max_lost_seconds,
        )
        self.scene_cut = SceneCutDetector()
        self.frame_size: tuple[int, int] | None = None
        self.counter: PersonCounter | None = None
        self.aggregator: ZoneAggregator | None = None
        self.observer: Callable[[float, TrackerEvents], None] | None = None  # benchmarks watch tracks
        self.on_person_finished: PersonFinished | None = None  # offline runs collect final decisions
        self.on_person_aged: PersonAged | None = None  # and final band decisions
        self.frames = 0
        self.last_t: float | None = None  # the frame time processed last
        self.busy_seconds = 0.0
        self.last_latency = 0.0

    def _setup(self, width: int, height: int) -> None:
        geometry = SceneGeometry.for_camera(self.camera, width, height)
        # After a change of resolution the same zones' buckets go on, with what the outbox has not taken yet (a new
        # aggregator would lose them without a word); track ids never repeat, so people stay apart.
        if self.aggregator is None or self.aggregator.zone_ids != geometry.ids:
            self.aggregator = ZoneAggregator(
                geometry.ids,
                self.config.bucket_seconds,
                self.emit,
                grace_seconds=self.config.tracking.max_lost_seconds + 2.0,
                base_lookup=self.base_lookup,
                on_dropped=self.metrics.aggregates_not_stored.inc if self.metrics is not None else None,
            )
        self.counter = PersonCounter(
            geometry,
            self.aggregator,
            self.classifier,
            samples_per_track=self.config.classification.samples_per_track,
            on_finished=self.on_person_finished,
            estimate_age=self.estimate_age,
            on_aged=self.on_person_aged,
        )
        self.frame_size = (width, height)

    def process(self, frame_bgr: np.ndarray, t: float) -> None:
        """Processes one frame taken at epoch time ``t`` (seconds)."""
        started = time.perf_counter()
        height, width = frame_bgr.shape[:2]
        if self.frame_size != (width, height):
            if self.counter is not None:  # the stream changed resolution: close what was open
                self.finish()
            self._setup(width, height)
        assert self.counter is not None and self.aggregator is not None
        if self.scene_cut(frame_bgr):  # a shot cut: every track ends here (confirmed ones stay counted)
            self.counter.finish(self.tracker.finish())
        if self.last_t is not None and not 0 <= t - self.last_t <= self.tracker.max_lost:
            # The frame clock stepped (NTP setting right a box that booted on a stale time) or no frame came for
            # longer than a face is kept: nobody is followed across that. Followed, one visit spanned the step.
            self.counter.finish(self.tracker.finish())
            if t < self.last_t:
                # Stepped back, the buckets counted so far would be due only once the clock passed them again (a day
                # later, for a day's step): held in memory that long, a crash would lose them. They go now.
                self.aggregator.flush_all()
            if t < self.last_t or t - self.last_t >= GAP_LOGGED_S:
                log_event(
                    logger,
                    logging.WARNING if t < self.last_t else logging.INFO,
                    "frame time jumped (the clock was set, or frames stopped); people in view count as new visitors",
                    camera=self.camera.id,
                    jump_s=round(t - self.last_t, 1),
                )
        self.last_t = t
        detections = self.models.detector(frame_bgr, threshold=self.low_score)
        minimum = self.config.detection.min_face_px
        detections = [d for d in detections if max(d.width, d.height) >= minimum]
        detected = time.perf_counter()
        looks = [appearance_descriptor(frame_bgr, d.box) for d in detections]
        events = self.tracker.update(detections, t, (width, height), looks)
        tracked = time.perf_counter()
        self.counter.update(frame_bgr, t, events.confirmed, events.visible, events.ended)
        if self.metrics is not None:
            metrics = self.metrics
            metrics.detect.observe(detected - started)
            metrics.track.observe(tracked - detected)
            metrics.classify.observe(time.perf_counter() - tracked)
            metrics.faces_detected.inc(len(detections))
            metrics.frames_processed.inc()
        if self.observer is not None:
            self.observer(t, events)
        self.aggregator.touch(t)
        self.aggregator.flush_due(t)
        self.frames += 1
        self.last_latency = time.perf_counter() - started
        self.busy_seconds += self.last_latency

    def use_classifier(self, classifier: GenderClassifier | None, *, estimate_age: bool = True) -> None:
        """Runs ``classifier`` from the next frame on (None: none at all), reading its age head only with
        ``estimate_age``. Call it from the thread that calls :meth:`process`, between frames: a classifier never
        disappears in the middle of one."""
        self.classifier = classifier
        self.estimate_age = estimate_age
        if self.counter is not None:
            self.counter.use_classifier(classifier, estimate_age=estimate_age)

    def tick(self, now: float) -> None:
        """Emits due buckets when no frame comes (camera offline, or a quiet period)."""
        if self.aggregator is not None:
            self.aggregator.flush_due(now)

    def finish(self) -> None:
        """Ends every open track and emits every changed bucket (end of a video, shutdown)."""
        if self.counter is None or self.aggregator is None:
            return
        self.counter.finish(self.tracker.finish())
        self.aggregator.flush_all()

    def store_left(self) -> None:
        """Emits again every bucket the outbox refused so far (after :meth:`finish`, when the agent stops)."""
        if self.aggregator is not None:
            self.aggregator.flush_all()

    def unstored(self) -> tuple[int, int]:
        """Buckets the outbox has not taken yet (it failed), and the people counted in them."""
        return self.aggregator.unstored() if self.aggregator is not None else (0, 0)

    @property
    def people(self) -> int:
        return self.counter.totals["people"] if self.counter else 0


class FrameGate:
    """The processing fps cap: lets a frame through when at least 1/fps of stream time has passed."""

    def __init__(self, fps: float):
        self.min_gap = 1.0 / fps
        self.last_t = -1e18
        self.skipped = 0

    def admit(self, t: float) -> bool:
        if t < self.last_t:  # the clock stepped back: waiting for it to catch up would skip every frame meanwhile
            self.last_t = -1e18
        if t - self.last_t < self.min_gap - 1e-6:
            self.skipped += 1
            return False
        self.last_t = t
        return True
