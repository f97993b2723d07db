"""Reads behind the traffic API and the ad-placement ranking: sums of released values only
(footfall.server.release), from the hourly cells, the daily rollup and the slot running totals."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

import numpy as np
from footfall.core.ages import AGE_DECISIONS, AGE_UNKNOWN
from footfall.server.localtime import (
    DAY,
    HOUR,
    MONDAY_EPOCH,
    WEEK,
    day_range,
    local_day,
    local_hour_of_week,
    local_midnight,
    week_start,
)
from footfall.server.rollups import slot_parts
from footfall.server.rollups.observed import partly_observed
from footfall.server.sql import is_postgres
from footfall.server.stats import Z95
from footfall.server.tables import DailyRollup, HourlyAge, HourlyRollup
from sqlalchemy import BigInteger, ColumnElement, case, cast, distinct, func, literal, select, text
from sqlalchemy.orm import Session

Granularity = Literal["hour", "day", "week"]
GENDERS = ("female", "male", "unknown")


@dataclass
class Rows:
    """Sums of released values (footfall.server.release) keyed by something (a time, a zone, an hour of week).

    ``people`` is what the cells released; ``parts`` (female, male, unknown) come from the cells that also
    released their split, so ``people - parts.sum(axis=1)`` are the people of cells whose split was withheld.
    ``withheld`` counts the cells left out entirely (1 to k-1 people)."""

    keys: list[Any]
    people: np.ndarray  # (n,) int64
    parts: np.ndarray  # (n, 3) int64
    withheld: np.ndarray  # (n,) withheld cells
    occurrences: np.ndarray  # (n,) how many hours of data stand behind each row (for means)
    dwell_samples: np.ndarray
    dwell_seconds: np.ndarray


def _total(column: Any) -> Any:
    """SUM of an integer count, as an integer: PostgreSQL sums bigints as numeric, which the driver returns
    as Decimal objects that take longer to convert than the query takes to run."""
    return cast(func.sum(column), BigInteger)


def _measures(table: Any, occurrences: Any = None) -> tuple[Any, ...]:
    """The summed columns of every traffic query, in the order ``Rows`` values carry them: released people,
    female, male, unknown, withheld cells, occurrences (rows, or what the caller counts), dwell samples and
    dwell seconds. Only released columns: no read sums a raw count."""
    return (
        _total(table.released_people),
        _total(table.released_female),
        _total(table.released_male),
        _total(table.released_unknown),
        _total(table.withheld),
        func.count() if occurrences is None else occurrences,
        _total(table.released_dwell_samples),
        func.sum(table.released_dwell_seconds),
    )


_WIDTH = 8


def _rows(keys: list[Any], values: list[tuple[Any, ...]]) -> Rows:
    array = np.array(values, dtype=float).reshape(len(values), _WIDTH)
    counts = array[:, :6].astype(np.int64)
    return Rows(
        keys, counts[:, 0], counts[:, 1:4], counts[:, 4], counts[:, 5], array[:, 6].astype(np.int64), array[:, 7]
    )


def series(session: Session, zone_pks: list[int], start: int, end: int, granularity: Granularity, tz: str) -> Rows:
    """Summed released counts of the zones per bucket.

    Keys are UTC epoch starts (hour) or local dates (day/week).
    """
    if granularity != "hour":
        return _days(session, zone_pks, start, end, granularity, tz)
    return hourly_series_by(session, zone_pks, start, end, ())[0]


def hourly_series_by(
    session: Session, zone_pks: list[int], start: int, end: int, keys: Sequence[Any]
) -> tuple[Rows, Rows]:
    """:func:`series` by the hour, and the same cells summed by hour and ``keys`` (columns of the hourly cells) as
    well, from one read: each hour's sums are those of its groups. A caller that needs a finer grouping beside the
    hourly sums (the corrected share: by bundle, cell size and whether the split shows) reads the cells once.
    The groups' keys are ``(hour, *keys)`` tuples, in hour order."""
    h = HourlyRollup
    result = session.execute(
        select(h.hour_start, *keys, *_measures(h))
        .where(h.zone_pk.in_(zone_pks), h.hour_start >= start, h.hour_start < end)
        .group_by(h.hour_start, *keys)
        .order_by(h.hour_start)
    ).all()
    width = 1 + len(keys)
    groups = _rows([tuple(r[:width]) for r in result], [tuple(r[width:]) for r in result])
    hours = np.array([int(r[0]) for r in result], np.int64)
    first = np.flatnonzero(np.r_[True, hours[1:] != hours[:-1]]) if hours.size else np.zeros(0, np.int64)

    def per_hour(column: np.ndarray) -> np.ndarray:
        return np.add.reduceat(column, first, axis=0) if first.size else column[:0]

    return (
        Rows(
            hours[first].tolist(),
            per_hour(groups.people),
            per_hour(groups.parts),
            per_hour(groups.withheld),
            per_hour(groups.occurrences),
            per_hour(groups.dwell_samples),
            per_hour(groups.dwell_seconds),
        ),
        groups,
    )


