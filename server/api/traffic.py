"""Traffic API: series, totals, peak hours, hour-of-week heatmap, zone comparison and CSV export.

Every number is a sum of released cell values (footfall.server.release), so no answer, and no combination
of answers, depends on a withheld count.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse
from footfall.core.ages import AGE_DECISIONS
from footfall.server import queries, shares
from footfall.server.api.ages import age_points, parse_age, summed
from footfall.server.api.deps import (
    Context,
    Range,
    ReadSession,
    ServerContext,
    TimeRange,
    ZonesParam,
    check_span,
    covered,
    get_site,
    get_zones,
    released,
    require_viewer,
)
from footfall.server.api.render import COUNT_COLUMNS, FastJSONResponse, counts, counts_table
from footfall.server.api.schemas import AgeSeries, Comparison, Heatmap, PeakHours, Series, Totals
from footfall.server.api.sites import IdPath
from footfall.server.catalog import PASSES
from footfall.server.localtime import WEEKDAYS, bucket_starts_and_labels, to_iso
from footfall.server.release import effective_k
from footfall.server.tables import Site, Zone
from sqlalchemy.orm import Session

router = APIRouter(prefix="/sites/{site_id}/traffic", tags=["traffic"], dependencies=[Depends(require_viewer)])

GranularityParam = Annotated[
    Literal["hour", "day", "week"],
    Query(description="hour (≤ 400 days), day or week (local calendar). An hour is the finest unit released."),
]


def passes_zones(session: Session, site: Site, zone_ids: list[str] | None) -> list[Zone]:
    """The zones asked for (default: all of the site) that count passes. Cameras and entrance directions count
    other things (footfall.core.wire.Measure) and are never listed, ranked or added up with zones; asking for one
    by id is a 422 that says where its figures are."""
    zones = get_zones(session, site, zone_ids)
    others = [z.zone_id for z in zones if z.measure != PASSES]
    if zone_ids and others:
        raise HTTPException(
            422,
            f"zone: {', '.join(repr(o) for o in others)} counts a camera's distinct visitors or an entrance's people "
            f"in or out, not zone passes; read it from /api/v1/sites/{site.site_id}/visitors",
        )
    return [z for z in zones if z.measure == PASSES]


def _scope(session: Session, site_id: str, zone_ids: list[str] | None) -> tuple[Site, list[Zone]]:
    site = get_site(session, site_id)
    return site, passes_zones(session, site, zone_ids)


def _head(site: Site, zones: list[Zone], span: TimeRange, k: int) -> dict[str, Any]:
    return {
        "site_id": site.site_id,
        "zones": [z.zone_id for z in zones],
        "start": to_iso(span.start),
        "end": to_iso(span.end),
        "k": effective_k(site.k, k),  # the site's own k where an admin made it stricter
    }


def _sum(rows: queries.Rows) -> dict[str, Any]:
    return counts(int(rows.people.sum()), rows.parts.sum(axis=0), int(rows.withheld.sum()))


@router.get("/series", response_model=Series, summary="Time series of people and gender split (role: viewer)")
def series(
    site_id: IdPath,
    ctx: Context,
    session: ReadSession,
    span: Range,
    zone_ids: ZonesParam = None,
    granularity: GranularityParam = "hour",
) -> FastJSONResponse:
    """People per bucket, summed over the selected zones, with the gender split and totals over the range.
    Hours are UTC hours (labelled in local time); days and weeks (Monday first) follow the site's
    time zone. The range stops at the hour in progress, which is released once it has ended."""
    check_span(span, granularity)
    site, zones = _scope(session, site_id, zone_ids)
    span = covered(released(span, ctx), granularity, site.timezone)
    zone_pks = [z.id for z in zones]
    rows, corrected, overall = shares.series(session, zone_pks, span.start, span.end, granularity, site.timezone)
    starts, labels = bucket_starts_and_labels(rows.keys, granularity, site.timezone, span.start)
    points = counts_table(rows.people, rows.parts, rows.withheld, starts, labels)
    partial = queries.partly_observed_by_bucket(session, zone_pks, span.start, span.end, granularity, site.timezone)
    for key, point, share in zip(rows.keys, points, corrected, strict=True):
        point.update(share.fields())
        point["hours_partly_observed"] = partial.get(key, 0)
    # Returned as a response so FastAPI skips re-validating thousands of points against the model.
    return FastJSONResponse(
        {
            **_head(site, zones, span, ctx.settings.k_anonymity),
            "granularity": granularity,
            "timezone": site.timezone,
            "points": points,
            "totals": _sum(rows) | overall.fields(),
        }
    )


AudienceParam = Annotated[
    Literal["all", "female", "male", "unknown"],
    Query(description="The gender decision of the audience ('all': every gender, 'unknown' included); with 'age'."),
]
AgeParam = Annotated[
    str | None,
    Query(
        max_length=100,
        description="Age bands of the audience: one ('25-34', '65+'), several ('18-24,25-34') or a range on band "
        "edges ('18-34'); every point then gives that audience's released people.",
    ),
]


@router.get("/ages", response_model=AgeSeries, summary="Gender × age-band tables per bucket (role: viewer)")
def ages(
    site_id: IdPath,
    ctx: Context,
    session: ReadSession,
    span: Range,
    zone_ids: ZonesParam = None,
    granularity: GranularityParam = "hour",
    audience: AudienceParam = "all",
    age: AgeParam = None,
) -> FastJSONResponse:
    """People per bucket by gender decision × age band, summed over the selected zones, and over the
    range. Each gender's bands of a zone-hour are released only when each is 0 or at least k (all or none, so
    no band can be worked out by subtraction from the gender's total); a suppressed gender's bands are null.
    With ``age`` (and ``audience``), each point also gives that audience's released people. People whose age
    was not estimated (an older agent, a 'gender-only' or 'counts-only' site) are age 'unknown'."""
    check_span(span, granularity)
    if age is None and audience != "all":
        raise HTTPException(
            422,
            f"audience: the gender of an age audience, given with age (audience={audience}&age=25-34); every age "
            "of a gender is in each table's bands, and its people in /traffic/series",
        )
    bands = parse_age(age) if age is not None else None
    genders = None if bands is None else (["female", "male", "unknown"] if audience == "all" else [audience])
    site, zones = _scope(session, site_id, zone_ids)
    span = covered(released(span, ctx), granularity, site.timezone)
    rows = queries.age_series(session, [z.id for z in zones], span.start, span.end, granularity, site.timezone)
    starts, labels = bucket_starts_and_labels(rows.keys, granularity, site.timezone, span.start)
    points = [
        {"start": start, "label": label, **point}
        for start, label, point in zip(starts, labels, age_points(rows, genders, bands), strict=True)
    ]
    return FastJSONResponse(
        {
            **_head(site, zones, span, ctx.settings.k_anonymity),
            "granularity": granularity,
            "timezone": site.timezone,
            "age_estimation": site.demographics == "full",
            "audience": audience if bands is not None else None,
            "age": bands,
            "points": points,
            "totals": age_points(summed(rows), genders, bands)[0],
        }
    )


@router.get("/totals", response_model=Totals, summary="Totals and gender split over a range (role: viewer)")
def totals(
    site_id: IdPath, ctx: Context, session: ReadSession, span: Range, zone_ids: ZonesParam = None
) -> dict[str, Any]:
    """Counts and shares over [start, end) at hour resolution (hours starting in the range and ended)."""
    span = released(span, ctx)
    site, zones = _scope(session, site_id, zone_ids)
    zone_pks = [z.id for z in zones]
    rows = queries.totals_by_zone(session, zone_pks, span.start, span.end)
    samples = int(rows.dwell_samples.sum())
    dwell = float(rows.dwell_seconds.sum()) / samples if samples else None
    zone_totals = _sum(rows)
    return {
        **_head(site, zones, span, ctx.settings.k_anonymity),
        "totals": zone_totals | shares.totals(session, zone_pks, span.start, span.end, zone_totals["people"]).fields(),
        "mean_dwell_seconds": round(dwell, 1) if dwell is not None else None,
        "hours_observed": int(rows.occurrences.sum()),
        "hours_partly_observed": sum(queries.partly_observed_by_zone(session, zone_pks, span.start, span.end)),
    }


@router.get("/peak-hours", response_model=PeakHours, summary="Busiest local hours of the day (role: viewer)")
def peak_hours(
    site_id: IdPath,
    ctx: Context,
    session: ReadSession,
    span: Range,
    zone_ids: ZonesParam = None,
    top: Annotated[int, Query(ge=1, le=24, description="How many hours to return.")] = 24,
) -> dict[str, Any]:
    """Hours of the day ranked by their mean people per day observed, with their totals; in the site's local time."""
    span = released(span, ctx)
    site, zones = _scope(session, site_id, zone_ids)
    zone_pks = [z.id for z in zones]
    rows, gaps = queries.by_hour_of_week(session, zone_pks, span.start, span.end)
    hour_of_day = np.array([how % 24 for how in rows.keys], np.int64)
    people, parts, withheld, days, unobserved, partial = (
        np.zeros(24, np.int64),
        np.zeros((24, 3), np.int64),
        np.zeros(24, np.int64),
        np.zeros(24, np.int64),
        np.zeros(24, np.int64),
        np.zeros(24, np.int64),
    )
    for how, count in queries.partly_observed_by_hour_of_week(
        session, zone_pks, span.start, span.end, site.timezone
    ).items():
        partial[how % 24] += count
    np.add.at(people, hour_of_day, rows.people)
    np.add.at(parts, hour_of_day, rows.parts)
    np.add.at(withheld, hour_of_day, rows.withheld)
    np.add.at(days, hour_of_day, rows.occurrences)
    np.add.at(unobserved, hour_of_day, gaps)
    present = np.flatnonzero(days > 0)
    hours = []
    for hour, shown in zip(present, counts_table(people[present], parts[present], withheld[present]), strict=True):
        missing = int(unobserved[hour])
        hours.append(
            {
                **shown,
                "hour": int(hour),
                "label": f"{hour:02d}:00-{hour + 1:02d}:00",
                "days_observed": int(days[hour]),
                "mean_people_per_day": round(shown["people"] / days[hour], 2) if shown["people"] is not None else None,
                "zone_days_unobserved": missing,
                "hours_partly_observed": int(partial[hour]),
                "people_lower_bound": shown["people_lower_bound"] or missing > 0,
            }
        )
    # Ranked by what the busiest hour is said to be, the mean per day: an hour seen on fewer days (a camera off at
    # night) would rank below a quieter one by its total.
    hours.sort(key=lambda h: (h["people"] is None, -(h["mean_people_per_day"] or 0), h["hour"]))
    return {**_head(site, zones, span, ctx.settings.k_anonymity), "timezone": site.timezone, "hours": hours[:top]}


