"""Ad-placement insight: which zone at which local hour of the week reaches the target audience best."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query
from footfall.server import queries
from footfall.server.api.deps import (
    Context,
    Range,
    ReadSession,
    ZonesParam,
    get_site,
    released,
    require_viewer,
)
from footfall.server.api.schemas import AdPlacement
from footfall.server.api.sites import IdPath
from footfall.server.api.traffic import passes_zones
from footfall.server.localtime import WEEKDAYS, how_label, to_iso
from footfall.server.release import effective_k
from footfall.server.stats import poisson_mean_interval, wilson_interval
from footfall.server.tables import Zone

router = APIRouter(prefix="/sites/{site_id}/insights", tags=["insights"], dependencies=[Depends(require_viewer)])

METHOD = (
    "Each slot is one zone in one local hour of the week (e.g. Food court, Sat 14:00-15:00), summed over "
    "the weeks in the range. Expected audience = mean people per week in the slot × the target's share of "
    "the people the classifier could decide on (people it could not classify are assumed to split the same "
    "way). The share's 95% interval is the Wilson score interval from those counts, and the audience "
    "interval scales the same bounds; for audience 'all' the interval treats the count as Poisson. Slots "
    "use only the zone-hours released for privacy (at least k people; the split only where each part is 0 or at "
    "least k), and a slot with none released is left out. Sorting by 'share' ranks by the interval's lower end, so "
    "thin evidence does not float to the top."
)


def parse_hours(text: str | None) -> set[int]:
    """'10-22' → hours 10..21; '8-11,17-20' → two windows; '22-2' wraps past midnight."""
    if not text:
        return set(range(24))
    hours: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d{1,2})\s*-\s*(\d{1,2})\s*", part)
        if not match:
            raise HTTPException(422, f"hours: {part!r} is not a window like '10-22' (local hours, end exclusive)")
        first, stop = int(match[1]), int(match[2])
        if not (0 <= first <= 23 and 1 <= stop <= 24) or first == stop:
            raise HTTPException(422, f"hours: {part!r} needs a start in 0-23 and a different end in 1-24")
        hours.update(range(first, stop) if first < stop else [*range(first, 24), *range(0, stop)])
    return hours


def parse_days(text: str | None) -> set[int]:
    """'mon-fri', 'sat,sun' or 'mon,wed-fri' → weekday numbers (Monday = 0)."""
    if not text:
        return set(range(7))
    names = [d.lower() for d in WEEKDAYS]
    days: set[int] = set()
    for part in text.lower().split(","):
        ends = [p.strip()[:3] for p in part.split("-")]
        if len(ends) not in (1, 2) or any(e not in names for e in ends):
            raise HTTPException(422, f"days: {part!r} is not like 'mon-fri' or 'sat,sun'")
        a, b = names.index(ends[0]), names.index(ends[-1])
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return days


@router.get(
    "/ad-placement",
    response_model=AdPlacement,
    summary="Rank zone × hour-of-week slots for a target audience (role: viewer)",
)
def ad_placement(
    site_id: IdPath,
    ctx: Context,
    session: ReadSession,
    span: Range,
    zone_ids: ZonesParam = None,
    audience: Annotated[Literal["female", "male", "all"], Query(description="Who the ad is for.")] = "all",
    hours: Annotated[
        str | None, Query(max_length=100, description="Local hours window, e.g. '10-22' or '8-11,17-20'.")
    ] = None,
    days: Annotated[str | None, Query(max_length=100, description="Weekdays, e.g. 'mon-fri' or 'sat,sun'.")] = None,
    zone_kind: Annotated[
        str | None, Query(max_length=32, description="Only zones of this kind, e.g. 'ad_slot'.")
    ] = None,
    sort: Annotated[
        Literal["audience", "share"], Query(description="Rank by expected audience or by share.")
    ] = "audience",
    min_weeks: Annotated[int, Query(ge=1, le=520, description="Leave out slots seen in fewer weeks.")] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> dict[str, Any]:
    """The slots where an ad reaches most of the chosen audience, each with the numbers behind it, a 95%
    interval and a one-sentence explanation. Ranges default to the last 7 days; use 8-12 weeks for stable
    figures."""
    if audience == "all" and sort == "share":
        raise HTTPException(422, "sort: 'share' needs audience 'female' or 'male'")
    wanted_hours, wanted_days = parse_hours(hours), parse_days(days)
    site = get_site(session, site_id)
    zones = [z for z in passes_zones(session, site, zone_ids) if zone_kind is None or z.kind == zone_kind]
    k = effective_k(site.k, ctx.settings.k_anonymity)  # the site's own k where an admin made it stricter
    span = released(span, ctx)
    ranked = queries.ranked_slots(
        session,
        [z.id for z in zones],
        span.start,
        span.end,
        audience=audience,
        sort=sort,
        limit=limit,
        hours_of_week=[d * 24 + h for d in sorted(wanted_days) for h in sorted(wanted_hours)],
        min_weeks=min_weeks,
    )
    by_pk = {z.id: z for z in zones}
    slots = [
        _slot(rank, by_pk[zone_pk], how, people, np.array(parts), withheld, weeks, audience)
        for rank, (zone_pk, how, people, *parts, withheld, weeks) in enumerate(ranked.rows, start=1)
    ]
    return {
        "site_id": site.site_id,
        "audience": audience,
        "start": to_iso(span.start),
        "end": to_iso(span.end),
        "timezone": site.timezone,
        "k": k,
        "sort": sort,
        "method": METHOD,
        "slots": slots,
        "suppressed_slots": ranked.suppressed,
    }


def _slot(
    rank: int, zone: Zone, how: int, people: int, parts: np.ndarray, withheld: int, weeks: int, audience: str
) -> dict[str, Any]:
    female, male = int(parts[0]), int(parts[1])
    classified = female + male
    mean_people = people / weeks
    label = how_label(how)
    if audience == "all":
        share = low = high = None
        count = people
        expected = mean_people
        expected_low, expected_high = poisson_mean_interval(people, weeks)
        why = (
            f"{zone.name}, {label}: on average {mean_people:,.1f} people per week in this hour over {weeks} "
            f"week(s) observed (95% interval {expected_low:,.1f}-{expected_high:,.1f})."
        )
    else:
        count = female if audience == "female" else male
        share = count / classified if classified else None
        low, high = wilson_interval(count, classified) if classified else (0.0, 1.0)
        expected = mean_people * (share or 0.0)
        expected_low, expected_high = mean_people * low, mean_people * high
        noun = "women" if audience == "female" else "men"
        share_text = f"{share:.0%}" if share is not None else "unknown share"
        why = (
            f"{zone.name}, {label}: on average {mean_people:,.1f} people per week in this hour over {weeks} "
            f"week(s); {share_text} {audience} (95% interval {low:.0%}-{high:.0%}, from {classified:,} "
            f"classified people), so about {expected:,.1f} {noun} per week "
            f"({expected_low:,.1f}-{expected_high:,.1f})."
        )
    return {
        "rank": rank,
        "zone_id": zone.zone_id,
        "zone_name": zone.name,
        "zone_kind": zone.kind,
        "hour_of_week": how,
        "weekday": WEEKDAYS[how // 24],
        "hour": how % 24,
        "label": label,
        "weeks_observed": weeks,
        "people": people,
        "withheld_hours": withheld,
        "classified": classified,
        "audience_count": count,
        "share": round(share, 4) if share is not None else None,
        "share_low": round(low, 4) if low is not None else None,
        "share_high": round(high, 4) if high is not None else None,
        "expected_audience": round(expected, 2),
        "expected_audience_low": round(expected_low, 2),
        "expected_audience_high": round(expected_high, 2),
        "explanation": why,
    }