def _days(session: Session, zone_pks: list[int], start: int, end: int, granularity: Granularity, tz: str) -> Rows:
    """Days whose local start lies in [start, end), each summing its hours before ``end``: whole days from the
    daily rollup, a last day cut short by ``end`` (today, while its hours are not all released) from the
    hourly cells."""
    first, stop = day_range(start, end, tz)
    cut = stop - timedelta(days=1) if stop > first and local_midnight(stop, tz) > end else None
    d = DailyRollup
    result = [
        (row[0], tuple(row[1:]))
        for row in session.execute(
            select(d.day, *_measures(d))
            .where(d.zone_pk.in_(zone_pks), d.day >= first, d.day < (cut or stop))
            .group_by(d.day)
            .order_by(d.day)
        )
    ]
    if cut is not None:
        h = HourlyRollup
        row = session.execute(
            select(*_measures(h)).where(
                h.zone_pk.in_(zone_pks), h.hour_start >= local_midnight(cut, tz), h.hour_start < end
            )
        ).one()
        if row[5]:  # any hourly cell
            result.append((cut, tuple(row)))
    if granularity == "day":
        return _rows([day for day, _ in result], [values for _, values in result])
    weeks: dict[date, list[float]] = defaultdict(lambda: [0.0] * _WIDTH)
    for day, values in result:
        acc = weeks[week_start(day)]
        for i, value in enumerate(values):
            acc[i] += float(value or 0)
    keys = sorted(weeks)
    return _rows(keys, [tuple(weeks[key]) for key in keys])


def series_bucket(granularity: Granularity, tz: str) -> Callable[[int], Any]:
    """The key of the :func:`series` bucket an hour (its UTC start) falls in: the hour itself, or its local day, or
    the Monday of its local week."""

    def bucket(hour_start: int) -> Any:
        if granularity == "hour":
            return hour_start
        day = local_day(hour_start, tz)
        return day if granularity == "day" else week_start(day)

    return bucket


def partly_observed_by_bucket(
    session: Session, zone_pks: list[int], start: int, end: int, granularity: Granularity, tz: str
) -> dict[Any, int]:
    """Zone-hours a camera watched for only part of the hour (footfall.server.rollups.observed) per :func:`series`
    bucket, keyed as its buckets are (days whose local start lies in [start, end))."""
    if granularity != "hour":
        first, _ = day_range(start, end, tz)
        start = max(start, local_midnight(first, tz))
    bucket = series_bucket(granularity, tz)
    return Counter(bucket(hour) for _, hour in partly_observed(session, zone_pks, start, end))


def partly_observed_by_hour_of_week(
    session: Session, zone_pks: list[int], start: int, end: int, tz: str
) -> dict[int, int]:
    """The same per local hour of week, keyed as :func:`by_hour_of_week` keys its rows."""
    return Counter(local_hour_of_week(hour, tz) for _, hour in partly_observed(session, zone_pks, start, end))