@router.get("/heatmap", response_model=Heatmap, summary="People per local hour of week (role: viewer)")
def heatmap(
    site_id: IdPath, ctx: Context, session: ReadSession, span: Range, zone_ids: ZonesParam = None
) -> dict[str, Any]:
    """168 cells (Monday 00:00 … Sunday 23:00, local time) with totals, gender split and mean per week."""
    span = released(span, ctx)
    site, zones = _scope(session, site_id, zone_ids)
    zone_pks = [z.id for z in zones]
    rows, gaps = queries.by_hour_of_week(session, zone_pks, span.start, span.end)
    partial = queries.partly_observed_by_hour_of_week(session, zone_pks, span.start, span.end, site.timezone)
    cells = []
    for i, shown in enumerate(counts_table(rows.people, rows.parts, rows.withheld)):
        how, weeks = rows.keys[i], int(rows.occurrences[i])
        missing, partly = int(gaps[i]), partial.get(how, 0)
        cells.append(
            {
                **shown,
                "hour_of_week": how,
                "weekday": WEEKDAYS[how // 24],
                "hour": how % 24,
                "weeks_observed": weeks,
                "mean_people": round(shown["people"] / weeks, 2) if shown["people"] is not None else None,
                "zone_weeks_unobserved": missing,
                "hours_partly_observed": partly,
                "people_lower_bound": shown["people_lower_bound"] or missing > 0,
            }
        )
    return {**_head(site, zones, span, ctx.settings.k_anonymity), "timezone": site.timezone, "cells": cells}


@router.get("/compare", response_model=Comparison, summary="Zones side by side (role: viewer)")
def compare(
    site_id: IdPath, ctx: Context, session: ReadSession, span: Range, zone_ids: ZonesParam = None
) -> dict[str, Any]:
    """Each zone's totals, gender split and share of the selected zones' traffic, busiest first. Zones may
    overlap (a counting line inside a zone), so the totals add up passes, not distinct people."""
    span = released(span, ctx)
    site, zones = _scope(session, site_id, zone_ids)
    zone_pks = [z.id for z in zones]
    rows = queries.totals_by_zone(session, zone_pks, span.start, span.end)
    corrected = shares.by_zone(session, zone_pks, span.start, span.end)
    partial = queries.partly_observed_by_zone(session, zone_pks, span.start, span.end)
    grand = int(rows.people.sum())
    out = []
    for i, shown in enumerate(counts_table(rows.people, rows.parts, rows.withheld)):
        z = zones[i]
        hours = int(rows.occurrences[i])  # hourly cells: 0 when the zone's camera or agent reported nothing
        share = shown["people"] / grand if shown["people"] is not None and grand and hours else None
        out.append(
            {
                **shown,
                **corrected[i].fields(),
                "zone_id": z.zone_id,
                "name": z.name,
                "kind": z.kind,
                "floor": z.floor,
                "share_of_traffic": round(share, 4) if share is not None else None,
                "hours_observed": hours,
                "hours_partly_observed": partial[i],
            }
        )
    out.sort(key=lambda r: (r["people"] is None, -(r["people"] or 0), r["zone_id"]))
    zone_totals = _sum(rows)
    return {
        **_head(site, zones, span, ctx.settings.k_anonymity),
        "zones": out,
        "totals": zone_totals | shares.totals(session, zone_pks, span.start, span.end, zone_totals["people"]).fields(),
    }


# A cell a spreadsheet would run as a formula (CSV injection, OWASP): one starting with =, +, -, @, tab or CR,
# after any spaces or quotes, gets a quote put before it and is shown as typed. A ';' starts a cell too: Excel in
# German, French, Dutch ... locales splits a CSV it opens on ';' (their list separator) and reads commas as text,
# so a name holding ';' is several cells there, whatever quoting the comma-separated file gives it.
_FORMULA_CELL = re.compile(r"(^|;)(?=[\s\"]*[=+\-@\t\r])")


def spreadsheet_safe(text: str) -> str:
    return _FORMULA_CELL.sub(r"\1'", text)


# The raw classify-and-count share, then the corrected estimate and its interval (footfall.server.shares).
SHARE_COLUMNS = (
    "female_share",
    "female_share_corrected",
    "female_share_low",
    "female_share_high",
    "people_corrected",
    "female_share_corrected_missing",
)
# Released people per gender × age band (null: that gender's bands were suppressed), then the people whose bands
# or gender split were withheld (footfall.server.api.ages).
AGE_COLUMNS = (
    *(f"{gender}_{band}" for gender in queries.GENDERS for band in AGE_DECISIONS),
    *(f"{gender}_bands_withheld" for gender in queries.GENDERS),
)
MAX_EXPORT_ROWS = 500_000  # about 40 MB of CSV; a longer export is refused before it starts
# A bucket's figures, as its series point and age table give them.
POINT_COLUMNS = (*COUNT_COLUMNS, "hours_partly_observed", *SHARE_COLUMNS, *AGE_COLUMNS)
EXPORT_COLUMNS = (
    "site_id",
    "zone_id",
    "zone_name",
    "zone_kind",
    "granularity",
    "bucket_start_utc",
    "bucket_local",
    *POINT_COLUMNS,
)


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    summary="CSV per zone and bucket (role: viewer)",
    responses={
        200: {"content": {"text/csv": {}}, "description": "One row per zone and bucket, streamed."},
        422: {"description": f"More than {MAX_EXPORT_ROWS:,} rows: narrow the range or the zones."},
    },
)
def export_csv(
    site_id: IdPath,
    ctx: Context,
    session: ReadSession,
    span: Range,
    zone_ids: ZonesParam = None,
    granularity: GranularityParam = "hour",
) -> StreamingResponse:
    """Released counts per zone and bucket, as the series returns them: an empty count was withheld
    (``withheld_cells`` says how many cells, ``unsplit`` how many people have no released split). Streamed
    zone by zone, so memory stays flat; more than 500,000 rows are refused before anything is sent."""
    check_span(span, granularity)
    site, zones = _scope(session, site_id, zone_ids)
    span = covered(released(span, ctx), granularity, site.timezone)
    rows = queries.count_rows(session, [z.id for z in zones], span.start, span.end, granularity, site.timezone)
    if rows > MAX_EXPORT_ROWS:
        raise HTTPException(
            422,
            f"this export would have {rows:,} rows, more than the {MAX_EXPORT_ROWS:,} allowed: narrow the range, "
            "choose fewer zones or a coarser granularity",
        )
    stamp = datetime.fromtimestamp(span.start, UTC).strftime("%Y%m%d")
    plan = [(z.id, z.zone_id, spreadsheet_safe(z.name), z.kind) for z in zones]
    return StreamingResponse(
        _csv_lines(ctx, site.site_id, site.timezone, plan, span, granularity),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="footfall-{site.site_id}-{granularity}-{stamp}.csv"'},
    )


