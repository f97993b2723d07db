"""Sites and zones: looked up by their wire identifiers, created on first sight of an aggregate.

A zone row also keeps what its people are (its ``measure``, footfall.core.wire.Measure), taken from the
aggregate that created it: zone passes, a camera's distinct visitors, or an entrance line's in or out. Counts of
different measures must never be added up, so an aggregate that disagrees with its zone's measure is refused
(:func:`measure_conflict`) instead of being summed into the wrong kind of figure."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, NamedTuple, cast

from footfall.core.wire import AggregateMessage
from footfall.server.sql import insert_for, locked
from footfall.server.tables import ZONE_KINDS, Agent, Bucket, Site, Zone
from sqlalchemy import CursorResult, exists, func, select, tuple_, update
from sqlalchemy.orm import Session

# Zones an operator sees as zones (traffic, rankings, ad placement, CSV): their figures are passes.
PASSES = "passes"


class ZoneRef(NamedTuple):
    pk: int
    timezone: str  # the site's
    measure: str


def first_measures(messages: Iterable[AggregateMessage]) -> dict[tuple[str, str], str]:
    """(site_id, zone_id) → the measure of the first message naming it: what a new zone is created as."""
    found: dict[tuple[str, str], str] = {}
    for message in messages:
        found.setdefault((message.site_id, message.zone_id), message.measure)
    return found


# A big mall's zones, counting lines, entrance directions and cameras, several times over.
DEFAULT_MAX_ZONES_PER_SITE = 1000


# A chain's malls several times over; each site holds its zones' cells, agents and settings.
DEFAULT_MAX_SITES = 1000


def sites_beyond_cap(session: Session, site_ids: set[str], cap: int) -> set[str]:
    """The site ids of ``site_ids`` that do not exist yet and would take the server past ``cap`` sites; new ids are
    admitted in name order. Like :func:`zones_beyond_cap`, it bounds growth, not exactly, across replicas."""
    if not site_ids:
        return set()
    existing = set(session.scalars(select(Site.site_id).where(Site.site_id.in_(site_ids))))
    missing = sorted(site_ids - existing)
    if not missing:
        return set()
    room = max(0, cap - (session.scalar(select(func.count()).select_from(Site)) or 0))
    return set(missing[room:])


# Camera boxes of a server: many per site, as many sites as DEFAULT_MAX_SITES.
DEFAULT_MAX_AGENTS = 10_000


class AgentAdmission:
    """Which agent ids one ingest batch may name: those the server knows, and new ones while it has fewer than
    ``cap`` agents. An agent key not bound to an agent may name any id; each one is a row, a line of the agents
    list and a series in /metrics. Like :func:`zones_beyond_cap`, it bounds growth, not exactly, across replicas."""

    def __init__(self, session: Session, cap: int):
        self.session, self.cap = session, cap
        self.admitted: set[str] = set()
        self.agents: int | None = None  # the server's agents, counted when a new id first asks

    def admits(self, agent_id: str) -> bool:
        if agent_id in self.admitted:
            return True
        if self.session.scalar(select(exists().where(Agent.agent_id == agent_id))):
            self.admitted.add(agent_id)
            return True
        if self.agents is None:
            self.agents = self.session.scalar(select(func.count()).select_from(Agent)) or 0
        if self.agents >= self.cap:
            return False
        self.agents += 1
        self.admitted.add(agent_id)
        return True


def zones_beyond_cap(session: Session, keys: set[tuple[str, str]], cap: int) -> set[tuple[str, str]]:
    """The (site_id, zone_id) of ``keys`` that do not exist yet and would take their site past ``cap`` zones
    (lines, entrance directions and cameras count too); within a site, new ids are admitted in name order. Two
    replicas creating zones of one site at once may each admit up to the cap: it bounds growth, not exactly."""
    if not keys:
        return set()
    existing = set(_lookup(session, keys))
    missing = sorted(keys - existing)
    if not missing:
        return set()
    sites = {site for site, _ in missing}
    counts = dict(
        session.execute(select(Zone.site_id, func.count()).where(Zone.site_id.in_(sites)).group_by(Zone.site_id)).all()
    )
    beyond: set[tuple[str, str]] = set()
    for key in missing:
        site = key[0]
        if counts.get(site, 0) >= cap:
            beyond.add(key)
        else:
            counts[site] = counts.get(site, 0) + 1
    return beyond


def ensure_zones(
    session: Session, measures: dict[tuple[str, str], str], default_tz: str
) -> dict[tuple[str, str], ZoneRef]:
    """Maps each (site_id, zone_id) of ``measures`` to its zone, creating what is missing with the measure given.

    Creation uses INSERT .. ON CONFLICT DO NOTHING so concurrent replicas never collide (the first one's
    measure stays; a later disagreeing aggregate is then refused by :func:`measure_conflict`).
    """
    if not measures:
        return {}
    keys = set(measures)
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
                        "measure": measures[(s, z)],
                    }
                    for s, z in sorted(missing)
                ]
            )
            .on_conflict_do_nothing()
        )
        found.update(_lookup(session, missing))
    _adopt_measures(session, measures, found)
    return found


def _adopt_measures(
    session: Session, measures: dict[tuple[str, str], str], found: dict[tuple[str, str], ZoneRef]
) -> None:
    """A zone that holds no counts yet takes the measure of its first aggregate: an admin who named and placed
    'door.in' (PUT /zones) before any data arrived made it as zone passes, and must not have the entrance's
    counts refused for it. A zone with counts keeps its measure (:func:`measure_conflict` guards it)."""
    for key, measure in measures.items():
        zone = found[key]
        if zone.measure == measure:
            continue
        adopted = session.execute(
            update(Zone).where(Zone.id == zone.pk, ~exists().where(Bucket.zone_pk == Zone.id)).values(measure=measure)
        )
        if cast(CursorResult[Any], adopted).rowcount:
            found[key] = zone._replace(measure=measure)


def measure_conflict(message: AggregateMessage, zones: dict[tuple[str, str], ZoneRef]) -> str | None:
    """Why ``message`` may not be stored under its zone, or None: its measure differs from the zone's (say a
    camera id reused as a zone name), and adding its people to the zone's would mix two kinds of count."""
    stored = zones[(message.site_id, message.zone_id)].measure
    if message.measure == stored:
        return None
    return (
        f"measure: {message.measure!r} aggregate for zone {message.zone_id!r} of site {message.site_id!r}, whose "
        f"counts are {stored!r}; counts of different measures are never added up (rename the zone, line or "
        "camera so each id names one kind of count)"
    )