def partly_observed_by_zone(session: Session, zone_pks: list[int], start: int, end: int) -> list[int]:
    """The same per zone of ``zone_pks``, in that order."""
    counts = Counter(zone_pk for zone_pk, _ in partly_observed(session, zone_pks, start, end))
    return [counts[pk] for pk in zone_pks]


def partly_observed_by_slot(
    session: Session, slots: Sequence[tuple[int, int]], start: int, end: int, tz: str
) -> dict[tuple[int, int], int]:
    """The same per ad-placement slot of ``slots`` ((zone_pk, local hour of week) pairs, as :func:`ranked_slots`
    keys them), keyed like them, from one read of their zones' hours; slots without such an hour are left out."""
    wanted = set(slots)
    zone_pks = sorted({zone_pk for zone_pk, _ in wanted})
    counts = Counter(
        (zone_pk, local_hour_of_week(hour, tz)) for zone_pk, hour in partly_observed(session, zone_pks, start, end)
    )
    return {slot: count for slot, count in counts.items() if slot in wanted}


def count_rows(session: Session, zone_pks: list[int], start: int, end: int, granularity: Granularity, tz: str) -> int:
    """How many rows a per-zone export of :func:`series` would have, at most (an export checks this before it
    starts): zone × hour cells, or zone × day rows for days and weeks, plus one per zone for a day cut short."""
    if granularity == "hour":
        h = HourlyRollup
        query = select(func.count()).where(h.zone_pk.in_(zone_pks), h.hour_start >= start, h.hour_start < end)
        return int(session.scalar(query) or 0)
    first, stop = day_range(start, end, tz)
    d = DailyRollup
    query = select(func.count()).where(d.zone_pk.in_(zone_pks), d.day >= first, d.day < stop)
    return int(session.scalar(query) or 0) + len(zone_pks)


def totals_by_zone(session: Session, zone_pks: list[int], start: int, end: int) -> Rows:
    """Per-zone released totals over [start, end) from the hourly cells (hour resolution)."""
    h = HourlyRollup
    result = session.execute(
        select(
            h.zone_pk,
            *_measures(h),
        )
        .where(h.zone_pk.in_(zone_pks), h.hour_start >= start, h.hour_start < end)
        .group_by(h.zone_pk)
    ).all()
    found = {r[0]: tuple(r[1:]) for r in result}
    return _rows(list(zone_pks), [found.get(pk, (0,) * _WIDTH) for pk in zone_pks])


