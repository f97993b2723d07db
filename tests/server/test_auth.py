"""Every API route rejects a missing key (401) and a key of the wrong role (403).

The routes are taken from the app itself, so a new route is covered (or flagged) automatically.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from footfall.server.api.deps import Require
from footfall.server.auth_limit import FailedAuthLimiter
from footfall.server.tables import ApiKey
from sqlalchemy import select

from tests.server.conftest import Server

PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/"),
    ("GET", "/dashboard"),
    ("GET", "/dashboard/"),
    ("GET", "/dashboard/{page}"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/docs"),
    ("GET", "/docs/oauth2-redirect"),
}
ROLES = ("agent", "viewer", "admin")


def _routes(app) -> list[tuple[str, str, tuple[str, ...] | None]]:  # type: ignore[no-untyped-def]
    """(method, path, roles admitted) for every HTTP route; roles is None when no Require guards it."""
    try:
        from fastapi.routing import iter_route_contexts

        # The path as served: an included router's prefix (/api/v1) is in the context, not in the original route.
        routes = [(context.route, context.path) for context in iter_route_contexts(app.routes)]
    except ImportError:  # older FastAPI lists APIRoutes directly, with their full path
        routes = [(route, getattr(route, "path", None)) for route in app.routes]
    found = []
    for route, path in routes:
        methods = getattr(route, "methods", None)
        if not methods:
            continue
        roles = None
        if isinstance(route, APIRoute):
            guards = [d.call for d in route.dependant.dependencies if isinstance(d.call, Require)]
            roles = guards[0].roles if guards else None
        found.extend((method, path, roles) for method in sorted(methods - {"HEAD"}))
    return found


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: "1" if "id}" in m[0] and "key" in m[0] else "mall", path)


def test_every_route_is_guarded_or_deliberately_public(sqlite_server: Server) -> None:
    routes = _routes(sqlite_server.client.app)
    assert len(routes) > 20
    unguarded = {(method, path) for method, path, roles in routes if roles is None}
    assert unguarded == PUBLIC, f"routes without a role check: {unguarded - PUBLIC}"
    guarded = {path for method, path, roles in routes if roles is not None}
    assert all(path.startswith("/api/v1/") or path == "/metrics" for path in guarded)  # /metrics: Prometheus


def test_missing_wrong_role_and_unknown_keys_are_rejected_everywhere(sqlite_server: Server) -> None:
    client = sqlite_server.client
    # An unknown key goes to every route from one address: far past the failed-attempt limit, which has its own
    # tests (test_auth_rate_limit.py). Here it is off.
    client.app.state.context.auth_failures = FailedAuthLimiter(0)
    checked = 0
    for method, path, roles in _routes(client.app):
        if roles is None:
            continue
        url = _concrete(path)
        response = client.request(method, url)
        assert response.status_code == 401, (method, path, response.text)
        assert "missing API key" in response.json()["detail"]
        response = client.request(method, url, headers={"X-API-Key": "ffk_not-a-real-key"})
        assert response.status_code == 401, (method, path)
        for role in ROLES:
            if role in roles:
                continue
            for headers in (
                sqlite_server.headers(role),
                {"Authorization": f"Bearer {sqlite_server.keys[role]}"},
            ):
                response = client.request(method, url, headers=headers)
                assert response.status_code == 403, (method, path, role, response.text)
                assert f"role '{role}'" in response.json()["detail"]
        checked += 1
    assert checked >= 18


def test_roles_admit_the_right_keys(sqlite_server: Server) -> None:
    s = sqlite_server
    assert s.get("/api/v1/sites", role="viewer").status_code == 200
    assert s.get("/api/v1/sites", role="admin").status_code == 200
    assert s.get("/api/v1/admin/keys", role="admin").status_code == 200
    assert s.client.get("/api/v1/sites", headers={"Authorization": f"Bearer {s.keys['viewer']}"}).status_code == 200
    assert s.ingest(role="agent").status_code == 200  # an empty batch is fine


def test_keys_are_stored_hashed_and_can_be_revoked(sqlite_server: Server) -> None:
    s = sqlite_server
    created = s.client.post(
        "/api/v1/admin/keys", json={"name": "ad team", "role": "viewer"}, headers=s.headers("admin")
    )
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("ffk_") and len(key) > 40
    with s.db.read() as session:
        stored = [row.key_hash for row in session.scalars(select(ApiKey))]
    assert key not in stored and all(len(h) == 64 for h in stored)
    assert s.client.get("/api/v1/sites", headers={"X-API-Key": key}).status_code == 200
    listed = s.get("/api/v1/admin/keys", role="admin").json()
    assert all("key" not in row for row in listed)
    assert s.client.delete(f"/api/v1/admin/keys/{created.json()['id']}", headers=s.headers("admin")).status_code == 204
    assert s.client.get("/api/v1/sites", headers={"X-API-Key": key}).status_code == 401


def test_an_agent_bound_key_may_only_send_for_its_agent(sqlite_server: Server) -> None:
    from tests.server.conftest import aggregate, encoded

    s = sqlite_server
    key = s.client.post(
        "/api/v1/admin/keys",
        json={"name": "box 7", "role": "agent", "agent_id": "box-7"},
        headers=s.headers("admin"),
    ).json()["key"]
    body = b"[" + encoded(aggregate(agent="box-7", female=9)) + b"," + encoded(aggregate(agent="box-8")) + b"]"
    response = s.client.post("/api/v1/ingest", content=body, headers={"X-API-Key": key})
    assert response.status_code == 422
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"] == [
        {"index": 1, "reason": "agent_id: this API key may only send for agent 'box-7'", "code": "rejected"}
    ]


def test_a_site_bound_key_cannot_add_counts_to_another_sites_withheld_cell(sqlite_server: Server) -> None:
    """Found by review: any agent key could add 5 women and 5 men it knew to another site's withheld cell (1 woman,
    2 men), which then released 13 = 6 + 7, and the withheld split came back by subtraction."""
    from tests.server.conftest import aggregate, encoded

    s = sqlite_server
    s.ingest(aggregate(female=1, male=2))  # the site's own agent: a cell of 3, withheld
    created = s.client.post(
        "/api/v1/admin/keys",
        json={"name": "evil box", "role": "agent", "agent_id": "evil-box", "site_id": "elsewhere"},
        headers=s.headers("admin"),
    )
    assert created.status_code == 201 and created.json()["site_id"] == "elsewhere"
    injected = encoded(aggregate(agent="evil-box", camera="cam-9", female=5, male=5))
    evil = {"X-API-Key": created.json()["key"]}
    response = s.client.post("/api/v1/ingest", content=b"[" + injected + b"]", headers=evil)
    assert response.status_code == 422 and response.json()["accepted"] == 0
    assert response.json()["rejected"][0]["reason"] == "site_id: this API key may only send for site 'elsewhere'"
    totals = s.get("/api/v1/sites/mall/traffic/totals", start="2026-11-16T00:00:00Z", end="2026-11-16T01:00:00Z")
    assert totals.json()["totals"]["people"] is None  # still withheld
    own = encoded(aggregate(agent="evil-box", site="elsewhere", camera="cam-9", female=5, male=5))
    response = s.client.post("/api/v1/ingest", content=b"[" + own + b"]", headers=evil)
    assert response.status_code == 200 and response.json()["accepted"] == 1
    listed = {row["name"]: row for row in s.get("/api/v1/admin/keys", role="admin").json()}
    assert listed["evil box"]["site_id"] == "elsewhere"


def test_cli_binds_an_agent_key_to_a_site_and_warns_of_one_that_is_not(sqlite_url: str) -> None:
    from footfall.server.auth import authenticate
    from footfall.server.db import Database
    from typer.testing import CliRunner

    from footfall.cli import app

    base = ["keys", "create", "--role", "agent", "--name", "box", "--database-url", sqlite_url]
    bound = CliRunner().invoke(app, [*base, "--agent", "box-1", "--site", "riverside"])
    assert bound.exit_code == 0 and "warning" not in bound.output, bound.output
    with Database(sqlite_url).read() as session:
        principal = authenticate(session, bound.stdout.strip().splitlines()[0])
    assert principal is not None and (principal.agent_id, principal.site_id) == ("box-1", "riverside")
    unbound = CliRunner().invoke(app, base)
    assert unbound.exit_code == 0 and "may add counts to any site's zones" in unbound.output
    viewer = CliRunner().invoke(app, ["keys", "create", "--role", "viewer", "--name", "v", "--site", "x",
                                      "--database-url", sqlite_url])  # fmt: skip
    assert viewer.exit_code == 2 and "only agent keys can be bound to a site" in viewer.output


@pytest.mark.parametrize("role", ["agent", "viewer", "admin"])
def test_cli_creates_a_working_key(role: str, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from footfall.server.auth import authenticate
    from footfall.server.db import Database
    from typer.testing import CliRunner

    from footfall.cli import app

    result = CliRunner().invoke(app, ["keys", "create", "--role", role, "--name", "ops", "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[0]
    with Database(sqlite_url).read() as session:
        principal = authenticate(session, key)
    assert principal is not None and principal.role == role


def test_cli_rejects_an_unknown_role_in_one_line(sqlite_url: str) -> None:
    from typer.testing import CliRunner

    from footfall.cli import app

    result = CliRunner().invoke(app, ["keys", "create", "--role", "root", "--name", "x", "--database-url", sqlite_url])
    assert result.exit_code == 2
    assert "error: unknown role 'root'" in result.output
    assert "Traceback" not in result.output
