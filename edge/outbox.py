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
import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from footfall.core.ages import AGE_DECISIONS
from footfall.core.logs import log_event
from footfall.core.wire import GENDER_DECISIONS, MAX_PEOPLE_PER_BUCKET, MAX_SEQ
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
    next_send_at REAL NOT NULL DEFAULT 0,
    deferred_until REAL NOT NULL DEFAULT 0,
    deferred_at REAL NOT NULL DEFAULT 0
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
# Whose counts the outbox holds (Outbox.bind): made at an agent's first start on the file, not at open, so that an
# outbox on a full disk still opens (its agent keeps the counts in memory until the disk has room).
IDENTITY_TABLE = "CREATE TABLE IF NOT EXISTS identity (site_id TEXT NOT NULL, agent_id TEXT NOT NULL)"
# Free pages the outbox gives back to the disk once as many are free, and how many at a time (the lock is held
# meanwhile): a long outage's peak would otherwise stay on the box's card after the server has confirmed it all.
RECLAIM_AFTER_PAGES = 256
RECLAIM_PAGES_AT_ONCE = 2048
WAL_KEPT_BYTES = 4 << 20
# A step back of the clock by more than this (NTP setting right a box that ran fast) ends the server's deferrals.
CLOCK_SET_BACK_S = 60.0
# The layout above, kept in SQLite's user_version: an agent refuses a file of a later format (a newer footfall wrote
# it, then the box was downgraded) rather than write rows that version cannot read. 0: written before it was kept.
OUTBOX_FORMAT = 2  # 2: rows the server deferred (deferred_until, deferred_at)
INCREMENTAL_VACUUM = 2  # PRAGMA auto_vacuum's value for INCREMENTAL
COUNT_COLUMNS = ("people", "female", "male", "unknown", "dwell_samples")


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
        convert: bool = True,
    ):
        """``busy_timeout``: how long a statement waits for a lock another process holds on the file (a backup
        tool, an operator's ``sqlite3`` shell) before it fails with :class:`OutboxError`. ``convert``: rewrite a file
        an earlier agent made so that it can give free space back (:meth:`_make_pages_reclaimable`); a check leaves
        it to the agent's start."""
        self.path = Path(path)
        self.max_messages = max_messages
        self.resend = resend or ResendPolicy()
        self.clock = clock
        self._clock_seen = clock()  # the clock at the last look for due rows: a step back ends deferrals
        self.state_seconds = state_days * 86_400
        self._lock = threading.Lock()
        self._cap_warned = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutboxError(f"{self.path}: cannot create the outbox's folder ({exc})") from None
        claim_file = claim_path(self.path)
        claimed_anew = not claim_file.exists()
        self._claim = claim(self.path)
        try:
            self._open(busy_timeout, convert=convert)
        except BaseException:
            if claimed_anew:  # a file that is no outbox (a typo in outbox.path) keeps no '.lock' of ours beside it
                claim_file.unlink(missing_ok=True)
            self._claim.close()
            raise
        self.dropped = 0
        self.on_dropped: Callable[[int], None] | None = None  # told how many rows the cap dropped (the metrics)

    def _open(self, busy_timeout: float, *, convert: bool) -> None:
        try:
            self._db = sqlite3.connect(
                str(self.path), check_same_thread=False, isolation_level=None, timeout=busy_timeout
            )
            # Before anything is written: a new file is made with it (see _make_pages_reclaimable).
            self._db.execute("PRAGMA auto_vacuum = INCREMENTAL")
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
            written_as = self._db.execute("PRAGMA user_version").fetchone()[0]
            if written_as > OUTBOX_FORMAT:
                raise OutboxError(
                    f"{self.path}: the outbox was written by a newer footfall (format {written_as}; this agent reads "
                    f"up to {OUTBOX_FORMAT}); run that version again, or move the file aside"
                )
            self._db.executescript(SCHEMA)
            self._refuse_unknown_columns()
            self._upgrade()
            self._db.execute(f"PRAGMA user_version = {OUTBOX_FORMAT}")
            self._refuse_values_no_agent_writes()
            self._db.execute(f"PRAGMA journal_size_limit = {WAL_KEPT_BYTES}")
            if convert:
                self._make_pages_reclaimable()
        except sqlite3.Error as exc:
            self._db.close()
            raise OutboxError(f"{self.path}: cannot open the outbox database ({exc})") from None
        except OutboxError:
            self._db.close()
            raise

    def _make_pages_reclaimable(self) -> None:
        """Incremental auto-vacuum, so that free pages can be given back (:meth:`_reclaim`). A new file takes it as
        it is made; one an earlier agent made is rewritten once (VACUUM), which needs about twice its size free (a copy,
        and the write-ahead log): without that, it keeps its size as before, and says so at each start."""
        if self._db.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL_VACUUM:
            return
        size_mb = round(self.path.stat().st_size / 1e6, 1)
        log_event(logger, logging.INFO, "converting the outbox once, so that it gives free space back", size_mb=size_mb)
        try:
            self._db.execute("VACUUM")
        except sqlite3.OperationalError as exc:  # a full disk, a lock another process holds: the agent still runs
            log_event(
                logger,
                logging.WARNING,
                "the outbox cannot be converted to give free space back; it keeps its largest size until it can",
                path=str(self.path),
                error=str(exc),
            )

    def _reclaim(self) -> None:
        """Gives a batch of free pages back to the disk when enough are free; call under the lock, never inside a
        transaction (executescript would commit it). Best effort: what it could not give back, the next call does,
        and the rows the caller deleted stay deleted."""
        try:
            if self._db.execute("PRAGMA freelist_count").fetchone()[0] >= RECLAIM_AFTER_PAGES:
                # executescript steps it to the end: the pragma frees one page per step, and execute() steps a
                # statement without result columns once.
                self._db.executescript(f"PRAGMA incremental_vacuum({RECLAIM_PAGES_AT_ONCE})")
        except sqlite3.Error as exc:  # a full disk: the vacuum writes to the log first
            log_event(logger, logging.DEBUG, "free outbox pages not given back yet", error=str(exc))

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

    def _refuse_unknown_columns(self) -> None:
        """A column this agent does not know (not in SCHEMA) was added by a later format: its writes would leave it
        empty (or fail on it, NOT NULL), and every count they carry would be lost."""
        known = _schema_columns()
        unknown = [
            f"{table}.{row[1]}"
            for table, columns in known.items()
            for row in self._db.execute(f"PRAGMA table_info({table})")
            if row[1] not in columns
        ]
        if unknown:
            raise OutboxError(
                f"{self.path}: the outbox has columns this agent does not know ({', '.join(unknown)}): written by a "
                "newer footfall? Run that version again, or move the file aside"
            )

    def _refuse_values_no_agent_writes(self) -> None:
        """Every stored value the agent reads back is one it could have written (an operator's hand edit or another
        program is caught here, at start, not as a failure in the middle of a camera's run). Of the bucket counts, those
        a restart can reopen: the agent forgets older ones as it starts (:meth:`prune_state`), and a long run leaves
        hundreds of thousands of them, which would cost the start seconds (minutes on a slow box) to read."""
        problems: list[str] = []
        recent = self.clock() - self.state_seconds
        for value, kind in self._db.execute("SELECT value, typeof(value) FROM meta WHERE name = 'seq'"):
            if kind != "integer" or not 0 <= value <= MAX_SEQ:
                problems.append(f"meta: the last seq is {value!r}, not a whole number from 0 to 2^53")
        bad_seqs = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE typeof(seq) != 'integer' OR seq < 0 OR seq > ?", (MAX_SEQ,)
        ).fetchone()[0]
        if bad_seqs:
            problems.append(f"outbox: {bad_seqs} row(s) whose seq is not a whole number from 0 to 2^53")
        counts_wrong = " OR ".join(
            f"typeof({column}) != 'integer' OR {column} NOT BETWEEN 0 AND {MAX_PEOPLE_PER_BUCKET}"
            for column in COUNT_COLUMNS
        )
        for key, *values in self._db.execute(
            f"SELECT bucket_key, {', '.join(COUNT_COLUMNS)}, dwell_total FROM bucket_state WHERE updated_at >= ?"
            f" AND ({counts_wrong} OR typeof(dwell_total) NOT IN ('integer', 'real') OR dwell_total < 0) LIMIT 1",
            (recent,),
        ):
            shown = ", ".join(
                f"{name} {value!r}" for name, value in zip((*COUNT_COLUMNS, "dwell_total"), values, strict=True)
            )
            problems.append(f"bucket_state: bucket {key} holds {shown}")
        for key, age in self._db.execute(
            "SELECT bucket_key, age FROM bucket_state WHERE age IS NOT NULL AND updated_at >= ?", (recent,)
        ):
            try:
                _age_from_column(age)
            except ValueError as exc:
                problems.append(f"bucket_state: bucket {key}'s age cells {exc}")
                break
        if problems:
            raise OutboxError(
                f"{self.path}: the outbox holds values no agent writes ({'; '.join(problems)}); move it aside "
                "(sqlite3 can still read it) and start again"
            )

    def _upgrade(self) -> None:
        """Outbox files written before receipts existed: add the columns, take each row's seq from its payload;
        before age bands: add the bucket's age cells (NULL: no age estimated); before deferrals: none is deferred."""
        if "age" not in {row[1] for row in self._db.execute("PRAGMA table_info(bucket_state)")}:
            self._db.execute("ALTER TABLE bucket_state ADD COLUMN age TEXT")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        for name, declaration in (
            ("seq", "INTEGER"),
            ("attempts", "INTEGER NOT NULL DEFAULT 0"),
            ("next_send_at", "REAL NOT NULL DEFAULT 0"),
            ("deferred_until", "REAL NOT NULL DEFAULT 0"),
            ("deferred_at", "REAL NOT NULL DEFAULT 0"),
        ):
            if name not in columns:
                self._db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {declaration}")
        self._db.execute("UPDATE outbox SET seq = json_extract(CAST(payload AS TEXT), '$.seq') WHERE seq IS NULL")
        self._db.execute("CREATE INDEX IF NOT EXISTS outbox_seq ON outbox(seq)")
        self._db.execute("CREATE INDEX IF NOT EXISTS outbox_due ON outbox(next_send_at)")
        self._forget_deferrals_of_a_later_clock(self.clock())

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._claim.close()

    def identities(self) -> list[tuple[str, str]]:
        """The (site_id, agent_id) whose counts this outbox holds: the one recorded at an agent's first start, and the
        names its waiting aggregates carry (a file from before it was recorded, or rows an older footfall added since);
        none for a file that tells none."""
        names: set[tuple[str, str]] = set()
        with self._using("read the outbox"):
            if self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'identity'").fetchone():
                names.update((str(s), str(a)) for s, a in self._db.execute("SELECT site_id, agent_id FROM identity"))
            rows = self._db.execute(
                "SELECT DISTINCT json_extract(CAST(payload AS TEXT), '$.site_id'),"
                " json_extract(CAST(payload AS TEXT), '$.agent_id') FROM outbox LIMIT 10"
            ).fetchall()
        names.update((str(site), str(agent)) for site, agent in rows if site is not None and agent is not None)
        return sorted(names)

    def bind(self, site_id: str, agent_id: str) -> None:
        """Records that this outbox holds the counts of ``site_id``/``agent_id``, or raises :class:`OutboxError` where
        it holds another's: its waiting aggregates go out under their own name, and its counts of the buckets still
        open would continue under the new one, which the server keeps apart (counted twice), while their receipts go
        to the old name (never confirmed, sent for ever). A record the disk has no room for is made at a later
        start; the check has been made."""
        held = self.identities()
        if held and held != [(site_id, agent_id)]:
            raise OutboxError(identity_mismatch(self.path, held, (site_id, agent_id)))
        try:
            with self._using("record whose counts the outbox holds"):
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(IDENTITY_TABLE)
                if self._db.execute("SELECT 1 FROM identity").fetchone() is None:
                    self._db.execute("INSERT INTO identity(site_id, agent_id) VALUES(?, ?)", (site_id, agent_id))
                self._db.execute("COMMIT")
        except OutboxError as exc:
            log_event(
                logger,
                logging.WARNING,
                "the outbox's name could not be recorded; the next start records it",
                error=str(exc),
            )

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
            dropped = self._drop_oldest(depth - self.max_messages) if depth > self.max_messages else []
            self._db.execute("COMMIT")
            if dropped:  # said once committed: a commit that fails (a full disk) rolled the drop back
                self._report_dropped(dropped)
            return seq

    def _drop_oldest(self, count: int) -> list[str]:
        """Deletes the ``count`` oldest rows, inside the caller's transaction; returns their bucket keys."""
        oldest = self._db.execute("SELECT id, bucket_key FROM outbox ORDER BY id LIMIT ?", (count,)).fetchall()
        self._db.execute(f"DELETE FROM outbox WHERE id IN ({','.join('?' * len(oldest))})", [r[0] for r in oldest])
        return [key for _, key in oldest]

    def _report_dropped(self, keys: list[str]) -> None:
        self.dropped += len(keys)
        if self.on_dropped is not None:
            self.on_dropped(len(keys))
        # Loud, because this is data loss: the broker has been unreachable for longer than the cap allows.
        log_event(
            logger,
            logging.WARNING if self._cap_warned else logging.ERROR,
            "outbox full: dropping the oldest unsent aggregates; is the broker reachable?",
            cap=self.max_messages,
            dropped_now=len(keys),
            dropped_total=self.dropped,
            oldest_dropped=keys[0],
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
                        "UPDATE outbox SET payload=?, seq=?, attempts=0, next_send_at=0, deferred_until=0,"
                        " deferred_at=0 WHERE id=?",
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
        now = self.clock()
        with self._using("read the outbox"):
            if now < self._clock_seen - CLOCK_SET_BACK_S:
                self._forget_deferrals_of_a_later_clock(now)
            self._clock_seen = now
            rows = self._db.execute(
                "SELECT id, topic, payload FROM outbox WHERE next_send_at <= ? ORDER BY id LIMIT ?",
                (now, limit),
            ).fetchall()
        return [OutboxRow(r[0], r[1], bytes(r[2])) for r in rows]

    def mark_sent(self, row_id: int) -> None:
        """The row went out: it is due again only if no receipt names it within the back-off."""
        # One statement (one fsync): in SET, ``attempts`` is still the old value, so the delay is
        # first × 2^(attempts before this send).
        with self._using("mark a row sent"):
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1,"
                " next_send_at = max(deferred_until, ? + min(? * (1 << min(attempts, 30)), ?)) WHERE id=?",
                (self.clock(), self.resend.first_seconds, self.resend.max_seconds, row_id),
            )

    def resend_all(self) -> None:
        """Makes every unconfirmed row due now, but those the server deferred, until the time it named."""
        with self._using("make the unconfirmed rows due"):
            self._db.execute(
                "UPDATE outbox SET next_send_at = 0 WHERE next_send_at > 0 AND deferred_until <= ?", (self.clock(),)
            )

    def defer(self, retry_after: Mapping[int, float]) -> int:
        """Rows the server deferred (seq → seconds): dated ahead of its clock, they are due again only once it has
        caught up, and a reconnect or a server's online notice does not send them meanwhile (a box hours fast would
        send its whole backlog again at each). Returns how many rows there were (one confirmed meanwhile is gone)."""
        if not retry_after:
            return 0
        now = self.clock()
        with self._using("defer rows"):
            self._db.execute("BEGIN IMMEDIATE")
            cursor = self._db.executemany(
                "UPDATE outbox SET next_send_at = ?, deferred_until = ?, deferred_at = ? WHERE seq = ?",
                [(now + seconds, now + seconds, now, seq) for seq, seconds in retry_after.items()],
            )
            self._db.execute("COMMIT")
            return cursor.rowcount

    def _forget_deferrals_of_a_later_clock(self, now: float) -> None:
        """Deferrals made while this box's clock read later than now: it was set back since (NTP, once the server
        said it ran fast, or a reboot). The wait the server named was counted on the old clock and would hold the
        rows as long again: they go now, and the server defers again whatever is still ahead of it."""
        self._db.execute(
            "UPDATE outbox SET next_send_at = 0, deferred_until = 0, deferred_at = 0 WHERE deferred_at > ?", (now,)
        )

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
            self._reclaim()
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
        try:  # checked at open; a value written since by another program still fails as the outbox, not the camera
            return BucketCounts(people, female, male, unknown, dwell_samples, dwell_total, _age_from_column(age))
        except ValueError as exc:
            raise OutboxError(
                f"{self.path}: cannot read bucket {bucket_key}'s stored counts (age cells {exc})"
            ) from None

    def prune_state(self) -> None:
        """Forgets bucket counts too old to be reopened by a restart."""
        with self._using("prune old bucket counts"):
            self._db.execute("DELETE FROM bucket_state WHERE updated_at < ?", (self.clock() - self.state_seconds,))
            self._reclaim()


