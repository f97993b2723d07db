"""Retention: raw minute buckets older than N days are deleted; hourly and daily rollups are kept forever.

The cut is aligned to a UTC day and recorded as the ``raw_purged_before`` watermark: ingest refuses
buckets older than it, because their hours are final in the rollups and a re-inserted raw row could no
longer be reconciled with the one that was deleted (it would double-count).

A site may keep its raw buckets for fewer days than the server (``sites.retention_days``, admin API); it then
has a watermark of its own (``raw_purged_before:<site>``), which ingest applies to that site's buckets.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, cast

from footfall.core.logs import log_event
from footfall.server.db import Database
from footfall.server.ingest import PURGED_BEFORE_KEY
from footfall.server.sql import insert_for
from footfall.server.tables import Bucket, DeadLetter, Meta, Site, Zone
from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.orm import Session

logger = logging.getLogger("footfall.server.retention")
DAY = 86_400
PURGE_STEP_S = 7 * DAY  # the raw buckets one purge transaction deletes, per zone: a week of minute buckets


@dataclass(frozen=True)
class RetentionResult:
    cutoff: int
    raw_deleted: int
    dead_letters_deleted: int


def run_retention(
    db: Database, days: int | None, now: float | None = None, dead_letter_days: int = 90
) -> RetentionResult:
    """Deletes raw buckets older than ``days`` (the server's retention; None: the server keeps them forever), or
    than a site's own ``retention_days`` where an operator set a shorter one (admin API), and dead letters older
    than ``dead_letter_days``.

    The watermarks move first, in a transaction of their own: from then on ingest refuses what they leave out, so
    the buckets below them are deleted in short transactions (a zone and at most a week of buckets each) without
    any arriving in between. One transaction for everything held the write lock, and with it every ingest, for as
    long as the first purge of a year of buckets took."""
    if days is not None and days < 1:
        raise ValueError("retention needs at least 1 day of raw buckets")
    now = time.time() if now is None else now
    day_start = int(now) // DAY * DAY
    purges: list[tuple[int, int]] = []  # (zone_pk, watermark) of every zone with buckets to delete
    with db.write() as session:
        watermark = 0 if days is None else _advance(session, PURGED_BEFORE_KEY, day_start - days * DAY)
        for site_id, own_days in session.execute(select(Site.site_id, Site.retention_days)).all():
            site_mark = watermark
            if own_days is not None and (days is None or own_days < days):
                # Its own watermark: ingest refuses this site's buckets before it (footfall.server.ingest).
                site_mark = _advance(session, f"{PURGED_BEFORE_KEY}:{site_id}", day_start - own_days * DAY)
            if site_mark:  # 0: kept forever
                purges += [
                    (zone_pk, site_mark) for zone_pk in session.scalars(select(Zone.id).where(Zone.site_id == site_id))
                ]
    raw_deleted = sum(_purge_zone(db, zone_pk, mark) for zone_pk, mark in purges)
    with db.write() as session:
        dead = _deleted(
            session.execute(delete(DeadLetter).where(DeadLetter.received_at < int(now) - dead_letter_days * DAY))
        )
    log_event(logger, logging.INFO, "retention done", cutoff=watermark, raw_deleted=raw_deleted, dead_letters=dead)
    return RetentionResult(watermark, raw_deleted, dead)


def _purge_zone(db: Database, zone_pk: int, watermark: int) -> int:
    """Deletes the zone's raw buckets before ``watermark``, a week of them per transaction (the (zone_pk,
    bucket_start) index finds them); returns how many."""
    deleted = 0
    while True:
        with db.write() as session:
            oldest = session.scalar(select(func.min(Bucket.bucket_start)).where(Bucket.zone_pk == zone_pk))
            if oldest is None or oldest >= watermark:
                return deleted
            upto = min(watermark, int(oldest) + PURGE_STEP_S)
            deleted += _deleted(
                session.execute(delete(Bucket).where(Bucket.zone_pk == zone_pk, Bucket.bucket_start < upto))
            )


def _deleted(result: object) -> int:
    # Session.execute() is typed to give a Result; for a DELETE it is a CursorResult, with rowcount.
    return cast(CursorResult[Any], result).rowcount or 0


def _advance(session: Session, key: str, cutoff: int) -> int:
    """Moves the watermark ``key`` (meta) up to ``cutoff``, never back (a longer retention set later cannot bring
    deleted buckets back, and their hours stay final); returns it."""
    insert = insert_for(session)
    previous = session.scalar(select(Meta.value).where(Meta.key == key))
    watermark = max(cutoff, int(previous) if previous else 0)
    statement = insert(Meta.__table__).values(key=key, value=str(watermark))
    session.execute(statement.on_conflict_do_update(index_elements=["key"], set_={"value": str(watermark)}))
    return watermark


class RetentionLoop:
    """Runs retention every ``interval_s`` in a background thread while the server serves; also on a server
    that keeps raw buckets forever (``days`` None), for the sites an operator gave a retention of their own."""

    def __init__(self, db: Database, days: int | None, interval_s: float = 3600.0):
        self.db, self.days, self.interval_s = db, days, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)

    def start(self) -> RetentionLoop:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                run_retention(self.db, self.days)
            except Exception as exc:
                log_event(logger, logging.ERROR, "retention failed", error=repr(exc)[:300])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
