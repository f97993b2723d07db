"""How the server process serves reads: what it keeps out of the garbage collector's full collections, and the
settings of its PostgreSQL connections (bench/server_bench.py measures the latencies they are for)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from footfall.server.db import Database
from sqlalchemy import text

from tests.server.conftest import _fresh_postgres_database, aggregate, make_server


def test_what_the_app_loaded_is_out_of_full_collections_while_it_serves_and_freed_when_it_stops(
    sqlite_url: str,
) -> None:
    """Objects made at start are frozen while the app serves, so a full collection walks only what requests made
    (unfrozen, about one request in twenty of a 90-day hourly series waited 75 ms more for one). When the app
    stops they are unfrozen: a process that builds apps again (tests, reloads) must be able to free the old one."""
    assert gc.get_freeze_count() == 0, "another app of this test process is serving"
    for server in make_server(sqlite_url):
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # modules, the app and its routes, the database engine
        assert server.ingest(aggregate(female=6, male=5)).status_code == 200
        assert server.get("/api/v1/sites/mall/traffic/totals").status_code == 200
        assert gc.get_freeze_count() <= frozen  # what requests make stays collectable (and frozen ones die)
    assert gc.get_freeze_count() == 0


@pytest.mark.postgres
def test_postgresql_connections_do_not_jit_compile_reads(postgres_url: str) -> None:
    """The planner prices the dashboards' reads far above its JIT thresholds; compiling cost more than it saved
    (a 90-day ranking of 200 zones: 426 ms of JIT for 96 ms of work)."""
    for url in _fresh_postgres_database(postgres_url):
        db = Database(url)
        try:
            with db.read() as session:
                assert session.execute(text("SHOW jit")).scalar() == "off"
        finally:
            db.dispose()


def test_one_app_stopping_leaves_what_another_still_serving_loaded_frozen(sqlite_url: str, tmp_path: Path) -> None:
    """Found by review: the garbage collector is the process's, and the first app to stop unfroze everything while
    a second still served. Only the last one to stop unfreezes."""
    first = make_server(sqlite_url)
    next(first)
    second = make_server(f"sqlite:///{tmp_path / 'other.db'}")
    next(second)
    next(first, None)  # the first app stops
    assert gc.get_freeze_count() > 10_000
    next(second, None)
    assert gc.get_freeze_count() == 0
