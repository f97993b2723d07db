"""From face tracks to counted people: zone entries, line crossings, dwell time, a gender and an age band
per person.

A track becomes a person once it is confirmed; the person is then counted once as one of the camera's
visitors (in the bucket of confirmation), once in every zone its face centre has been in (and once more in
each zone it enters later), once for each line it crossed in the counted direction, and once in and once
out at most for each entrance line (edge/entrances.py). Gender is decided from a few of the person's best
crops, averaged, and the buckets the person was counted in are updated when that decision changes. With a
bundle that has an age head (and ``estimate_age``: a site in 'full' mode), the same forward pass over the same
best crops gives each crop's age distribution, averaged per person. The band a person is COUNTED in is not
decided from that average alone: it is allotted (edge/band_allotment.py) so that each band's count, per gender,
follows the sum of the counted people's band probabilities (deciding each person's most likely band put most
people in the wide 25-34 band and none in its neighbours). A single person's allotted band is therefore not an
estimate of their age. The person is counted as age 'unknown' only until a crop's age was estimated, and a change
of allotted band relabels the person like one of gender. What is reported per person (``on_aged``) is the
confident decision over their average (GenderClassifier.decide_age: abstaining as 'unknown' below the bundle's
band threshold), not the allotted band.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from footfall.core.classifier import UNKNOWN, AgeEstimate, GenderClassifier
from footfall.core.detector import Detection
from footfall.core.logs import log_event
from footfall.edge.aggregation import ZoneAggregator, gender_decision
from footfall.edge.band_allotment import BandAllotment
from footfall.edge.entrances import EntranceCrossings
from footfall.edge.tracking import Track
from footfall.edge.zones import CountingLine, SceneGeometry, entrance_ids

logger = logging.getLogger("footfall.edge.counting")

# Told when a person's track ends: track id, final label, probabilities averaged over the track (if any).
PersonFinished = Callable[[int, str, np.ndarray | None], None]
# Told when the track of a person whose age was estimated ends: track id, the confident band decision over the
# track (with abstention), not the band the person was counted in.
PersonAged = Callable[[int, AgeEstimate], None]


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


@dataclass(frozen=True)
class FaceSample:
    """What one classified crop of a person says: gender probabilities and, when age was estimated, age
    probabilities (over the bundle's ages)."""

    quality: float
    gender: np.ndarray
    age: np.ndarray | None = None


def quality_weighted_mean(samples: list[FaceSample], values: list[np.ndarray]) -> np.ndarray:
    """The mean of one row per sample, better crops weighing more."""
    weights = np.array([s.quality for s in samples]) + 1e-6
    mean: np.ndarray = np.average(np.stack(values), axis=0, weights=weights)
    return mean


@dataclass
class Person:
    id: int
    counted_at: float
    samples: list[FaceSample] = field(default_factory=list)  # the best crops so far, best first
    classifications: int = 0
    last_sample_at: float = -math.inf  # none yet: any time is far enough from it (video times can be negative)
    label: str = UNKNOWN
    # The band the person is counted in (allotted: edge/band_allotment.py); 'unknown' until a crop's age was
    # estimated; None while their age is not estimated.
    band: str | None = None
    visits: dict[str, ZoneVisit] = field(default_factory=dict)
    lines: set[str] = field(default_factory=set)
    entrances: dict[str, EntranceCrossings] = field(default_factory=dict)

    def wants_sample(self, quality: float, t: float, limit: int, spacing: float = 0.2) -> bool:
        if self.classifications >= 2 * limit or t - self.last_sample_at < spacing:
            return False
        if len(self.samples) < limit:
            return True
        return quality > 1.1 * min(s.quality for s in self.samples)

    def add_sample(self, sample: FaceSample, t: float, limit: int) -> None:
        self.samples.append(sample)
        self.samples.sort(key=lambda s: -s.quality)
        del self.samples[limit:]
        self.classifications += 1
        self.last_sample_at = t

    def mean_probabilities(self) -> np.ndarray | None:
        """Gender probabilities averaged over the kept crops; None before any."""
        if not self.samples:
            return None
        return quality_weighted_mean(self.samples, [s.gender for s in self.samples])

    def mean_age_probabilities(self) -> np.ndarray | None:
        """Age probabilities averaged over the kept crops whose age was estimated; None when none was."""
        aged = [s for s in self.samples if s.age is not None]
        if not aged:
            return None
        return quality_weighted_mean(aged, [s.age for s in aged if s.age is not None])


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
        estimate_age: bool = True,
        on_aged: PersonAged | None = None,
    ):
        self.geometry = geometry
        self.aggregator = aggregator
        self.classifier = classifier
        self.samples_per_track = samples_per_track
        # False: the classifier's age output is never read (a site in 'gender-only' mode).
        self.estimate_age = estimate_age
        # Offline runs and benchmarks collect each person's final decision; the agent keeps nothing of a
        # person after the track ends (it runs for months).
        self.on_finished = on_finished
        self.on_aged = on_aged
        self.people: dict[int, Person] = {}
        self.allotment = BandAllotment()  # which band each person is counted in
        self.totals: dict[str, int] = {"people": 0}

    @property
    def estimating_age(self) -> bool:
        """Whether people's age is estimated now: a bundle with an age head, and age wanted."""
        return self.estimate_age and self.classifier is not None and self.classifier.has_age

    def use_classifier(self, classifier: GenderClassifier | None, *, estimate_age: bool) -> None:
        """Classifies with ``classifier`` from now on, reading its age head only with ``estimate_age``. When
        age is no longer estimated, the people being tracked lose their bands at once (their buckets carry none,
        and their allotments are taken back), instead of keeping a band no crop will revise."""
        self.classifier = classifier
        self.estimate_age = estimate_age
        if self.estimating_age:
            return
        self.allotment.withdraw_all()
        for person in self.people.values():
            if person.band is not None:
                person.band = None
                self.aggregator.relabel_person(person.id, person.label, None)

    def update(
        self,
        frame_bgr: np.ndarray,
        t: float,
        confirmed: list[Track],
        visible: list[Track],
        ended: list[Track],
    ) -> None:
        for track in confirmed:
            person = self.people[track.id] = Person(track.id, t, band=UNKNOWN if self.estimating_age else None)
            self.totals["people"] += 1
            if self.geometry.camera_id is not None:  # once per camera, whatever zones and lines it touches
                self.aggregator.count_person(person.id, self.geometry.camera_id, t, person.label, person.band)
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
        outputs = self.classifier.infer(chips, age=self.estimating_age)  # one pass: gender and age
        ages = outputs.age if outputs.age is not None else [None] * len(chosen)
        for (track, quality), gender, age in zip(chosen, outputs.gender, ages, strict=True):
            person = self.people[track.id]
            person.add_sample(FaceSample(quality, gender, age), t, self.samples_per_track)
            self._relabel(person)

    def _age_estimate(self, person: Person) -> AgeEstimate | None:
        """The person's confident band decision over their kept crops (with its band probabilities); None when
        their age was never estimated."""
        mean = person.mean_age_probabilities()
        if mean is None or self.classifier is None or not self.classifier.has_age:
            return None
        return self.classifier.decide_age(mean)[0]

    def _relabel(self, person: Person) -> None:
        mean = person.mean_probabilities()
        label = UNKNOWN
        if mean is not None and self.classifier is not None:
            label = self.classifier.decide(mean, per_track=True)[0].label
        band = None
        if self.estimating_age:
            estimate = self._age_estimate(person)
            band = UNKNOWN if estimate is None else self._allot(person, label, estimate)
        if (label, band) != (person.label, person.band):
            person.label, person.band = label, band
            self.aggregator.relabel_person(person.id, label, band)

    def _allot(self, person: Person, label: str, estimate: AgeEstimate) -> str:
        """The band the person is counted in; 'unknown' (and their allotment taken back) when the age output
        gave no distribution (NaN, negative, or not summing to 1: a broken graph), as a NaN gender does."""
        try:
            return self.allotment.allot(person.id, gender_decision(label), estimate.band_probabilities)
        except ValueError as exc:
            self.allotment.withdraw(person.id)
            log_event(logger, logging.WARNING, "age output is not a distribution", person=person.id, error=str(exc))
            return UNKNOWN

    def _count_path(self, person: Person, track: Track, t: float, *, whole_path: bool) -> None:
        path = track.path if whole_path else track.path[-2:]
        for zone in self.geometry.zones:
            for pt_time, x, y in path if whole_path else path[-1:]:
                if zone.contains(x, y):
                    visit = person.visits.get(zone.id)
                    if visit is None:
                        person.visits[zone.id] = ZoneVisit(pt_time, pt_time)
                        self.aggregator.count_person(person.id, zone.id, t, person.label, person.band)
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
                    self.aggregator.count_person(person.id, line.id, t, person.label, person.band)
                    break

    def _count_entrance(
        self, person: Person, line: CountingLine, path: list[tuple[float, float, float]], face_size: float, t: float
    ) -> None:
        crossings = person.entrances.setdefault(line.id, EntranceCrossings())
        way_in, way_out = entrance_ids(line.id)
        for _, x, y in path:
            way = crossings.step(line, x, y, face_size)
            if way is not None:
                self.aggregator.count_person(
                    person.id, way_in if way == "in" else way_out, t, person.label, person.band
                )

    def _finish(self, track: Track) -> None:
        person = self.people.pop(track.id, None)
        if person is None:
            return
        for zone_id, visit in person.visits.items():
            self.aggregator.add_dwell(zone_id, visit.last_in, visit.last_in - visit.first_in)
        if self.on_finished is not None:
            self.on_finished(person.id, person.label, person.mean_probabilities())
        if self.on_aged is not None and person.band is not None:
            estimate = self._age_estimate(person)
            if estimate is not None:
                self.on_aged(person.id, estimate)
        self.allotment.forget(person.id)
        self.aggregator.forget_person(person.id)

    def finish(self, tracks: list[Track]) -> None:
        for track in tracks:
            self._finish(track)
