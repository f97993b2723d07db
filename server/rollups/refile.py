"""A site's time-zone change: its stored hours are re-filed under their new local day and hour of week, one
zone per transaction, so ingest goes on meanwhile; a change a stopped server left half done is finished on
start."""

from __future__ import annotations

from datetime import datetime

from footfall.server.db import Database
from footfall.server.localtime import HOUR, MONDAY_EPOCH, offset_seconds, zone
from footfall.server.rollups.cells import rebuild_daily
from footfall.server.rollups.slots import rebuild_slots
from footfall.server.tables import HourlyRollup, Meta, Site, Zone
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

REFILE_PREFIX = "refile:"  # meta: a site whose hours are being re-filed under a new time zone → that zone


def start_refile(session: Session, site_id: str, tz: str) -> None:
    """Sets a site's time zone and records that its hours must be re-filed, in the caller's transaction; the
    record survives a crash, and the server finishes the job on start (:func:`finish_refiles`)."""
    site = session.get(Site, site_id)
    if site is None:
        raise KeyError(site_id)
    site.timezone = tz
    session.merge(Meta(key=REFILE_PREFIX + site_id, value=tz))


def pending_refiles(session: Session) -> dict[str, str]:
    rows = session.execute(select(Meta.key, Meta.value).where(Meta.key.startswith(REFILE_PREFIX)))
    return {key.removeprefix(REFILE_PREFIX): tz for key, tz in rows}


def refile_site(db: Database, site_id: str, tz: str) -> int:
    """Re-files every hour of a site under its new time zone (set by :func:`start_refile`): hour of week,
    daily sums and slot running totals, one zone per transaction, so ingest waits for one zone at most and
    not for the whole site. Aggregates stored meanwhile already use the new zone, and a zone's re-filing
    recomputes everything from its hourly cells, so those are counted once either way. Returns the hourly
    cells re-filed."""
    h = HourlyRollup.__table__
    with db.read() as session:
        zone_pks = list(session.scalars(select(Zone.id).where(Zone.site_id == site_id).order_by(Zone.id)))
        low, high = session.execute(
            select(func.min(h.c.hour_start), func.max(h.c.hour_start)).where(h.c.zone_pk.in_(zone_pks))
        ).one()
    # The time zone's offsets over the site's stored hours, worked out once for all its zones. Hours stored
    # meanwhile are filed under the new zone by ingest already.
    stretches = _offset_stretches(int(low), int(high) + HOUR, tz) if low is not None else []
    cells = 0
    for zone_pk in zone_pks:
        cells += refile_zone(db, zone_pk, tz, stretches)
    with db.write() as session:
        if pending_refiles(session).get(site_id) == tz:  # not if a newer change started meanwhile
            session.execute(delete(Meta).where(Meta.key == REFILE_PREFIX + site_id))
    return cells


def finish_refiles(db: Database) -> list[str]:
    """Finishes time-zone changes a stopped server left half done; returns their sites."""
    with db.read() as session:
        pending = pending_refiles(session)
    for site_id, tz in sorted(pending.items()):
        refile_site(db, site_id, tz)
    return sorted(pending)


def refile_zone(db: Database, zone_pk: int, tz: str, stretches: list[tuple[int, int, int]]) -> int:
    """One zone's part of :func:`refile_site`, in its own transaction: hours of week in SQL, one UPDATE per
    stretch of constant UTC offset (``stretches``, a few a year), then the zone's daily sums and slot running
    totals."""
    h = HourlyRollup.__table__
    with db.write() as session:
        count = session.scalar(select(func.count()).where(h.c.zone_pk == zone_pk)) or 0
        for start, stop, offset in stretches:
            session.execute(
                update(h)
                .where(h.c.zone_pk == zone_pk, h.c.hour_start >= start, h.c.hour_start < stop)
                .values(local_how=((h.c.hour_start + (offset - MONDAY_EPOCH)) // HOUR) % 168)
            )
        rebuild_daily(session, [zone_pk], tz)
        rebuild_slots(session, [zone_pk])
    return int(count)


def _offset_stretches(start: int, stop: int, tz: str) -> list[tuple[int, int, int]]:
    """[start, stop) cut where ``tz``'s UTC offset changes, each piece with its offset in seconds."""
    place = zone(tz)
    stretches: list[tuple[int, int, int]] = []
    for hour in range(start - start % HOUR, stop, HOUR):
        offset = offset_seconds(datetime.fromtimestamp(hour, place))
        if stretches and stretches[-1][2] == offset:
            stretches[-1] = (stretches[-1][0], hour + HOUR, offset)
        else:
            stretches.append((hour, hour + HOUR, offset))
    return stretches
