"""Scene cuts on synthetic frames: a shot cut ends every track, lighting and passers-by do not."""

from __future__ import annotations

import numpy as np
from footfall.edge.scenecut import SceneCutDetector
from footfall.edge.tracking import FaceTracker

from tests.edge.synthetic import FPS, FRAME, walk


def scene(seed: int, width: int = 320, height: int = 180) -> np.ndarray:
    """A blocky random scene (shop windows, walls), different for each seed."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (9, 16, 3), dtype=np.uint8)
    return np.kron(blocks, np.ones((height // 9, width // 16, 1), np.uint8))


def test_a_cut_is_found_and_lighting_or_a_passer_by_is_not() -> None:
    detector = SceneCutDetector()
    first = scene(1)
    assert not detector(first)  # the first frame is never a cut
    assert not detector(first)
    brighter = np.clip(first.astype(np.int16) + 40, 0, 255).astype(np.uint8)
    assert not detector(brighter)  # exposure jump: every pixel alike
    person = brighter.copy()
    person[20:180, 100:180] = (60, 60, 200)  # someone close to the lens: a quarter of the frame
    assert not detector(person)
    assert detector(scene(2))  # a different shot
    assert not detector(scene(2))
    assert detector.cuts == 1


def test_a_scene_cut_ends_tracks_so_none_runs_across_it() -> None:
    # One walker per shot, the second where the first was heading: without the cut the track runs on into
    # the next shot (one person); the cut ends it, the second shot's walker is a person of its own.
    def people(cut_detection: bool) -> tuple[int, int]:
        tracker, detector = FaceTracker(confirm_hits=4), SceneCutDetector()
        shot_one = walk(300, 200, 360, 20)
        shot_two = walk(300 + 200 * 20 / FPS, 200, 360, 20)
        confirmed = ended = 0
        for index, detections in enumerate(shot_one + shot_two):
            frame = scene(1 if index < 20 else 2)
            if detector(frame) and cut_detection:
                ended += len(tracker.finish())
            events = tracker.update(detections, index / FPS, FRAME)
            confirmed += len(events.confirmed)
            ended += len(events.ended)
        return confirmed, ended + len(tracker.finish())

    assert people(cut_detection=False) == (1, 1)
    assert people(cut_detection=True) == (2, 2)
