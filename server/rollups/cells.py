"""The rollups behind every read: hourly cells (raw counts and what of them is released), daily sums and slot
running totals of released values. Ingest adds to them through :func:`apply_hourly_deltas`; the rest rebuilds
them (after a time-zone change or a change of k) and checks that they agree with what they summarise."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from types import SimpleNamespace

import numpy as np
from footfall.server.classifiers import (
    ClassifierDeltas,
    apply_classifier_deltas,
    reattribute_stale,
)
from footfall.server.db import Database
from footfall.server.localtime import (
    HOUR,
    local_day,
    local_hour_of_week,
    local_midnight,
    utc_week,
)
from footfall.server.release import (
    RELEASED_FIELDS,
    WITHHELD_CELL,
    CellRelease,
    camera_parts,
    effective_k,
    people_held_back,
    release_age_cells,
    released_values,
    step_release,
    withhold_cameras_with_hidden_parts,
)
from footfall.server.rollups.ages import AgeDeltas, apply_age_deltas
from footfall.server.rollups.slots import SLOT_SOURCES, SlotDeltas, apply_slot_deltas, rebuild_slots
from footfall.server.sql import insert_for, is_postgres, locked
from footfall.server.tables import (
    CameraPart,
    DailyRollup,
    HourlyAge,
    HourlyRollup,
    MarkedCell,
    Meta,
    Site,
    Zone,
)
from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    false,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session

COUNTS = ("people", "female", "male", "unknown", "dwell_samples", "dwell_seconds")
RELEASE_K_KEY = "release_k"  # meta: the k the released columns were computed with

# The cells of a site at one change of k, each marked seen or not (_mark_seen).
MARKED_CELLS = MarkedCell.__table__

# (zone_pk, UTC hour start) → deltas of COUNTS
HourlyDeltas = dict[tuple[int, int], list[float]]
# (zone_pk, camera id, UTC hour start) → delta of the people that camera saw pass that zone (not a camera's own id)
CameraPartDeltas = dict[tuple[int, str, int], int]


def _as_counts(values: list[float], names: tuple[str, ...]) -> dict[str, float]:
    """Integers for counts, a float for the dwell-seconds sums."""
    return {
        name: (value if name.endswith("dwell_seconds") else round(value))
        for name, value in zip(names, values, strict=True)
    }


def _released(
    session: Session,
    keys: list[tuple[int, int]],
    *,
    lock: bool = False,
    frozen: set[tuple[int, int]] | None = None,
    zone_pks: list[int] | None = None,
) -> dict[tuple[int, int], list[float]]:
    """The released values of the hourly cells ``keys``; with ``lock``, PostgreSQL locks the rows (in key
    order) until the transaction ends, so no other replica changes them between this read and our update. With
    ``frozen``, the frozen cells among them (:func:`release_site`) are added to it, from the same read. With
    ``zone_pks`` (the zones all of ``keys`` lie in), every cell of those zones is read at once and ``keys`` kept:
    a site's seen cells are most of its cells, and looked up 500 at a time they took a third of a change of k."""
    h = HourlyRollup.__table__
    found: dict[tuple[int, int], list[float]] = {}
    columns = (h.c.zone_pk, h.c.hour_start, h.c.shown.is_not(None), *(h.c[name] for name in RELEASED_FIELDS))
    for condition in _cell_conditions(h, keys, zone_pks):
        query = select(*columns).where(condition)
        if lock:
            query = locked(query.order_by(h.c.zone_pk, h.c.hour_start), session)
        for zone_pk, hour_start, is_frozen, *values in session.execute(query):
            found[(zone_pk, hour_start)] = [float(v) for v in values]
            if is_frozen and frozen is not None:
                frozen.add((zone_pk, hour_start))
    if zone_pks is not None:
        wanted = set(keys)
        found = {key: values for key, values in found.items() if key in wanted}
        if frozen is not None:
            frozen &= wanted
    return found


def _cell_conditions(
    table: Table, keys: list[tuple[int, int]], zone_pks: list[int] | None
) -> Iterator[ColumnElement[bool]]:
    """WHERE clauses that together select the rows of ``table`` of the cells ``keys``: 500 keys each, or, given the
    zones the keys lie in, every row of 500 zones each (a superset the caller narrows to ``keys``)."""
    if zone_pks is None:
        for offset in range(0, len(keys), 500):
            yield tuple_(table.c.zone_pk, table.c.hour_start).in_(keys[offset : offset + 500])
    elif keys:
        for offset in range(0, len(zone_pks), 500):
            yield table.c.zone_pk.in_(zone_pks[offset : offset + 500])


def _released_bands(
    session: Session, keys: list[tuple[int, int]], zone_pks: list[int] | None = None
) -> dict[tuple[int, int], dict[tuple[str, str], int]]:
    """The released people of the age cells of the hourly cells ``keys``, by (gender, band); ``zone_pks`` as for
    :func:`_released`."""
    a = HourlyAge.__table__
    found: dict[tuple[int, int], dict[tuple[str, str], int]] = {key: {} for key in keys}
    for condition in _cell_conditions(a, keys, zone_pks):
        query = select(a.c.zone_pk, a.c.hour_start, a.c.gender, a.c.band, a.c.released_people).where(
            condition, a.c.released_people > 0
        )
        for zone_pk, hour_start, gender, band, people in session.execute(query):
            cell = found.get((zone_pk, hour_start))
            if cell is not None:
                cell[(gender, band)] = int(people)
    return found


