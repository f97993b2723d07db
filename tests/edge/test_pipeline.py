"""One camera's pipeline as the agent runs it, where the stream itself changes under it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import numpy as np
import pytest
from footfall.core.detector import Detection, FaceDetector
from footfall.core.wire import AggregateMessage
from footfall.edge.aggregation import MAX_VISIT_SECONDS, BucketCounts, BucketNotStored
from footfall.edge.config import AgentConfig, CameraConfig
from footfall.edge.messages import CameraMessages
from footfall.edge.pipeline import CameraPipeline, FrameGate, Models

from tests.edge.test_age_bands import BUCKET, PaintedFaceDetector


def painted(width: int, height: int, x: int) -> np.ndarray:
    image = np.full((height, width, 3), 20, np.uint8)
    image[100:160, x : x + 60] = (0, 200, 0)  # a face, for PaintedFaceDetector
    return image


def test_a_stream_that_changes_resolution_while_the_outbox_fails_keeps_what_it_had_counted() -> None:
    # A camera renegotiating its stream (a night mode, a firmware setting) reopens the pipeline at the new size:
    # the buckets the outbox had not taken yet must not go with the old one.
    camera = CameraConfig(id="cam1", source="unused.mp4", fps=10.0)
    config = AgentConfig(agent_id="box-test", site_id="lab", cameras=[camera], bucket_seconds=60)
    failing = True
    sent: list[tuple[str, int, BucketCounts]] = []

    def emit(zone: str, start: int, counts: BucketCounts) -> None:
        if failing:
            raise BucketNotStored("disk full")
        sent.append((zone, start, counts))

    pipeline = CameraPipeline(config, camera, Models(cast(FaceDetector, PaintedFaceDetector()), None), emit)
    for index in range(20):  # someone walks by, at 320x240
        pipeline.process(painted(320, 240, 20 + 5 * index), BUCKET + index / 10)
    for index in range(30):  # nobody, at 640x480, past the bucket's end
        pipeline.process(np.full((480, 640, 3), 20, np.uint8), BUCKET + 70 + index / 10)
    assert pipeline.unstored()[1] == 1, "the person counted before the change still waits for the outbox"
    failing = False
    pipeline.process(np.full((480, 640, 3), 20, np.uint8), BUCKET + 80)
    people = {start: counts.people for zone, start, counts in sent if zone == "cam1"}
    assert people.get(BUCKET) == 1, sent


class StillFace:
    """A detector that finds one face at the same spot while ``on``: someone sitting, or a poster."""

    contract = SimpleNamespace(score_threshold=0.5)

    def __init__(self) -> None:
        self.on = True

    def __call__(self, frame_bgr: np.ndarray, threshold: float | None = None) -> list[Detection]:
        return [Detection((140.0, 100.0, 180.0, 140.0), 0.9, np.zeros((5, 2)))] if self.on else []


def _wire_checked_pipeline(sent: list[AggregateMessage]) -> tuple[CameraPipeline, StillFace]:
    """A pipeline whose buckets are built into the wire messages the agent sends, as its outbox does."""
    camera = CameraConfig(id="cam1", source="rtsp://camera/stream", fps=10.0)
    config = AgentConfig(agent_id="box-test", site_id="lab", cameras=[camera], bucket_seconds=60)
    messages = CameraMessages.for_camera(config, "cam1")

    def emit(zone: str, start: int, counts: BucketCounts) -> None:
        sent.append(messages.message(zone, start, counts, seq=len(sent) + 1))

    detector = StillFace()
    return CameraPipeline(config, camera, Models(cast(FaceDetector, detector), None), emit), detector


def _leave_and_finish(pipeline: CameraPipeline, detector: StillFace, t: float, *, frames: int, step: float) -> None:
    """The face goes; ``frames`` empty frames ``step`` s apart from ``t`` pass; the pipeline finishes."""
    detector.on = False
    frame = np.full((240, 320, 3), 30, np.uint8)
    for index in range(frames):
        pipeline.process(frame, t + index * step)
    pipeline.finish()


@pytest.mark.parametrize("step_s", [36_000.0, 200_000.0, -600.0])
def test_a_clock_step_while_someone_is_in_view_never_makes_a_visit_of_it(step_s: float) -> None:
    # Live frames carry the wall clock. A box that booted on a stale time is set right by NTP while someone sits
    # in view: the tracker followed the face across the step, one visit of 10 h (or 55 h, past what the wire
    # takes: the camera's pipeline then died on the message). Stepped back, no frame passed the fps cap for as
    # long as the step. Across a step nobody is followed: the person in view is a visitor again after it.
    sent: list[AggregateMessage] = []
    pipeline, detector = _wire_checked_pipeline(sent)
    frame = np.full((240, 320, 3), 30, np.uint8)
    gate = FrameGate(10.0)
    t, admitted = float(BUCKET), 0
    for index in range(100):  # 5 s seen before the step, 5 s after
        if index == 50:
            t += step_s
        if gate.admit(t):
            pipeline.process(frame, t)
            admitted += 1
        t += 0.1
    _leave_and_finish(pipeline, detector, t, frames=100, step=0.1)
    assert admitted == 100, "every frame after the step went through the fps cap"
    assert pipeline.people == 2
    dwell = [m.dwell.mean_seconds for m in sent if m.dwell is not None]
    assert dwell and max(dwell) < 10, dwell


def test_counts_made_before_the_clock_steps_back_are_sent_at_the_step_not_when_the_clock_catches_up() -> None:
    """Found by an adversarial review: stepped back a day, the buckets counted before the step were due only once the
    frame clock passed them again, a day later: a day of counts held in memory, lost to a crash or power cut."""
    sent: list[AggregateMessage] = []
    pipeline, detector = _wire_checked_pipeline(sent)
    frame = np.full((240, 320, 3), 30, np.uint8)
    t = float(BUCKET)
    for index in range(20):  # someone seen for 2 s, then gone
        detector.on = index < 10
        pipeline.process(frame, t + index / 10)
    assert not sent, "the bucket is not over yet"
    pipeline.process(frame, t + 2.0 - 86_400)  # the clock set back a day
    assert sorted((m.zone_id, m.people) for m in sent) == [("cam1", 1), ("frame", 1)], sent  # camera, whole frame


def test_a_face_in_view_for_more_than_a_day_stays_out_of_dwell_and_the_camera_goes_on() -> None:
    # A poster, or a face on a screen, in a place lit day and night: one visit of 25 h was past what the wire
    # takes, and the camera's pipeline died on the message; shorter, it made the zone's mean dwell hours long.
    sent: list[AggregateMessage] = []
    pipeline, detector = _wire_checked_pipeline(sent)
    frame = np.full((240, 320, 3), 30, np.uint8)
    t = float(BUCKET)
    while t < BUCKET + 25 * 3600:  # at 0.5 fps: the tracker keeps the face as at 10
        pipeline.process(frame, t)
        t += 2.0
    _leave_and_finish(pipeline, detector, t, frames=10, step=2.0)
    assert pipeline.people == 1
    assert all(m.dwell is None or m.dwell.mean_seconds <= MAX_VISIT_SECONDS for m in sent)
