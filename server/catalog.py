"""Sites and zones: looked up by their wire identifiers, created on first sight of an aggregate."""

from __future__ import annotations

import time

from footfall.server.sql import insert_for, locked
from footfall.server.tables import Site, Zone
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session


def ensure_zones(
    session: Session, keys: set[tuple[str, str]], default_tz: str
) -> dict[tuple[str, str], tuple[int, str]]:
    """Maps each (site_id, zone_id) to (zone primary key, site time zone), creating what is missing.

    Creation uses INSERT .. ON CONFLICT DO NOTHING so concurrent replicas never collide.
    """
    if not keys:
        return {}
    found = _lookup(session, keys)
    missing = keys - found.keys()
    if missing:
        now = int(time.time())
        insert = insert_for(session)
        sites = sorted({site for site, _ in missing})
        session.execute(
            insert(Site)
            .values([{"site_id": s, "name": s, "timezone": default_tz, "created_at": now} for s in sites])
            .on_conflict_do_nothing()
        )
        session.execute(
            insert(Zone)
            .values(
                [
                    {
                        "site_id": s,
                        "zone_id": z,
                        "name": z,
                        "floor": None,
                        "kind": "unknown",
                        "created_at": now,
                    }
                    for s, z in sorted(missing)
                ]
            )
            .on_conflict_do_nothing()
        )
        found.update(_lookup(session, missing))
    return found


def _lookup(session: Session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, str]]:
    query = (
        select(Zone.site_id, Zone.zone_id, Zone.id, Site.timezone)
        .join(Site, Site.site_id == Zone.site_id)
        .where(tuple_(Zone.site_id, Zone.zone_id).in_(sorted(keys)))
    )
    # The time zone read here files this batch's hours: a time-zone change (footfall.server.rollups.refile.
    # start_refile) waits for this transaction, so its re-filing never runs before our hours are stored.
    query = locked(query, session, read=True, of=Site)
    rows = session.execute(query)
    return {(site, zone): (pk, tz) for site, zone, pk, tz in rows}