def _apply_camera_parts(session: Session, deltas: CameraPartDeltas) -> dict[tuple[int, int], int]:
    """Adds ``deltas`` to ``rollup_camera_parts``; returns the camera cells with a share of a zone hour they change
    (camera zone, UTC hour), each with the zone of one such part (the same site: its time zone and k are the
    camera's)."""
    parts = CameraPart.__table__
    statement = insert_for(session)(parts)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["zone_pk", "camera_id", "hour_start"],
            set_={"people": parts.c.people + statement.excluded.people},
        ),
        [{"zone_pk": z, "camera_id": c, "hour_start": h, "people": n} for (z, c, h), n in sorted(deltas.items())],
    )
    # Every camera feeding a changed zone hour (a part of 0 included): another camera's share decides its release too.
    touched = sorted({(zone_pk, hour) for zone_pk, _, hour in deltas})
    sharing = set(deltas)
    for offset in range(0, len(touched), 500):
        sharing.update(
            (zone_pk, camera_id, hour)
            for zone_pk, camera_id, hour in session.execute(
                select(parts.c.zone_pk, parts.c.camera_id, parts.c.hour_start).where(
                    tuple_(parts.c.zone_pk, parts.c.hour_start).in_(touched[offset : offset + 500])
                )
            )
        )
    site_of = dict(
        session.execute(select(Zone.id, Zone.site_id).where(Zone.id.in_({zone_pk for zone_pk, _ in touched}))).all()
    )
    wanted = {(site_of[zone_pk], camera_id) for zone_pk, camera_id, _ in sharing}
    camera_pk = {
        (site_id, zone_id): pk
        for pk, site_id, zone_id in session.execute(
            select(Zone.id, Zone.site_id, Zone.zone_id).where(
                Zone.measure == "camera", tuple_(Zone.site_id, Zone.zone_id).in_(sorted(wanted))
            )
        )
    }
    cells: dict[tuple[int, int], int] = {}
    for zone_pk, camera_id, hour in sorted(sharing):
        pk = camera_pk.get((site_of[zone_pk], camera_id))
        if pk is not None:
            cells.setdefault((pk, hour), zone_pk)
    return cells


