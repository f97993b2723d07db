"""Admin: API keys, the dead-letter table and ingest counters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from footfall.server.api.deps import Context, ReadSession, require_admin
from footfall.server.api.schemas import DeadLetterOut, DeadLetters, IngestStats, KeyCreate, KeyCreated, KeyOut
from footfall.server.auth import create_key, revoke_key
from footfall.server.localtime import to_iso
from footfall.server.tables import ApiKey, DeadLetter
from sqlalchemy import func, select

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


def _key_out(row: ApiKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "prefix": row.prefix,
        "agent_id": row.agent_id,
        "site_id": row.site_id,
        "created_at": to_iso(row.created_at),
        "revoked": row.revoked_at is not None,
    }


@router.get("/keys", response_model=list[KeyOut], summary="List API keys, never their secrets (role: admin)")
def list_keys(session: ReadSession) -> list[dict[str, Any]]:
    return [_key_out(row) for row in session.scalars(select(ApiKey).order_by(ApiKey.id))]


@router.post("/keys", response_model=KeyCreated, status_code=201, summary="Create an API key (role: admin)")
def new_key(body: KeyCreate, ctx: Context) -> dict[str, Any]:
    """The response holds the key once; only its hash is stored."""
    with ctx.db.write() as session:
        try:
            plaintext, row = create_key(session, body.name, body.role, body.agent_id, body.site_id)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return {**_key_out(row), "key": plaintext}


@router.delete("/keys/{key_id}", status_code=204, summary="Revoke an API key (role: admin)")
def delete_key(key_id: Annotated[int, Path(ge=1, le=2**31 - 1)], ctx: Context) -> None:
    with ctx.db.write() as session:
        if not revoke_key(session, key_id):
            raise HTTPException(404, f"no active key with id {key_id}")


@router.get(
    "/dead-letters",
    response_model=DeadLetters,
    summary="Rejected messages with their reasons, newest first (role: admin)",
)
def dead_letters(
    session: ReadSession,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    # Dead-letter ids are 32-bit integers in PostgreSQL: a larger bound is refused there, not compared (a 500).
    before_id: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Page: ids below this.")] = None,
) -> dict[str, Any]:
    query = select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(DeadLetter.id < before_id)
    total = session.scalar(select(func.count()).select_from(DeadLetter)) or 0
    items = [
        DeadLetterOut(
            id=d.id,
            received_at=to_iso(d.received_at),
            source=d.source,
            topic=d.topic,
            reason=d.reason,
            payload=d.payload,
        )
        for d in session.scalars(query)
    ]
    return {"total": total, "items": items}


@router.get("/ingest-stats", response_model=IngestStats, summary="Ingest counters of this process (role: admin)")
def ingest_stats(ctx: Context, session: ReadSession) -> dict[str, Any]:
    consumers = [b for b in ctx.background if hasattr(b, "connected")]
    return {
        **ctx.ingestor.counters.snapshot(),
        "dead_letters_total": session.scalar(select(func.count()).select_from(DeadLetter)) or 0,
        "mqtt_connected": consumers[0].connected if consumers else None,
    }