def identity_mismatch(path: Path, held: list[tuple[str, str]], wanted: tuple[str, str]) -> str:
    if len(held) > 1:
        names = ", ".join(f"site {site!r} agent {agent!r}" for site, agent in held)
        return (
            f"{path}: the outbox holds the counts of several names ({names}; a box renamed by an older footfall): an "
            "agent sends and confirms only its own. Move the file aside to keep them (sqlite3 reads it), and start "
            "on a new one"
        )
    (site, agent) = held[0]
    return (
        f"{path}: the outbox holds the counts of site {site!r}, agent {agent!r}, and this config is site "
        f"{wanted[0]!r}, agent {wanted[1]!r}: under the new name they would count twice and never be confirmed. Give "
        "the new name an outbox of its own (outbox.path), and run the old config until its outbox is empty; or set "
        "site_id and agent_id back"
    )


def check_outbox(path: str | Path, site_id: str | None = None, agent_id: str | None = None) -> str:
    """What ``footfall agent --check-config`` says of the outbox file: how many aggregates an existing one still
    holds (opened as the agent opens it: a damaged one fails here, as one holding another site's or agent's counts
    does), or that a new one can be made. Raises :class:`OutboxError` (one line) when the agent could not use it."""
    file = Path(path)
    if file.is_dir():
        raise OutboxError(f"{file}: the outbox path is a folder; give a file name (outbox.path)")
    if file.exists():
        holder = claimed_by(file)
        if holder is not None:  # the running agent's: reading it here would take its claim for a moment
            return f"{file}: in use by pid {holder} (a running agent; a second one on this file is refused)"
        # Not converted here: under systemd the check runs within the start timeout, and rewriting a large
        # file on a slow card could outlast it at every restart.
        outbox = Outbox(file, convert=False)
        try:
            depth = outbox.depth()
            held = outbox.identities()
        finally:
            outbox.close()
        if site_id is not None and agent_id is not None and held and held != [(site_id, agent_id)]:
            raise OutboxError(identity_mismatch(file, held, (site_id, agent_id)))
        return f"{file}: {depth} aggregate(s) waiting for the server's receipt"
    folder = next((parent for parent in file.parents if parent.exists()), Path("."))
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise OutboxError(f"{file}: cannot create the outbox here ({folder} is not a writable folder)")
    return f"{file}: new (created at start)"


