"""What the server tells a site's agents (footfall.core.wire.SiteSettings): its demographics mode, read from the
``sites`` row an admin edits. Sent retained on the site's settings topic (server/mqtt_consumer.py) on every
(re)subscription and on each change, and in the HTTP ingest response."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from footfall.core.wire import DemographicsMode, SiteSettings
from footfall.server.tables import Agent, Site
from sqlalchemy import select
from sqlalchemy.orm import Session


def settings_of(site_id: str, demographics: str) -> SiteSettings:
    return SiteSettings(site_id=site_id, demographics=cast(DemographicsMode, demographics), sent_at=datetime.now(UTC))


def every_site(session: Session) -> list[SiteSettings]:
    """The settings of every site, for a server that has just (re)subscribed."""
    return [settings_of(site, mode) for site, mode in session.execute(select(Site.site_id, Site.demographics))]


def for_agent(session: Session, agent_id: str | None, sites_named: set[str]) -> SiteSettings | None:
    """The settings of an agent's site: the site it last said it belongs to, else the one its messages named
    (None when that is not one site, or the site is not known yet: it then has the defaults)."""
    site_id = session.scalar(select(Agent.site_id).where(Agent.agent_id == agent_id)) if agent_id else None
    if site_id is None and len(sites_named) == 1:
        site_id = next(iter(sites_named))
    if site_id is None:
        return None
    mode = session.scalar(select(Site.demographics).where(Site.site_id == site_id))
    return settings_of(site_id, mode or "full")
