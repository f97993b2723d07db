"""Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from footfall.server.db import Database
from footfall.server.migrate import current_revision, head_revision, upgrade
from footfall.server.tables import Base
from sqlalchemy import inspect


def test_upgrade_head_matches_the_models(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert upgrade(db.engine) == head_revision() == "0006"
        assert upgrade(db.engine) == "0006"  # idempotent on start
        with db.engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        assert {"buckets", "rollup_hourly", "rollup_daily", "dead_letters", "api_keys"} <= set(
            inspect(db.engine).get_table_names()
        )
        assert current_revision(db.engine) == "0006"
    finally:
        db.dispose()


def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    db.dispose()
