"""What differs between SQLite and PostgreSQL, in one place: the dialect of a bind, row locks and INSERT."""

from __future__ import annotations

from typing import Any, TypeVarTuple

from sqlalchemy import Connection, Engine, Select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

Bind = Session | Connection | Engine
Columns = TypeVarTuple("Columns")


def dialect_name(bind: Bind) -> str:
    """``"sqlite"`` or ``"postgresql"``: the database behind a session, connection or engine."""
    return (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name


def is_postgres(bind: Bind) -> bool:
    return dialect_name(bind) == "postgresql"


def locked(query: Select[*Columns], bind: Bind, *, read: bool = False, of: Any = None) -> Select[*Columns]:
    """``query`` with FOR UPDATE (FOR SHARE with ``read``; only the rows of ``of`` when given) on PostgreSQL.

    On SQLite the query is unchanged: it has no row locks, and Database.write's process-wide lock already lets
    one writer at a time in. Rows locked in a stable order (an ORDER BY on the key) keep two writers from
    deadlocking."""
    if not is_postgres(bind):
        return query
    return query.with_for_update(read=read, of=of)


def insert_for(bind: Bind) -> Any:
    """The dialect's INSERT construct, which offers ``on_conflict_do_update`` / ``on_conflict_do_nothing``."""
    name = dialect_name(bind)
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"unsupported database {name!r}: use SQLite or PostgreSQL")
