"""Visitors API: site visitors through the entrances, people out, occupancy, and each camera's distinct people.

Figures of different measures (footfall.core.wire.Measure) are kept apart: site visitors are the released 'in'
cells of the entrance lines, never a sum of zones or cameras; each camera is given on its own. Every figure is a
sum of released hour cells (footfall.server.release), as in the traffic API.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
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
from footfall.server.occupancy import MIDNIGHT, OccupancyCurve, reset_before
from footfall.server.release import effective_k
from footfall.server.tables import Zone
from sqlalchemy import select

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
    """Released people and withheld cells, added up."""

    def __init__(self) -> None:
        self.people = 0
        self.withheld = 0

    def add(self, people: int, withheld: int) -> None:
        self.people += people
        self.withheld += withheld

    def shown(self) -> dict[str, Any]:
        return {
            "people": None if self.people == 0 and self.withheld > 0 else self.people,
            "withheld_cells": self.withheld,
            "people_lower_bound": self.withheld > 0,
        }


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

    entrance_hours: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])  # hour → in, out, withheld cells
    buckets: dict[int | date, _Bucket] = defaultdict(_Bucket)
    totals = _Bucket()
    for pk, hour, people, withheld in cells:
        measure, zone_id = measure_of[pk]
        if measure in ("in", "out"):
            acc = entrance_hours[hour]
            acc[0 if measure == "in" else 1] += people
            acc[2] += withheld
        if hour < span.start:
            continue
        key: int | date = hour if granularity == "hour" else local_day(hour, tz)
        for target in (buckets[key], totals):
            if measure == "camera":
                target.cameras[zone_id].add(people, withheld)
            else:
                (target.entered if measure == "in" else target.left).add(people, withheld)
    curve = OccupancyCurve([(hour, a[0], a[1], a[2]) for hour, a in sorted(entrance_hours.items())], tz, closing)
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
            "points": points,
            "totals": {
                "visitors": totals.entered.shown() if has_entrances else None,
                "out": totals.left.shown() if has_entrances else None,
                "cameras": _cameras(totals, cameras),
            },
            "occupancy_at_end": _occupancy(curve, span.end) if has_entrances else None,
        }
    )


def _entrance_figures(bucket: _Bucket, curve: OccupancyCurve, end: int, has_entrances: bool) -> dict[str, Any]:
    if not has_entrances:
        return {"visitors": None, "out": None, "occupancy": None}
    return {"visitors": bucket.entered.shown(), "out": bucket.left.shown(), "occupancy": _occupancy(curve, end)}


def _occupancy(curve: OccupancyCurve, instant: int) -> dict[str, int]:
    people, withheld = curve.at(instant)
    return {"people": people, "withheld_cells": withheld}


def _cameras(bucket: _Bucket, cameras: Iterable[str]) -> list[dict[str, Any]]:
    return [{"camera_id": c, **bucket.cameras[c].shown()} for c in cameras if c in bucket.cameras]


def _bucket_times(keys: list[Any], granularity: str, tz: str) -> tuple[list[str], list[str], list[int]]:
    """Each bucket's start (UTC ISO) and local label, as the traffic series has them, and its end (UTC epoch)."""
    starts, labels = bucket_starts_and_labels(keys, granularity, tz)
    if granularity == "hour":
        return starts, labels, [key + HOUR for key in keys]
    return starts, labels, [local_midnight(day + timedelta(days=1), tz) for day in keys]