def _camera_cells(session: Session, keys: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The cells among ``keys`` that count a camera's distinct people (``measure: camera``)."""
    cameras = set(session.scalars(select(Zone.id).where(Zone.id.in_({z for z, _ in keys}), Zone.measure == "camera")))
    return [key for key in keys if key[0] in cameras]


def _holding(session: Session, keys: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """The cells among ``keys`` that release people other than their raw count (late people held back)."""
    h = HourlyRollup.__table__
    found: set[tuple[int, int]] = set()
    for offset in range(0, len(keys), 500):
        found.update(
            (zone_pk, hour)
            for zone_pk, hour in session.execute(
                select(h.c.zone_pk, h.c.hour_start).where(
                    tuple_(h.c.zone_pk, h.c.hour_start).in_(keys[offset : offset + 500]), people_held_back(h.c)
                )
            )
        )
    return found


def _new_weeks_observed(
    session: Session, created: set[tuple[int, int]], local_how: dict[tuple[int, int], int]
) -> set[tuple[int, int]]:
    """The created cells that are the first of their zone, UTC week and local hour of week: each makes one more week
    observed in its slot. When clocks go back, a local hour happens twice (two UTC hours, one after the other):
    the week is one observation, not two, or the slot's mean per week would halve."""
    h = HourlyRollup.__table__
    neighbours = sorted({(z, hour + step) for z, hour in created for step in (-HOUR, HOUR)})
    found: dict[tuple[int, int], int] = {}
    for offset in range(0, len(neighbours), 500):
        for z, hour, how in session.execute(
            select(h.c.zone_pk, h.c.hour_start, h.c.local_how).where(
                tuple_(h.c.zone_pk, h.c.hour_start).in_(neighbours[offset : offset + 500])
            )
        ):
            found[(z, hour)] = how
    first = set()
    for z, hour in created:
        how = local_how[(z, hour)]
        before, after = (z, hour - HOUR), (z, hour + HOUR)
        if found.get(before) == how:
            continue  # the earlier of the two is on record (or made in this batch): the week is counted by it
        if found.get(after) == how and after not in created:
            continue
        first.add((z, hour))
    return first


def _withhold_cameras(session: Session, cameras: list[tuple[int, int]], k_of_zone: dict[int, int]) -> None:
    """footfall.server.release.withhold_cameras_with_hidden_parts on the camera cells ``cameras``, each with its
    site's k."""
    h = HourlyRollup.__table__
    by_k: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for key in cameras:
        by_k[k_of_zone[key[0]]].append(key)
    for k, cells in by_k.items():
        for offset in range(0, len(cells), 500):
            where = tuple_(h.c.zone_pk, h.c.hour_start).in_(cells[offset : offset + 500])
            withhold_cameras_with_hidden_parts(session, k, where)


def _hold_seen_cells(
    session: Session,
    seen: list[tuple[int, int]],
    before: dict[tuple[int, int], list[float]],
    bands_before: dict[tuple[int, int], dict[tuple[str, str], int]],
    after: dict[tuple[int, int], list[float]],
    k_of_zone: dict[int, int],
    frozen: set[tuple[int, int]],
    readable: set[tuple[int, int]],
) -> None:
    """Makes each cell of ``seen`` (cells readers have seen) move in steps of at least k (footfall.server.release.
    step_release): where the rule's new release would not, writes back what readers saw, and sets ``after``
    to what the cell now releases. A ``frozen`` cell (:func:`release_site`) keeps what readers saw, whatever the
    step. A held cell takes the bundle its buckets give like any other: which bundles sent
    buckets is fleet configuration, so a late bucket that changes it shows no person
    (footfall.server.classifiers). The people of a split readers saw withheld go on record
    (:func:`_record_withheld_splits`) where a read may have covered the cell (``readable``)."""
    bands_after = _released_bands(session, seen)
    held: dict[tuple[int, int], CellRelease] = {}
    split_withheld: dict[tuple[int, int], float] = {}
    for key in seen:
        shown, candidate = (
            CellRelease(tuple(before[key]), bands_before[key]),
            CellRelease(tuple(after[key]), bands_after[key]),
        )
        if shown.split_withheld and key in readable:
            split_withheld[key] = shown.value("released_people")
        final = shown if key in frozen else step_release(shown, candidate, k_of_zone[key[0]])
        if final != candidate:
            held[key] = final
            after[key] = list(final.values)
    _write_release(session, held)
    _record_withheld_splits(session, split_withheld)


def _record_withheld_splits(session: Session, people: dict[tuple[int, int], float]) -> None:
    """Records, for each seen cell of ``people`` whose split readers saw withheld, the people it showed then, unless
    an earlier sighting of the same run is on record (``rollup_hourly.split_withheld_people``): late people never
    show its split (footfall.server.release.keep_withheld), and the corrected share reads it at the size readers saw
    it withheld. A run ends where the cell shows its split again (:func:`_end_withheld_runs`)."""
    if not people:
        return
    h = HourlyRollup.__table__
    session.execute(
        update(h)
        .where(h.c.zone_pk == bindparam("z"), h.c.hour_start == bindparam("h"), h.c.split_withheld_people.is_(None))
        .values(split_withheld_people=bindparam("n")),
        [{"z": z, "h": hour, "n": round(n)} for (z, hour), n in sorted(people.items())],
    )


def _end_withheld_runs(session: Session, where: ColumnElement[bool]) -> None:
    """Forgets the recorded size of the cells (of ``where``) whose split shows again: a cell frozen by a change of k
    thawed (only a change of k can show it: ingest keeps a seen withheld split withheld, footfall.server.release.
    keep_withheld). A later withheld split starts a run of its own, and the record of the earlier one, made when a
    late person came and kept past its end, would tell the estimate (and whoever reads people_corrected) that a late
    person had come (found in review). A cell a stricter k hides keeps its record: a seen cell shows again only by
    thawing to what readers saw, the same run (its split read at that size, as before the round trip of k)."""
    h = HourlyRollup.__table__
    split_shown = (h.c.released_female + h.c.released_male + h.c.released_unknown) > 0
    session.execute(
        update(h).where(where, h.c.split_withheld_people.is_not(None), split_shown).values(split_withheld_people=None)
    )


def apply_hourly_deltas(
    session: Session,
    hourly: HourlyDeltas,
    tz_of_zone: dict[int, str],
    k_of_zone: dict[int, int],
    classifiers: ClassifierDeltas | None = None,
    ages: AgeDeltas | None = None,
    seen_until: Callable[[], int | None] | None = None,
    camera_parts: CameraPartDeltas | None = None,
    read_until: Callable[[], int | None] | None = None,
) -> None:
    """Adds raw deltas to their hourly cells, recomputes what those cells release (each with its site's
    effective k, ``k_of_zone``), and adds the change in released values to the daily rollup and the slot running
    totals, in the caller's transaction. A cell whose hour ended by what ``seen_until`` returns once the cells are
    locked (footfall.server.release.seen_until; None, or no ``seen_until``: answers are live) may have been read,
    and moves in steps of at least k (footfall.server.release.step_release), its bundle attribution with it.

    Released values are not additive (a cell of 4 people releases nothing, of 5 releases 5), so the change is
    read off the cell before and after, with the cells locked in between: replicas ingesting into the same
    hour take turns. ``classifiers`` (raw people and buckets per cell and deciding bundle) re-attribute the cells
    they touch (footfall.server.classifiers) while the cells are locked: a bucket sent again by another bundle, an
    empty one, or one without gender may change which bundle its cell is attributed to without changing its
    counts; an empty bucket creates its cell (0 people: the hour was watched). ``ages`` (people per
    cell, gender and age band; footfall.server.rollups.ages) are added and released the same way, after the
    cells' release, which theirs depends on: a bucket sent again with other bands changes them alone.
    ``camera_parts`` (people per zone, hour and the camera that saw them) are added to ``rollup_camera_parts``, and
    the camera cells they belong to are released again with their new parts, changed or not
    (footfall.server.release.withhold_cameras_with_hidden_parts): a zone's late bucket can withhold its camera's
    hour."""
    deciders: ClassifierDeltas = classifiers or {}
    age_deltas: AgeDeltas = ages or {}
    changed = {key: delta for key, delta in hourly.items() if any(delta)}
    # Every bucket's part, a quiet one too: a part of 0 records that the camera watched that zone that hour. Which
    # cameras feed a zone is then configuration, not a count (release.withhold_cameras_with_hidden_parts).
    part_deltas = dict(camera_parts or {})
    if part_deltas:
        tz_of_zone, k_of_zone = dict(tz_of_zone), dict(k_of_zone)
        for camera_cell, part_zone in _apply_camera_parts(session, part_deltas).items():
            changed.setdefault(camera_cell, [0.0] * len(COUNTS))
            tz_of_zone.setdefault(camera_cell[0], tz_of_zone[part_zone])
            k_of_zone.setdefault(camera_cell[0], k_of_zone[part_zone])
    for zone_pk, hour_start, _ in (key for key, decided in deciders.items() if decided.people):
        changed.setdefault((zone_pk, hour_start), [0.0] * len(COUNTS))
    # An empty bucket makes its hour a cell too, of 0 people: the camera watched and nobody came. Means per hour of
    # the week count it (a quiet Monday 09:00 is a 0, not a week left out), and the bundles that sent the hour's
    # buckets are on record when people come.
    for zone_pk, hour_start, _ in (key for key, decided in deciders.items() if decided.buckets):
        changed.setdefault((zone_pk, hour_start), [0.0] * len(COUNTS))
    for zone_pk, hour_start, _, _ in (key for key, people in age_deltas.items() if people):
        changed.setdefault((zone_pk, hour_start), [0.0] * len(COUNTS))
    if not changed:
        return
    keys = sorted(changed)
    insert = insert_for(session)
    table = HourlyRollup.__table__
    local_how = {key: local_hour_of_week(key[1], tz_of_zone[key[0]]) for key in keys}
    # ON CONFLICT DO NOTHING returns only the rows this transaction created: each is one more hour observed in
    # its slot (a concurrent insert of the same hour waits for the other transaction, then returns nothing).
    created = {
        (row[0], row[1])
        for row in session.execute(
            insert(table)
            .on_conflict_do_nothing(index_elements=["zone_pk", "hour_start"])
            .returning(table.c.zone_pk, table.c.hour_start),
            [
                {
                    "zone_pk": z,
                    "hour_start": h,
                    "local_how": local_how[(z, h)],
                    **dict.fromkeys((*COUNTS, *RELEASED_FIELDS), 0),
                }
                for z, h in keys
            ],
        )
    }
    frozen: set[tuple[int, int]] = set()
    before = _released(session, keys, lock=True, frozen=frozen)
    # Cells readers may have seen: their hour was readable before this change (the clock read once the cells are
    # locked, as a long wait for the lock may take the hour past it), and they release something.
    seen_end = seen_until() if seen_until is not None else None
    seen = [
        key
        for key in keys
        if key in frozen or (seen_end is not None and key[1] + HOUR <= seen_end and before[key][0] > 0)
    ]
    # Of those, the cells a read may already have covered (footfall.server.release.read_until): only what readers
    # can have seen goes on record (_record_withheld_splits); a size inside the margin before the first read would
    # tell of a step nobody could see (found in review).
    read_end = read_until() if read_until is not None else seen_end
    readable = {key for key in seen if key in frozen or (read_end is not None and key[1] + HOUR <= read_end)}
    bands_before = _released_bands(session, seen) if seen else {}
    # One UPDATE per cell: SET sees the old row, so the release is computed from the new counts written out as
    # old + delta.
    added = {name: table.c[name] + bindparam(f"d_{name}") for name in COUNTS}
    session.execute(
        update(table)
        .where(table.c.zone_pk == bindparam("z"), table.c.hour_start == bindparam("h"))
        .values({**added, **released_values(SimpleNamespace(**added), bindparam("k"))}),
        [
            {"z": z, "h": h, "k": k_of_zone[z], **{f"d_{n}": v for n, v in _as_counts(changed[(z, h)], COUNTS).items()}}
            for z, h in keys
        ],
    )
    apply_classifier_deltas(session, deciders)
    apply_age_deltas(session, age_deltas, k_of_zone, keys)
    after = _released(session, keys)
    # Zones first, then their cameras: whether a camera is withheld depends on what its zones release, held late
    # people included (footfall.server.release.withhold_cameras_with_hidden_parts).
    cameras = _camera_cells(session, keys)
    camera_set = set(cameras)
    zones_seen = [key for key in seen if key not in camera_set]
    if zones_seen:
        _hold_seen_cells(session, zones_seen, before, bands_before, after, k_of_zone, frozen, readable)
    cameras_seen = [key for key in seen if key in camera_set]
    # A seen camera held back makes the cameras sharing its zones withheld in turn: until no more are held.
    held: set[tuple[int, int]] = set()
    for _ in range(len(cameras) + 1):
        if not cameras:
            break
        _withhold_cameras(session, cameras, k_of_zone)
        apply_age_deltas(session, {}, k_of_zone, cameras)
        after.update(_released(session, cameras))
        if not cameras_seen:
            break
        _hold_seen_cells(session, cameras_seen, before, bands_before, after, k_of_zone, frozen, readable)
        now_held = _holding(session, cameras_seen)
        if now_held == held:
            break
        held = now_held
    daily: dict[tuple[int, date], list[float]] = defaultdict(lambda: [0.0] * len(RELEASED_FIELDS))
    slot_deltas: SlotDeltas = {}
    slot_sources = [RELEASED_FIELDS.index(name) for name in SLOT_SOURCES]
    observed = _new_weeks_observed(session, created, local_how)
    for key in keys:
        delta = [new - was for new, was in zip(after[key], before[key], strict=True)]
        day = daily[(key[0], local_day(key[1], tz_of_zone[key[0]]))]
        for i, value in enumerate(delta):
            day[i] += value
        # Summed, not set: when clocks go back, two UTC hours of one week share a local hour of week.
        slot = slot_deltas.setdefault((key[0], utc_week(key[1]), local_how[key]), [0] * (len(slot_sources) + 1))
        for i, value in enumerate((*(round(delta[j]) for j in slot_sources), int(key in observed))):
            slot[i] += value
    apply_slot_deltas(session, slot_deltas)
    daily_table = DailyRollup.__table__
    statement = insert(daily_table)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["zone_pk", "day"],
            set_={name: daily_table.c[name] + statement.excluded[name] for name in RELEASED_FIELDS},
        ),
        [
            {"zone_pk": zone_pk, "day": day, **_as_counts(values, RELEASED_FIELDS)}
            for (zone_pk, day), values in sorted(daily.items())
        ],
    )


