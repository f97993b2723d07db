"""What every HTTP response passes through, as pure ASGI middleware: the request metrics and the security headers.

Starlette's ``@app.middleware("http")`` (BaseHTTPMiddleware) runs each layer's app in a task group of its own and
copies the response body through a memory stream: two such layers took about 4 ms of an API read, more with a
large body (a 90-day hourly series is 0.8 MB). These layers only look at the messages as they pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

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
