"""Rollup maintenance beyond ingest: rebuilding local-calendar values after a site's time zone changes,
and checking that rollups equal the raw buckets they summarise."""

from __future__ import annotations

from collections import defaultdict

from footfall.server.localtime import local_day, local_hour_of_week
from footfall.server.tables import Bucket, DailyRollup, HourlyRollup, Zone
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

COUNTS = ("people", "female", "male", "unknown", "dwell_samples", "dwell_seconds")


def rebuild_local_calendar(session: Session, site_id: str, tz: str) -> int:
    """Recomputes hour-of-week and daily rollups of a site from its hourly rollups (kept forever)."""
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