def _lookup(session: Session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], ZoneRef]:
    query = (
        select(Zone.site_id, Zone.zone_id, Zone.id, Site.timezone, Zone.measure)
        .join(Site, Site.site_id == Zone.site_id)
        .where(tuple_(Zone.site_id, Zone.zone_id).in_(sorted(keys)))
    )
    # The time zone read here files this batch's hours: a time-zone change (footfall.server.rollups.refile.
    # start_refile) waits for this transaction, so its re-filing never runs before our hours are stored.
    query = locked(query, session, read=True, of=Site)
    rows = session.execute(query)
    return {(site, zone): ZoneRef(pk, tz, measure) for site, zone, pk, tz, measure in rows}


def save_zone(session: Session, site_id: str, zone_id: str, changes: dict[str, Any], default_timezone: str) -> Zone:
    """Creates the zone (and its site, with ``default_timezone``) where it does not exist yet, then sets the fields
    ``changes`` holds: ``name``, ``kind``, ``floor`` (None clears it). The admin API and ``footfall zones set``
    both write here; ValueError names a kind that is not one of ZONE_KINDS."""
    kind = changes.get("kind")
    if kind is not None and kind not in ZONE_KINDS:
        raise ValueError(f"kind: {kind!r} is not one of {', '.join(ZONE_KINDS)}")
    now = int(time.time())
    if session.get(Site, site_id) is None:
        session.add(Site(site_id=site_id, name=site_id, timezone=default_timezone, created_at=now))
        session.flush()
    zone = session.scalar(select(Zone).where(Zone.site_id == site_id, Zone.zone_id == zone_id))
    if zone is None:
        zone = Zone(site_id=site_id, zone_id=zone_id, name=zone_id, floor=None, kind="unknown", created_at=now)
        session.add(zone)
    if changes.get("name") is not None:
        zone.name = changes["name"]
    if "floor" in changes:
        zone.floor = changes["floor"]
    if kind is not None:
        zone.kind = kind
    session.flush()
    return zone