def release_k(session: Session) -> int | None:
    """The k the stored released values were computed with (None before the first computation)."""
    value = session.scalar(select(Meta.value).where(Meta.key == RELEASE_K_KEY))
    return int(value) if value is not None else None


def ensure_release(db: Database, k: int, seen_end: int | None) -> bool:
    """Recomputes every released value, daily sum and slot running total when they were computed with
    another server k (or never), each site with its effective k, as :func:`release_site` does; returns whether it
    did. The server calls this on start."""
    with db.write() as session:
        # The sites' k are read after the turn: read before, a change of one site's k that held the turn would commit
        # and then be released again here with the k it replaced.
        _take_turn(session)
        if release_k(session) == k:  # another replica's start did it meanwhile
            return False
        if is_postgres(session):
            # Statistics first: a database just restored or bulk-loaded has none until autovacuum comes by, and on
            # none PostgreSQL planned the cameras' release (withhold_cameras_with_hidden_parts) as nested loops,
            # 22 s instead of 13 s over 90 days of 200 zones and 50 cameras (bench/server_bench.py). ANALYZE samples
            # at most 30,000 rows a table: 0.5 s there.
            session.connection().exec_driver_sql("ANALYZE zones, rollup_hourly, rollup_camera_parts, rollup_hourly_age")
        for site_id, site_k, tz in session.execute(select(Site.site_id, Site.k, Site.timezone)).all():
            _release_site(session, site_id, effective_k(site_k, k), tz, seen_end)
        # Cells of zones without a site row do not exist (zones reference sites), so every cell is covered.
        session.merge(Meta(key=RELEASE_K_KEY, value=str(k)))
    return True


