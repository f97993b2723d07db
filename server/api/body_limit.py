"""A bound on request bodies, enforced before any route runs.

FastAPI reads and parses a route's JSON body before it resolves the route's dependencies, the API-key check among
them, so without this anyone who reaches the port could make the server hold a body of any size in memory (and parse
it on the event loop) before being told 401. The API's JSON bodies (a zone's or site's settings, a new key) are a few
hundred bytes. Ingest is exempt: it checks the agent's key first and bounds its own, larger batches as they stream in
(``api.ingest``).
"""

from __future__ import annotations

import json
from collections.abc import Container

from footfall.server.api.http_layers import route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024


class BodyLimit:
    """Pure ASGI middleware: refuses with 413 a body declared or found larger than ``limit`` bytes, having read at
    most ``limit`` of it; a smaller body is buffered and handed to the app as it arrived."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES, exempt: Container[str] = ()) -> None:
        self.app, self.limit, self.exempt = app, limit, exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope) in self.exempt:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size, complete = 0, False
        gone: Message | None = None
        while not complete:
            message = await receive()
            if message["type"] != "http.request":  # the client went away before the body was whole
                gone = message
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(message.get("body", b""))
            complete = not message.get("more_body", False)
        # Handed on as the client sent it: a body cut short stays unfinished, then the disconnect, so the app sees
        # what it would have seen without this middleware.
        replay: list[Message] = []
        if chunks:
            replay.append({"type": "http.request", "body": b"".join(chunks), "more_body": not complete})
        if gone is not None:
            replay.append(gone)

        async def buffered() -> Message:
            # The body once, then whatever the client sends next (a disconnect, which streamed answers listen for).
            return replay.pop(0) if replay else await receive()

        await self.app(scope, buffered, send)

    async def _refuse(self, send: Send) -> None:
        limit = f"{self.limit // 1024} KiB" if self.limit >= 1024 else f"{self.limit} bytes"
        body = json.dumps({"detail": f"request body is larger than {limit}; the API's JSON bodies are small"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
