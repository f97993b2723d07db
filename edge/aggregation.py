"""Per-zone, per-bucket counts: people in, gender split, age bands per gender, mean dwell, emitted as
full-count messages.

A bucket is emitted once its time has passed (plus a grace period for faces that are still hidden), and
emitted again whenever it changes later (a person's gender decision firmed up after more crops, or their band
was allotted again). Every emission is the full count of the bucket, so the server can keep the last one.

Age bands are counted only for people whose age was estimated (a bundle with an age head, a site in 'full'
mode); a bucket none of whose people had their age estimated carries no age table at all, so what an agent
without age sends stays exactly as before.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

from footfall.core.ages import AGE_DECISIONS, AgeDecision
from footfall.core.classifier import UNKNOWN
from footfall.core.logs import FailureStreak
from footfall.core.wire import GENDER_DECISIONS, DwellStats, GenderAgeCounts, GenderCounts, GenderDecision

logger = logging.getLogger(__name__)

GENDER_LABELS = ("female", "male", UNKNOWN)
# A face in one zone longer than this is not a visit (a poster, a face on a screen, staff at a counter): it is left
# out of the zone's dwell, or one such face would make the mean hours long, and past a day the wire refuses it. The
# person is still counted.
MAX_VISIT_SECONDS = 4 * 3600.0

# People per (gender decision, age decision): the non-zero cells, sorted, so that equal tables compare equal.
AgeCells = tuple[tuple[tuple[str, str], int], ...]


def gender_decision(label: str) -> str:
    """A person's gender label as counted: 'female', 'male', or 'unknown' for anything else."""
    return label if label in ("female", "male") else UNKNOWN


def age_cells(people: Iterable[tuple[str, str]] | Mapping[tuple[str, str], int]) -> AgeCells:
    """The cells of a (gender decision, age decision) table, from one pair per person or from counts."""
    counts = Counter(people) if not isinstance(people, Mapping) else Counter(dict(people))
    return tuple(sorted((cell, n) for cell, n in counts.items() if n))


@dataclass(frozen=True)
class BucketCounts:
    people: int = 0
    female: int = 0
    male: int = 0
    unknown: int = 0
    dwell_samples: int = 0
    dwell_seconds_total: float = 0.0
    # The same people by gender and age decision; None when nobody's age was estimated.
    age: AgeCells | None = None

    def __add__(self, other: BucketCounts) -> BucketCounts:
        age = None
        if self.age is not None or other.age is not None:
            # A side without age (an earlier run in gender-only mode) counts its people as age 'unknown'.
            age = age_cells(Counter(dict(self.age_or_unknown())) + Counter(dict(other.age_or_unknown())))
        return BucketCounts(
            self.people + other.people,
            self.female + other.female,
            self.male + other.male,
            self.unknown + other.unknown,
            self.dwell_samples + other.dwell_samples,
            self.dwell_seconds_total + other.dwell_seconds_total,
            age,
        )

    def age_or_unknown(self) -> AgeCells:
        """The age cells, or everyone of each gender in the age 'unknown' when no age was estimated."""
        if self.age is not None:
            return self.age
        genders = zip(GENDER_LABELS, (self.female, self.male, self.unknown), strict=True)
        return age_cells({(gender, UNKNOWN): people for gender, people in genders})

    def age_table(self) -> GenderAgeCounts | None:
        """The age cells as the wire carries them (gender decision → age decision → people, every gender
        and band present); None when no age was estimated."""
        if self.age is None:
            return None
        table: GenderAgeCounts = {g: dict.fromkeys(AGE_DECISIONS, 0) for g in GENDER_DECISIONS}
        for (gender, band), count in self.age:
            table[cast(GenderDecision, gender)][cast(AgeDecision, band)] += count
        return table

    @property
    def gender(self) -> GenderCounts:
        return GenderCounts(female=self.female, male=self.male, unknown=self.unknown)

    @property
    def dwell(self) -> DwellStats | None:
        if not self.dwell_samples:
            return None
        return DwellStats(
            samples=self.dwell_samples, mean_seconds=round(self.dwell_seconds_total / self.dwell_samples, 3)
        )


