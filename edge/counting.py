"""From face tracks to counted people: zone entries, line crossings, dwell time and a gender per person.

A track becomes a person once it is confirmed; the person is then counted once as one of the camera's
visitors (in the bucket of confirmation), once in every zone its face centre has been in (and once more in
each zone it enters later), once for each line it crossed in the counted direction, and once in and once
out at most for each entrance line (edge/entrances.py). Gender is decided from a few of the person's best
crops, averaged, and the buckets the person was counted in are updated when that decision changes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from footfall.core.classifier import UNKNOWN, GenderClassifier
from footfall.core.detector import Detection
from footfall.edge.aggregation import ZoneAggregator
from footfall.edge.entrances import EntranceCrossings
from footfall.edge.tracking import Track
from footfall.edge.zones import CountingLine, SceneGeometry, entrance_ids

# Told when a person's track ends: track id, final label, probabilities averaged over the track (if any).
PersonFinished = Callable[[int, str, np.ndarray | None], None]


def crop_quality(detection: Detection) -> float:
    """How useful a crop is for classification: bigger, surer and more frontal faces score higher."""
    size = max(detection.width, detection.height)
    lm = detection.landmarks
    frontal = 1.0
    if lm is not None and len(lm) >= 3:
        eye_mid_x = (lm[0][0] + lm[1][0]) / 2
        eye_dist = abs(lm[1][0] - lm[0][0])
        # The nose sits between the eyes on a frontal face and drifts outwards as the head turns.
        frontal = float(np.clip(1.0 - abs(lm[2][0] - eye_mid_x) / max(eye_dist, 1.0), 0.2, 1.0))
    return float(min(size, 96.0) * detection.score * frontal)


@dataclass
class ZoneVisit:
    first_in: float
    last_in: float


@dataclass
class Person:
    id: int
    counted_at: float
    samples: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (quality, probabilities)
    classifications: int = 0
    last_sample_at: float = -1e9
    label: str = UNKNOWN
    visits: dict[str, ZoneVisit] = field(default_factory=dict)
    lines: set[str] = field(default_factory=set)
    entrances: dict[str, EntranceCrossings] = field(default_factory=dict)

    def wants_sample(self, quality: float, t: float, limit: int, spacing: float = 0.2) -> bool:
        if self.classifications >= 2 * limit or t - self.last_sample_at < spacing:
            return False
        if len(self.samples) < limit:
            return True
        return quality > 1.1 * min(q for q, _ in self.samples)

    def add_sample(self, quality: float, probabilities: np.ndarray, t: float, limit: int) -> None:
        self.samples.append((quality, probabilities))
        self.samples.sort(key=lambda s: -s[0])
        del self.samples[limit:]
        self.classifications += 1
        self.last_sample_at = t

    def mean_probabilities(self) -> np.ndarray | None:
        if not self.samples:
            return None
        weights = np.array([q for q, _ in self.samples]) + 1e-6
        return np.average(np.stack([p for _, p in self.samples]), axis=0, weights=weights)


class PersonCounter:
    """Counts confirmed tracks into zones and lines of one camera and classifies them per track."""

    def __init__(
        self,
        geometry: SceneGeometry,
        aggregator: ZoneAggregator,
        classifier: GenderClassifier | None,
        *,
        samples_per_track: int = 4,
        on_finished: PersonFinished | None = None,
    ):
        self.geometry = geometry
        self.aggregator = aggregator
        self.classifier = classifier
        self.samples_per_track = samples_per_track
        # Offline runs and benchmarks collect each person's final decision; the agent keeps nothing of a
        # person after the track ends (it runs for months).
        self.on_finished = on_finished
        self.people: dict[int, Person] = {}
        self.totals: dict[str, int] = {"people": 0}

    def update(
        self,
        frame_bgr: np.ndarray,
        t: float,
        confirmed: list[Track],
        visible: list[Track],
        ended: list[Track],
    ) -> None:
        for track in confirmed:
            person = self.people[track.id] = Person(track.id, t)
            self.totals["people"] += 1
            if self.geometry.camera_id is not None:  # once per camera, whatever zones and lines it touches
                self.aggregator.count_person(person.id, self.geometry.camera_id, t, person.label)
        active = [tr for tr in visible if tr.id in self.people]
        self._classify(frame_bgr, t, active)
        for track in confirmed:
            self._count_path(self.people[track.id], track, t, whole_path=True)
        for track in active:
            if track not in confirmed:
                self._count_path(self.people[track.id], track, t, whole_path=False)
        for track in ended:
            self._finish(track)

    def _classify(self, frame_bgr: np.ndarray, t: float, tracks: list[Track]) -> None:
        if self.classifier is None:
            return
        chosen = []
        for track in tracks:
            quality = crop_quality(track.detection)
            if self.people[track.id].wants_sample(quality, t, self.samples_per_track):
                chosen.append((track, quality))
        if not chosen:
            return
        chips = [self.classifier.crop(frame_bgr, tr.detection.box, tr.detection.landmarks) for tr, _ in chosen]
        probabilities = self.classifier.probabilities(chips)
        for (track, quality), row in zip(chosen, probabilities, strict=True):
            person = self.people[track.id]
            person.add_sample(quality, row, t, self.samples_per_track)
            self._relabel(person)

    def _relabel(self, person: Person) -> None:
        mean = person.mean_probabilities()
        label = UNKNOWN
        if mean is not None and self.classifier is not None:
            label = self.classifier.decide(mean, per_track=True)[0].label
        if label != person.label:
            person.label = label
            self.aggregator.relabel_person(person.id, label)

    def _count_path(self, person: Person, track: Track, t: float, *, whole_path: bool) -> None:
        path = track.path if whole_path else track.path[-2:]
        for zone in self.geometry.zones:
            for pt_time, x, y in path if whole_path else path[-1:]:
                if zone.contains(x, y):
                    visit = person.visits.get(zone.id)
                    if visit is None:
                        person.visits[zone.id] = ZoneVisit(pt_time, pt_time)
                        self.aggregator.count_person(person.id, zone.id, t, person.label)
                    else:
                        visit.last_in = max(visit.last_in, pt_time)
        for line in self.geometry.lines:
            if line.entrance:
                self._count_entrance(person, line, path if whole_path else path[-1:], track.size, t)
                continue
            if line.id in person.lines:
                continue
            for (_, x0, y0), (_, x1, y1) in itertools.pairwise(path):
                if line.crossed((x0, y0), (x1, y1)):
                    person.lines.add(line.id)
                    self.aggregator.count_person(person.id, line.id, t, person.label)
                    break

    def _count_entrance(
        self, person: Person, line: CountingLine, path: list[tuple[float, float, float]], face_size: float, t: float
    ) -> None:
        crossings = person.entrances.setdefault(line.id, EntranceCrossings())
        way_in, way_out = entrance_ids(line.id)
        for _, x, y in path:
            way = crossings.step(line, x, y, face_size)
            if way is not None:
                self.aggregator.count_person(person.id, way_in if way == "in" else way_out, t, person.label)

    def _finish(self, track: Track) -> None:
        person = self.people.pop(track.id, None)
        if person is None:
            return
        for zone_id, visit in person.visits.items():
            self.aggregator.add_dwell(zone_id, visit.last_in, visit.last_in - visit.first_in)
        if self.on_finished is not None:
            self.on_finished(person.id, person.label, person.mean_probabilities())
        self.aggregator.forget_person(person.id)

    def finish(self, tracks: list[Track]) -> None:
        for track in tracks:
            self._finish(track)