def _take_turn(session: Session) -> None:
    """One change of k at a time on the whole server (PostgreSQL; SQLite has one writer anyway), until the
    transaction ends: each ANALYZEs MARKED_CELLS (_mark_seen), and that lock conflicts with itself. Taken before a
    change writes any cell, so a change waiting for its turn holds no cell the running one needs. Taken at the ANALYZE,
    the server's start releasing every site deadlocked with an admin's change of one site's k (which waited for the
    start with that site's cells written, while the start came to them)."""
    if is_postgres(session):
        session.connection().exec_driver_sql(f"LOCK TABLE {MARKED_CELLS.name} IN SHARE UPDATE EXCLUSIVE MODE")


def release_site(session: Session, site_id: str, k: int, seen_end: int | None) -> None:
    """Recomputes what the cells of one site release with ``k`` (its new effective k), and their daily sums and
    slot running totals, in the caller's transaction: an admin's change of the site's k and this recomputation
    commit together, so no read ever sees cells released with the old k beside the new k. The caller holds the
    site row locked (it just updated it), and ingest reads the site's k with a share lock, so no ingest
    transaction releases a cell of this site with the old k after this one commits.

    Cells readers may have seen (their hour ended by ``seen_end``, footfall.server.release.seen_until, and they
    release people; None: answers are live) never show a late person by it, nor whether they hold any back:

    - each takes the new rule on what it releases, never on its raw counts (which hold the late people it may be
      holding back, footfall.server.release.step_release): a stricter k hides what falls below it, a looser one
      shows nothing new of a seen hour; a seen camera is withheld where the new k withholds a seen zone it has a
      part in (judged on released values, not on raw parts);
    - one that no longer shows a value readers saw as they saw it (hidden by a stricter k) is **frozen**: what they saw
      is kept (``rollup_hourly.shown``) and the cell releases what it does whatever arrives late, since a release
      measured from its new values would show late people by differencing (7 people seen at k = 5, withheld at
      k = 10, released as 10 once 3 late people came). A later change of k starts again from what readers saw
      before the first; back at a k that shows all of it, the cell thaws and moves in steps of k again.

    Cells nobody could read yet take the new rule on their raw counts."""
    tz = session.scalar(select(Site.timezone).where(Site.site_id == site_id))
    if tz is None:
        raise ValueError(f"no site {site_id!r}")
    _release_site(session, site_id, k, tz, seen_end)


