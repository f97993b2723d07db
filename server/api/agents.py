"""Agent status: online/offline, last seen, frame rate, outbox depth, per camera state."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from footfall.server.agents import agent_rows
from footfall.server.api.deps import Context, ReadSession, get_site, require_viewer
from footfall.server.api.schemas import AgentOut

router = APIRouter(tags=["agents"], dependencies=[Depends(require_viewer)])


@router.get("/agents", response_model=list[AgentOut], summary="Agents and their status (role: viewer)")
def list_agents(
    ctx: Context,
    session: ReadSession,
    # A site id's own pattern: anything else names no site, and a NUL in it was a 500 on PostgreSQL.
    site: Annotated[
        str | None,
        Query(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", description="Only this site's agents."),
    ] = None,
) -> list[dict[str, Any]]:
    rows = agent_rows(session, site, ctx.settings.agent_offline_after_s)
    if site is not None and not rows:
        get_site(session, site)  # 404 for a site nobody knows (a typo), not an empty list that reads as "no agents"
    return rows