@dataclass
class Bucket:
    zone_id: str
    start: int  # epoch seconds, aligned
    # What an earlier run of the agent already counted: read when the bucket is first emitted (None: not yet).
    base: BucketCounts | None = None
    labels: dict[int, str] = field(default_factory=dict)  # person id -> gender decision
    bands: dict[int, str] = field(default_factory=dict)  # person id -> band counted in, if their age is estimated
    dwell_samples: int = 0
    dwell_total: float = 0.0
    dirty: bool = True
    emitted: bool = False
    # On the aggregator's monotonic clock: since when it has been due and the outbox has not taken it (None: not so).
    unstored_since: float | None = None

    def counts(self) -> BucketCounts:
        values = list(self.labels.values())
        own = BucketCounts(
            len(values),
            values.count("female"),
            values.count("male"),
            sum(1 for v in values if v not in ("female", "male")),
            self.dwell_samples,
            self.dwell_total,
            self._age_cells(),
        )
        return (self.base or BucketCounts()) + own

    def _age_cells(self) -> AgeCells | None:
        if not self.bands:
            return None
        return age_cells((gender_decision(label), self.bands.get(pid, UNKNOWN)) for pid, label in self.labels.items())


# Called with (zone_id, bucket_start_epoch, counts) for each bucket that is due.
Emit = Callable[[str, int, BucketCounts], None]
# Counts an earlier run already sent for (zone_id, bucket_start_epoch), so a restart adds to them.
BaseLookup = Callable[[str, int], BucketCounts | None]


class BucketNotStored(RuntimeError):
    """Raised by an :data:`Emit` or a :data:`BaseLookup` that could not store a bucket or read what it held (the
    outbox failed: a full disk, a lock held too long). The bucket keeps its changes and goes again at the next
    flush, so nothing counted is dropped while the failure lasts up to the aggregator's hold (a day by default)."""