def _release_site(session: Session, site_id: str, k: int, tz: str, seen_end: int | None) -> None:
    zone_pks = list(session.scalars(select(Zone.id).where(Zone.site_id == site_id)))
    if not zone_pks:
        return
    _take_turn(session)
    h = HourlyRollup.__table__
    of_site = h.c.zone_pk.in_(zone_pks)
    # Seen: readable and releasing people, or frozen (what readers saw before an earlier change is on record).
    frozen_cell = h.c.shown.is_not(None)
    seen_cell: ColumnElement[bool] = frozen_cell
    if seen_end is not None:
        seen_cell = or_(frozen_cell, and_(h.c.hour_start + HOUR <= seen_end, h.c.released_people > 0))
    # A frozen cell starts again from what readers saw before the first change of k.
    recorded: dict[tuple[int, int], str] = {
        (z, hour): text
        for z, hour, text in session.execute(select(h.c.zone_pk, h.c.hour_start, h.c.shown).where(of_site, frozen_cell))
    }
    _write_release(session, {key: _decode_shown(text) for key, text in recorded.items()})
    _mark_seen(session, select(h.c.zone_pk, h.c.hour_start, seen_cell).where(of_site))
    m = MARKED_CELLS
    marked_seen = select(m.c.zone_pk, m.c.hour_start).where(m.c.seen.is_(True), m.c.zone_pk.in_(zone_pks))
    seen = [(z, hour) for z, hour in session.execute(marked_seen)]
    shown = _releases(session, seen, zone_pks)
    a = HourlyAge.__table__

    def marked(rows: Table, was_seen: bool) -> ColumnElement[bool]:
        """The rows of ``rows`` (hourly or age cells) of the site's seen cells, or of the others. With none seen, the
        same rows without the join, whose cost grows with the cells (age cells never lack their hourly cell)."""
        if not seen:
            return rows.c.zone_pk.in_(zone_pks) if not was_seen else false()
        return exists().where(
            m.c.zone_pk == rows.c.zone_pk, m.c.hour_start == rows.c.hour_start, m.c.seen.is_(was_seen)
        )

    # No record of withheld splits here: a change of k keeps a seen withheld split's people or hides the cell, and the
    # next late person records what readers saw (_hold_seen_cells). Recorded here, a cell inside the margin before
    # the first read would tell of a step nobody could see.
    # Cells nobody could read yet: the new k's rule on their raw counts, cameras and age cells included. A camera
    # among them with a part in a zone-hour readers saw stays withheld (_withhold_cameras_of_seen_zones).
    _release_raw(session, marked(h, was_seen=False), marked(a, was_seen=False), k, seen_zones=bool(seen))
    # Seen cells: the new k's rule on what readers saw, which can only hide. Never on their raw counts: whether a
    # cell holds late people back would show in what a looser k let it release.
    _release_shown(session, marked(h, was_seen=True), k)
    _withhold_cameras_of_hidden_zones(session, site_id, seen, shown, zone_pks)
    withhold_cameras_with_hidden_parts(session, k, marked(h, was_seen=True), thin_only=True)
    # The new rule on the bands readers saw, after their hourly cells.
    release_age_cells(session, k, marked(a, was_seen=True), from_released=True)
    for zone_pk in zone_pks:
        reattribute_stale(session, zone_pk)
    after = _releases(session, seen, zone_pks)
    # A cell that no longer shows a value readers saw as they saw it is frozen, with what they saw on record: a late
    # release measured from its new values would show late people.
    marks = []
    for key in seen:
        text = None if _keeps(shown[key], after[key]) else recorded.get(key) or _encode_shown(shown[key])
        if text != recorded.get(key):
            marks.append({"z": key[0], "h": key[1], "shown": text})
    if marks:
        session.execute(
            update(h)
            .where(h.c.zone_pk == bindparam("z"), h.c.hour_start == bindparam("h"))
            .values(shown=bindparam("shown")),
            marks,
        )
    _end_withheld_runs(session, of_site)
    rebuild_daily(session, zone_pks, tz)
    rebuild_slots(session, zone_pks)
    session.execute(delete(m).where(m.c.zone_pk.in_(zone_pks)))


