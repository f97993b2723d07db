"""Retention drops raw minute buckets after N days, keeps the rollups, and refuses replays it could not
reconcile any more."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from footfall.server.retention import run_retention
from footfall.server.tables import Bucket, DailyRollup, HourlyRollup
from sqlalchemy import func, select

from tests.server.conftest import BASE, Server, aggregate


def _sums(s: Server) -> tuple[int, int, int]:
    with s.db.read() as session:
        return tuple(
            int(session.scalar(select(func.coalesce(func.sum(column), 0))))  # type: ignore[return-value]
            for column in (Bucket.people, HourlyRollup.people, DailyRollup.released_people)
        )


def test_retention_drops_old_raw_buckets_and_keeps_rollups(server: Server) -> None:
    old = [aggregate(start=BASE + timedelta(hours=h), seq=h, female=5, male=5) for h in range(3)]
    recent = [aggregate(start=BASE + timedelta(days=5, hours=h), seq=100 + h, female=7, male=3) for h in range(2)]
    server.ingest(*old, *recent)
    assert _sums(server) == (50, 50, 50)
    now = (BASE + timedelta(days=5, hours=12)).timestamp()
    result = run_retention(server.db, days=3, now=now)
    assert result.raw_deleted == 3
    assert result.cutoff == int(datetime(2026, 11, 18, tzinfo=UTC).timestamp())
    assert _sums(server) == (20, 50, 50)
    # Long-range queries still see everything, from the rollups.
    body = server.get(
        "/api/v1/sites/mall/traffic/series",
        start="2026-11-15T00:00:00Z",
        end="2026-11-23T00:00:00Z",
        granularity="day",
    ).json()
    assert body["totals"]["people"] == 50
    # A replay of a purged bucket would double-count: it is refused, with its reason, not silently dropped.
    response = server.ingest(old[0])
    assert response.status_code == 422
    assert "older than the raw-data retention window" in response.json()["rejected"][0]["reason"]
    assert _sums(server)[1] == 50
    # Its dead letter keeps who sent it and when, not the counts that retention deleted.
    [letter] = server.get("/api/v1/admin/dead-letters", role="admin").json()["items"]
    assert "not kept: age, dwell, gender, people" in letter["reason"]
    assert {"people", "gender"}.isdisjoint(json.loads(letter["payload"])), letter
    # Running again is harmless and never moves the watermark back.
    assert run_retention(server.db, days=30, now=now).cutoff == result.cutoff


def test_retention_command_prints_what_it_did(sqlite_url: str) -> None:
    from footfall.server.migrate import head_revision
    from typer.testing import CliRunner

    from footfall.cli import app

    result = CliRunner().invoke(app, ["server", "retention", "--days", "7", "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "deleted 0 raw buckets before" in result.output and "rollups kept" in result.output
    result = CliRunner().invoke(app, ["server", "migrate", "--database-url", sqlite_url])
    assert result.exit_code == 0 and f"database at revision {head_revision()}" in result.output
