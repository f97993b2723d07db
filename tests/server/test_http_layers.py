"""The layers every response passes through (footfall.server.api.http_layers): what they observe and add, on small
Starlette apps and on the server's own app behind a proxy prefix."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from fastapi.testclient import TestClient
from footfall.server.api.http_layers import RequestMetrics, SecurityHeaders
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Scope

from tests.server.conftest import Server


def _app(observed: list[tuple[str, int, float]], chunk_seconds: float = 0.0) -> Starlette:
    async def plain(_: Request) -> Response:
        return PlainTextResponse("ok", headers={"X-Frame-Options": "SAMEORIGIN"})

    async def streamed(_: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(3):
                await asyncio.sleep(chunk_seconds)
                yield b"row\n"

        return StreamingResponse(chunks(), media_type="text/csv")

    async def broken(_: Request) -> Response:
        raise RuntimeError("a bug")

    app = Starlette(
        routes=[Route("/plain", plain), Route("/pages/streamed", streamed), Route("/broken", broken)],
    )

    def observe(scope: Scope, status: int, seconds: float) -> None:
        observed.append((scope["route"].path if "route" in scope else "-", status, seconds))

    app.add_middleware(RequestMetrics, observe=observe)
    app.add_middleware(SecurityHeaders, headers={"X-Frame-Options": "DENY"}, per_prefix={"/pages": {"X-Page": "1"}})
    return app


def test_each_request_is_observed_once_with_its_route_status_and_whole_duration() -> None:
    observed: list[tuple[str, int, float]] = []
    with TestClient(_app(observed, chunk_seconds=0.05), raise_server_exceptions=False) as client:
        assert client.get("/plain").status_code == 200
        streamed = client.get("/pages/streamed")
        assert streamed.text == "row\n" * 3
        assert client.get("/broken").status_code == 500
        assert client.get("/nowhere").status_code == 404
    routes = [(route, status) for route, status, _ in observed]
    assert routes == [("/plain", 200), ("/pages/streamed", 200), ("/broken", 500), ("-", 404)]
    # Timed to the last byte of the body, not to the moment the response began (three chunks 50 ms apart).
    assert observed[1][2] >= 0.15


def test_an_app_that_raises_before_answering_is_observed_as_500_and_the_error_still_propagates() -> None:
    observed: list[tuple[str, int, float]] = []
    with TestClient(_app(observed)) as client, pytest.raises(RuntimeError, match="a bug"):
        client.get("/broken")
    assert [(route, status) for route, status, _ in observed] == [("/broken", 500)]


def test_security_headers_are_added_unless_the_response_sets_its_own() -> None:
    with TestClient(_app([])) as client:
        plain = client.get("/plain")
        assert plain.headers["X-Frame-Options"] == "SAMEORIGIN"  # its own value stays, once
        assert plain.headers.get_list("X-Frame-Options") == ["SAMEORIGIN"]
        assert "X-Page" not in plain.headers
        streamed = client.get("/pages/streamed")
        assert streamed.headers["X-Frame-Options"] == "DENY" and streamed.headers["X-Page"] == "1"
        assert client.get("/nowhere").headers["X-Frame-Options"] == "DENY"  # the router's own 404 too


def test_dashboard_pages_behind_a_proxy_prefix_keep_their_content_security_policy(sqlite_server: Server) -> None:
    """Behind a proxy that mounts the server under /footfall (uvicorn --root-path), the page's path starts with the
    prefix: the policy belongs to the path below it (it was matched against /footfall/dashboard, and left out)."""
    with TestClient(sqlite_server.client.app, root_path="/footfall") as client:
        page = client.get("/footfall/dashboard/zone")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        api = client.get("/footfall/api/v1/sites", headers=sqlite_server.headers("viewer"))
        assert api.status_code == 200
        assert "Content-Security-Policy" not in api.headers and api.headers["X-Content-Type-Options"] == "nosniff"