def _schema_columns() -> dict[str, set[str]]:
    """The columns SCHEMA makes, by table: the layout this agent writes."""
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.executescript(SCHEMA)
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            table: {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            for table in tables
            if not table.startswith("sqlite_")
        }


def claim_path(outbox_path: Path) -> Path:
    """The file whose lock says which process uses the outbox (its pid inside), beside the file SQLite opens: an
    outbox reached through a symlink (to it, or to its folder) is claimed where it really is, as two agents whose
    configs name it by two paths share it."""
    real = Path(os.path.realpath(outbox_path))
    return real.with_name(real.name + ".lock")


def claim(outbox_path: Path) -> TextIO:
    """Makes this process the outbox's only user, or raises :class:`OutboxError` naming the one that is. Two agents
    on one file would each add what they count to the bucket counts the other stored (a camera's 2 people read as 4).
    The kernel drops the claim when the process ends, however it ends, so a crash never leaves the file claimed."""
    path = claim_path(outbox_path)
    writable = True
    try:
        handle = open(path, "a+")  # noqa: SIM115 (held open for the outbox's life: the lock lives with it)
    except PermissionError as refused:
        # Another user's file (a check-config run as root left it): the lock needs no write access, only this
        # process's pid is not written in it.
        writable = False
        try:
            handle = open(path)  # noqa: SIM115 (as above)
        except OSError:  # not there either: the folder is not this user's to write
            raise OutboxError(f"{outbox_path}: cannot claim the outbox ({path}: {refused.strerror})") from None
    except OSError as exc:
        raise OutboxError(f"{outbox_path}: cannot claim the outbox ({path}: {exc.strerror})") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(handle)
        handle.close()
        raise OutboxError(
            f"{outbox_path}: the outbox is in use by another process (pid {holder}); one agent per outbox file "
            "(give each agent its own outbox.path)"
        ) from None
    except OSError as exc:
        handle.close()
        raise OutboxError(f"{outbox_path}: cannot claim the outbox ({path}: {exc.strerror})") from None
    if writable:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
    return handle


