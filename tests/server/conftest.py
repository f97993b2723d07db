"""Fixtures for the server tests: a database (SQLite, and PostgreSQL where parametrised), an app with a
key per role."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient
from footfall.server.app import create_app
from footfall.server.auth import create_key
from footfall.server.db import Database
from footfall.server.ingest import Ingestor
from footfall.server.settings import Settings

BASE = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)  # a Monday, in the past (ingest refuses future buckets)


def aggregate(
    *,
    agent: str = "agent-1",
    site: str = "mall",
    camera: str = "cam-1",
    zone: str = "entrance",
    start: datetime = BASE,
    seconds: int = 60,
    seq: int = 1,
    female: int = 0,
    male: int = 0,
    unknown: int = 0,
    dwell: tuple[int, float] | None = None,
) -> dict:
    message = {
        "kind": "aggregate",
        "schema_version": 1,
        "agent_id": agent,
        "site_id": site,
        "camera_id": camera,
        "zone_id": zone,
        "bucket_start": start.isoformat().replace("+00:00", "Z"),
        "bucket_seconds": seconds,
        "seq": seq,
        "people": female + male + unknown,
        "gender": {"female": female, "male": male, "unknown": unknown},
    }
    if dwell:
        message["dwell"] = {"samples": dwell[0], "mean_seconds": dwell[1]}
    return message


def agent_status(*, agent: str = "agent-1", site: str = "mall", **fields: object) -> dict:
    """An online agent's heartbeat, sent five seconds ago; ``fields`` add to it or replace its parts."""
    return {
        "kind": "status",
        "schema_version": 1,
        "agent_id": agent,
        "site_id": site,
        "state": "online",
        "sent_at": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
        "fps": 5.0,
        "latency_ms": 20.0,
        "outbox_depth": 0,
        "version": "test",
        "cameras": [],
        **fields,
    }


def encoded(message: dict) -> bytes:
    return json.dumps(message).encode()


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def _fresh_postgres_database(server_url: str) -> Iterator[str]:
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield server_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Each test that uses this runs once on SQLite and once on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'footfall.db'}"
    else:
        yield from _fresh_postgres_database(request.getfixturevalue("postgres_url"))


@pytest.fixture()
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'footfall.db'}"


def lock_waiters(db: Database) -> int:
    """Sessions of ``db``'s PostgreSQL database waiting for a lock another transaction holds: how a race test knows its
    other transaction has reached the lock it waits on, without sleeping."""
    from sqlalchemy import text

    with db.read() as probe:
        return int(
            probe.execute(
                text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE NOT l.granted AND a.datname = current_database()"
                )
            ).scalar_one()
        )


@dataclass
class Server:
    client: TestClient
    db: Database
    settings: Settings
    keys: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}

    def get(self, path: str, role: str = "viewer", **params):  # type: ignore[no-untyped-def]
        return self.client.get(path, params=params, headers=self.headers(role))

    def ingest(self, *messages: dict | bytes, role: str = "agent"):  # type: ignore[no-untyped-def]
        body = b"[" + b",".join(m if isinstance(m, bytes) else encoded(m) for m in messages) + b"]"
        return self.client.post(
            "/api/v1/ingest", content=body, headers={**self.headers(role), "Content-Type": "application/json"}
        )


# The suite files buckets on fixed dates (BASE, DST changes of 2026), which the server's refusal of buckets older
# than FOOTFALL_MAX_BUCKET_AGE_DAYS would reach some day; that refusal has tests of its own.
FIXED_DATES_MAX_AGE_DAYS = 36_500


def fixed_date_ingestor(db: Database) -> Ingestor:
    """An ingestor that takes the suite's fixed-date buckets whatever today's date."""
    return Ingestor(db, max_bucket_age_days=FIXED_DATES_MAX_AGE_DAYS)


def make_server(url: str, **settings: object) -> Iterator[Server]:
    settings.setdefault("max_bucket_age_days", FIXED_DATES_MAX_AGE_DAYS)
    config = Settings(database_url=url, retention_days=None, **settings)
    app = create_app(config, start_background=False)
    db = app.state.context.db
    keys = {}
    with db.write() as session:
        for role in ("agent", "viewer", "admin"):
            keys[role] = create_key(session, f"test {role}", role)[0]
    with TestClient(app) as client:
        yield Server(client, db, config, keys)


@pytest.fixture()
def server(database_url: str) -> Iterator[Server]:
    """The app on SQLite and on PostgreSQL, with an agent, a viewer and an admin key."""
    yield from make_server(database_url)


@pytest.fixture()
def sqlite_server(sqlite_url: str) -> Iterator[Server]:
    """The app on SQLite only (for API behaviour that does not depend on the database)."""
    yield from make_server(sqlite_url)


def make_storing_fail(monkeypatch: pytest.MonkeyPatch, zone: str, error: Exception) -> None:
    """Storing any batch holding an aggregate of ``zone`` raises ``error``: a message the database refuses
    for a reason of its own (what a 2^63 count did), beyond anything the wire schema can catch."""
    from footfall.server.ingest import Ingestor

    original = Ingestor._store_aggregates

    def failing(self, session, messages, *rest):  # type: ignore[no-untyped-def]
        if any(m.zone_id == zone for m in messages):
            raise error
        return original(self, session, messages, *rest)

    monkeypatch.setattr(Ingestor, "_store_aggregates", failing)
