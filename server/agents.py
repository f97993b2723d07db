"""Agent status as the API reports it: online means 'said online' and 'heard from recently'."""

from __future__ import annotations

import json
import time
from typing import Any

from footfall.server.localtime import to_iso
from footfall.server.tables import Agent
from sqlalchemy import select
from sqlalchemy.orm import Session


def agent_rows(
    session: Session, site_id: str | None, offline_after_s: float, now: float | None = None
) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    query = select(Agent).order_by(Agent.site_id, Agent.agent_id)
    if site_id is not None:
        query = query.where(Agent.site_id == site_id)
    rows = []
    for agent in session.scalars(query):
        silence = max(0.0, now - agent.last_seen)
        rows.append(
            {
                "agent_id": agent.agent_id,
                "site_id": agent.site_id,
                "online": agent.state == "online" and silence <= offline_after_s,
                "state": agent.state,
                "last_seen": to_iso(agent.last_seen),
                "seconds_since_seen": round(silence, 1),
                "fps": agent.fps,
                "latency_ms": agent.latency_ms,
                "outbox_depth": agent.outbox_depth,
                "version": agent.version,
                "cameras": json.loads(agent.cameras_json or "[]"),
                "models": json.loads(agent.models_json or "[]"),
                "cpu": json.loads(agent.cpu_json) if agent.cpu_json else None,
            }
        )
    return rows
