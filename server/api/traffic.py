"""Traffic API: series, totals, peak hours, hour-of-week heatmap, zone comparison and CSV export.

Every count passes through k-anonymity suppression (footfall.server.privacy) before it leaves the server.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from footfall.server import queries
from footfall.server.api.deps import (
    Context,
    Range,
    ReadSession,
    TimeRange,
    ZonesParam,
    check_span,
    get_site,
    get_zones,
    require_viewer,
)
from footfall.server.api.render import FastJSONResponse, counts, counts_table
from footfall.server.api.schemas import Comparison, Heatmap, PeakHours, Series, Totals
from footfall.server.api.sites import IdPath
from footfall.server.localtime import WEEKDAYS, iso_and_local_labels, to_iso, zone
from footfall.server.privacy import suppress_table
from footfall.server.tables import Site, Zone
from sqlalchemy.orm import Session

router = APIRouter(prefix="/api/v1/sites/{site_id}/traffic", tags=["traffic"], dependencies=[Depends(require_viewer)])

GranularityParam = Annotated[
    Literal["minute", "hour", "day", "week"],
    Query(description="minute (≤ 7 days, from raw buckets), hour (≤ 400 days), day or week (local calendar)."),
]


def _scope(session: Session, site_id: str, zone_ids: list[str] | None) -> tuple[Site, list[Zone]]:
    site = get_site(session, site_id)
    return site, get_zones(session, site, zone_ids)


def _label(key: int | date, granularity: str, tz: str) -> str:
    if isinstance(key, date):
        return f"week of {key.isoformat()}" if granularity == "week" else key.isoformat()
    local = datetime.fromtimestamp(key, zone(tz))
    return local.strftime("%Y-%m-%d %H:%M")


def _head(site: Site, zones: list[Zone], span: TimeRange, k: int) -> dict:
    return {
        "site_id": site.site_id,
        "zones": [z.zone_id for z in zones],
        "start": to_iso(span.start),
        "end": to_iso(span.end),
        "k": k,
    }


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
    time zone."""
    check_span(span, granularity)
    site, zones = _scope(session, site_id, zone_ids)
    k = ctx.settings.k_anonymity
    rows = queries.series(session, [z.id for z in zones], span.start, span.end, granularity, site.timezone)
    table = suppress_table(rows.parts, k)
    if granularity in ("minute", "hour"):  # UTC instants: formatted all at once
        starts, labels = iso_and_local_labels(rows.keys, site.timezone)
    else:
        starts = [to_iso(queries.key_start(key, site.timezone)) for key in rows.keys]
        labels = [_label(key, granularity, site.timezone) for key in rows.keys]
    points = counts_table(rows.parts, table.parts, table.row_totals, starts, labels)
    total = rows.parts.sum(axis=0) if len(rows.keys) else np.zeros(3, np.int64)
    hidden_columns = table.column_totals if len(rows.keys) else np.zeros(3, bool)
    # Returned as a response so FastAPI skips re-validating thousands of points against the model.
    return FastJSONResponse(
        {
            **_head(site, zones, span, k),
            "granularity": granularity,
            "timezone": site.timezone,
            "points": points,
            "totals": counts(total, hidden_columns, table.grand_total),
        }
    )


@router.get("/totals", response_model=Totals, summary="Totals and gender split over a range (role: viewer)")
def totals(site_id: IdPath, ctx: Context, session: ReadSession, span: Range, zone_ids: ZonesParam = None) -> dict:
    """Counts and shares over [start, end) at hour resolution (hours starting in the range)."""
    site, zones = _scope(session, site_id, zone_ids)
    k = ctx.settings.k_anonymity
    rows = queries.totals_by_zone(session, [z.id for z in zones], span.start, span.end)
    parts = rows.parts.sum(axis=0, keepdims=True) if len(zones) else np.zeros((1, 3), np.int64)
    table = suppress_table(parts, k)
    samples = int(rows.dwell_samples.sum()) if len(zones) else 0
    dwell = float(rows.dwell_seconds.sum()) / samples if samples >= k else None
    return {
        **_head(site, zones, span, k),
        "totals": counts(parts[0], table.parts[0], bool(table.row_totals[0])),
        "mean_dwell_seconds": round(dwell, 1) if dwell is not None else None,
    }


@router.get("/peak-hours", response_model=PeakHours, summary="Busiest local hours of the day (role: viewer)")
def peak_hours(
    site_id: IdPath,
    ctx: Context,
    session: ReadSession,
    span: Range,
    zone_ids: ZonesParam = None,
    top: Annotated[int, Query(ge=1, le=24, description="How many hours to return.")] = 24,
) -> dict:
    """Hours of the day ranked by people, with the mean per day observed; in the site's local time."""
    site, zones = _scope(session, site_id, zone_ids)
    k = ctx.settings.k_anonymity
    rows = queries.by_hour_of_week(session, [z.id for z in zones], span.start, span.end)
    parts = np.zeros((24, 3), np.int64)
    days = np.zeros(24, np.int64)
    for i, how in enumerate(rows.keys):
        parts[how % 24] += rows.parts[i]
        days[how % 24] += rows.occurrences[i]
    present = np.flatnonzero(days > 0)
    table = suppress_table(parts[present], k, column_totals=False)  # hours only, no sums reported
    hours = []
    for j, hour in enumerate(present):
        shown = counts(parts[hour], table.parts[j], bool(table.row_totals[j]))
        people = shown["people"]
        hours.append(
            {
                **shown,
                "hour": int(hour),
                "label": f"{hour:02d}:00-{hour + 1:02d}:00",
                "days_observed": int(days[hour]),
                "mean_people_per_day": round(people / days[hour], 2) if people is not None else None,
            }
        )
    hours.sort(key=lambda h: (h["people"] is None, -(h["people"] or 0), h["hour"]))
    return {**_head(site, zones, span, k), "timezone": site.timezone, "hours": hours[:top]}