def _withhold_cameras_of_hidden_zones(
    session: Session,
    site_id: str,
    seen: list[tuple[int, int]],
    shown: dict[tuple[int, int], CellRelease],
    zone_pks: list[int],
) -> None:
    """Complementary suppression on what readers saw: a seen camera cell is withheld when a zone it feeds (a part,
    0 included) was seen with people and the new k withholds it (the camera minus its other zones would give the
    zone back; and which of the zone's cameras saw someone must not show).
    Judged on released values, not on the parts' raw counts or on which zones hold late people back (footfall.
    server.release.withhold_cameras_with_hidden_parts), which would tell that late people are pending."""
    h, parts = HourlyRollup.__table__, CameraPart.__table__
    now = _released(session, seen, zone_pks=zone_pks)
    hidden = [key for key in seen if shown[key].values[0] > 0 and now[key][0] == 0]
    if not hidden:
        return
    camera_pk = {
        zone_id: pk
        for pk, zone_id in session.execute(
            select(Zone.id, Zone.zone_id).where(Zone.site_id == site_id, Zone.measure == "camera")
        )
    }
    cameras: set[tuple[int, int]] = set()
    for offset in range(0, len(hidden), 500):
        for camera_id, hour in session.execute(
            select(parts.c.camera_id, parts.c.hour_start).where(
                tuple_(parts.c.zone_pk, parts.c.hour_start).in_(hidden[offset : offset + 500])
            )
        ):
            pk = camera_pk.get(camera_id)
            if pk is not None and (pk, int(hour)) in now and now[(pk, int(hour))][0] > 0:
                cameras.add((pk, int(hour)))
    chosen = sorted(cameras)
    for offset in range(0, len(chosen), 500):
        chunk = chosen[offset : offset + 500]
        session.execute(update(h).where(tuple_(h.c.zone_pk, h.c.hour_start).in_(chunk)).values(WITHHELD_CELL))


def _release_raw(
    session: Session, cells: ColumnElement[bool], bands: ColumnElement[bool], k: int, *, seen_zones: bool
) -> None:
    """The release rule with ``k`` on the raw counts of the hourly cells ``cells`` selects, cameras included, and of
    their age cells (``bands``, the same cells' rows of ``rollup_hourly_age``). ``seen_zones``: readers may have seen
    some of the site's cells (marked in :data:`MARKED_CELLS`)."""
    h = HourlyRollup.__table__
    session.execute(update(h).where(cells).values(released_values(h.c, k)))
    withhold_cameras_with_hidden_parts(session, k, cells)
    if seen_zones:
        _withhold_cameras_of_seen_zones(session, cells)
    release_age_cells(session, k, bands)


def _withhold_cameras_of_seen_zones(session: Session, cells: ColumnElement[bool]) -> None:
    """Withholds the camera cells among the unseen hourly cells ``cells`` selects that have a part (0 included) in a
    zone-hour readers saw (:data:`MARKED_CELLS`): a camera withheld at the old k stays withheld for an hour whose zones
    readers saw, as a looser k shows nothing new of a seen hour.

    Released on its raw parts, such a camera gave back the late people a seen zone holds back (its figure minus the
    zones readers saw); withheld only where a zone holds some, it told that late people are pending. Withheld
    wherever a zone it feeds was seen, it depends on neither."""
    hourly, parts, m = HourlyRollup.__table__, CameraPart.__table__, MARKED_CELLS
    seen_part = exists().where(
        *camera_parts(Zone.__table__.alias("camera"), parts),
        m.c.zone_pk == parts.c.zone_pk,
        m.c.hour_start == parts.c.hour_start,
        m.c.seen.is_(True),
    )
    session.execute(update(hourly).where(cells, hourly.c.released_people > 0, seen_part).values(WITHHELD_CELL))


def _release_shown(session: Session, cells: ColumnElement[bool], k: int) -> None:
    """The release rule with ``k`` on what the hourly cells ``cells`` selects release now: it can only hide (their
    age cells follow once every hourly cell is settled, cameras included)."""
    h = HourlyRollup.__table__
    released = SimpleNamespace(
        **{name: h.c[f"released_{name}"] for name in ("people", "female", "male", "unknown", "dwell_samples")},
        dwell_seconds=h.c.released_dwell_seconds,
    )
    session.execute(update(h).where(cells, h.c.released_people > 0).values(released_values(released, k)))