def _csv_lines(
    ctx: ServerContext,
    site_id: str,
    tz: str,
    plan: list[tuple[int, str, str, str]],
    span: TimeRange,
    granularity: queries.Granularity,
) -> Iterator[str]:
    """The CSV, one zone at a time, each read in its own short session (the request's session is closed by
    the time a streamed body is sent)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for zone_pk, zone_id, name, kind in plan:
        with ctx.read() as session:
            rows, corrected, _ = shares.series(session, [zone_pk], span.start, span.end, granularity, tz)
            age_rows = queries.age_series(session, [zone_pk], span.start, span.end, granularity, tz)
            partial = queries.partly_observed_by_bucket(session, [zone_pk], span.start, span.end, granularity, tz)
        starts, labels = bucket_starts_and_labels(rows.keys, granularity, tz, span.start)
        points = counts_table(rows.people, rows.parts, rows.withheld, starts, labels)
        tables = dict(zip(age_rows.keys, age_points(age_rows), strict=True))
        for key, point, share in zip(rows.keys, points, corrected, strict=True):
            point.update(share.fields())
            point.update(_age_columns(tables.get(key)))
            point["hours_partly_observed"] = partial.get(key, 0)
            writer.writerow(
                [
                    site_id,
                    zone_id,
                    name,
                    kind,
                    granularity,
                    point["start"],
                    point["label"],
                    *(_csv_value(point[column]) for column in POINT_COLUMNS),
                ]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _age_columns(table: dict[str, Any] | None) -> dict[str, Any]:
    """A bucket's age table as CSV columns (all empty for a bucket without an hourly cell read: none)."""
    if table is None:
        return dict.fromkeys(AGE_COLUMNS)
    columns: dict[str, Any] = {
        f"{gender}_{band}": value for gender, bands in table["bands"].items() for band, value in bands.items()
    }
    columns.update({f"{gender}_bands_withheld": value for gender, value in table["bands_withheld"].items()})
    return columns


def _csv_value(value: object) -> object:
    """A withheld count is an empty cell; flags are written as true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
