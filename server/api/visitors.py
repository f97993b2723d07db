"""Visitors API: site visitors through the entrances, people out, occupancy, and each camera's distinct people.

Figures of different measures (footfall.core.wire.Measure) are kept apart: site visitors are the released 'in'
cells of the entrance lines, never a sum of zones or cameras; each camera is given on its own. Every figure is a
sum of released hour cells (footfall.server.release), as in the traffic API.

The agent sends a cell for every zone of every hour its camera watched, a quiet one as 0
(footfall.edge.aggregation.ZoneAggregator.touch), so an entrance zone without a cell in an hour the site was
reporting (or between two hours the zone itself reported since the same closing time) was not observed: its
camera or agent was down. Such zone-hours make visitors and out lower bounds and occupancy unknown
(footfall.server.occupancy). Zone-hours a camera watched only part of are counted on each figure: a tally's people
are a lower bound then, and occupancy, which took them in, uncertain.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from footfall.server import queries
from footfall.server.api.deps import (
    Context,
    Range,
    ReadSession,
    check_span,
    covered,
    get_site,
    released,
    require_viewer,
)
from footfall.server.api.render import FastJSONResponse
from footfall.server.api.schemas import Visitors
from footfall.server.api.sites import IdPath
from footfall.server.localtime import HOUR, bucket_starts_and_labels, local_day, local_midnight, to_iso
from footfall.server.occupancy import MIDNIGHT, EntranceHour, OccupancyCurve, reset_before
from footfall.server.release import effective_k
from footfall.server.rollups.observed import partly_observed
from footfall.server.tables import CameraPart, Zone
from sqlalchemy import select
from sqlalchemy.orm import Session

router = APIRouter(prefix="/sites/{site_id}/visitors", tags=["visitors"], dependencies=[Depends(require_viewer)])

NO_ENTRANCES = (
    "this site has no entrance lines, so footfall cannot tell how many people came in: zone passes and camera "
    "figures overlap and are not visitors. Mark a counting line 'entrance: true' in the agent's config to count "
    "people in and out."
)

VisitorGranularity = Annotated[
    Literal["hour", "day"],
    Query(description="hour or day (local calendar); at most 400 days per request, read from hour cells."),
]


class _Sum:
    """Released people, withheld cells, zone-hours a camera watched only part of and (entrance figures only)
    unobserved zone-hours, added up."""

    def __init__(self) -> None:
        self.people = 0
        self.withheld = 0
        self.unobserved = 0
        self.partly_observed = 0

    def add(self, people: int, withheld: int) -> None:
        self.people += people
        self.withheld += withheld

    def shown(self) -> dict[str, Any]:
        missing = self.withheld > 0 or self.unobserved > 0
        return {
            "people": None if self.people == 0 and missing else self.people,
            "withheld_cells": self.withheld,
            "people_lower_bound": missing,
            "hours_partly_observed": self.partly_observed,
        }

    def shown_entrance(self) -> dict[str, Any]:
        return {**self.shown(), "unobserved_cells": self.unobserved}


class _Bucket:
    def __init__(self) -> None:
        self.entered, self.left = _Sum(), _Sum()
        self.cameras: dict[str, _Sum] = defaultdict(_Sum)


@router.get("", response_model=Visitors, summary="Site visitors, in/out, occupancy and camera visitors (role: viewer)")
def visitors(
    site_id: IdPath, ctx: Context, session: ReadSession, span: Range, granularity: VisitorGranularity = "hour"
) -> FastJSONResponse:
    """Per bucket: site visitors (people in through the entrance lines), people out, occupancy at the bucket's
    end (in − out since the closing time, never below 0), and each camera's distinct people; totals over the
    range. See server/API.md for exactly what each figure counts."""
    check_span(span, "hour")
    span = released(span, ctx)
    site = get_site(session, site_id)
    tz, closing = site.timezone, site.closing_time or MIDNIGHT
    span = covered(span, granularity, tz)
    zones = list(
        session.scalars(
            select(Zone).where(Zone.site_id == site.site_id, Zone.measure != "passes").order_by(Zone.zone_id)
        )
    )
    measure_of = {z.id: (z.measure, z.zone_id) for z in zones}
    entrances = sorted({z.zone_id.rsplit(".", 1)[0] for z in zones if z.measure in ("in", "out")})
    cameras = [z.zone_id for z in zones if z.measure == "camera"]
    # From the closing time before the range: occupancy at its first bucket counts the hours before it.
    read_from = reset_before(span.start, tz, closing)
    cells = queries.hourly_cells(session, list(measure_of), read_from, span.end)

    def bucket_of(hour: int) -> int | date:
        return hour if granularity == "hour" else local_day(hour, tz)

    # hour → in, out, withheld, unobserved, partly observed (EntranceHour's order)
    entrance_hours: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    buckets: dict[int | date, _Bucket] = defaultdict(_Bucket)
    totals = _Bucket()
    reported: set[int] = set()  # hours any entrance or camera of the site has a cell
    entrance_cells: dict[int, set[int]] = defaultdict(set)  # entrance zone pk → hours it has a cell
    for pk, hour, people, withheld in cells:
        measure, zone_id = measure_of[pk]
        reported.add(hour)
        if measure in ("in", "out"):
            entrance_cells[pk].add(hour)
            acc = entrance_hours[hour]
            acc[0 if measure == "in" else 1] += people
            acc[2] += withheld
        if hour < span.start:
            continue
        key = bucket_of(hour)
        for target in (buckets[key], totals):
            if measure == "camera":
                target.cameras[zone_id].add(people, withheld)
            else:
                (target.entered if measure == "in" else target.left).add(people, withheld)
    for hour, missing_in, missing_out in _unobserved(entrance_cells, reported, measure_of, tz, closing):
        entrance_hours[hour][3] += missing_in + missing_out
        if hour < span.start:
            continue
        key = bucket_of(hour)
        for target in (buckets[key], totals):  # an hour nobody reported is listed too, to say so
            target.entered.unobserved += missing_in
            target.left.unobserved += missing_out
    # From the closing time before the range too: an entrance hour before it still stands behind its occupancy.
    for pk, hour in partly_observed(session, list(measure_of), read_from, span.end):
        measure, zone_id = measure_of[pk]
        if measure in ("in", "out"):
            entrance_hours[hour][4] += 1
        if hour < span.start:
            continue
        key = bucket_of(hour)
        for target in (buckets[key], totals):
            tally = (
                target.cameras[zone_id] if measure == "camera" else target.entered if measure == "in" else target.left
            )
            tally.partly_observed += 1
    curve = OccupancyCurve([EntranceHour(hour, *a) for hour, a in sorted(entrance_hours.items())], tz, closing)
    has_entrances = bool(entrances)

    keys: list[Any] = sorted(buckets, key=lambda key: key)  # all ints (hours) or all dates (days)
    starts, labels, ends = _bucket_times(keys, granularity, tz)
    points = []
    for key, start, label, end in zip(keys, starts, labels, ends, strict=True):
        bucket = buckets[key]
        points.append(
            {
                "start": start,
                "label": label,
                **_entrance_figures(bucket, curve, min(end, span.end), has_entrances),
                "cameras": _cameras(bucket, cameras),
            }
        )
    # Returned as a response so FastAPI skips re-validating thousands of points (a year of hours: half the time).
    return FastJSONResponse(
        {
            "site_id": site.site_id,
            "granularity": granularity,
            "start": to_iso(span.start),
            "end": to_iso(span.end),
            "timezone": tz,
            "closing_time": closing,
            "k": effective_k(site.k, ctx.settings.k_anonymity),
            "entrances": entrances,
            "cameras": cameras,
            "visitors_note": None if has_entrances else NO_ENTRANCES,
            "shared_entrances": _shared_entrances(session, zones, span.start, span.end),
            "points": points,
            "totals": {
                "visitors": totals.entered.shown_entrance() if has_entrances else None,
                "out": totals.left.shown_entrance() if has_entrances else None,
                "cameras": _cameras(totals, cameras),
            },
            "occupancy_at_end": _occupancy(curve, span.end) if has_entrances else None,
        }
    )


def _entrance_figures(bucket: _Bucket, curve: OccupancyCurve, end: int, has_entrances: bool) -> dict[str, Any]:
    if not has_entrances:
        return {"visitors": None, "out": None, "occupancy": None}
    return {
        "visitors": bucket.entered.shown_entrance(),
        "out": bucket.left.shown_entrance(),
        "occupancy": _occupancy(curve, end),
    }


def _occupancy(curve: OccupancyCurve, instant: int) -> dict[str, Any]:
    step = curve.at(instant)
    return {
        "people": step.people,
        "withheld_cells": step.withheld_cells,
        "unobserved_cells": step.unobserved_cells,
        "hours_partly_observed": step.hours_partly_observed,
    }


def _unobserved(
    entrance_cells: dict[int, set[int]],
    reported: set[int],
    measure_of: dict[int, tuple[str, str]],
    tz: str,
    closing: str,
) -> list[tuple[int, int, int]]:
    """(hour, 'in' zones, 'out' zones) without a cell in an hour they should have one, oldest first.

    A zone should have a cell in every hour the site reported (any entrance or camera has one) and in every hour
    between two of its own cells since the same closing time. Not across a closing time: a site that switches its
    cameras off at night would read "not observed" every day. A zone with no cell read at all is left out:
    nothing tells a camera down the whole time from an entrance line taken out of service."""
    missing: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for pk, hours in entrance_cells.items():
        expected = set(reported)
        for before, after in pairwise(sorted(hours)):
            if after - before > HOUR and reset_before(before, tz, closing) == reset_before(after, tz, closing):
                expected.update(range(before + HOUR, after, HOUR))
        direction = 0 if measure_of[pk][0] == "in" else 1
        for hour in expected - hours:
            missing[hour][direction] += 1
    return [(hour, counts[0], counts[1]) for hour, counts in sorted(missing.items())]


def _shared_entrances(session: Session, zones: list[Zone], start: int, end: int) -> list[dict[str, Any]]:
    """Entrance lines that more than one camera counted in ``[start, end)``, with those cameras. Their counts add
    up: right for two doorways that share a line id, twice the visitors for one doorway two cameras watch, and
    nothing on the server tells the two apart, so the answer names them. Which cameras fed a line is the fleet's
    configuration (a quiet hour adds a part of 0 too), not a count: it reveals nothing withheld."""
    line_of = {z.id: z.zone_id.rsplit(".", 1)[0] for z in zones if z.measure in ("in", "out")}
    if not line_of:
        return []
    fed = session.execute(
        select(CameraPart.zone_pk, CameraPart.camera_id)
        .where(CameraPart.zone_pk.in_(sorted(line_of)), CameraPart.hour_start >= start, CameraPart.hour_start < end)
        .distinct()
    )
    cameras: dict[str, set[str]] = defaultdict(set)
    for zone_pk, camera_id in fed:
        cameras[line_of[zone_pk]].add(camera_id)
    return [{"entrance": line, "cameras": sorted(ids)} for line, ids in sorted(cameras.items()) if len(ids) > 1]


def _cameras(bucket: _Bucket, cameras: Iterable[str]) -> list[dict[str, Any]]:
    return [{"camera_id": c, **bucket.cameras[c].shown()} for c in cameras if c in bucket.cameras]


def _bucket_times(keys: list[Any], granularity: str, tz: str) -> tuple[list[str], list[str], list[int]]:
    """Each bucket's start (UTC ISO) and local label, as the traffic series has them, and its end (UTC epoch)."""
    starts, labels = bucket_starts_and_labels(keys, granularity, tz)
    if granularity == "hour":
        return starts, labels, [key + HOUR for key in keys]
    return starts, labels, [local_midnight(day + timedelta(days=1), tz) for day in keys]
