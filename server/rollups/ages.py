"""The age cells of each hourly cell (``rollup_hourly_age``): people per gender decision × age band, kept
by ingest's deltas beside the hourly cell and released by footfall.server.release.release_age_cells.

A bucket whose aggregate carried no ``age`` (an older agent, a bundle without an age head, a 'gender-only' or
'counts-only' site) estimated no age: its people are age 'unknown' here, so each gender's bands always add up to
that gender's count in ``rollup_hourly`` and visitor totals stay whole."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import cast

from footfall.core.wire import GENDER_DECISIONS
from footfall.server.release import release_age_cells
from footfall.server.sql import insert_for
from footfall.server.tables import Bucket, BucketAge, HourlyAge, HourlyRollup
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

# (zone_pk, UTC hour start, gender decision, age decision) → change in people
AgeDeltas = dict[tuple[int, int, str, str], int]
# gender decision → age decision → people
AgeTable = Mapping[str, Mapping[str, int]]


def unbanded(female: int, male: int, unknown: int) -> dict[str, dict[str, int]]:
    """The age table of people whose age nobody estimated: all of each gender in band 'unknown'."""
    return {gender: {"unknown": count} for gender, count in zip(GENDER_DECISIONS, (female, male, unknown), strict=True)}


def add_table(deltas: AgeDeltas, zone_pk: int, hour: int, table: AgeTable, sign: int) -> None:
    for gender, bands in table.items():
        for band, people in bands.items():
            if people:
                deltas[(zone_pk, hour, gender, band)] += sign * people


BucketKey = tuple[str, str, int, int]  # (agent_id, camera_id, zone_pk, bucket_start)


def stored_tables(session: Session, keys: Iterable[BucketKey]) -> dict[BucketKey, AgeTable]:
    """The age tables held for the buckets ``keys`` that have one (their aggregate carried ``age``)."""
    found: dict[BucketKey, AgeTable] = {}
    table = BucketAge.__table__
    columns = (table.c.agent_id, table.c.camera_id, table.c.zone_pk, table.c.bucket_start)
    wanted = list(keys)
    for offset in range(0, len(wanted), 500):
        query = select(*columns, table.c.gender, table.c.band, table.c.people).where(
            tuple_(*columns).in_(wanted[offset : offset + 500])
        )
        for agent, camera, zone_pk, start, gender, band, people in session.execute(query):
            held = found.setdefault((agent, camera, zone_pk, start), defaultdict(dict))
            cast(dict[str, dict[str, int]], held)[gender][band] = int(people)
    return found


def replace_tables(session: Session, replaced: list[BucketKey], rows: list[dict[str, object]]) -> None:
    """Deletes the age rows of the buckets ``replaced`` (stored again under a higher seq) and inserts ``rows``."""
    table = BucketAge.__table__
    columns = (table.c.agent_id, table.c.camera_id, table.c.zone_pk, table.c.bucket_start)
    for offset in range(0, len(replaced), 500):
        session.execute(table.delete().where(tuple_(*columns).in_(replaced[offset : offset + 500])))
    if rows:
        session.execute(table.insert(), rows)


def apply_age_deltas(
    session: Session, deltas: AgeDeltas, k_of_zone: dict[int, int], hours: Iterable[tuple[int, int]] = ()
) -> None:
    """Adds ``deltas`` to the age cells and recomputes what every age cell of the touched hours, and of ``hours``
    (zone, hour: the hourly cells whose release the caller just updated, whose bands follow it even where their
    band counts did not change), releases, each with its site's k. The caller holds the hourly cells locked and
    has updated their release."""
    changed = {key: delta for key, delta in deltas.items() if delta}
    table = HourlyAge.__table__
    if changed:
        insert = insert_for(session)
        statement = insert(table)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["zone_pk", "hour_start", "gender", "band"],
                set_={"people": table.c.people + statement.excluded.people},
            ),
            [
                {"zone_pk": z, "hour_start": h, "gender": g, "band": b, "people": people, "released_people": 0}
                for (z, h, g, b), people in sorted(changed.items())
            ],
        )
    hours_by_k: dict[int, set[tuple[int, int]]] = defaultdict(set)
    for zone_pk, hour in [*((z, h) for z, h, _, _ in changed), *hours]:
        hours_by_k[k_of_zone[zone_pk]].add((zone_pk, hour))
    for k, hours_of_k in sorted(hours_by_k.items()):
        cells = sorted(hours_of_k)
        for offset in range(0, len(cells), 500):
            release_age_cells(session, k, tuple_(table.c.zone_pk, table.c.hour_start).in_(cells[offset : offset + 500]))


def raw_vs_ages(session: Session, since: int = 0) -> list[tuple[object, ...]]:
    """Age cells whose people differ from the sum of their raw buckets (each bucket's age table, or all of it age
    'unknown' when its aggregate carried none), and (zone, hour, gender) whose bands do not add up to the
    hourly cell's gender count (empty when consistent). Raw buckets before ``since`` may have been purged."""
    hour = Bucket.bucket_start - Bucket.bucket_start % 3600
    raw: AgeDeltas = defaultdict(int)
    held = {
        (agent, camera, zone_pk, start)
        for agent, camera, zone_pk, start in session.execute(
            select(BucketAge.agent_id, BucketAge.camera_id, BucketAge.zone_pk, BucketAge.bucket_start).distinct()
        )
    }
    for agent, camera, zone_pk, start, cell_hour, female, male, unknown in session.execute(
        select(
            Bucket.agent_id,
            Bucket.camera_id,
            Bucket.zone_pk,
            Bucket.bucket_start,
            hour,
            Bucket.female,
            Bucket.male,
            Bucket.unknown,
        ).where(Bucket.bucket_start >= since)
    ):
        if (agent, camera, zone_pk, start) not in held:
            add_table(raw, zone_pk, int(cell_hour), unbanded(female, male, unknown), 1)
    a = BucketAge
    age_hour = (a.bucket_start - a.bucket_start % 3600).label("hour")
    for zone_pk, cell_hour, gender, band, people in session.execute(
        select(a.zone_pk, age_hour, a.gender, a.band, func.sum(a.people))
        .where(a.bucket_start >= since)
        .group_by(a.zone_pk, age_hour, a.gender, a.band)
    ):
        raw[(zone_pk, int(cell_hour), gender, band)] += int(people)
    h = HourlyAge
    kept = {
        (zone_pk, int(start), gender, band): int(people)
        for zone_pk, start, gender, band, people in session.execute(
            select(h.zone_pk, h.hour_start, h.gender, h.band, h.people).where(h.hour_start >= since)
        )
    }
    problems: list[tuple[object, ...]] = [
        (key, raw.get(key, 0), kept.get(key, 0))
        for key in raw.keys() | kept.keys()
        if raw.get(key, 0) != kept.get(key, 0)
    ]
    by_gender: dict[tuple[int, int, str], int] = defaultdict(int)
    for (zone_pk, start, gender, _), people in kept.items():
        by_gender[(zone_pk, start, gender)] += people
    r = HourlyRollup
    for zone_pk, start, *counts in session.execute(
        select(r.zone_pk, r.hour_start, r.female, r.male, r.unknown).where(r.hour_start >= since)
    ):
        for gender, count in zip(GENDER_DECISIONS, counts, strict=True):
            banded = by_gender.get((zone_pk, int(start), gender), 0)
            if banded != count:
                problems.append(((zone_pk, int(start), gender), "bands", banded, count))
    return problems
