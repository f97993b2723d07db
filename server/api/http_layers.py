"""What every HTTP response passes through, as pure ASGI middleware: the request metrics, the security headers, and
the gate that keeps the requests reading the database within its connection pool.

Starlette's ``@app.middleware("http")`` (BaseHTTPMiddleware) runs each layer's app in a task group of its own and
copies the response body through a memory stream: two such layers took about 4 ms of an API read, more with a
large body (a 90-day hourly series is 0.8 MB). These layers only look at the messages as they pass.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Mapping, Sequence

import anyio
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def route_path(scope: Scope) -> str:
    """The request's path as the routes see it: behind a proxy's root_path, ASGI servers put that prefix in front
    of it."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class RequestMetrics:
    """Times each HTTP request from its start to its last body byte and hands ``observe`` its scope (after
    routing: the route that answered), the status sent, and the seconds; 500 when the app raised before
    answering (the error handler outside answers then)."""

    def __init__(self, app: ASGIApp, observe: Callable[[Scope, int, float], None]) -> None:
        self.app, self.observe = app, observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.observe(scope, status, time.perf_counter() - started)


class SecurityHeaders:
    """Adds ``headers`` to every HTTP response that does not set them itself, and ``per_prefix[prefix]`` to those
    of paths under that prefix (below the proxy's root_path, if any)."""

    def __init__(
        self, app: ASGIApp, headers: Mapping[str, str], per_prefix: Mapping[str, Mapping[str, str]] | None = None
    ) -> None:
        self.app, self.headers, self.per_prefix = app, headers, dict(per_prefix or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        extra = [headers for prefix, headers in self.per_prefix.items() if path.startswith(prefix)]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for added in (self.headers, *extra):
                    for name, value in added.items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, sending)


class DatabaseGate:
    """Lets at most ``limit`` requests under ``prefixes`` run at once; the rest wait here, in the event loop.

    Their sync dependencies and endpoints run in AnyIO's worker threads (40), where each takes a pooled database
    connection (SQLite's pool holds 15, PostgreSQL's 16). Sixty requests at once filled every thread with requests
    waiting for a connection while those holding one waited for a thread to finish in: nothing moved for the pool's
    30 s timeout, and then 503s. Waiting here costs no thread, and ``limit`` leaves connections to the server's own
    jobs and to MQTT ingest."""

    def __init__(self, app: ASGIApp, prefixes: Sequence[str], limit: int) -> None:
        self.app, self.prefixes, self.limit = app, tuple(prefixes), limit
        # One per event loop that serves (a server has one; tests may serve one app from several clients' loops).
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.Semaphore] = weakref.WeakKeyDictionary()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not route_path(scope).startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = anyio.Semaphore(self.limit)
        async with gate:
            await self.app(scope, receive, send)
