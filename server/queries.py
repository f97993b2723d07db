"""Reads behind the traffic API. Hours, days, weeks and rankings come from the rollups; minutes from raw."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import numpy as np
from footfall.server.localtime import local_midnight, week_start
from footfall.server.slots import slot_parts
from footfall.server.stats import Z95
from footfall.server.tables import Bucket, DailyRollup, HourlyRollup
from sqlalchemy import BigInteger, cast, distinct, func, select, text
from sqlalchemy.orm import Session

Granularity = Literal["minute", "hour", "day", "week"]
GENDERS = ("female", "male", "unknown")


@dataclass
class Rows:
    """Counts keyed by something (a time, a zone, an hour of week): parts are female/male/unknown."""

    keys: list
    parts: np.ndarray  # (n, 3) int64
    occurrences: np.ndarray  # (n,) how many hours of data stand behind each row (for means)
    dwell_samples: np.ndarray
    dwell_seconds: np.ndarray


def _total(column: Any) -> Any:
    """SUM of an integer count, as an integer: PostgreSQL sums bigints as numeric, which the driver returns
    as Decimal objects that take longer to convert than the query takes to run."""
    return cast(func.sum(column), BigInteger)


def _measures(table: Any, occurrences: Any = None) -> tuple[Any, ...]:
    """The summed columns of every traffic query, in the order ``Rows`` values carry them:
    female, male, unknown, occurrences (rows, or what the caller counts), dwell samples, dwell seconds."""
    return (
        _total(table.female),
        _total(table.male),
        _total(table.unknown),
        func.count() if occurrences is None else occurrences,
        _total(table.dwell_samples),
        func.sum(table.dwell_seconds),
    )


def _rows(keys: list, values: list[tuple]) -> Rows:
    array = np.array(values, dtype=float).reshape(len(values), 6)
    return Rows(
        keys,
        array[:, 0:3].astype(np.int64),
        array[:, 3].astype(np.int64),
        array[:, 4].astype(np.int64),
        array[:, 5],
    )


def series(session: Session, zone_pks: list[int], start: int, end: int, granularity: Granularity, tz: str) -> Rows:
    """Summed counts of the zones per bucket.

    Keys are UTC epoch starts (minute/hour) or local dates (day/week).
    """
    if granularity == "minute":
        minute = Bucket.bucket_start - Bucket.bucket_start % 60
        query = (
            select(
                minute,
                *_measures(Bucket),
            )
            .where(Bucket.zone_pk.in_(zone_pks), Bucket.bucket_start >= start, Bucket.bucket_start < end)
            .group_by(minute)
            .order_by(minute)
        )
    elif granularity == "hour":
        h = HourlyRollup
        query = (
            select(
                h.hour_start,
                *_measures(h),
            )
            .where(h.zone_pk.in_(zone_pks), h.hour_start >= start, h.hour_start < end)
            .group_by(h.hour_start)
            .order_by(h.hour_start)
        )
    else:
        return _days(session, zone_pks, start, end, granularity, tz)
    result = session.execute(query).all()
    return _rows([int(r[0]) for r in result], [tuple(r[1:]) for r in result])


def _days(session: Session, zone_pks: list[int], start: int, end: int, granularity: Granularity, tz: str) -> Rows:
    from footfall.server.localtime import day_range

    first, stop = day_range(start, end, tz)
    d = DailyRollup
    result = session.execute(
        select(
            d.day,
            *_measures(d),
        )
        .where(d.zone_pk.in_(zone_pks), d.day >= first, d.day < stop)
        .group_by(d.day)
        .order_by(d.day)
    ).all()
    if granularity == "day":
        return _rows([r[0] for r in result], [tuple(r[1:]) for r in result])
    weeks: dict[date, list[float]] = defaultdict(lambda: [0.0] * 6)
    for row in result:
        acc = weeks[week_start(row[0])]
        for i, value in enumerate(row[1:]):
            acc[i] += float(value)
    keys = sorted(weeks)
    return _rows(keys, [tuple(weeks[key]) for key in keys])


def key_start(key: int | date, tz: str) -> int:
    return key if isinstance(key, int) else local_midnight(key, tz)


def totals_by_zone(session: Session, zone_pks: list[int], start: int, end: int) -> Rows:
    """Per-zone totals over [start, end) from the hourly rollup (hour resolution)."""
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
    return _rows(list(zone_pks), [found.get(pk, (0, 0, 0, 0, 0, 0.0)) for pk in zone_pks])


def by_hour_of_week(session: Session, zone_pks: list[int], start: int, end: int) -> Rows:
    """Counts per local hour of week (0 = Monday 00:00), summed over the zones.

    ``occurrences`` counts the distinct hours with data, so ``count / occurrences`` is the mean per week.
    """
    h = HourlyRollup
    result = session.execute(
        select(
            h.local_how,
            *_measures(h, occurrences=func.count(distinct(h.hour_start))),
        )
        .where(h.zone_pk.in_(zone_pks), h.hour_start >= start, h.hour_start < end)
        .group_by(h.local_how)
        .order_by(h.local_how)
    ).all()
    return _rows([int(r[0]) for r in result], [tuple(r[1:]) for r in result])


@dataclass
class RankedSlots:
    rows: list[tuple]  # (zone_pk, local_how, female, male, unknown, hours observed), best first
    suppressed: int  # slots left out because a count of theirs is below k


def ranked_slots(
    session: Session,
    zone_pks: list[int],
    start: int,
    end: int,
    *,
    audience: str,
    sort: str,
    k: int,
    hours_of_week: list[int],
    min_weeks: int,
    limit: int,
) -> RankedSlots:
    """Ranks zone × local-hour-of-week slots inside the database and returns only the top ``limit``.

    A year of 200 zones is 1.75 M hourly rows and 33,600 slots: aggregating, scoring and sorting in SQL keeps
    the response fast. A slot reports its people, classified people and target count, from which female,
    male and unknown follow; so a slot is left out (counted as suppressed) when any of those counts or its
    total is from 1 to k-1. That is exactly the rows-only rule of footfall.server.privacy: a row with a
    primary suppression always ends with hidden cells, and a slot is never shown in part.
    """
    from sqlalchemy import and_, case, literal, or_

    if session.get_bind().dialect.name == "postgresql":
        # The query now aggregates ~100k rows: starting parallel workers costs more than it saves, and on a
        # busy server they wait for cores (measured: 95 ms serial vs 270+ ms with two workers on 2 cores).
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    hour_filter = hours_of_week if len(set(hours_of_week)) < 168 else None
    # Hourly rows at the range's ragged ends plus two running-total rows per slot for the whole weeks
    # (footfall.server.slots): about 70k rows for any range instead of 200 zones × 168 × weeks.
    parts = slot_parts(zone_pks, start, end, hour_filter).subquery()
    hours = func.sum(parts.c.n)
    grouped = (
        select(
            parts.c.zone_pk.label("zone_pk"),
            parts.c.how.label("how"),
            # As floats: PostgreSQL sums bigints as numeric, whose arithmetic is many times slower.
            func.sum(parts.c.f).label("f"),
            func.sum(parts.c.m).label("m"),
            func.sum(parts.c.u).label("u"),
            cast(hours, BigInteger).label("w"),
        )
        .group_by(parts.c.zone_pk, parts.c.how)
        .having(hours >= min_weeks)
        .subquery()
    )
    people = grouped.c.f + grouped.c.m + grouped.c.u

    def small(value):  # type: ignore[no-untyped-def]
        return and_(value >= 1, value < k)

    hidden = case((or_(small(grouped.c.f), small(grouped.c.m), small(grouped.c.u), small(people)), 1), else_=0)
    mean_people = people * literal(1.0) / grouped.c.w
    if audience == "all":
        expected = mean_people
        low = literal(0.0)
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
        grouped.c.f,
        grouped.c.m,
        grouped.c.u,
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
    rows = [(r.zone_pk, int(r.how), int(r.f), int(r.m), int(r.u), int(r.w)) for r in result if not r.hidden]
    return RankedSlots(rows, suppressed)
