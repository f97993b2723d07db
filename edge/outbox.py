"""The durable outbox: every aggregate is committed to SQLite before it is published, and removed only when
the server's receipt names its seq (a broker's PUBACK is not enough: a broker acknowledges messages that no
subscriber holds, and loses what it had not saved when it crashes).

A sent row waits for its receipt; if none comes it becomes due again after a back-off that doubles with each
attempt (``resend_after``), and :meth:`Outbox.resend_all` makes every unconfirmed row due at once (after a
reconnect, or when a server announces it has just subscribed).

One row per bucket key: a newer full count of a bucket supersedes an unsent older one, so a long broker
outage costs one row per bucket, not one per update. The outbox also remembers what each bucket held when
it was last queued (``bucket_state``), so an agent restarted in the middle of a bucket adds to that count
instead of overwriting it with a smaller one, and it keeps the per-agent ``seq`` above everything it ever
sent (and above the clock in milliseconds, so even a lost outbox file never goes backwards).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from footfall.core.logs import log_event
from footfall.edge.aggregation import AgeCells, BucketCounts, age_cells

logger = logging.getLogger("footfall.edge.outbox")

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket_key TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    seq INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_send_at REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS bucket_state (
    bucket_key TEXT PRIMARY KEY,
    people INTEGER NOT NULL, female INTEGER NOT NULL, male INTEGER NOT NULL, unknown INTEGER NOT NULL,
    dwell_samples INTEGER NOT NULL, dwell_total REAL NOT NULL,
    updated_at REAL NOT NULL,
    age TEXT
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class OutboxError(RuntimeError):
    """The outbox file cannot be opened, read or written (disk full, read-only, locked by another process for longer
    than the busy timeout, not a database, damaged). Callers keep what they could not store and try again."""


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    payload: bytes


@dataclass(frozen=True)
class ResendPolicy:
    """When an unconfirmed row is sent again: ``first_seconds`` after the first send, doubling, at most
    ``max_seconds`` apart."""

    first_seconds: float = 10.0
    max_seconds: float = 600.0


class Outbox:
    """Thread-safe; the pipeline threads add, the publisher reads and acknowledges."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_messages: int = 200_000,
        state_days: float = 2.0,
        resend: ResendPolicy | None = None,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
    ):
        """``busy_timeout``: how long a statement waits for a lock another process holds on the file (a backup
        tool, an operator's ``sqlite3`` shell) before it fails with :class:`OutboxError`."""
        self.path = Path(path)
        self.max_messages = max_messages
        self.resend = resend or ResendPolicy()
        self.clock = clock
        self.state_seconds = state_days * 86_400
        self._lock = threading.Lock()
        self._cap_warned = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(self.path), check_same_thread=False, isolation_level=None, timeout=busy_timeout
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed row survives a power cut, which is the point of an outbox.
            self._db.execute("PRAGMA synchronous=FULL")
            # A damaged file (a power cut on a card that lies about fsync) fails here, at start, with one line,
            # rather than in the middle of a delivery; the operator decides what to do with what it still holds.
            problem = self._db.execute("PRAGMA quick_check(1)").fetchone()[0]
            if problem != "ok":
                # SQLite's report: "*** in database main ***" and then the first fault found.
                problem = next((line for line in problem.splitlines() if not line.startswith("***")), problem)
                raise OutboxError(
                    f"{self.path}: the outbox database is damaged ({problem}); move it aside (its unsent counts "
                    "may still be readable with sqlite3's .recover) and start again"
                )
            self._db.executescript(SCHEMA)
            self._upgrade()
        except sqlite3.Error as exc:
            raise OutboxError(f"{self.path}: cannot open the outbox database ({exc})") from None
        self.dropped = 0

    @contextlib.contextmanager
    def _using(self, what: str) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; an SQLite error rolls back and becomes an :class:`OutboxError` that says
        what could not be done."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                self._rollback()
                raise OutboxError(f"{self.path}: cannot {what} ({exc})") from None
            except BaseException:
                self._rollback()  # never leave a transaction open behind a failed payload builder
                raise

    def _upgrade(self) -> None:
        """Outbox files written before receipts existed: add the columns, take each row's seq from its payload;
        before age bands: add the bucket's age cells (NULL: no age estimated)."""
        if "age" not in {row[1] for row in self._db.execute("PRAGMA table_info(bucket_state)")}:
            self._db.execute("ALTER TABLE bucket_state ADD COLUMN age TEXT")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        for name, declaration in (
            ("seq", "INTEGER"),
            ("attempts", "INTEGER NOT NULL DEFAULT 0"),
            ("next_send_at", "REAL NOT NULL DEFAULT 0"),
        ):
            if name not in columns:
                self._db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {declaration}")
        self._db.execute("UPDATE outbox SET seq = json_extract(CAST(payload AS TEXT), '$.seq') WHERE seq IS NULL")
        self._db.execute("CREATE INDEX IF NOT EXISTS outbox_seq ON outbox(seq)")
        self._db.execute("CREATE INDEX IF NOT EXISTS outbox_due ON outbox(next_send_at)")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def next_seq(self) -> int:
        """A seq above every one this outbox handed out; call inside :meth:`add`'s transaction."""
        row = self._db.execute("SELECT value FROM meta WHERE name='seq'").fetchone()
        last = row[0] if row else 0
        seq = max(last + 1, int(self.clock() * 1000))
        self._db.execute(
            "INSERT INTO meta(name, value) VALUES('seq', ?) ON CONFLICT(name) DO UPDATE SET value=?",
            (seq, seq),
        )
        return seq

    def add(self, bucket_key: str, topic: str, build_payload: Callable[[int], bytes], counts: BucketCounts) -> int:
        """Stores the message for ``bucket_key`` (replacing an unsent older one) and the bucket's counts,
        in one transaction. ``build_payload(seq) -> bytes`` makes the message once its seq is known."""
        with self._using("write the outbox"):
            self._db.execute("BEGIN IMMEDIATE")
            now = self.clock()
            seq = self.next_seq()
            payload = build_payload(seq)
            self._db.execute("DELETE FROM outbox WHERE bucket_key=?", (bucket_key,))
            self._db.execute(
                "INSERT INTO outbox(bucket_key, topic, payload, created_at, seq) VALUES(?,?,?,?,?)",
                (bucket_key, topic, payload, now, seq),
            )
            self._db.execute(
                "INSERT INTO bucket_state(bucket_key, people, female, male, unknown, dwell_samples, dwell_total,"
                " updated_at, age) VALUES(?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(bucket_key) DO UPDATE SET "
                "people=excluded.people, female=excluded.female, male=excluded.male,"
                " unknown=excluded.unknown,"
                " dwell_samples=excluded.dwell_samples, dwell_total=excluded.dwell_total,"
                " updated_at=excluded.updated_at, age=excluded.age",
                (
                    bucket_key,
                    counts.people,
                    counts.female,
                    counts.male,
                    counts.unknown,
                    counts.dwell_samples,
                    counts.dwell_seconds_total,
                    now,
                    None if counts.age is None else json.dumps([[g, b, n] for (g, b), n in counts.age]),
                ),
            )
            depth = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            if depth > self.max_messages:
                self._drop_oldest(depth - self.max_messages)
            self._db.execute("COMMIT")
            return seq

    def _drop_oldest(self, count: int) -> None:
        oldest = self._db.execute("SELECT id, bucket_key FROM outbox ORDER BY id LIMIT ?", (count,)).fetchall()
        self._db.execute(f"DELETE FROM outbox WHERE id IN ({','.join('?' * len(oldest))})", [r[0] for r in oldest])
        self.dropped += len(oldest)
        # Loud, because this is data loss: the broker has been unreachable for longer than the cap allows.
        log_event(
            logger,
            logging.WARNING if self._cap_warned else logging.ERROR,
            "outbox full: dropping the oldest unsent aggregates; is the broker reachable?",
            cap=self.max_messages,
            dropped_now=len(oldest),
            dropped_total=self.dropped,
            oldest_dropped=oldest[0][1],
        )
        self._cap_warned = True

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    def rewrite(
        self, change: Callable[[bytes], Callable[[int], bytes] | None], seqs: Collection[int] | None = None
    ) -> int:
        """Replaces rows in place under new seqs: ``change(payload)`` returns None to keep a row, or a function
        that builds its new payload from the new seq. Every unconfirmed row (or those with ``seqs``), however
        many, in transactions of a thousand rows so that emitters are never held up for long; a rewritten row
        is due at once, and a receipt naming its old seq no longer touches it. Returns the rows rewritten."""
        with self._using("read the outbox"):
            if seqs is None:
                ids = [r[0] for r in self._db.execute("SELECT id FROM outbox ORDER BY id")]
            else:
                wanted, ids = sorted(set(seqs)), []
                for start in range(0, len(wanted), 500):
                    chunk = wanted[start : start + 500]
                    query = f"SELECT id FROM outbox WHERE seq IN ({','.join('?' * len(chunk))})"
                    ids.extend(r[0] for r in self._db.execute(query, chunk))
        rewritten = 0
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            with self._using("rewrite the outbox"):
                self._db.execute("BEGIN IMMEDIATE")
                # Rows confirmed since the ids were read are simply gone.
                query = f"SELECT id, payload FROM outbox WHERE id IN ({','.join('?' * len(chunk))})"
                done = 0
                for row_id, payload in self._db.execute(query, chunk).fetchall():
                    build = change(bytes(payload))
                    if build is None:
                        continue
                    seq = self.next_seq()
                    self._db.execute(
                        "UPDATE outbox SET payload=?, seq=?, attempts=0, next_send_at=0 WHERE id=?",
                        (build(seq), seq, row_id),
                    )
                    done += 1
                self._db.execute("COMMIT")
                rewritten += done
        return rewritten

    def pending(self, limit: int = 100_000) -> list[OutboxRow]:
        """Every row the server has not confirmed yet, oldest first."""
        with self._using("read the outbox"):
            rows = self._db.execute("SELECT id, topic, payload FROM outbox ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [OutboxRow(r[0], r[1], bytes(r[2])) for r in rows]

    def due(self, limit: int = 100) -> list[OutboxRow]:
        """Rows to send now: never sent, or unconfirmed for longer than their back-off; oldest first."""
        with self._using("read the outbox"):
            rows = self._db.execute(
                "SELECT id, topic, payload FROM outbox WHERE next_send_at <= ? ORDER BY id LIMIT ?",
                (self.clock(), limit),
            ).fetchall()
        return [OutboxRow(r[0], r[1], bytes(r[2])) for r in rows]

    def mark_sent(self, row_id: int) -> None:
        """The row went out: it is due again only if no receipt names it within the back-off."""
        # One statement (one fsync): in SET, ``attempts`` is still the old value, so the delay is
        # first × 2^(attempts before this send).
        with self._using("mark a row sent"):
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1,"
                " next_send_at = ? + min(? * (1 << min(attempts, 30)), ?) WHERE id=?",
                (self.clock(), self.resend.first_seconds, self.resend.max_seconds, row_id),
            )

    def resend_all(self) -> None:
        """Makes every unconfirmed row due now."""
        with self._using("make the unconfirmed rows due"):
            self._db.execute("UPDATE outbox SET next_send_at = 0 WHERE next_send_at > 0")

    def confirm(self, seqs: list[int]) -> int:
        """Forgets the rows whose seq a receipt names; returns how many there were. A row replaced by a newer
        count of its bucket has a new seq and stays until that one is confirmed."""
        if not seqs:
            return 0
        with self._using("forget confirmed rows"):
            removed = 0
            for start in range(0, len(seqs), 500):
                chunk = seqs[start : start + 500]
                cursor = self._db.execute(f"DELETE FROM outbox WHERE seq IN ({','.join('?' * len(chunk))})", chunk)
                removed += cursor.rowcount
            return removed

    def depth(self) -> int:
        with self._using("count the outbox"):
            depth: int = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            return depth

    def backlog(self) -> tuple[int, float | None]:
        """How many rows wait for a receipt and when the oldest of them was stored (None when none)."""
        with self._using("count the outbox"):
            depth, oldest = self._db.execute("SELECT COUNT(*), MIN(created_at) FROM outbox").fetchone()
        return int(depth), oldest

    def bucket_counts(self, bucket_key: str) -> BucketCounts | None:
        with self._using("read a bucket's stored counts"):
            row = self._db.execute(
                "SELECT people, female, male, unknown, dwell_samples, dwell_total, age FROM bucket_state"
                " WHERE bucket_key=?",
                (bucket_key,),
            ).fetchone()
        if not row:
            return None
        people, female, male, unknown, dwell_samples, dwell_total, age = row
        return BucketCounts(people, female, male, unknown, dwell_samples, dwell_total, _age_from_column(age))

    def prune_state(self) -> None:
        """Forgets bucket counts too old to be reopened by a restart."""
        with self._using("prune old bucket counts"):
            self._db.execute("DELETE FROM bucket_state WHERE updated_at < ?", (self.clock() - self.state_seconds,))


def check_outbox(path: str | Path) -> str:
    """What ``footfall agent --check-config`` says of the outbox file: how many aggregates an existing one still
    holds (opened as the agent opens it: a damaged one fails here), or that a new one can be made. Raises
    :class:`OutboxError` (one line) when the agent could not use it."""
    file = Path(path)
    if file.is_dir():
        raise OutboxError(f"{file}: the outbox path is a folder; give a file name (outbox.path)")
    if file.exists():
        outbox = Outbox(file)
        try:
            depth = outbox.depth()
        finally:
            outbox.close()
        return f"{file}: {depth} aggregate(s) waiting for the server's receipt"
    folder = next((parent for parent in file.parents if parent.exists()), Path("."))
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise OutboxError(f"{file}: cannot create the outbox here ({folder} is not a writable folder)")
    return f"{file}: new (created at start)"


def _age_from_column(text: str | None) -> AgeCells | None:
    """A bucket's age cells as :meth:`Outbox.add` stored them (JSON ``[[gender, band, people], ...]``)."""
    if text is None:
        return None
    return age_cells({(str(gender), str(band)): int(people) for gender, band, people in json.loads(text)})
