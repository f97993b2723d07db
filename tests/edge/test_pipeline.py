"""One camera's pipeline as the agent runs it, where the stream itself changes under it."""

from __future__ import annotations

from typing import cast

import numpy as np
from footfall.core.detector import FaceDetector
from footfall.edge.aggregation import BucketCounts, BucketNotStored
from footfall.edge.config import AgentConfig, CameraConfig
from footfall.edge.pipeline import CameraPipeline, Models

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
