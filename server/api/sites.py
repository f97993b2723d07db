"""Sites and zones: listed by viewers, named and classified by admins (sites and zones also appear on first
ingest, with the zone kind 'unknown')."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from footfall.core.logs import log_event
from footfall.core.wire import SiteSettings
from footfall.server import site_settings
from footfall.server.agents import agent_rows
from footfall.server.api.deps import Context, ReadSession, ServerContext, get_site, require_admin, require_viewer
from footfall.server.api.schemas import SiteOut, SiteUpdate, ZoneOut, ZoneUpdate
from footfall.server.catalog import PASSES, save_zone
from footfall.server.occupancy import check_closing_time
from footfall.server.release import MAX_SITE_K, effective_k, seen_until
from footfall.server.rollups import refile_site, release_site, start_refile
from footfall.server.settings import MAX_RETENTION_DAYS, Settings, iana_name
from footfall.server.tables import Site, Zone
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]

read = APIRouter(tags=["sites"], dependencies=[Depends(require_viewer)])
admin = APIRouter(tags=["sites"], dependencies=[Depends(require_admin)])
logger = logging.getLogger("footfall.server.sites")


def _zone_out(zone: Zone) -> ZoneOut:
    return ZoneOut(
        zone_id=zone.zone_id,
        site_id=zone.site_id,
        name=zone.name,
        floor=zone.floor,
        kind=zone.kind,
        measure=zone.measure,
    )


@read.get("/sites", response_model=list[SiteOut], summary="Sites with zone and live-agent counts (role: viewer)")
def list_sites(ctx: Context, session: ReadSession) -> list[SiteOut]:
    sites = list(session.scalars(select(Site).order_by(Site.site_id)))
    return _sites_out(session, sites, ctx.settings)


def _sites_out(session: Session, sites: list[Site], settings: Settings) -> list[SiteOut]:
    """What GET /sites and PATCH /sites/{site} answer about ``sites``."""
    # Zones as an operator means them: those counting passes (not cameras, not entrance directions).
    zone_counts = dict(
        session.execute(select(Zone.site_id, func.count()).where(Zone.measure == PASSES).group_by(Zone.site_id)).all()
    )
    # Grouped once: a scan of every agent per site took sites x agents (46 s for 10,000 sites).
    agents_by_site: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for agent in agent_rows(session, None, settings.agent_offline_after_s):
        agents_by_site[agent["site_id"]].append(agent)
    out = []
    for site in sites:
        mine = agents_by_site.get(site.site_id, [])
        out.append(
            SiteOut(
                site_id=site.site_id,
                name=site.name,
                timezone=site.timezone,
                zones=zone_counts.get(site.site_id, 0),
                agents_online=sum(a["online"] for a in mine),
                agents_total=len(mine),
                **_controls(site, settings),
            )
        )
    return out


@read.get("/sites/{site_id}/zones", response_model=list[ZoneOut], summary="Zones of a site (role: viewer)")
def list_zones(
    site_id: IdPath,
    session: ReadSession,
    measure: Annotated[
        Literal["passes", "camera", "in", "out", "all"],
        Query(
            description="What the listed zones count: 'passes' (zones and counting lines, the default), 'camera' "
            "(a camera's distinct visitors), 'in' / 'out' (entrance line directions), or 'all'."
        ),
    ] = "passes",
) -> list[ZoneOut]:
    site = get_site(session, site_id)
    query = select(Zone).where(Zone.site_id == site.site_id).order_by(Zone.zone_id)
    if measure != "all":
        query = query.where(Zone.measure == measure)
    return [_zone_out(z) for z in session.scalars(query)]


def _controls(site: Site, settings: Settings) -> dict[str, Any]:
    """The operator controls of ``site`` as SiteOut shows them: own values and what applies."""
    return {
        "demographics": site.demographics,
        "age_estimation": site.demographics == "full",
        "k": effective_k(site.k, settings.k_anonymity),
        "own_k": site.k,
        "retention_days": site.retention_days or settings.retention_days,
        "own_retention_days": site.retention_days,
        "closing_time": site.closing_time,
    }


def _check_limits(change: SiteUpdate, settings: Settings) -> None:
    """422 with the allowed range for a k or retention outside the limits (null resets either to the server's)."""
    low, high = settings.k_anonymity, max(MAX_SITE_K, settings.k_anonymity)
    if change.k is not None and not low <= change.k <= high:
        raise HTTPException(
            422,
            f"k: {change.k} is outside {low}..{high}: the server's k ({low}) is a floor a site can only be made "
            f"stricter than, and beyond {high} hardly any hour would release anything",
        )
    longest = settings.retention_days or MAX_RETENTION_DAYS
    if change.retention_days is not None and not 1 <= change.retention_days <= longest:
        raise HTTPException(
            422,
            f"retention_days: {change.retention_days} is outside 1..{longest}: a site may keep its raw buckets for "
            f"at most the server's retention ({longest} days)",
        )


def _publish(ctx: ServerContext, settings: SiteSettings) -> None:
    """Retained on the site's settings topic through this replica's MQTT consumer, if it runs one."""
    for worker in ctx.background:
        publish = getattr(worker, "publish_site_settings", None)
        if publish is not None:
            publish([settings])


@admin.patch(
    "/sites/{site_id}",
    response_model=SiteOut,
    summary="Rename a site, set its time zone, demographics mode, k or raw-data retention (role: admin)",
)
def update_site(site_id: IdPath, change: SiteUpdate, ctx: Context) -> SiteOut:
    """A site not seen yet is created, so that its controls are in place before its first camera counts.

    Changing the time zone re-files every stored hour under its new local day and hour of week, one zone
    at a time: ingest goes on meanwhile, and reads of the site may mix old and new hours until it is done.

    A new ``k`` recomputes what every hour of the site releases, with its daily sums and slot totals, in the same
    transaction. A new ``demographics`` mode is sent to the site's agents (retained MQTT message; HTTP agents get
    it in the ingest response) before it is committed, so an agent learns of it before the server refuses
    anything by it; from the commit on, ingest refuses aggregates with gender ('counts-only') or all ('off')."""
    if change.timezone is not None:
        try:
            change = change.model_copy(update={"timezone": iana_name(change.timezone)})
        except ValueError as exc:
            raise HTTPException(422, f"timezone: {exc}") from None
    _check_limits(change, ctx.settings)
    if change.closing_time is not None:
        try:
            check_closing_time(change.closing_time)
        except ValueError as exc:
            raise HTTPException(422, f"closing_time: {exc}") from None
    told: SiteSettings | None = None
    with ctx.db.write() as session:
        site = session.get(Site, site_id)
        if site is None:  # set up before its first camera sends anything (a site's mode, before it counts)
            site = Site(
                site_id=site_id, name=site_id, timezone=ctx.settings.default_timezone, created_at=int(time.time())
            )
            session.add(site)
            session.flush()
        if change.name is not None:
            site.name = change.name
        told = _apply_controls(session, site, change, ctx)
        if "closing_time" in change.model_fields_set:  # null: back to midnight
            site.closing_time = change.closing_time
        refile = change.timezone is not None and change.timezone != site.timezone
        if refile:
            assert change.timezone is not None  # refile says so
            start_refile(session, site.site_id, change.timezone)
    if refile:
        refile_site(ctx.db, site.site_id, site.timezone)
    if told is not None:
        log_event(logger, logging.INFO, "site demographics mode changed", site=site_id, mode=told.demographics)
    with ctx.read() as session:  # as GET /sites answers it, after the change (and any re-filing)
        return _sites_out(session, [get_site(session, site_id)], ctx.settings)[0]


def _apply_controls(session: Session, site: Site, change: SiteUpdate, ctx: ServerContext) -> SiteSettings | None:
    """Applies the k, retention and demographics of ``change`` in the caller's transaction; returns the settings
    sent to the agents when the mode changed.

    The mode is published before the transaction commits: a refusal by the new mode can only follow the commit,
    and the receipt that carries it goes out through the same MQTT client after the settings, so an agent strips
    the gender from what it still holds before it learns of any refusal (edge/README.md). Should the transaction
    roll back, the stored mode is sent again."""
    given = change.model_fields_set
    server_k = ctx.settings.k_anonymity
    if "k" in given:  # null: back to the server's
        before = effective_k(site.k, server_k)
        site.k = change.k
        if effective_k(site.k, server_k) != before:
            session.flush()  # the site row is locked (PostgreSQL) before its cells are recomputed
            settings = ctx.settings
            seen_end = seen_until(time.time(), settings.release_open_hour, settings.release_delay_seconds)
            release_site(session, site.site_id, effective_k(site.k, server_k), seen_end)
    if "retention_days" in given:  # null: back to the server's; the next retention run applies it
        site.retention_days = change.retention_days
    if change.demographics is None or change.demographics == site.demographics:
        return None
    site.demographics = change.demographics
    session.flush()
    told = site_settings.settings_of(site.site_id, site.demographics)
    _publish(ctx, told)
    site_id = site.site_id
    event.listen(session, "after_rollback", lambda _session: _republish(ctx, site_id), once=True)
    return told


def _republish(ctx: ServerContext, site_id: str) -> None:
    """Sends the stored mode again (a change was sent, then not committed)."""
    with ctx.read() as session:
        mode = session.scalar(select(Site.demographics).where(Site.site_id == site_id))
    if mode is not None:
        _publish(ctx, site_settings.settings_of(site_id, mode))


@admin.put(
    "/sites/{site_id}/zones/{zone_id}",
    response_model=ZoneOut,
    summary="Create or edit a zone: name, floor, kind (role: admin)",
)
def put_zone(site_id: IdPath, zone_id: IdPath, change: ZoneUpdate, ctx: Context) -> ZoneOut:
    with ctx.db.write() as session:
        try:
            zone = save_zone(
                session, site_id, zone_id, change.model_dump(exclude_unset=True), ctx.settings.default_timezone
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return _zone_out(zone)
