"""PersonCounter on synthetic tracks: who is counted, where, which way, and with which gender decision.

Faces are boxes from tests/edge/synthetic.py run through the real tracker; the classifier is a stand-in that
reads each crop as given probabilities but decides with the real rule (GenderClassifier.decide), so no
model, image or dataset is needed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import cast

import numpy as np
import pytest
from footfall.core.classifier import FaceOutputs, GenderClassifier
from footfall.core.detector import Detection
from footfall.core.manifest import ClassifierContract
from footfall.core.preprocess import FaceCropSpec
from footfall.edge.aggregation import BucketCounts, ZoneAggregator
from footfall.edge.config import LineConfig, ZoneConfig
from footfall.edge.counting import PersonCounter
from footfall.edge.tracking import FaceTracker
from footfall.edge.zones import SceneGeometry, counting_line, polygon_zone

from tests.edge.synthetic import FPS, FRAME, face, together, walk

HALVES = {
    "left": [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)],
    "right": [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)],
}
MIDDLE = ((0.5, 0.0), (0.5, 1.0))
GEOMETRY = SceneGeometry(
    [polygon_zone(ZoneConfig(id=zone_id, polygon=polygon), *FRAME) for zone_id, polygon in HALVES.items()],
    [
        counting_line(LineConfig(id="rightward", points=MIDDLE, direction="right"), *FRAME),
        counting_line(LineConfig(id="leftward", points=MIDDLE, direction="left"), *FRAME),
    ],
)
IMAGE = np.zeros((1, 1, 3), np.uint8)  # handed to the classifier only; the stand-in never looks at it
CONFIRM_HITS = 4


class StandInClassifier:
    """What PersonCounter uses of a GenderClassifier. A crop is its box; each crop of a face walking at height
    ``y`` reads as the next row of ``rows[y]`` (in turn, over and over). Decisions follow the real rule."""

    decide = GenderClassifier.decide  # per-label track thresholds for a person, else the single-face one
    has_age = False  # gender only: tests/edge/test_age_bands.py and test_band_allotment.py count bands

    def __init__(self, rows: dict[float, list[list[float]]], track_thresholds: dict[str, float] | None) -> None:
        self.labels = ["female", "male"]
        self.contract = ClassifierContract(
            preprocess=FaceCropSpec(), labels=self.labels, abstain_threshold=0.5, track_thresholds=track_thresholds
        )
        self.rows = {y: itertools.cycle(row) for y, row in rows.items()}

    def crop(self, frame_bgr: np.ndarray, box: Sequence[float], landmarks: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(box, float)

    def infer(self, chips: list[np.ndarray], *, age: bool = True) -> FaceOutputs:
        heights = [(chip[1] + chip[3]) / 2 for chip in chips]
        return FaceOutputs(np.array([next(self.rows[min(self.rows, key=lambda y: abs(y - h))]) for h in heights]), None)


def count(
    frames: list[list[Detection]], classifier: StandInClassifier | None = None, geometry: SceneGeometry = GEOMETRY
) -> tuple[dict[str, BucketCounts], list[str], int]:
    """Runs tracker and counter over the frames (one hour-long bucket) and returns each zone's and line's
    counts, the final label of each person and how many people the counter saw."""
    sent: dict[str, BucketCounts] = {}
    aggregator = ZoneAggregator(geometry.ids, 3600, lambda zone_id, _start, counts: sent.__setitem__(zone_id, counts))
    labels: list[str] = []
    counter = PersonCounter(
        geometry,
        aggregator,
        cast(GenderClassifier | None, classifier),  # the stand-in has what PersonCounter uses
        on_finished=lambda _id, label, _mean: labels.append(label),
    )
    tracker = FaceTracker(confirm_hits=CONFIRM_HITS, max_lost_seconds=1.5)
    for index, detections in enumerate(frames):
        t = index / FPS
        events = tracker.update(detections, t, FRAME)
        counter.update(IMAGE, t, events.confirmed, events.visible, events.ended)
    counter.finish(tracker.finish())
    aggregator.flush_all()
    return sent, sorted(labels), counter.totals["people"]


def people(sent: dict[str, BucketCounts], zone_id: str) -> int:
    return sent[zone_id].people if zone_id in sent else 0


def test_one_person_is_counted_once_in_each_zone_and_line() -> None:
    # Left to right across both halves in 4.5 s, hidden behind a pillar for 0.6 s on the way: 68 frames
    # in which the face is seen, one person.
    sent, labels, seen = count(walk(100, 240, 360, 68, hidden=range(25, 34)))
    assert seen == 1 and labels == ["unknown"]  # no classifier: nobody's gender is decided
    assert {zone_id: people(sent, zone_id) for zone_id in GEOMETRY.ids} == {
        "left": 1,
        "right": 1,
        "rightward": 1,
        "leftward": 0,
    }
    assert sent["left"].unknown == 1 and sent["left"].dwell_samples == 1 and sent["left"].dwell_seconds_total > 1


@pytest.mark.parametrize(("speed", "line"), [(240, "rightward"), (-240, "leftward")])
def test_a_person_crossing_the_line_is_counted_in_the_direction_walked(speed: float, line: str) -> None:
    start = 100 if speed > 0 else 1180
    sent, _, seen = count(walk(start, speed, 360, 68))
    assert seen == 1
    assert people(sent, line) == 1
    assert people(sent, "leftward" if line == "rightward" else "rightward") == 0


def test_someone_who_turns_back_before_the_line_crosses_nothing() -> None:
    there = walk(100, 240, 360, 30)  # stops at x ≈ 570, short of the middle (640)
    back = [[face(100 + 240 * 29 / FPS - 240 * i / FPS, 360)] for i in range(1, 30)]
    sent, _, seen = count(there + back)
    assert seen == 1 and people(sent, "left") == 1
    assert people(sent, "right") == people(sent, "rightward") == people(sent, "leftward") == 0


@pytest.mark.parametrize(("frames", "counted"), [(CONFIRM_HITS - 1, 0), (CONFIRM_HITS, 1)])
def test_a_track_too_short_to_be_confirmed_is_not_a_person(frames: int, counted: int) -> None:
    sent, _, seen = count(walk(300, 240, 360, frames))
    assert seen == counted
    assert people(sent, "left") == counted


# Three people side by side, each crop of a face read as the next row for its height, four crops a person:
# 150: always 70 % male; 360: three crops 90 % female and one 80 % male (mean 72.5 % female);
# 570: 95 % female and 85 % male in turn (mean 55 % female: sure crops that disagree).
ROWS = {
    150: [[0.3, 0.7]],
    360: [[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.2, 0.8]],
    570: [[0.95, 0.05], [0.15, 0.85]],
}


@pytest.mark.parametrize(
    ("track_thresholds", "expected"),
    [
        # Per-label track thresholds: 70 % male is not sure enough (0.75), nor is 55 % female (0.65).
        ({"female": 0.65, "male": 0.75}, ["female", "unknown", "unknown"]),
        # None: the single-face threshold (0.5) for everyone.
        (None, ["female", "female", "male"]),
    ],
)
def test_gender_is_a_vote_over_a_persons_crops_decided_with_the_thresholds(
    track_thresholds: dict[str, float] | None, expected: list[str]
) -> None:
    walkers = together(*(walk(100, 240, y, 68) for y in ROWS))
    sent, labels, seen = count(walkers, StandInClassifier(ROWS, track_thresholds))
    assert seen == 3 and labels == expected
    # The buckets each person was counted in carry the final decision, not the first crop's.
    for zone_id in ("left", "right", "rightward"):
        split = sent[zone_id]
        assert (split.people, split.female, split.male, split.unknown) == (
            3,
            expected.count("female"),
            expected.count("male"),
            expected.count("unknown"),
        )


# A camera that counts its visitors, with three zones side by side, a mid line counted either way, and a door
# at x = 256 px (0.2 of the frame): walking right through it is the way in.
STRIPS = {
    "west": [(0.0, 0.0), (0.34, 0.0), (0.34, 1.0), (0.0, 1.0)],
    "centre": [(0.33, 0.0), (0.67, 0.0), (0.67, 1.0), (0.33, 1.0)],
    "east": [(0.66, 0.0), (1.0, 0.0), (1.0, 1.0), (0.66, 1.0)],
}
DOOR_X = 256
CAMERA = SceneGeometry(
    [polygon_zone(ZoneConfig(id=zone_id, polygon=polygon), *FRAME) for zone_id, polygon in STRIPS.items()],
    [
        counting_line(LineConfig(id="mid", points=MIDDLE, direction="any"), *FRAME),
        counting_line(LineConfig(id="door", points=((0.2, 0.0), (0.2, 1.0)), direction="right", entrance=True), *FRAME),
    ],
    camera_id="cam1",
)


def path(*legs: tuple[float, float], y: float = 360, start: float = 100) -> list[list[Detection]]:
    """One face walking legs of (speed px/s, frames) one after another from x = ``start``."""
    frames, x = [], start
    for speed, count_ in legs:
        for _ in range(int(count_)):
            frames.append([face(x, y)])
            x += speed / FPS
    return frames


def test_a_person_through_three_zones_and_a_line_is_one_camera_visitor() -> None:
    sent, _, seen = count(walk(100, 240, 360, 68), geometry=CAMERA)
    assert seen == 1
    assert {zone_id: people(sent, zone_id) for zone_id in CAMERA.ids} == {
        "west": 1,
        "centre": 1,
        "east": 1,
        "mid": 1,
        "door.in": 1,
        "door.out": 0,
        "cam1": 1,  # passes add up to 4 here; the camera saw one person
    }
    assert sent["cam1"].dwell_samples == 0  # dwell belongs to zones


def test_two_people_together_are_two_camera_visitors_in_the_bucket_they_are_confirmed_in() -> None:
    sent, _, seen = count(together(walk(100, 240, 200, 68), walk(1180, -240, 520, 68)), geometry=CAMERA)
    assert seen == 2 and people(sent, "cam1") == 2
    assert (people(sent, "door.in"), people(sent, "door.out")) == (1, 1)


def test_in_through_the_door_and_out_again_counts_one_in_and_one_out() -> None:
    # In past the door to x ≈ 580, then back out to x ≈ 100, all in one track.
    sent, _, seen = count(path((240, 30), (-240, 30)), geometry=CAMERA)
    assert seen == 1 and people(sent, "cam1") == 1
    assert (people(sent, "door.in"), people(sent, "door.out")) == (1, 1)


@pytest.mark.parametrize(("speed", "way"), [(240, "door.in"), (-240, "door.out")])
def test_crossing_the_door_once_counts_that_way_only(speed: float, way: str) -> None:
    sent, _, _ = count(path((speed, 40), start=100 if speed > 0 else 600), geometry=CAMERA)
    assert people(sent, way) == 1
    assert people(sent, "door.out" if way == "door.in" else "door.in") == 0


@pytest.mark.parametrize("jitter", [5.0, 25.0])
def test_a_person_dithering_on_the_door_line_is_not_counted_in_twice(jitter: float) -> None:
    # Walks up to the door, stands on it for 3 s while the face centre wavers ±jitter px across it (5 px: the
    # detector's jitter; 25 px: a person stepping to and fro), then walks on in.
    approach = path((240, 10), start=DOOR_X - 160)
    waver = [[face(DOOR_X + (jitter if i % 2 else -jitter), 360)] for i in range(45)]
    onwards = path((240, 30), start=DOOR_X + 20)
    sent, _, seen = count(approach + waver + onwards, geometry=CAMERA)
    assert seen == 1
    assert people(sent, "door.in") == 1
    # Face-centre jitter never makes an out; real steps back may count one out, never a second in.
    assert people(sent, "door.out") == (0 if jitter < 10 else 1)


def test_walking_beside_the_door_segment_counts_no_one_in() -> None:
    short_door = SceneGeometry(
        [],
        [
            counting_line(
                LineConfig(id="door", points=((0.2, 0.0), (0.2, 0.3)), direction="right", entrance=True), *FRAME
            )
        ],
        camera_id="cam1",
    )
    sent, _, seen = count(walk(100, 240, 600, 40), geometry=short_door)  # y = 600 passes below the door
    assert seen == 1 and people(sent, "cam1") == 1
    assert people(sent, "door.in") == people(sent, "door.out") == 0


def test_camera_and_entrance_counts_carry_each_persons_final_gender() -> None:
    walkers = together(*(walk(100, 240, y, 68) for y in ROWS))
    sent, labels, seen = count(walkers, StandInClassifier(ROWS, None), geometry=CAMERA)
    assert seen == 3 and labels == ["female", "female", "male"]
    for zone_id in ("cam1", "door.in", "west"):
        split = sent[zone_id]
        assert (split.people, split.female, split.male, split.unknown) == (3, 2, 1, 0), zone_id


@pytest.mark.parametrize("t0", [0.0, 1_763_280_000.0, -2_208_988_800.0])
def test_a_persons_first_crop_is_taken_whatever_the_clock_reads(t0: float) -> None:
    """The last crop's time started at -1e9 s: with `footfall process --start 1900-01-01` (times near -2.2e9 s) no
    crop was ever far enough from it, nobody was classified, and everyone was counted 'unknown'."""
    from footfall.edge.counting import FaceSample, Person

    person = Person(id=1, counted_at=t0)
    assert person.wants_sample(1.0, t0, limit=3)
    person.add_sample(FaceSample(1.0, np.array([0.5, 0.5])), t0, limit=3)
    assert not person.wants_sample(1.0, t0 + 0.1, limit=3) and person.wants_sample(1.0, t0 + 0.25, limit=3)
