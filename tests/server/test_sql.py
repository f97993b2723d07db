"""Dialect differences live in footfall.server.sql: row locks on PostgreSQL only, and no check elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

from footfall.server.sql import dialect_name, insert_for, is_postgres, locked
from footfall.server.tables import Site, Zone
from sqlalchemy import create_engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

SERVER = Path(__file__).resolve().parents[2] / "server"
SQLITE = create_engine("sqlite://")
POSTGRES = create_engine("postgresql+psycopg://user@localhost/footfall")  # never connects: only its dialect


def _sql(query, engine) -> str:  # type: ignore[no-untyped-def]
    return str(query.compile(dialect=engine.dialect))


def test_locks_are_added_on_postgresql_only() -> None:
    query = select(Zone.id, Site.timezone).join(Site, Site.site_id == Zone.site_id)
    assert locked(query, SQLITE) is query
    assert "FOR UPDATE" not in _sql(locked(query, Session(SQLITE)), SQLITE)
    assert _sql(locked(query, POSTGRES), POSTGRES).endswith("FOR UPDATE")
    assert _sql(locked(query, Session(POSTGRES), read=True, of=Site), POSTGRES).endswith("FOR SHARE OF sites")


def test_the_dialect_of_a_session_connection_or_engine() -> None:
    assert (dialect_name(SQLITE), is_postgres(SQLITE), is_postgres(Session(SQLITE))) == ("sqlite", False, False)
    assert (dialect_name(Session(POSTGRES)), is_postgres(POSTGRES)) == ("postgresql", True)
    with SQLITE.connect() as connection:
        assert dialect_name(connection) == "sqlite"
    assert insert_for(Session(SQLITE)) is sqlite.insert
    assert insert_for(POSTGRES) is postgresql.insert


def test_no_module_checks_the_dialect_or_locks_rows_by_itself() -> None:
    """A dialect check or FOR UPDATE written elsewhere is how SQLite and PostgreSQL drift apart unnoticed."""
    pattern = re.compile(r"dialect\.name|with_for_update\(")
    found = [
        f"{path.relative_to(SERVER)}:{number}: {line.strip()}"
        for path in sorted(SERVER.rglob("*.py"))
        if path.name != "sql.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []
