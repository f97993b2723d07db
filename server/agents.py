"""The agents table: kept from what agents send (a sign of life with every aggregate, their status messages)
and reported by the API, where online means 'said online' and 'heard from recently'."""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from typing import Any

from footfall.core.wire import FUTURE_TOLERANCE_S, AgentStatus
from footfall.server.localtime import to_iso
from footfall.server.sql import insert_for, is_postgres
from footfall.server.tables import Agent
from sqlalchemy import case, select
from sqlalchemy.orm import Session

# A status dated further ahead of the server's clock than this is filed as sent FUTURE_TOLERANCE_S before it came
# (store_statuses); closer, it keeps its time, as boxes and server on NTP differ by well under a second.
CLOCK_AHEAD_FILED_S = 60

# The state of an agent that sent aggregates but no status yet.
NO_STATUS = "no_status"


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
        # An agent heard from only through its aggregates (no status yet: an agent that sends over HTTP alone, or
        # the seconds before its first heartbeat) is alive, but it has told nothing of its frame rate, latency or
        # outbox: those read null, never a 0 that looks measured.
        reported = agent.last_status_at is not None
        rows.append(
            {
                "agent_id": agent.agent_id,
                "site_id": agent.site_id,
                "online": agent.state == "online" and silence <= offline_after_s,
                "state": agent.state if reported else NO_STATUS,
                "last_seen": to_iso(agent.last_seen),
                "seconds_since_seen": round(silence, 1),
                "fps": agent.fps if reported else None,
                "latency_ms": agent.latency_ms if reported else None,
                "outbox_depth": agent.outbox_depth if reported else None,
                "version": agent.version,
                "cameras": json.loads(agent.cameras_json or "[]"),
                "models": json.loads(agent.models_json or "[]"),
                "cpu": json.loads(agent.cpu_json) if agent.cpu_json else None,
                "demographics": agent.demographics,
                "clock_ahead_s": agent.clock_ahead_s if reported else None,
            }
        )
    return rows


def heard_from(session: Session, sites_by_agent: dict[str, str], opened: Collection[str], now: float) -> None:
    """Records agents that sent aggregates (creating those never seen before), and the ones in ``opened`` (a bucket
    of theirs came for the first time) as seen now.

    Only a bucket's first message is a sign of life: an agent sends every bucket once when it closes, people or not,
    and again whenever a decision in it firms up later, which needs someone to have been there. A ``last_seen`` that
    moved with that second message would tell a viewer who polls the agents list, live, that somebody had just
    passed (API.md keeps that signal, the message counts, to the metrics role)."""
    insert = insert_for(session)
    stored = Agent.__table__.c.last_seen
    # Two statements, one per kind: a CASE naming the moved agents would be an expanding parameter, which an
    # executemany of several agents' rows cannot take (a batch of two agents failed and was stored message by message).
    for moves in (True, False):
        rows = [
            {
                "agent_id": agent,
                "site_id": site,
                "state": "online",
                "last_seen": int(now),
                "fps": 0.0,
                "latency_ms": 0.0,
                "outbox_depth": 0,
                "version": "",
                "cameras_json": "[]",
            }
            for agent, site in sorted(sites_by_agent.items())
            if (agent in opened) == moves
        ]
        if not rows:
            continue
        statement = insert(Agent.__table__)
        seen = case((stored < statement.excluded.last_seen, statement.excluded.last_seen), else_=stored)
        statement = statement.on_conflict_do_update(
            index_elements=["agent_id"],
            set_={"last_seen": seen if moves else stored, "site_id": statement.excluded.site_id},
        )
        session.execute(statement, rows)


def store_statuses(
    session: Session,
    statuses: list[AgentStatus],
    now: float,
    live_goodbyes: Collection[int] = (),
    replayed: Collection[int] = (),
) -> None:
    """Stores each agent's statuses in the order they came; one older than the stored one (a late retained copy)
    is ignored, except an 'offline' the broker published just now (its place in ``statuses`` is in
    ``live_goodbyes``): an agent's last will is made when it connects, so its ``sent_at`` is older than every
    heartbeat since, yet it is published when the connection dies, and it is the latest word on the agent.

    A status from a clock more than CLOCK_AHEAD_FILED_S ahead is filed as sent FUTURE_TOLERANCE_S before now: dated
    by its clock, it would pin the agent's state, since every status after the clock is set right would look older
    (and filed at now, a replica whose own clock runs a little ahead would do the same). Its lead is kept for the agents
    list, from statuses sent just now only (``replayed``: the broker's retained copies, whose age would read as a
    smaller lead; a goodbye or last will carries an older time too)."""
    agents: dict[str, Agent | None] = {}
    for index, status in enumerate(statuses):
        if status.agent_id not in agents:
            # Locked: the newer-status check below and the write must not interleave with another replica's.
            agents[status.agent_id] = session.get(Agent, status.agent_id, with_for_update=is_postgres(session))
        agent = agents[status.agent_id]
        last = agent.last_status_at if agent is not None else None
        said = status.sent_at.timestamp()
        ahead = said > now + CLOCK_AHEAD_FILED_S
        sent_at = max(int(now) - FUTURE_TOLERANCE_S, last or 0) if ahead else int(said)
        if last is not None and last > sent_at and index not in live_goodbyes:
            continue  # an older retained status arriving late must not overwrite a newer one
        if agent is None:
            agent = agents[status.agent_id] = Agent(agent_id=status.agent_id)
            session.add(agent)
        agent.site_id = status.site_id
        agent.state = status.state
        agent.last_seen = int(now)
        # Never back: the will's copy the broker keeps, replayed later, is still older than what was stored.
        agent.last_status_at = max(sent_at, last or sent_at)
        agent.fps = status.fps
        agent.latency_ms = status.latency_ms
        agent.outbox_depth = status.outbox_depth
        agent.version = status.version
        agent.cameras_json = json.dumps([camera.model_dump() for camera in status.cameras])
        agent.models_json = json.dumps([model.model_dump() for model in status.models])
        agent.cpu_json = status.cpu.model_dump_json() if status.cpu else None
        agent.demographics = status.demographics
        if index not in replayed and status.state == "online":
            agent.clock_ahead_s = max(0, round(said - now))
    session.flush()