def claimed_by(outbox_path: Path) -> str | None:
    """The pid of the process using the outbox ('unknown' when it could not write it), or None when none does."""
    try:
        with open(claim_path(outbox_path)) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _holder(handle)
            return None
    except OSError:
        return None


def _holder(handle: TextIO) -> str:
    """The pid written in a claimed file, if that process is alive: one that claimed the file without being able to
    write it (see :func:`claim`) leaves an earlier, finished process's pid there, not to be named (nor killed)."""
    handle.seek(0)
    text = handle.read().strip()
    if not (text.isascii() and text.isdigit()) or int(text) == 0:
        return "unknown"
    try:
        os.kill(int(text), 0)
    except PermissionError:
        return text  # alive, another user's
    except (OSError, OverflowError):
        return "unknown"
    return text


def _age_from_column(text: str | None) -> AgeCells | None:
    """A bucket's age cells as :meth:`Outbox.add` stored them (JSON ``[[gender, band, people], ...]``); ValueError
    saying what is wrong with anything else."""
    if text is None:
        return None
    try:
        cells = json.loads(text)
    except ValueError:
        raise ValueError(f"are not JSON ({text[:40]!r})") from None
    if not isinstance(cells, list):
        raise ValueError(f"are not a list ({text[:40]!r})")
    table: dict[tuple[str, str], int] = {}
    for cell in cells:
        if not (isinstance(cell, list) and len(cell) == 3):
            raise ValueError(f"hold {cell!r}, not [gender, band, people]")
        gender, band, people = cell
        if gender not in GENDER_DECISIONS or band not in AGE_DECISIONS:
            raise ValueError(f"hold an unknown gender or band ({gender!r}, {band!r})")
        if isinstance(people, bool) or not isinstance(people, int) or not 0 <= people <= MAX_PEOPLE_PER_BUCKET:
            raise ValueError(f"hold {people!r} people")
        table[(gender, band)] = table.get((gender, band), 0) + people
    return age_cells(table)
