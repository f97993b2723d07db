"""Database engine: SQLite in WAL mode by default, PostgreSQL through DATABASE_URL."""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import cast

from footfall.server.sql import dialect_name
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry


def normalise_url(url: str) -> str:
    """Lets users write plain ``postgresql://`` URLs; the server drives PostgreSQL through psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


# The database cannot answer now, whatever the statement: down, restarting, full, locked or read-only (an
# OperationalError or InterfaceError from the driver, PostgreSQL's read-only state made one too, below), or
# every pooled connection busy for the pool's whole timeout. Ingest waits on these and HTTP answers 503; any other
# error is the statement's own (or one message's), which no retry cures.
TRANSIENT_DB_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)

# PostgreSQL's read_only_sql_transaction: a standby, or a primary fenced or set read-only during a failover, takes
# no write from anyone, yet psycopg raises it as other than OperationalError. Taken as one message's fault, each
# message was stored again on its own and dead-lettered or refused. (insufficient_privilege stays a message's own
# fault: PostgreSQL checks it per table, column and row, so it may refuse one message and store the next.)
READ_ONLY_SQL_TRANSACTION = "25006"


def _read_only_as_unavailable(context: ExceptionContext) -> None:
    original = context.original_exception
    raised = context.sqlalchemy_exception
    if getattr(original, "sqlstate", None) != READ_ONLY_SQL_TRANSACTION or isinstance(raised, OperationalError):
        return
    # Treated as a lost connection, so the pool opens new ones: after a failover the address may reach the new
    # primary, where the pooled connections still hold the old one.
    context.is_disconnect = True
    raise OperationalError(
        context.statement,
        context.parameters,
        original,
        hide_parameters=raised.hide_parameters if raised is not None else False,
        connection_invalidated=True,
        ismulti=raised.ismulti if raised is not None else None,
    ) from original


def make_engine(url: str, *, pool_timeout_s: float = 30.0) -> Engine:
    """``pool_timeout_s``: how long a request waits for a pooled PostgreSQL connection before it is answered as the
    database being unavailable (``PoolTimeout``)."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets the dashboard read while ingest writes. FULL: a commit survives the machine losing power too,
            # as it must, since the receipt sent after it tells the agent to forget the counts.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            # Not every SQLite build has math functions; the ad-placement ranking needs sqrt.
            dbapi_connection.create_function("sqrt", 1, _sqrt, deterministic=True)

        return engine
    # The ad-placement ranking aggregates hundreds of thousands of hourly rows into ~34k slots; with the
    # default 4 MB of work_mem PostgreSQL spills that hash to disk and takes several times longer. JIT off: the
    # planner prices these reads of a few hundred milliseconds far above its JIT thresholds, and compiling cost
    # more than it saved (a 90-day ranking of 200 zones: 33 ms of 178, and 426 ms of 517 once an index made the
    # planner's estimate larger; PostgreSQL 15).
    engine = create_engine(
        url,
        pool_size=8,
        max_overflow=8,
        pool_timeout=pool_timeout_s,
        pool_pre_ping=True,
        connect_args={"options": "-c work_mem=32MB -c jit=off"},
    )
    event.listen(engine, "handle_error", _read_only_as_unavailable)
    return engine


# SQLite calls the progress handler every this many virtual-machine steps: often enough to stop within a few
# milliseconds of the limit, rarely enough that the Python call costs nothing measurable.
SQLITE_STEPS_PER_CHECK = 10_000


class QueryTimeout(RuntimeError):
    """A read ran past its time limit and the database stopped it."""

    def __init__(self, limit_s: float):
        super().__init__(f"a query ran past the {limit_s:g} s limit")
        self.limit_s = limit_s


def _stopped_by_limit(exc: OperationalError) -> bool:
    """Whether the database stopped the statement for its time limit: PostgreSQL's query_canceled (57014), or
    SQLite's interrupt from the progress handler."""
    original = exc.orig
    if isinstance(original, sqlite3.OperationalError):
        return str(original) == "interrupted"
    return getattr(original, "sqlstate", None) == "57014"


# SQLite's primary result codes of a statement refused as written (SQLITE_ERROR: no such table, a syntax error;
# TOOBIG, MISMATCH, RANGE): a bug. Every other one (BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN, SCHEMA...) is
# the database unable to answer now.
SQLITE_REFUSED_STATEMENT = frozenset({1, 18, 20, 25})


