"""Sites and zones: listed by viewers, named and classified by admins (sites and zones also appear on first
ingest, with the zone kind 'unknown')."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path
from footfall.server.agents import agent_rows
from footfall.server.api.deps import Context, ReadSession, get_site, require_admin, require_viewer
from footfall.server.api.schemas import SiteOut, SiteUpdate, ZoneOut, ZoneUpdate
from footfall.server.rollups import refile_site, start_refile
from footfall.server.settings import check_timezone
from footfall.server.tables import ZONE_KINDS, Site, Zone
from sqlalchemy import func, select

IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]

read = APIRouter(tags=["sites"], dependencies=[Depends(require_viewer)])
admin = APIRouter(tags=["sites"], dependencies=[Depends(require_admin)])


def _zone_out(zone: Zone) -> ZoneOut:
    return ZoneOut(zone_id=zone.zone_id, site_id=zone.site_id, name=zone.name, floor=zone.floor, kind=zone.kind)


@read.get("/sites", response_model=list[SiteOut], summary="Sites with zone and live-agent counts (role: viewer)")
def list_sites(ctx: Context, session: ReadSession) -> list[SiteOut]:
    zone_counts = dict(session.execute(select(Zone.site_id, func.count()).group_by(Zone.site_id)).all())
    agents = agent_rows(session, None, ctx.settings.agent_offline_after_s)
    out = []
    for site in session.scalars(select(Site).order_by(Site.site_id)):
        mine = [a for a in agents if a["site_id"] == site.site_id]
        out.append(
            SiteOut(
                site_id=site.site_id,
                name=site.name,
                timezone=site.timezone,
                zones=zone_counts.get(site.site_id, 0),
                agents_online=sum(a["online"] for a in mine),
                agents_total=len(mine),
            )
        )
    return out


@read.get("/sites/{site_id}/zones", response_model=list[ZoneOut], summary="Zones of a site (role: viewer)")
def list_zones(site_id: IdPath, session: ReadSession) -> list[ZoneOut]:
    site = get_site(session, site_id)
    return [
        _zone_out(z) for z in session.scalars(select(Zone).where(Zone.site_id == site.site_id).order_by(Zone.zone_id))
    ]


@admin.patch("/sites/{site_id}", response_model=SiteOut, summary="Rename a site or set its time zone (role: admin)")
def update_site(site_id: IdPath, change: SiteUpdate, ctx: Context) -> SiteOut:
    """Changing the time zone re-files every stored hour under its new local day and hour of week, one zone
    at a time: ingest goes on meanwhile, and reads of the site may mix old and new hours until it is done."""
    if change.timezone is not None:
        try:
            check_timezone(change.timezone)
        except ValueError as exc:
            raise HTTPException(422, f"timezone: {exc}") from None
    with ctx.db.write() as session:
        site = get_site(session, site_id)
        if change.name is not None:
            site.name = change.name
        refile = change.timezone is not None and change.timezone != site.timezone
        if refile:
            assert change.timezone is not None  # refile says so
            start_refile(session, site.site_id, change.timezone)
        zones = session.scalar(select(func.count()).select_from(Zone).where(Zone.site_id == site_id)) or 0
    if refile:
        refile_site(ctx.db, site.site_id, site.timezone)
    return SiteOut(
        site_id=site.site_id,
        name=site.name,
        timezone=site.timezone,
        zones=zones,
        agents_online=0,
        agents_total=0,
    )


@admin.put(
    "/sites/{site_id}/zones/{zone_id}",
    response_model=ZoneOut,
    summary="Create or edit a zone: name, floor, kind (role: admin)",
)
def put_zone(site_id: IdPath, zone_id: IdPath, change: ZoneUpdate, ctx: Context) -> ZoneOut:
    if change.kind is not None and change.kind not in ZONE_KINDS:
        raise HTTPException(422, f"kind: {change.kind!r} is not one of {', '.join(ZONE_KINDS)}")
    now = int(time.time())
    with ctx.db.write() as session:
        if session.get(Site, site_id) is None:
            session.add(Site(site_id=site_id, name=site_id, timezone=ctx.settings.default_timezone, created_at=now))
            session.flush()
        zone = session.scalar(select(Zone).where(Zone.site_id == site_id, Zone.zone_id == zone_id))
        if zone is None:
            zone = Zone(site_id=site_id, zone_id=zone_id, name=zone_id, floor=None, kind="unknown", created_at=now)
            session.add(zone)
        if change.name is not None:
            zone.name = change.name
        if "floor" in change.model_fields_set:
            zone.floor = change.floor
        if change.kind is not None:
            zone.kind = change.kind
        session.flush()
        return _zone_out(zone)
