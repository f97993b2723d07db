"""Database engine: SQLite in WAL mode by default, PostgreSQL through DATABASE_URL."""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from footfall.server.sql import dialect_name
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry


def normalise_url(url: str) -> str:
    """Lets users write plain ``postgresql://`` URLs; the server drives PostgreSQL through psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets the dashboard read while ingest writes; NORMAL sync is durable across app crashes.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            # Not every SQLite build has math functions; the ad-placement ranking needs sqrt.
            dbapi_connection.create_function("sqrt", 1, _sqrt, deterministic=True)

        return engine
    # The ad-placement ranking aggregates hundreds of thousands of hourly rows into ~34k slots; with the
    # default 4 MB of work_mem PostgreSQL spills that hash to disk and takes several times longer.
    return create_engine(
        url, pool_size=8, max_overflow=8, pool_pre_ping=True, connect_args={"options": "-c work_mem=32MB"}
    )


def _sqrt(value: float | None) -> float | None:
    return math.sqrt(value) if value is not None and value >= 0 else None


class Database:
    """Engine, session factory and a write lock.

    SQLite allows one writer at a time and cannot upgrade a read transaction to a write one while another
    connection wrote, so in-process writers take ``write_lock``; PostgreSQL relies on row locks instead.
    """

    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.is_sqlite = dialect_name(self.engine) == "sqlite"
        self._sqlite_lock = threading.Lock()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session for one write transaction, committed on success and rolled back on error."""
        lock: AbstractContextManager[object] = self._sqlite_lock if self.is_sqlite else nullcontext()
        with lock, self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