class ZoneAggregator:
    """Buckets of one camera's zones and lines.

    Each bucket start's buckets are emitted in the order of ``zone_ids`` (footfall.edge.zones.SceneGeometry.ids:
    the camera's own distinct-people id last), so the server has a camera's zones before the camera's figure they
    split: it withholds a camera hour with a zone below k (footfall.server.release.
    withhold_cameras_with_hidden_parts), and a camera figure stored first could be released before its zones."""

    def __init__(
        self,
        zone_ids: list[str],
        bucket_seconds: int,
        emit: Emit,
        *,
        grace_seconds: float = 3.0,
        base_lookup: BaseLookup | None = None,
        keep_seconds: float = 3600.0,
        hold_seconds: float = 86_400.0,
        on_dropped: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        """``on_dropped``: told how many buckets were dropped past the hold (the agent's metrics); ``clock`` times
        how long the outbox has failed."""
        self.zone_ids = list(zone_ids)
        self._rank = {zone_id: i for i, zone_id in enumerate(self.zone_ids)}
        self.bucket_seconds = bucket_seconds
        self.emit = emit
        self.grace = grace_seconds
        self.base_lookup = base_lookup
        self.keep = max(keep_seconds, 2 * bucket_seconds)
        # How long a finished bucket the outbox cannot take is held in memory before it is dropped: a failure
        # nobody fixes (a full disk) must not grow the agent until the box runs out of memory.
        self.hold = max(hold_seconds, 2 * bucket_seconds)
        self.dropped_buckets = 0
        self.on_dropped = on_dropped
        self.clock = clock
        self._dropping = FailureStreak(
            logger,
            "the outbox has not taken these aggregates for longer than the hold: dropped; free its disk",
            "the outbox takes aggregates again; some were dropped while it could not",
        )
        self.buckets: dict[tuple[str, int], Bucket] = {}
        self.person_buckets: dict[int, list[Bucket]] = {}

    def bucket_start(self, t: float) -> int:
        return int(math.floor(t / self.bucket_seconds) * self.bucket_seconds)

    def _bucket(self, zone_id: str, t: float) -> Bucket:
        start = self.bucket_start(t)
        key = (zone_id, start)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(zone_id, start)
        return bucket

    def touch(self, t: float) -> None:
        """Marks the current buckets of every zone as observed, so a quiet zone still reports zero."""
        for zone_id in self.zone_ids:
            self._bucket(zone_id, t)

    def count_person(self, person_id: int, zone_id: str, t: float, label: str, band: str | None = None) -> None:
        """Counts the person once in the zone's bucket at ``t``, with their gender decision and, when their
        age is estimated, the band they are counted in (None: not estimated)."""
        bucket = self._bucket(zone_id, t)
        if person_id in bucket.labels:
            return
        bucket.labels[person_id] = label
        if band is not None:
            bucket.bands[person_id] = band
        bucket.dirty = True
        self.person_buckets.setdefault(person_id, []).append(bucket)

    def relabel_person(self, person_id: int, label: str, band: str | None = None) -> None:
        """The person's decisions changed: every bucket they were counted in now holds ``label`` and ``band``
        (None: their age is not estimated)."""
        for bucket in self.person_buckets.get(person_id, []):
            changed = bucket.labels.get(person_id) != label or bucket.bands.get(person_id) != band
            if not changed:
                continue
            bucket.labels[person_id] = label
            if band is None:
                bucket.bands.pop(person_id, None)
            else:
                bucket.bands[person_id] = band
            bucket.dirty = True

    def add_dwell(self, zone_id: str, t_end: float, seconds: float) -> None:
        if seconds > MAX_VISIT_SECONDS:  # a poster, a face on a screen, staff at a counter: not a visitor's stay
            return
        bucket = self._bucket(zone_id, t_end)
        bucket.dwell_samples += 1
        bucket.dwell_total += max(seconds, 0.0)
        bucket.dirty = True

    def forget_person(self, person_id: int) -> None:
        self.person_buckets.pop(person_id, None)

    def flush_due(self, now: float) -> int:
        """Emits the buckets whose time (plus grace) has passed and that changed; returns how many. When one cannot
        be stored, the rest wait too (in order) and go at the next flush."""
        emitted = 0
        finished = now - self.bucket_seconds - self.grace
        # Only the due ones are sorted: while the outbox fails, every frame would otherwise sort all that is held.
        due = sorted((k for k, b in self.buckets.items() if b.dirty and b.start <= finished), key=self._emit_order)
        for key in due:
            if not self._emit(self.buckets[key]):
                break
            emitted += 1
        if emitted < len(due):
            waiting_since = self.clock()
            for key in due[emitted:]:
                bucket = self.buckets[key]
                if bucket.unstored_since is None:
                    bucket.unstored_since = waiting_since
            self._drop_unstored_past_hold(waiting_since)
        self._forget([k for k, b in self.buckets.items() if not b.dirty and b.start + self.keep < now])
        return emitted

    def _drop_unstored_past_hold(self, now: float) -> None:
        """Drops the buckets the outbox has not taken for the hold since they were due. Timed on ``clock`` (the
        monotonic one), not on the frames' time, so that a jump of the camera's clock (a box without a battery
        setting its time at boot) during a brief failure drops nothing; and per bucket, so that an outbox that
        takes one now and then (a nearly full disk) cannot hold the rest without bound."""
        overdue = [
            key
            for key, bucket in self.buckets.items()
            if bucket.dirty and bucket.unstored_since is not None and now - bucket.unstored_since >= self.hold
        ]
        if not overdue:
            return
        people = len(set().union(*(self.buckets[key].labels for key in overdue)))
        self.dropped_buckets += len(overdue)
        if self.on_dropped is not None:
            self.on_dropped(len(overdue))
        self._dropping.failed(  # ERROR once for the whole failure, then DEBUG
            hold_s=self.hold,
            dropped_now=len(overdue),
            people_now=people,
            dropped_total=self.dropped_buckets,
            oldest=utc(min(start for _, start in overdue)).isoformat(),
            zones=",".join(sorted({zone for zone, _ in overdue})),
        )
        self._forget(overdue)

    def _forget(self, keys: list[tuple[str, int]]) -> None:
        for key in keys:
            bucket = self.buckets.pop(key)
            for pid in bucket.labels:
                lst = self.person_buckets.get(pid)
                if lst and bucket in lst:
                    lst.remove(bucket)
                if lst == []:
                    del self.person_buckets[pid]

    def flush_all(self) -> int:
        """Emits every changed bucket now, finished or not (shutdown, end of a video)."""
        emitted = 0
        for key in sorted(self.buckets, key=self._emit_order):
            if self.buckets[key].dirty:
                if not self._emit(self.buckets[key]):
                    break
                emitted += 1
        return emitted

    def unstored(self) -> tuple[int, int]:
        """Buckets whose changes the outbox has not taken yet, and the people counted in them (each once, however
        many of the camera's zones they were counted in)."""
        waiting = [bucket for bucket in self.buckets.values() if bucket.dirty]
        return len(waiting), len(set().union(*(bucket.labels for bucket in waiting)))

    def _emit_order(self, key: tuple[str, int]) -> tuple[int, int, str]:
        """Bucket start, then the zone's place in ``zone_ids`` (ids it was not given last, by name)."""
        zone_id, start = key
        return start, self._rank.get(zone_id, len(self._rank)), zone_id

    def _emit(self, bucket: Bucket) -> bool:
        """Emits the bucket (with what an earlier run counted in it); False, and the bucket still changed, when it
        could not be stored."""
        try:
            if bucket.base is None:
                bucket.base = (self.base_lookup(bucket.zone_id, bucket.start) if self.base_lookup else None) or (
                    BucketCounts()
                )
            self.emit(bucket.zone_id, bucket.start, bucket.counts())
        except BucketNotStored:
            return False
        bucket.unstored_since = None
        self._dropping.succeeded(dropped_total=self.dropped_buckets)
        bucket.dirty = False
        bucket.emitted = True
        return True


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
