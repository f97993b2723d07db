"""Which zone-hours were watched for only part of the hour, from the seconds each camera reported of them.

An agent sends every zone of a running camera a bucket each period (60 s by default), quiet ones too, so the
lengths of a camera's raw buckets in an hour are how much of that hour it watched. A camera that ran for part of it
(a reboot, a lost stream, an agent started at 10:23) reported less than 3600 s, and the hour's people are a lower
bound of who passed: an hour read beside full ones looks quieter than it was.

A zone-hour is **partly observed** when a camera that reported it reported less than the whole hour: with several
cameras on one zone (a wide door), one camera's gap is people missed whatever the others saw. The resolution is the
agent's bucket (a camera that watched a few seconds of a minute reported that minute). A camera replaced by another
of a new id within the hour makes the hour partly observed too, as neither watched all of it; so does one whose
buckets of two lengths overlap (an agent restarted with another ``bucket_seconds`` sends a 10:00 bucket of an hour
beside its 10:00 minute): its seconds pass 3600, and which minutes it watched is not known. An hour no camera
reported at all is no cell, not a partly observed one (``hours_observed`` counts the cells).
"""

from __future__ import annotations

import time

from footfall.server.localtime import HOUR, hour_floor
from footfall.server.sql import insert_for
from footfall.server.tables import Bucket, ObservedSeconds
from sqlalchemy import func, literal_column, select
from sqlalchemy.orm import Session

# A camera's row of an hour it did not report exactly whole: less (it was off for part of it), or more (buckets of
# two lengths overlap: an agent restarted with another bucket_seconds, and which minutes it watched is unknown).
# The constant written out, as the partial index that finds these rows says it (a bound parameter would keep SQLite
# from using the index).
_PART_HOUR = ObservedSeconds.seconds != literal_column(str(HOUR))
# (zone_pk, UTC hour start, agent id, camera id) → change in seconds reported
ObservedDeltas = dict[tuple[int, int, str, str], int]


def apply_observed_deltas(session: Session, deltas: ObservedDeltas) -> None:
    """Adds ``deltas`` to ``rollup_observed`` in the caller's transaction (ingest's: a bucket sent again adds
    nothing, one sent again with another length the difference)."""
    changed = sorted((key, seconds) for key, seconds in deltas.items() if seconds)
    if not changed:
        return
    table = ObservedSeconds.__table__
    statement = insert_for(session)(table)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["zone_pk", "hour_start", "agent_id", "camera_id"],
            set_={"seconds": table.c.seconds + statement.excluded.seconds},
        ),
        [{"zone_pk": z, "hour_start": h, "agent_id": a, "camera_id": c, "seconds": s} for (z, h, a, c), s in changed],
    )


def partly_observed(
    session: Session, zone_pks: list[int], start: int, end: int, now: float | None = None
) -> list[tuple[int, int]]:
    """(zone_pk, UTC hour start) of the zones' hours in [start, end) that a camera did not report exactly whole, oldest
    first. The hour in progress at ``now`` (a server that answers it: the demo) is not over, so not among them."""
    end = min(end, hour_floor(int(time.time() if now is None else now)))
    if not zone_pks or end <= start:
        return []
    o = ObservedSeconds
    rows = session.execute(
        select(o.zone_pk, o.hour_start)
        .where(o.zone_pk.in_(zone_pks), o.hour_start >= start, o.hour_start < end, _PART_HOUR)
        .group_by(o.zone_pk, o.hour_start)
        .order_by(o.hour_start, o.zone_pk)
    )
    return [(int(zone_pk), int(hour)) for zone_pk, hour in rows]


def raw_vs_observed(session: Session, since: int = 0) -> list[tuple[object, ...]]:
    """(zone, hour, agent, camera) whose seconds in ``rollup_observed`` differ from the lengths of their raw buckets
    (empty when consistent). Raw buckets before ``since`` may have been purged by retention; pass the watermark."""
    hour = Bucket.bucket_start - Bucket.bucket_start % HOUR
    raw = {
        (int(zone_pk), int(start), agent_id, camera_id): int(seconds)
        for zone_pk, start, agent_id, camera_id, seconds in session.execute(
            select(Bucket.zone_pk, hour, Bucket.agent_id, Bucket.camera_id, func.sum(Bucket.bucket_seconds))
            .where(Bucket.bucket_start >= since)
            .group_by(Bucket.zone_pk, hour, Bucket.agent_id, Bucket.camera_id)
        )
    }
    o = ObservedSeconds
    kept = {
        (int(zone_pk), int(start), agent_id, camera_id): int(seconds)
        for zone_pk, start, agent_id, camera_id, seconds in session.execute(
            select(o.zone_pk, o.hour_start, o.agent_id, o.camera_id, o.seconds).where(o.hour_start >= since)
        )
    }
    return [
        (key, raw.get(key), kept.get(key)) for key in raw.keys() | kept.keys() if raw.get(key, 0) != kept.get(key, 0)
    ]