def _mark_seen(session: Session, cells: Select[tuple[int, int, bool]]) -> None:
    """Fills :data:`MARKED_CELLS` with the hourly cells ``cells`` selects (zone_pk, hour_start, whether readers may
    have seen it), for this transaction's change of k: its statements tell seen cells from the rest by a join instead
    of one statement per 500 keys (a third of a change of k on PostgreSQL went to those lookups and their index
    scans). :func:`_release_site` deletes the rows again before the transaction commits."""
    m = MARKED_CELLS
    session.execute(m.insert().from_select(["zone_pk", "hour_start", "seen"], cells))
    if is_postgres(session):
        # Statistics of what this transaction just wrote: without them the planner guesses how many cells are seen,
        # and joined the age cells with the few unseen ones only after computing the rule for every band. (ANALYZE
        # counts the rows its own transaction inserted; _release_site holds its lock already.)
        session.connection().exec_driver_sql(f"ANALYZE {m.name}")


def _releases(
    session: Session, keys: list[tuple[int, int]], zone_pks: list[int] | None = None
) -> dict[tuple[int, int], CellRelease]:
    values, bands = _released(session, keys, zone_pks=zone_pks), _released_bands(session, keys, zone_pks)
    return {key: CellRelease(tuple(values[key]), bands[key]) for key in keys}


def _keeps(shown: CellRelease, after: CellRelease) -> bool:
    """Whether every value readers saw of a cell (each non-zero released value and band) is still released as it
    was: later steps measured from ``after`` are then measured from what they saw."""
    return all(not seen or now == seen for seen, now in zip(shown.values, after.values, strict=True)) and all(
        after.bands.get(key) == people for key, people in shown.bands.items() if people
    )


def _encode_shown(cell: CellRelease) -> str:
    """``rollup_hourly.shown``: what readers saw of a cell (its released values and bands)."""
    return json.dumps({"values": list(cell.values), "bands": sorted([g, b, n] for (g, b), n in cell.bands.items())})


def _decode_shown(text: str) -> CellRelease:
    data = json.loads(text)
    return CellRelease(tuple(data["values"]), {(g, b): int(n) for g, b, n in data["bands"]})


def _write_release(session: Session, cells: dict[tuple[int, int], CellRelease]) -> None:
    """Sets what the hourly cells ``cells`` release (values and bands) to the given ones."""
    h, a = HourlyRollup.__table__, HourlyAge.__table__
    if not cells:
        return
    session.execute(
        update(h)
        .where(h.c.zone_pk == bindparam("z"), h.c.hour_start == bindparam("h"))
        .values({name: bindparam(f"v_{name}") for name in RELEASED_FIELDS}),
        [
            {"z": z, "h": hour, **{f"v_{n}": v for n, v in _as_counts(list(cell.values), RELEASED_FIELDS).items()}}
            for (z, hour), cell in cells.items()
        ],
    )
    keys = list(cells)
    for offset in range(0, len(keys), 500):
        session.execute(
            update(a)
            .where(tuple_(a.c.zone_pk, a.c.hour_start).in_(keys[offset : offset + 500]))
            .values(released_people=0)
        )
    bands = [
        {"z": z, "h": hour, "g": gender, "b": band, "n": people}
        for (z, hour), cell in cells.items()
        for (gender, band), people in cell.bands.items()
    ]
    if bands:
        session.execute(
            update(a)
            .where(
                a.c.zone_pk == bindparam("z"),
                a.c.hour_start == bindparam("h"),
                a.c.gender == bindparam("g"),
                a.c.band == bindparam("b"),
            )
            .values(released_people=bindparam("n")),
            bands,
        )


def rebuild_daily(session: Session, zone_pks: list[int], tz: str) -> int:
    """Recomputes the daily sums of released values of ``zone_pks`` (zones of one site, whose time zone is
    ``tz``) from their hourly cells; returns the rows written."""
    if not zone_pks:
        return 0
    session.execute(delete(DailyRollup).where(DailyRollup.zone_pk.in_(zone_pks)))
    h = HourlyRollup.__table__
    fetched = session.execute(
        select(h.c.zone_pk, h.c.hour_start, *(h.c[name] for name in RELEASED_FIELDS)).where(h.c.zone_pk.in_(zone_pks))
    ).all()
    if not fetched:
        return 0
    values = np.array(fetched, dtype=np.float64)
    # Local days by lookup, not per row: a year of 200 zones is 1.75 M hourly cells.
    first = local_day(int(values[:, 1].min()), tz)
    count = (local_day(int(values[:, 1].max()), tz) - first).days + 1
    midnights = np.array([local_midnight(first + timedelta(days=i), tz) for i in range(count + 1)])
    day_index = np.searchsorted(midnights, values[:, 1], side="right") - 1
    zones, zone_index = np.unique(values[:, 0].astype(np.int64), return_inverse=True)
    sums = np.zeros((len(zones), count, len(RELEASED_FIELDS)))
    np.add.at(sums, (zone_index, day_index), values[:, 2:])
    present = np.zeros((len(zones), count), bool)
    present[zone_index, day_index] = True
    rows = [
        {
            "zone_pk": int(zones[z]),
            "day": first + timedelta(days=int(d)),
            **_as_counts(sums[z, d].tolist(), RELEASED_FIELDS),
        }
        for z, d in zip(*np.nonzero(present), strict=True)
    ]
    session.execute(DailyRollup.__table__.insert(), rows)
    return len(rows)
