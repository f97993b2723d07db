"""Checks that every derived table equals what it summarises: hourly cells the raw buckets, daily sums and
slot running totals the released hourly values. Each returns the differences (empty when consistent); the
rollup tests lean on them."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import numpy as np
from footfall.server.classifiers import Decided, attribute, side_key
from footfall.server.localtime import HOUR, local_day, utc_week
from footfall.server.release import RELEASED_FIELDS
from footfall.server.rollups.slots import SLOT_FIELDS, SLOT_SOURCES
from footfall.server.tables import (
    Bucket,
    CameraPart,
    ClassifierPeople,
    DailyRollup,
    HourlyRollup,
    Site,
    SlotCumulative,
    SlotSpan,
    Zone,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session


def raw_vs_hourly(session: Session, since: int = 0) -> list[tuple[object, ...]]:
    """Hours whose rollup differs from the sum of its raw buckets (empty when consistent)."""
    hour = Bucket.bucket_start - Bucket.bucket_start % 3600
    raw = {
        (r[0], int(r[1])): tuple(int(v) for v in r[2:])
        for r in session.execute(
            select(
                Bucket.zone_pk,
                hour,
                func.sum(Bucket.people),
                func.sum(Bucket.female),
                func.sum(Bucket.male),
                func.sum(Bucket.unknown),
            )
            .where(Bucket.bucket_start >= since)
            .group_by(Bucket.zone_pk, hour)
        )
    }
    rolled = {
        (r[0], int(r[1])): tuple(int(v) for v in r[2:])
        for r in session.execute(
            select(
                HourlyRollup.zone_pk,
                HourlyRollup.hour_start,
                HourlyRollup.people,
                HourlyRollup.female,
                HourlyRollup.male,
                HourlyRollup.unknown,
            ).where(HourlyRollup.hour_start >= since)
        )
    }
    return [
        (key, raw.get(key), rolled.get(key))
        for key in raw.keys() | rolled.keys()
        if raw.get(key, (0, 0, 0, 0)) != rolled.get(key, (0, 0, 0, 0))
    ]


def raw_vs_camera_parts(session: Session, since: int = 0) -> list[tuple[object, ...]]:
    """(zone, camera, hour) whose people in ``rollup_camera_parts`` differ from the sum of their raw buckets (a
    camera's own distinct-people buckets are no part); empty when consistent. Raw buckets before ``since`` may have
    been purged by retention."""
    hour = Bucket.bucket_start - Bucket.bucket_start % 3600
    raw = {
        (zone_pk, camera_id, int(start)): int(people)
        for zone_pk, camera_id, start, people in session.execute(
            select(Bucket.zone_pk, Bucket.camera_id, hour, func.sum(Bucket.people))
            .join(Zone, Zone.id == Bucket.zone_pk)
            .where(Bucket.bucket_start >= since, Zone.measure != "camera")
            .group_by(Bucket.zone_pk, Bucket.camera_id, hour)
        )
    }
    p = CameraPart
    kept = {
        (zone_pk, camera_id, int(start)): int(people)
        for zone_pk, camera_id, start, people in session.execute(
            select(p.zone_pk, p.camera_id, p.hour_start, p.people).where(p.hour_start >= since)
        )
    }
    keys = raw.keys() | kept.keys()
    return [(key, raw.get(key), kept.get(key)) for key in keys if raw.get(key, 0) != kept.get(key, 0)]


def released_thin_cameras(session: Session, k_of_site: dict[str, int]) -> list[tuple[object, ...]]:
    """Camera cells (zone, hour) that release people while a part of theirs has 1 to k-1 people, k their site's
    (``k_of_site``; footfall.server.release.withhold_cameras_with_hidden_parts); empty when none. A camera readers
    saw before a late part made it thin keeps what it released (footfall.server.release.step_release), and is
    listed too."""
    camera, part_zone = Zone.__table__.alias("camera"), Zone.__table__.alias("part_zone")
    h, p = HourlyRollup.__table__, CameraPart.__table__
    rows = session.execute(
        select(h.c.zone_pk, h.c.hour_start, camera.c.site_id, p.c.people)
        .join(camera, camera.c.id == h.c.zone_pk)
        .join(p, (p.c.camera_id == camera.c.zone_id) & (p.c.hour_start == h.c.hour_start))
        .join(part_zone, (part_zone.c.id == p.c.zone_pk) & (part_zone.c.site_id == camera.c.site_id))
        .where(camera.c.measure == "camera", h.c.released_people > 0, p.c.people >= 1)
    )
    return sorted({(zone_pk, int(start)) for zone_pk, start, site_id, people in rows if people < k_of_site[site_id]})


def raw_vs_classifiers(session: Session, since: int = 0) -> list[tuple[object, ...]]:
    """(zone, hour, classifier) whose people or buckets in ``rollup_classifier_people`` differ from their raw
    buckets', and hourly cells whose attributed bundle is not the one those buckets give (empty when consistent),
    cells that hold late people back (footfall.server.release.step_release) included. Raw buckets before ``since``
    may have been purged by retention; pass the watermark."""
    hour = Bucket.bucket_start - Bucket.bucket_start % 3600
    raw: dict[tuple[int, int, str], Decided] = defaultdict(Decided)
    for zone_pk, start, classifier, people, buckets in session.execute(
        select(Bucket.zone_pk, hour, Bucket.classifier, func.sum(Bucket.people), func.count())
        .where(Bucket.bucket_start >= since)
        .group_by(Bucket.zone_pk, hour, Bucket.classifier)
    ):
        held = raw[(zone_pk, int(start), side_key(classifier))]
        held.people += int(people)
        held.buckets += int(buckets)
    c = ClassifierPeople
    kept = {
        (zone_pk, int(start), key): Decided(int(people), int(buckets))
        for zone_pk, start, key, people, buckets in session.execute(
            select(c.zone_pk, c.hour_start, c.classifier, c.people, c.buckets).where(c.hour_start >= since)
        )
    }
    problems: list[tuple[object, ...]] = [
        (key, raw.get(key), kept.get(key))
        for key in raw.keys() | kept.keys()
        if raw.get(key, Decided()) != kept.get(key, Decided())
    ]
    by_cell: dict[tuple[int, int], dict[str, Decided]] = defaultdict(dict)
    for (zone_pk, start, key), held in kept.items():
        by_cell[(zone_pk, start)][key] = held
    h = HourlyRollup.__table__
    for zone_pk, start, classifier in session.execute(
        select(h.c.zone_pk, h.c.hour_start, h.c.classifier).where(h.c.hour_start >= since)
    ):
        expected = attribute(by_cell.get((zone_pk, int(start)), {}))
        if expected != classifier:
            problems.append(((zone_pk, int(start)), "attributed", expected, classifier))
    return problems


def slots_vs_hourly(session: Session) -> list[tuple[object, ...]]:
    """Slot running totals that differ from the released hourly values they summarise (empty when
    consistent), and zones whose rows are not dense over their span; the check behind the slot rollup's
    exactness tests."""
    h = HourlyRollup
    width = len(SLOT_SOURCES) + 1  # the released values and the count of hours
    per_week: dict[int, dict[tuple[int, int], list[int]]] = defaultdict(dict)
    cells = session.execute(
        select(h.zone_pk, h.hour_start, h.local_how, *(getattr(h, name) for name in SLOT_SOURCES))
    ).all()
    how_of = {(zone_pk, hour_start): how for zone_pk, hour_start, how, *_ in cells}
    for zone_pk, hour_start, how, *values in cells:
        cell = per_week[zone_pk].setdefault((utc_week(hour_start), how), [0] * width)
        for i, value in enumerate(values):
            cell[i] += value
        # A week observed, unless the hour before is the same local hour of week (clocks going back: one week of
        # two cells); a UTC week can hold two local weeks of a slot (clocks going forward).
        cell[-1] += int(how_of.get((zone_pk, hour_start - HOUR)) != how)
    spans = {row[0]: (row[1], row[2]) for row in session.execute(select(SlotSpan.__table__))}
    stored: dict[int, dict[tuple[int, int], tuple[int, ...]]] = defaultdict(dict)
    c = SlotCumulative.__table__
    for zone_pk, week, how, *values in session.execute(
        select(c.c.zone_pk, c.c.week, c.c.local_how, *(c.c[name] for name in SLOT_FIELDS))
    ):
        stored[zone_pk][(week, how)] = tuple(values)
    problems: list[tuple[object, ...]] = []
    for zone_pk in per_week.keys() | stored.keys() | spans.keys():
        weeks = [week for week, _ in per_week.get(zone_pk, {})]
        if zone_pk not in spans:
            problems.append((zone_pk, "no span", None))
            continue
        first, last = spans[zone_pk]
        if weeks and (min(weeks) < first or max(weeks) > last):
            problems.append((zone_pk, "span", (first, last, min(weeks), max(weeks))))
        if len(stored[zone_pk]) != (last - first + 1) * 168:
            problems.append((zone_pk, "not dense", len(stored[zone_pk])))
        running = {how: [0] * width for how in range(168)}
        for week in range(first, last + 1):
            for how in range(168):
                for i, value in enumerate(per_week[zone_pk].get((week, how), (0,) * width)):
                    running[how][i] += value
                if stored[zone_pk].get((week, how)) != tuple(running[how]):
                    found = stored[zone_pk].get((week, how))
                    problems.append(((zone_pk, week, how), tuple(running[how]), found))
    return problems


def daily_vs_hourly(session: Session) -> list[tuple[object, ...]]:
    """Daily sums that differ from the released hourly values of their local day (empty when consistent)."""
    h = HourlyRollup
    expected: dict[tuple[int, date], list[float]] = defaultdict(lambda: [0.0] * len(RELEASED_FIELDS))
    for zone_pk, hour_start, tz, *values in session.execute(
        select(h.zone_pk, h.hour_start, Site.timezone, *(getattr(h, name) for name in RELEASED_FIELDS))
        .join(Zone, Zone.id == h.zone_pk)
        .join(Site, Site.site_id == Zone.site_id)
    ):
        day = expected[(zone_pk, local_day(hour_start, tz))]
        for i, value in enumerate(values):
            day[i] += value
    d = DailyRollup
    stored = {
        (zone_pk, day): [float(v) for v in values]
        for zone_pk, day, *values in session.execute(
            select(d.zone_pk, d.day, *(getattr(d, name) for name in RELEASED_FIELDS))
        )
    }
    return [
        (key, expected.get(key), stored.get(key))
        for key in expected.keys() | stored.keys()
        if not np.allclose(
            expected.get(key, [0.0] * len(RELEASED_FIELDS)), stored.get(key, [0.0] * len(RELEASED_FIELDS))
        )
    ]