def local_offset() -> ColumnElement[int]:
    """An hourly cell's UTC offset in seconds, to the hour, from its UTC start and its stored local hour of week
    alone: the two differ by the offset, which is under half a week, so it is their difference modulo a week. (A
    half-hour offset reads as the hour below it: a cell's local start floored to the hour, which keeps its day.)"""
    h = HourlyRollup
    local_start = cast(h.local_how, BigInteger) * HOUR + MONDAY_EPOCH  # as bigints: PostgreSQL's smallint overflows
    ahead = ((local_start - h.hour_start) % WEEK + WEEK) % WEEK  # the offset, modulo a week
    return case((ahead > WEEK // 2, ahead - WEEK), else_=ahead)


def local_day_number() -> ColumnElement[int]:
    """Days from 1970-01-01 to the local day an hourly cell starts in, by :func:`local_offset` (as stored: a cell
    being re-filed under a new time zone keeps its day until it is, as the daily rollup does)."""
    return (HourlyRollup.hour_start + local_offset()) // DAY


def _local_week() -> ColumnElement[int]:
    """The local week (counted from Monday 1970-01-05, as UTC weeks are) an hourly cell falls in, by
    :func:`local_offset`. Both occurrences of a local hour that happens twice (clocks going back) are in one local
    week; Monday 00:00 in London is in the local week it begins, though before the clocks go forward it is in that
    UTC week and after them in the UTC week before."""
    return (HourlyRollup.hour_start + local_offset() - MONDAY_EPOCH) // WEEK


def by_hour_of_week(session: Session, zone_pks: list[int], start: int, end: int) -> tuple[Rows, np.ndarray]:
    """Released counts per local hour of week (0 = Monday 00:00), summed over the zones, and per hour the zone-weeks
    missing from that sum.

    ``occurrences`` counts the local weeks an agent reported the hour in (a quiet one is a cell of 0 people), so
    ``count / occurrences`` is the mean per week. A local hour that happens twice in a week (clocks going back) is
    one week observed, not two; one the clocks moved into another UTC week is not left out (:func:`_local_week`).

    The zone-weeks missing are the weeks observed times the zones that ever reported the hour in the range, less the
    zone-weeks that did: above 0, one zone's camera was down in a week the others counted, and the sum and its mean
    per week are lower bounds. A zone has one cell of a local hour a week, so its cells are its zone-weeks (counted
    distinct they cost another pass); the hour that happens twice when clocks go back is two cells of one week, which
    may hide a zone's gap in that hour of that week, and never makes one up.
    """
    h = HourlyRollup
    result = session.execute(
        select(
            h.local_how,
            *_measures(h, occurrences=func.count(distinct(_local_week()))),
            func.count(),
            func.count(distinct(h.zone_pk)),
        )
        .where(h.zone_pk.in_(zone_pks), h.hour_start >= start, h.hour_start < end)
        .group_by(h.local_how)
        .order_by(h.local_how)
    ).all()
    rows = _rows([int(r[0]) for r in result], [tuple(r[1 : 1 + _WIDTH]) for r in result])
    cells = np.array([int(r[1 + _WIDTH]) for r in result], np.int64)
    zones = np.array([int(r[2 + _WIDTH]) for r in result], np.int64)
    return rows, np.maximum(0, rows.occurrences * zones - cells)


@dataclass
class RankedSlots:
    # (zone_pk, local_how, people, female, male, unknown, withheld, hours observed), best first
    rows: list[tuple[Any, ...]]
    suppressed: int  # slots left out because every cell of theirs was withheld


def ranked_slots(
    session: Session,
    zone_pks: list[int],
    start: int,
    end: int,
    *,
    audience: str,
    sort: str,
    hours_of_week: list[int],
    min_weeks: int,
    limit: int,
) -> RankedSlots:
    """Ranks zone × local-hour-of-week slots inside the database and returns only the top ``limit``.

    A year of 200 zones is 1.75 M hourly rows and 33,600 slots: aggregating, scoring and sorting in SQL keeps
    the response fast. A slot sums the released values of its hourly cells (footfall.server.release), so
    whatever it shows is already safe to show; a slot whose every cell was withheld has nothing to show and is
    left out (counted as suppressed).
    """
    from sqlalchemy import and_

    if is_postgres(session):
        # The query now aggregates ~100k rows: starting parallel workers costs more than it saves, and on a
        # busy server they wait for cores (measured: 95 ms serial vs 270+ ms with two workers on 2 cores).
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    hour_filter = hours_of_week if len(set(hours_of_week)) < 168 else None
    # Hourly rows at the range's ragged ends plus two running-total rows per slot for the whole weeks
    # (footfall.server.rollups.slots): about 70k rows for any range instead of 200 zones × 168 × weeks.
    parts = slot_parts(zone_pks, start, end, hour_filter).subquery()
    hours = func.sum(parts.c.n)
    grouped = (
        select(
            parts.c.zone_pk.label("zone_pk"),
            parts.c.how.label("how"),
            # As floats: PostgreSQL sums bigints as numeric, whose arithmetic is many times slower.
            func.sum(parts.c.p).label("p"),
            func.sum(parts.c.f).label("f"),
            func.sum(parts.c.m).label("m"),
            func.sum(parts.c.u).label("u"),
            cast(func.sum(parts.c.w), BigInteger).label("withheld"),
            cast(hours, BigInteger).label("w"),
        )
        .group_by(parts.c.zone_pk, parts.c.how)
        .having(hours >= min_weeks)
        .subquery()
    )
    hidden = case((and_(grouped.c.p == 0, grouped.c.withheld > 0), 1), else_=0)
    mean_people = grouped.c.p * literal(1.0) / grouped.c.w
    if audience == "all":
        expected = mean_people
        low: ColumnElement[float | Decimal] = literal(0.0)
    else:
        target = grouped.c.f if audience == "female" else grouped.c.m
        n = func.nullif(grouped.c.f + grouped.c.m, 0) * literal(1.0)
        p = target / n
        z2 = Z95 * Z95
        low = func.coalesce(
            (p + z2 / (2 * n) - Z95 * func.sqrt(p * (1 - p) / n + z2 / (4 * n * n))) / (1 + z2 / n), 0.0
        )
        expected = func.coalesce(mean_people * p, 0.0)
    scored = select(
        grouped.c.zone_pk,
        grouped.c.how,
        grouped.c.p,
        grouped.c.f,
        grouped.c.m,
        grouped.c.u,
        grouped.c.withheld,
        grouped.c.w,
        hidden.label("hidden"),
        expected.label("expected"),
        low.label("low"),
        func.sum(hidden).over().label("suppressed"),
    ).subquery()
    first, second = (scored.c.low, scored.c.expected) if sort == "share" else (scored.c.expected, scored.c.low)
    result = session.execute(
        select(scored)
        .order_by(scored.c.hidden, first.desc(), second.desc(), scored.c.zone_pk, scored.c.how)
        .limit(limit)
    ).all()
    suppressed = int(result[0].suppressed) if result else 0
    rows = [
        (r.zone_pk, int(r.how), int(r.p), int(r.f), int(r.m), int(r.u), int(r.withheld), int(r.w))
        for r in result
        if not r.hidden
    ]
    return RankedSlots(rows, suppressed)


def hourly_cells(session: Session, zone_pks: list[int], start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(zone_pk, hour_start, released people, withheld) of every hourly cell of the zones in [start, end), oldest
    first: the visitors API works out running sums (occupancy) from them, so it needs them one by one."""
    if not zone_pks:
        return []
    h = HourlyRollup
    result = session.execute(
        select(h.zone_pk, h.hour_start, h.released_people, h.withheld)
        .where(h.zone_pk.in_(zone_pks), h.hour_start >= start, h.hour_start < end)
        .order_by(h.hour_start, h.zone_pk)
    )
    return [(int(pk), int(hour), int(people), int(withheld)) for pk, hour, people, withheld in result]


@dataclass
class AgeRows:
    """Sums of released age cells (footfall.server.release.release_age_cells) per bucket, beside the released
    people and gender counts of the same hourly cells.

    ``bands[i, g, b]`` sums the released people of gender ``GENDERS[g]`` and age decision ``AGE_DECISIONS[b]``;
    ``genders[i, g]`` the released count of that gender, so ``genders - bands.sum(axis=2)`` are people of a
    released gender whose bands were withheld, and ``people - genders.sum(axis=1)`` people whose gender split was
    withheld (unsplit)."""

    keys: list[Any]
    people: np.ndarray  # (n,)
    genders: np.ndarray  # (n, 3)
    bands: np.ndarray  # (n, 3, len(AGE_DECISIONS))
    withheld: np.ndarray  # (n,) withheld hourly cells


def age_series(
    session: Session, zone_pks: list[int], start: int, end: int, granularity: Granularity, tz: str
) -> AgeRows:
    """Released age cells of the zones summed per bucket, keyed as :func:`series` keys its buckets: UTC hour
    starts, or local dates for days and weeks (days whose local start lies in [start, end), weeks by their
    Monday). Read from the hourly cells at every granularity: a day is the sum of its released hours."""
    if granularity != "hour":
        first, _ = day_range(start, end, tz)
        start = max(start, local_midnight(first, tz))
    bucket = series_bucket(granularity, tz)
    h = HourlyRollup
    hourly = session.execute(
        select(
            h.hour_start,
            _total(h.released_people),
            _total(h.released_female),
            _total(h.released_male),
            _total(h.released_unknown),
            _total(h.withheld),
        )
        .where(h.zone_pk.in_(zone_pks), h.hour_start >= start, h.hour_start < end)
        .group_by(h.hour_start)
    ).all()
    a = HourlyAge
    cells = session.execute(
        select(a.hour_start, a.gender, a.band, _total(a.released_people))
        .where(a.zone_pk.in_(zone_pks), a.hour_start >= start, a.hour_start < end, a.released_people > 0)
        .group_by(a.hour_start, a.gender, a.band)
    ).all()
    keys = sorted({bucket(int(row[0])) for row in hourly})
    index = {key: i for i, key in enumerate(keys)}
    n = len(keys)
    people, genders = np.zeros(n, np.int64), np.zeros((n, 3), np.int64)
    withheld, bands = np.zeros(n, np.int64), np.zeros((n, 3, len(AGE_DECISIONS)), np.int64)
    for hour_start, released, female, male, unknown, hidden in hourly:
        i = index[bucket(int(hour_start))]
        people[i] += int(released or 0)
        genders[i] += (int(female or 0), int(male or 0), int(unknown or 0))
        withheld[i] += int(hidden or 0)
    for hour_start, gender, band, released in cells:
        bands[index[bucket(int(hour_start))], GENDERS.index(gender), AGE_DECISIONS.index(band)] += int(released)
    return AgeRows(keys, people, genders, bands, withheld)


@dataclass
class AgeSlot:
    """One zone × local-hour-of-week slot of an age audience: sums of released values only."""

    zone_pk: int
    how: int  # local hour of the week
    people: int  # released people
    classified: int  # released female + male (the cells that released their split)
    gender_people: int  # released people of the audience's gender(s)
    banded: int  # of those, the people in a released band (sum of their released cells of bands 0-12 ... 65+)
    age_unknown: int  # of those, the people in a released cell of band 'unknown' (age not estimated, or undecided)
    audience: int  # released people of the audience's gender(s) × band(s)
    unsplit: int  # released people whose gender split was withheld
    withheld: int  # withheld zone-hours
    weeks: int  # zone-hours observed

    @property
    def bands_withheld(self) -> int:
        """People of the audience's gender(s) whose bands were withheld (released gender count minus bands)."""
        return self.gender_people - self.banded - self.age_unknown

    @property
    def lower_bound(self) -> bool:
        """Whether people of the audience may be left out: withheld hours, splits or bands, or people of its
        gender(s) of unknown age (any of whom may be of the audience's bands)."""
        return self.withheld > 0 or self.unsplit > 0 or self.bands_withheld > 0 or self.age_unknown > 0


@dataclass
class AgeSlots:
    rows: list[AgeSlot]  # unordered
    suppressed: int  # slots left out because every cell of theirs was withheld


def ranked_age_slots(
    session: Session,
    zone_pks: list[int],
    start: int,
    end: int,
    *,
    genders: Sequence[str],
    bands: Sequence[str],
    hours_of_week: list[int],
    min_weeks: int,
) -> AgeSlots:
    """Zone × local-hour-of-week slots with the released people of a gender × band audience: sums of the
    released age cells of their hourly cells (footfall.server.release), so whatever a slot shows is already safe
    to show, beside the released count of the audience's gender(s) and the part of it whose bands were released
    (what a share of the audience is over). Slots seen in fewer than ``min_weeks`` hours, or whose every cell was
    withheld, are left out (the latter counted as suppressed). Unordered: the caller ranks them."""
    if not zone_pks:
        return AgeSlots([], 0)
    h, a = HourlyRollup, HourlyAge
    hour_filter = set(hours_of_week) if len(set(hours_of_week)) < 168 else None
    where = [h.zone_pk.in_(zone_pks), h.hour_start >= start, h.hour_start < end]
    if hour_filter is not None:
        where.append(h.local_how.in_(sorted(hour_filter)))
    # The slots' released people, split and weeks observed as the gender ranking reads them: whole weeks from the
    # running totals, the ragged ends from the hourly cells (footfall.server.rollups.slot_parts). Counting the
    # distinct local weeks of every hourly cell instead sorted all of them: 430 of 730 ms on PostgreSQL for a
    # 90-day ranking of 200 zones.
    parts = slot_parts(zone_pks, start, end, sorted(hour_filter) if hour_filter is not None else None).subquery()
    slots = session.execute(
        select(
            parts.c.zone_pk,
            parts.c.how,
            func.sum(parts.c.p),
            func.sum(parts.c.f),
            func.sum(parts.c.m),
            func.sum(parts.c.u),
            func.sum(parts.c.w),
            func.sum(parts.c.n),
        ).group_by(parts.c.zone_pk, parts.c.how)
    ).all()
    # The audience's band cells summed per hourly cell first, then per slot through the hourly cells' local hours.
    # Joined directly, SQLite looked up each hourly cell's band cells by the range of hours rather than by its hour
    # (every band cell of the zone's range, for every hourly cell): women 25-34 over 200 zones and 90 days ran past
    # the 30 s query limit, where this takes 1.8 s (bench/server_bench.py --quick; 1.5 s on PostgreSQL).
    per_cell = (
        select(
            a.zone_pk,
            a.hour_start,
            _total(case((a.band != AGE_UNKNOWN, a.released_people), else_=0)).label("every"),
            _total(case((a.band == AGE_UNKNOWN, a.released_people), else_=0)).label("unknown"),
            _total(case((a.band.in_(bands), a.released_people), else_=0)).label("wanted"),
        )
        .where(
            a.zone_pk.in_(zone_pks),
            a.hour_start >= start,
            a.hour_start < end,
            a.gender.in_(genders),
            a.released_people > 0,  # most band cells release nothing: they add 0
        )
        .group_by(a.zone_pk, a.hour_start)
        .subquery()
    )
    banded: dict[tuple[int, int], tuple[int, int, int]] = {
        (int(zone_pk), int(how)): (int(every or 0), int(unknown or 0), int(wanted or 0))
        for zone_pk, how, every, unknown, wanted in session.execute(
            select(
                h.zone_pk,
                h.local_how,
                _total(per_cell.c.every),
                _total(per_cell.c.unknown),
                _total(per_cell.c.wanted),
            )
            .join(per_cell, (per_cell.c.zone_pk == h.zone_pk) & (per_cell.c.hour_start == h.hour_start))
            .where(*where)
            .group_by(h.zone_pk, h.local_how)
        )
    }
    rows, suppressed = [], 0
    for zone_pk, how, *sums in slots:
        people, female, male, unknown, withheld, hours = (int(value or 0) for value in sums)  # floats of integers
        if hours < min_weeks:
            continue
        if not people and withheld:
            suppressed += 1
            continue
        key = (int(zone_pk), int(how))
        every, unknown_age, wanted = banded.get(key, (0, 0, 0))
        released = {"female": female, "male": male, "unknown": unknown}
        rows.append(
            AgeSlot(
                zone_pk=key[0],
                how=key[1],
                people=people,
                classified=female + male,
                gender_people=sum(released[g] for g in genders),
                banded=every,
                age_unknown=unknown_age,
                audience=wanted,
                unsplit=people - female - male - unknown,
                withheld=withheld,
                weeks=hours,
            )
        )
    return AgeSlots(rows, suppressed)
