"""Rollup maintenance beyond ingest: rebuilding local-calendar values after a site's time zone changes,
and checking that rollups equal the raw buckets (and the slot running totals the hourly rollups) they
summarise."""

from __future__ import annotations

from collections import defaultdict

from footfall.server.localtime import local_day, local_hour_of_week, utc_week
from footfall.server.slots import rebuild_slots
from footfall.server.tables import Bucket, DailyRollup, HourlyRollup, SlotCumulative, SlotSpan, Zone
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

COUNTS = ("people", "female", "male", "unknown", "dwell_samples", "dwell_seconds")


def rebuild_local_calendar(session: Session, site_id: str, tz: str) -> int:
    """Recomputes hour-of-week, daily and running slot rollups of a site from its hourly rollups (kept
    forever)."""
    zone_pks = list(session.scalars(select(Zone.id).where(Zone.site_id == site_id)))
    if not zone_pks:
        return 0
    h = HourlyRollup
    rows = session.execute(
        select(h.zone_pk, h.hour_start, *(h.__table__.c[c] for c in COUNTS)).where(h.zone_pk.in_(zone_pks))
    ).all()
    if rows:
        session.execute(
            update(h.__table__)
            .where(h.__table__.c.zone_pk == bindparam("z"), h.__table__.c.hour_start == bindparam("h"))
            .values(local_how=bindparam("how")),
            [{"z": r[0], "h": r[1], "how": local_hour_of_week(r[1], tz)} for r in rows],
        )
    daily: dict[tuple[int, object], list[float]] = defaultdict(lambda: [0.0] * len(COUNTS))
    for row in rows:
        acc = daily[(row[0], local_day(row[1], tz))]
        for i, value in enumerate(row[2:]):
            acc[i] += value
    session.execute(delete(DailyRollup).where(DailyRollup.zone_pk.in_(zone_pks)))
    if daily:
        session.execute(
            DailyRollup.__table__.insert(),
            [
                {
                    "zone_pk": z,
                    "day": d,
                    **{c: (v if c == "dwell_seconds" else int(v)) for c, v in zip(COUNTS, acc, strict=True)},
                }
                for (z, d), acc in daily.items()
            ],
        )
    rebuild_slots(session, zone_pks)  # the running totals per local hour of week moved with the hours
    return len(rows)


def raw_vs_hourly(session: Session, since: int = 0) -> list[tuple]:
    """Hours whose rollup differs from the sum of its raw buckets (empty when consistent)."""
    hour = Bucket.bucket_start - Bucket.bucket_start % 3600
    raw = {
        (r[0], int(r[1])): tuple(int(v) for v in r[2:])
        for r in session.execute(
            select(
                Bucket.zone_pk,
                hour,
                func.sum(Bucket.people),
                func.sum(Bucket.female),
                func.sum(Bucket.male),
                func.sum(Bucket.unknown),
            )
            .where(Bucket.bucket_start >= since)
            .group_by(Bucket.zone_pk, hour)
        )
    }
    rolled = {
        (r[0], int(r[1])): tuple(int(v) for v in r[2:])
        for r in session.execute(
            select(
                HourlyRollup.zone_pk,
                HourlyRollup.hour_start,
                HourlyRollup.people,
                HourlyRollup.female,
                HourlyRollup.male,
                HourlyRollup.unknown,
            ).where(HourlyRollup.hour_start >= since)
        )
    }
    return [
        (key, raw.get(key), rolled.get(key))
        for key in raw.keys() | rolled.keys()
        if raw.get(key, (0, 0, 0, 0)) != rolled.get(key, (0, 0, 0, 0))
    ]


def slots_vs_hourly(session: Session) -> list[tuple]:
    """Slot running totals that differ from the hourly rollups they summarise (empty when consistent), and
    zones whose rows are not dense over their span; the check behind the slot rollup's exactness tests."""
    h = HourlyRollup
    per_week: dict[int, dict[tuple[int, int], list[int]]] = defaultdict(dict)
    for zone_pk, hour_start, how, female, male, unknown in session.execute(
        select(h.zone_pk, h.hour_start, h.local_how, h.female, h.male, h.unknown)
    ):
        cell = per_week[zone_pk].setdefault((utc_week(hour_start), how), [0, 0, 0, 0])
        for i, value in enumerate((female, male, unknown, 1)):
            cell[i] += value
    spans = {row[0]: (row[1], row[2]) for row in session.execute(select(SlotSpan.__table__))}
    stored: dict[int, dict[tuple[int, int], tuple[int, ...]]] = defaultdict(dict)
    c = SlotCumulative.__table__
    for zone_pk, week, how, *values in session.execute(
        select(c.c.zone_pk, c.c.week, c.c.local_how, c.c.female, c.c.male, c.c.unknown, c.c.hours)
    ):
        stored[zone_pk][(week, how)] = tuple(values)
    problems: list[tuple] = []
    for zone_pk in per_week.keys() | stored.keys() | spans.keys():
        weeks = [week for week, _ in per_week.get(zone_pk, {})]
        if zone_pk not in spans:
            problems.append((zone_pk, "no span", None))
            continue
        first, last = spans[zone_pk]
        if weeks and (min(weeks) < first or max(weeks) > last):
            problems.append((zone_pk, "span", (first, last, min(weeks), max(weeks))))
        if len(stored[zone_pk]) != (last - first + 1) * 168:
            problems.append((zone_pk, "not dense", len(stored[zone_pk])))
        running = {how: [0, 0, 0, 0] for how in range(168)}
        for week in range(first, last + 1):
            for how in range(168):
                for i, value in enumerate(per_week[zone_pk].get((week, how), (0, 0, 0, 0))):
                    running[how][i] += value
                if stored[zone_pk].get((week, how)) != tuple(running[how]):
                    found = stored[zone_pk].get((week, how))
                    problems.append(((zone_pk, week, how), tuple(running[how]), found))
    return problems
