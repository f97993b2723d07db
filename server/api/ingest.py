"""POST /api/v1/ingest: the HTTP path for agents that cannot use MQTT; same parsing and upsert as MQTT."""

from __future__ import annotations

import json
import math
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from footfall.core.wire import SiteSettings
from footfall.server import site_settings
from footfall.server.api.deps import Context, ServerContext, require_agent
from footfall.server.api.schemas import IngestResponse
from footfall.server.auth import Principal
from footfall.server.ingest import BatchResult, Incoming
from starlette.concurrency import run_in_threadpool

router = APIRouter(tags=["ingest"])

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_MESSAGES = 10_000

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "One wire message (aggregate or status) or a JSON array of them; "
        "`footfall schema wire` prints their schema.",
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "object"},
                        {"type": "array", "items": {"type": "object"}, "maxItems": MAX_MESSAGES},
                    ]
                }
            }
        },
    }
}


@router.post(
    "/ingest",
    response_model=IngestResponse,
    responses={
        422: {
            "model": IngestResponse,
            "description": "Some messages were rejected (the others were stored); each rejected one is dead-lettered.",
        },
        503: {
            "model": IngestResponse,
            "description": "None was rejected, but some were deferred (listed in `deferred`, not stored): their "
            "buckets start more than 15 minutes ahead of the server's clock. Send them again after `Retry-After` "
            "seconds (when the first of them can be stored; a 422 that also defers some carries it too); the others "
            "were stored, and sending them again has no effect.",
        },
    },
    openapi_extra=_BODY_DOC,
    summary="Ingest aggregates and status messages (role: agent)",
)
async def ingest(
    request: Request, ctx: Context, principal: Annotated[Principal, Depends(require_agent)]
) -> JSONResponse:
    """Stores wire messages idempotently: a redelivered or replayed aggregate never double-counts (the bucket
    keeps the message with the highest seq). Valid messages of a batch are stored even when others are
    rejected; the response lists each rejection with its reason and answers 422 if there was any. A message whose
    bucket starts more than 15 minutes (and at most a day) ahead of the server's clock is deferred: not stored, listed
    in ``deferred``, answered 503 with Retry-After when nothing was rejected; send it again later. The response
    carries the settings of the agent's site (``site_settings``: its demographics mode), which the agent must
    apply."""
    body = await _read_bounded(request, MAX_BODY_BYTES)
    if body is None:
        return JSONResponse(
            {"detail": f"body is larger than {MAX_BODY_BYTES // 1024 // 1024} MiB; send smaller batches"},
            status_code=413,
        )
    # Parsing 8 MiB takes seconds: off the event loop, which every other request of the server waits on.
    count, payloads = await run_in_threadpool(_split, body)
    if count > MAX_MESSAGES:
        return JSONResponse(
            {"detail": f"{count} messages in one request; send at most {MAX_MESSAGES}"},
            status_code=413,
        )
    items = [Incoming(p, "http", None, principal.agent_id, principal.site_id) for p in payloads]
    result = await run_in_threadpool(ctx.ingestor.ingest, items)
    settings = await run_in_threadpool(_site_settings, ctx, principal.agent_id, result)
    content = {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "statuses": result.statuses,
        "rejected": [{"index": r.index, "reason": r.reason, "code": r.code} for r in result.rejected],
        "deferred": [{"index": d.index, "reason": d.reason} for d in result.deferred],
        "site_settings": settings.model_dump(mode="json") if settings else None,
    }
    # Deferred ones are not stored yet: Retry-After says when to send them (the listed ones) again, with any status.
    headers = None
    if result.deferred:
        headers = {"Retry-After": str(max(1, math.ceil(min(d.retry_after_s for d in result.deferred))))}
    if result.rejected:
        return JSONResponse(content, status_code=422, headers=headers)
    if result.deferred:  # a client that sends again what was not answered 2xx loses none of them
        return JSONResponse(content, status_code=503, headers=headers)
    return JSONResponse(content)


def _site_settings(ctx: ServerContext, agent_id: str | None, result: BatchResult) -> SiteSettings | None:
    """What an agent sending over HTTP must apply (the MQTT agents get it retained on their settings topic)."""
    with ctx.db.read() as session:
        return site_settings.for_agent(session, agent_id, {h.site_id for h in result.handled})


async def _read_bounded(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed ``limit``: from its Content-Length before reading
    anything, else while it streams in, so an oversized upload never sits whole in memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _split(body: bytes) -> tuple[int, list[bytes]]:
    """A JSON array becomes one payload per element; anything else is one payload (rejected if malformed). Returns
    the number of messages and the payloads, none when there are more than MAX_MESSAGES (not re-encoded)."""
    stripped = body.lstrip()
    if not stripped.startswith(b"["):
        return 1, [body]
    try:
        # An integer too long for Python (over 4300 digits) stays its digits: its message alone is refused by the
        # wire schema, and the rest of the batch is stored.
        data = json.loads(body, parse_int=lambda digits: int(digits) if len(digits) <= 100 else digits)
    except (ValueError, RecursionError):  # ValueError: bad JSON, bad UTF-8, an integer of over 4300 digits
        return 1, [body]  # the wire parser names what is wrong with it
    if len(data) > MAX_MESSAGES:
        return len(data), []
    return len(data), [json.dumps(item).encode() for item in data]