@router.get("/heatmap", response_model=Heatmap, summary="People per local hour of week (role: viewer)")
def heatmap(site_id: IdPath, ctx: Context, session: ReadSession, span: Range, zone_ids: ZonesParam = None) -> dict:
    """168 cells (Monday 00:00 … Sunday 23:00, local time) with totals, gender split and mean per week."""
    site, zones = _scope(session, site_id, zone_ids)
    k = ctx.settings.k_anonymity
    rows = queries.by_hour_of_week(session, [z.id for z in zones], span.start, span.end)
    table = suppress_table(rows.parts, k, column_totals=False)  # cells only, no sums reported
    cells = []
    for i, how in enumerate(rows.keys):
        shown = counts(rows.parts[i], table.parts[i], bool(table.row_totals[i]))
        weeks = int(rows.occurrences[i])
        cells.append(
            {
                **shown,
                "hour_of_week": how,
                "weekday": WEEKDAYS[how // 24],
                "hour": how % 24,
                "weeks_observed": weeks,
                "mean_people": round(shown["people"] / weeks, 2) if shown["people"] is not None else None,
            }
        )
    return {**_head(site, zones, span, k), "timezone": site.timezone, "cells": cells}


@router.get("/compare", response_model=Comparison, summary="Zones side by side (role: viewer)")
def compare(site_id: IdPath, ctx: Context, session: ReadSession, span: Range, zone_ids: ZonesParam = None) -> dict:
    """Each zone's totals, gender split and share of the selected zones' traffic, busiest first."""
    site, zones = _scope(session, site_id, zone_ids)
    k = ctx.settings.k_anonymity
    rows = queries.totals_by_zone(session, [z.id for z in zones], span.start, span.end)
    table = suppress_table(rows.parts, k)
    grand = int(rows.parts.sum())
    out = []
    for i, z in enumerate(zones):
        shown = counts(rows.parts[i], table.parts[i], bool(table.row_totals[i]))
        share = shown["people"] / grand if shown["people"] is not None and grand and not table.grand_total else None
        out.append(
            {
                **shown,
                "zone_id": z.zone_id,
                "name": z.name,
                "kind": z.kind,
                "floor": z.floor,
                "share_of_traffic": round(share, 4) if share is not None else None,
            }
        )
    out.sort(key=lambda r: (r["people"] is None, -(r["people"] or 0), r["zone_id"]))
    total = rows.parts.sum(axis=0) if zones else np.zeros(3, np.int64)
    hidden = table.column_totals if zones else np.zeros(3, bool)
    return {**_head(site, zones, span, k), "zones": out, "totals": counts(total, hidden, table.grand_total)}


# A cell a spreadsheet would run as a formula (CSV injection, OWASP): prefixed with a quote, shown as typed.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


@router.get(
    "/export.csv",
    response_class=Response,
    summary="CSV per zone and bucket (role: viewer)",
    responses={200: {"content": {"text/csv": {}}, "description": "One row per zone and bucket."}},
)
def export_csv(
    site_id: IdPath,
    ctx: Context,
    session: ReadSession,
    span: Range,
    zone_ids: ZonesParam = None,
    granularity: GranularityParam = "hour",
) -> Response:
    """Suppressed counts are empty cells with ``suppressed=true``; each zone is protected on its own."""
    check_span(span, granularity)
    site, zones = _scope(session, site_id, zone_ids)
    k = ctx.settings.k_anonymity
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "site_id",
            "zone_id",
            "zone_name",
            "zone_kind",
            "granularity",
            "bucket_start_utc",
            "bucket_local",
            "people",
            "female",
            "male",
            "unknown",
            "suppressed",
        ]
    )
    for z in zones:
        rows = queries.series(session, [z.id], span.start, span.end, granularity, site.timezone)
        table = suppress_table(rows.parts, k, column_totals=False)  # the export has no total rows
        for i, key in enumerate(rows.keys):
            shown = counts(rows.parts[i], table.parts[i], bool(table.row_totals[i]))
            writer.writerow(
                [
                    site.site_id,
                    z.zone_id,
                    spreadsheet_safe(z.name),
                    z.kind,
                    granularity,
                    to_iso(queries.key_start(key, site.timezone)),
                    _label(key, granularity, site.timezone),
                    *("" if shown[c] is None else shown[c] for c in ("people", "female", "male", "unknown")),
                    "true" if shown["suppressed"] else "false",
                ]
            )
    stamp = datetime.fromtimestamp(span.start, UTC).strftime("%Y%m%d")
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="footfall-{site.site_id}-{granularity}-{stamp}.csv"'},
    )
