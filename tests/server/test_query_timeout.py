"""A query that runs too long is stopped with a clear 503, not left to hold a worker and a connection for ever.

On PostgreSQL a read waits behind any lock that conflicts with it: a migration, a ``VACUUM FULL`` or an operator's
``LOCK TABLE`` left open in psql. Before the limit, such a read never came back: the request hung, and with it a
worker thread and a pooled connection each. The attack holds a real lock in a second connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from tests.server.conftest import BASE, Server, _fresh_postgres_database, aggregate, make_server

SERIES = "/api/v1/sites/mall/traffic/series"
WINDOW = {"start": "2026-11-16T00:00:00Z", "end": "2026-11-17T00:00:00Z"}


@pytest.fixture()
def postgres_database(postgres_url: str) -> Iterator[str]:
    yield from _fresh_postgres_database(postgres_url)


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_a_read_behind_a_held_lock_is_stopped_at_the_limit_with_a_503(postgres_database: str) -> None:
    for server in make_server(postgres_database, query_timeout_s=1.0):
        assert server.ingest(aggregate(female=6, male=6)).status_code == 200
        assert server.get(SERIES, **WINDOW).status_code == 200
        plain = postgres_database.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain) as locker:
            locker.execute("LOCK TABLE rollup_hourly IN ACCESS EXCLUSIVE MODE")  # held until the block ends
            stalled = server.get(SERIES, **WINDOW)
            assert stalled.status_code == 503, stalled.text
            detail = stalled.json()["detail"]
            assert "ran past the server's 1 s limit" in detail and "FOOTFALL_QUERY_TIMEOUT_S" in detail, detail
            assert stalled.headers["Retry-After"] == "1"
            locker.rollback()
        again = server.get(SERIES, **WINDOW)  # the pooled connection that timed out serves the next request
        assert again.status_code == 200 and again.json()["totals"]["people"] == 12, again.text


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_a_scrape_behind_a_held_lock_answers_in_time_and_says_the_database_did_not(postgres_database: str) -> None:
    # Prometheus gives up on a scrape after 10 s by default: one held there by a lock reads as the server down.
    import time

    from footfall.server.metrics import DATABASE_READ_LIMIT_S
    from prometheus_client import generate_latest

    for server in make_server(postgres_database):
        assert server.ingest(aggregate(female=6, male=6)).status_code == 200
        registry = server.client.app.state.metrics.registry  # type: ignore[attr-defined]
        assert "footfall_server_database_up 1.0" in generate_latest(registry).decode()
        plain = postgres_database.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain) as locker:
            locker.execute("LOCK TABLE agents IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            scraped = generate_latest(registry).decode()
            waited = time.monotonic() - started
            locker.rollback()
        assert "footfall_server_database_up 0.0" in scraped and "footfall_server_ingest_stalled 0.0" in scraped
        assert waited < DATABASE_READ_LIMIT_S + 3, waited
        assert "footfall_server_database_up 1.0" in generate_latest(registry).decode()


def test_sqlite_stops_a_read_past_the_limit_too(sqlite_url: str) -> None:
    """SQLite has no statement timeout: a progress handler stops the statement. A limit no query can meet shows it,
    on two weeks of hourly cells (a query long enough for the handler to be asked)."""
    hours = [BASE - timedelta(hours=h) for h in range(1, 24 * 14 + 1)]
    fortnight = {"start": "2026-11-01T00:00:00Z", "end": "2026-11-16T00:00:00Z"}
    server: Server
    for server in make_server(sqlite_url):
        stored = server.ingest(*[aggregate(start=hour, female=6, male=6) for hour in hours])
        assert stored.status_code == 200 and stored.json()["accepted"] == len(hours)
    for server in make_server(sqlite_url, query_timeout_s=1e-9):
        stopped = server.get(SERIES, **fortnight)
        assert stopped.status_code == 503, stopped.text
        assert "FOOTFALL_QUERY_TIMEOUT_S" in stopped.json()["detail"]
    for server in make_server(sqlite_url):
        answered = server.get(SERIES, **fortnight)
        assert answered.status_code == 200 and answered.json()["totals"]["people"] == 12 * len(hours), answered.text