def refused_statement(exc: Exception) -> bool:
    """Whether a database error (OperationalError, InterfaceError) is a statement the database refused as written,
    which no retry cures, rather than the database unable to answer now: down, restarting, full, read-only or
    locked. psycopg raises a refused statement as ProgrammingError or DataError, never as these two."""
    original = getattr(exc, "orig", None)
    if isinstance(original, sqlite3.InterfaceError):  # a value of a type SQLite cannot bind
        return True
    if isinstance(original, sqlite3.OperationalError):
        return (getattr(original, "sqlite_errorcode", 1) & 0xFF) in SQLITE_REFUSED_STATEMENT
    return False


def _sqrt(value: float | None) -> float | None:
    return math.sqrt(value) if value is not None and value >= 0 else None


class Database:
    """Engine, session factory and a write lock.

    SQLite allows one writer at a time and cannot upgrade a read transaction to a write one while another
    connection wrote, so in-process writers take ``write_lock``; PostgreSQL relies on row locks instead.
    """

    def __init__(self, url: str, *, pool_timeout_s: float = 30.0):
        self.engine = make_engine(url, pool_timeout_s=pool_timeout_s)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.is_sqlite = dialect_name(self.engine) == "sqlite"
        self._sqlite_lock = threading.Lock()

    def durability_problems(self) -> list[str]:
        """PostgreSQL settings under which a crash loses commits (or, full_page_writes off, may corrupt pages): the
        server's receipts tell agents to forget the counts it committed, so a commit the database can lose is a count
        lost for good. Empty on SQLite (the
        server sets its own synchronous mode) and on a PostgreSQL with the defaults."""
        if self.is_sqlite:
            return []
        problems = []
        with self.engine.connect() as connection:
            # full_page_writes off: a crash mid-write can leave torn pages that recovery cannot repair.
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                value = connection.execute(text(f"SHOW {setting}")).scalar()
                if value == "off":
                    problems.append(f"{setting}=off")
        return problems

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session for one write transaction, committed on success and rolled back on error."""
        lock: AbstractContextManager[object] = self._sqlite_lock if self.is_sqlite else nullcontext()
        with lock, self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self, limit_s: float | None = None) -> Iterator[Session]:
        """A session for reads. With ``limit_s`` the database stops a statement still running after that many
        seconds (PostgreSQL's transaction-local ``statement_timeout``; on SQLite a progress handler, which also
        counts from each statement's start) and :class:`QueryTimeout` is raised instead of its error."""
        with self.sessions() as session:
            if limit_s is None:
                yield session
                return
            limited = self._sqlite_limit(session, limit_s) if self.is_sqlite else self._postgres_limit(session, limit_s)
            try:
                with limited:
                    yield session
            except OperationalError as exc:
                if _stopped_by_limit(exc):
                    raise QueryTimeout(limit_s) from None
                raise

    @staticmethod
    @contextmanager
    def _postgres_limit(session: Session, limit_s: float) -> Iterator[None]:
        # is_local: the setting ends with the session's transaction, so the pooled connection goes back unlimited.
        milliseconds = str(max(1, math.ceil(limit_s * 1000)))
        session.execute(text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": milliseconds})
        yield

    @staticmethod
    @contextmanager
    def _sqlite_limit(session: Session, limit_s: float) -> Iterator[None]:
        connection = session.connection()
        dbapi_connection = cast(sqlite3.Connection, connection.connection.dbapi_connection)  # the sqlite3 driver's
        deadline = [math.inf]

        def started(*_args: object) -> None:
            deadline[0] = time.monotonic() + limit_s

        def past_deadline() -> int:
            return 1 if time.monotonic() > deadline[0] else 0  # non-zero: SQLite stops with "interrupted"

        event.listen(connection, "before_cursor_execute", started)
        dbapi_connection.set_progress_handler(past_deadline, SQLITE_STEPS_PER_CHECK)
        try:
            yield
        finally:
            dbapi_connection.set_progress_handler(None, 0)
            event.remove(connection, "before_cursor_execute", started)

    def dispose(self) -> None:
        self.engine.dispose()
