"""Ad-placement insight: which zone at which local hour of the week reaches the target audience best."""

from __future__ import annotations

import heapq
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query
from footfall.server import queries, shares
from footfall.server.api.ages import audience_bands
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
from footfall.server.tables import ZONE_KINDS, Zone

# The ranking in SQL orders slots by the raw decisions (Wilson's lower end); the corrected estimate then ranks the
# best POOL_FACTOR × limit of them (at least POOL_MIN), which is where the correction can reorder slots.
POOL_FACTOR = 5
POOL_MIN = 100
router = APIRouter(prefix="/sites/{site_id}/insights", tags=["insights"], dependencies=[Depends(require_viewer)])

METHOD = (
    "Each slot is one zone in one local hour of the week (e.g. Food court, Sat 14:00-15:00), summed over "
    "the weeks in the range. Expected audience = mean people per week in the slot × the target's share, "
    "corrected for the classifier's known errors: estimated from its female, male and unknown decisions with "
    "the decision rates measured for the bundle that decided them (people it could not classify count through "
    "their expected split), with a 95% interval that holds both sampling and the uncertainty of those rates; "
    "the audience interval scales the same bounds. A slot whose share cannot be corrected (a bundle without "
    "known rates, or no classified people) has no share and no expected audience: its interval runs from 0 to "
    "everyone in the slot, and it ranks below the slots with an estimate. For audience 'all' "
    "the interval treats the count as Poisson. Slots use only the zone-hours released for privacy (at least k "
    "people; the split only where each part is 0 or at least k), and a slot with none released is left out. "
    f"The best {POOL_FACTOR} × limit slots by the raw decisions are ranked again by the corrected estimate. "
    "Sorting by 'share' ranks by the interval's lower end, so thin evidence does not float to the top. "
    "A slot some of whose zone-hours a camera watched only in part (down for part of the hour) ranks by what was "
    "counted like any other, since how many people it missed is not known; it says how many such hours it holds, "
    "and its people and audience read 'at least': the people missed are in no figure and no interval."
)


def _partly_observed_text(partly: int) -> str:
    """Why a slot's people are a lower bound where a camera watched ``partly`` of its zone-hours only in part
    (footfall.server.rollups.observed); '' where it watched them all whole."""
    return (
        f"a camera watched {partly:,} of its hours only in part, missing who passed while it was down" if partly else ""
    )


# Said after an interval of a slot with hours a camera watched only in part: it covers the people counted, not those
# the camera missed.
AS_WATCHED = " of what the cameras watched"


# What a slot without a figure ranks by: below every real one (all are at least 0), so it ranks after a released 0.
NO_FIGURE = -1.0


def _figure(value: float | None) -> float:
    """A slot's figure as the ranking orders it: :data:`NO_FIGURE` where it has none."""
    return NO_FIGURE if value is None else value


def parse_hours(text: str | None) -> list[tuple[int, int]]:
    """The hour windows of ``hours``, each (first hour, stop): '10-22' → hours 10..21; '8-11,17-20' → two
    windows; '22-2' runs past midnight into the next day. No text: the whole day."""
    if not text:
        return [(0, 24)]
    windows = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*([0-9]{1,2})\s*-\s*([0-9]{1,2})\s*", part)
        if not match:
            raise HTTPException(422, f"hours: {part!r} is not a window like '10-22' (local hours, end exclusive)")
        first, stop = int(match[1]), int(match[2])
        if not (0 <= first <= 23 and 1 <= stop <= 24) or first == stop:
            raise HTTPException(422, f"hours: {part!r} needs a start in 0-23 and a different end in 1-24")
        windows.append((first, stop))
    return windows


def hours_of_week(hours: str | None, days: str | None) -> list[int]:
    """The local hours of the week (Monday 00:00 = 0) that ``days`` × ``hours`` pick. A window that runs past
    midnight belongs to the day it starts on: 'fri' with '22-2' is Friday 22:00 to Saturday 02:00, the night out
    it names, not Friday's early morning and late evening."""
    # Each window as hours from its day's midnight: one past midnight runs on to 24 + its end.
    spans = [hour for first, stop in parse_hours(hours) for hour in range(first, stop if first < stop else 24 + stop)]
    return sorted({(day * 24 + hour) % 168 for day in parse_days(days) for hour in spans})


FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def zones_of_kind(zones: list[Zone], kind: str | None) -> list[Zone]:
    """The zones of ``kind`` (None: all); 422 for a kind no zone can have, which would rank nothing and read like a
    site with no traffic."""
    if kind is not None and kind not in ZONE_KINDS:
        raise HTTPException(422, f"zone_kind: {kind!r} is not one of {', '.join(ZONE_KINDS)}")
    return [zone for zone in zones if kind is None or zone.kind == kind]


def parse_days(text: str | None) -> set[int]:
    """'mon-fri', 'sat,sun', 'mon,wed-fri' or whole names ('saturday') → weekday numbers (Monday = 0)."""
    if not text:
        return set(range(7))
    names = [d.lower() for d in WEEKDAYS]
    days: set[int] = set()
    for part in text.lower().split(","):
        ends = [p.strip() for p in part.split("-")]
        ends = [e[:3] if e in FULL_DAY_NAMES else e for e in ends]
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
    age: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Age bands of the audience: '25-34', '18-24,25-34' or a range on band edges ('18-34'). "
            "Audiences under 18 (0-12, 13-17, or a range that includes them) are refused.",
        ),
    ] = None,
) -> dict[str, Any]:
    """The slots where an ad reaches most of the chosen audience, each with the numbers behind it, a 95%
    interval and a one-sentence explanation. Ranges default to the last 7 days; use 8-12 weeks for stable
    figures. With ``age``, the audience is a gender × band one (see :func:`_age_placement`); an audience under 18
    is refused with a 422 that says why."""
    if age is not None:
        bands = audience_bands(age)  # before anything else: a minors' audience is refused whatever else is asked
        return _age_placement(
            ctx, session, site_id, span, zone_ids, audience, bands, hours, days, zone_kind, sort, min_weeks, limit
        )
    if audience == "all" and sort == "share":
        raise HTTPException(422, "sort: 'share' needs audience 'female' or 'male'")
    wanted = hours_of_week(hours, days)
    site = get_site(session, site_id)
    zones = zones_of_kind(passes_zones(session, site, zone_ids), zone_kind)
    k = effective_k(site.k, ctx.settings.k_anonymity)  # the site's own k where an admin made it stricter
    span = released(span, ctx)
    zone_pks = [z.id for z in zones]
    ranked = queries.ranked_slots(
        session,
        zone_pks,
        span.start,
        span.end,
        audience=audience,
        sort=sort,
        limit=limit if audience == "all" else min(1000, max(POOL_FACTOR * limit, POOL_MIN)),
        hours_of_week=wanted,
        min_weeks=min_weeks,
    )
    by_pk = {z.id: z for z in zones}
    pool = [(row[0], row[1]) for row in ranked.rows]
    corrected: list[shares.Share | None] = [None] * len(ranked.rows)
    if audience != "all":
        corrected = list(shares.slots(session, zone_pks, span.start, span.end, pool, site.timezone))
    # One read for the ranked slots (the page for 'all', the pool the correction ranks again otherwise, at most
    # 1000): it changes no rank, only what a slot says of itself.
    partly = queries.partly_observed_by_slot(session, pool, span.start, span.end, site.timezone)
    candidates = [
        _slot(
            by_pk[zone_pk],
            how,
            people,
            np.array(parts),
            withheld,
            weeks,
            audience,
            share,
            k,
            partly.get((zone_pk, how), 0),
        )
        for (zone_pk, how, people, *parts, withheld, weeks), share in zip(ranked.rows, corrected, strict=True)
    ]
    if audience != "all":  # ranked again by the corrected estimate, as the SQL ranked by the raw one
        first, second = ("share_low", "expected_audience") if sort == "share" else ("expected_audience", "share_low")
        # A slot without an estimate (null) ranks after a true 0, as in the age ranking: as 0 it tied with them and
        # came first on the zone/hour tie-break.
        # Slots without an estimate, tied at the end, come with those that could hold the most of it first.
        candidates.sort(
            key=lambda c: (
                -_figure(c[first]),
                -_figure(c[second]),
                -c["expected_audience_high"],
                c["zone_pk"],
                c["hour_of_week"],
            )
        )
    slots = [{"rank": rank, **candidate} for rank, candidate in enumerate(candidates[:limit], start=1)]
    return {
        "site_id": site.site_id,
        "audience": audience,
        "age": None,
        "start": to_iso(span.start),
        "end": to_iso(span.end),
        "timezone": site.timezone,
        "k": k,
        "sort": sort,
        "method": METHOD,
        "slots": slots,
        "suppressed_slots": ranked.suppressed,
    }


AGE_METHOD = (
    "Each slot is one zone in one local hour of the week, summed over the weeks in the range. Expected audience = "
    "the released people of the chosen gender(s) × age band(s) per week in the slot, from the classifier's raw "
    "gender decisions and the bands the box allotted (each band's count follows the sum of the model's band "
    "probabilities, not corrected further for its errors; people whose age was not estimated or undecided, age "
    "'unknown', are in no band), with an interval that treats the count as Poisson. A band of a zone-hour counts "
    "only where every band of its gender was 0 or at least k, so the audience is a lower bound where bands, "
    "splits or hours were withheld, or people of its gender(s) are of unknown age (any of them may be of it): such "
    "a slot says 'at least', and its interval reaches as far as those people could take it, never past the "
    "slot's own people. A slot where no one of the audience's gender(s) is in a released band, their bands (or "
    "every split) withheld or their age unknown, has no estimate: no expected audience, an interval from 0 to "
    "what those people could hold, and it ranks after every slot with an estimate. Sorting by 'share' ranks by "
    "the lower end of the Wilson interval of the audience's share of the people of its gender(s) in released "
    "bands (a slot without such people, whose share is null, after a released 0). A slot some of "
    "whose zone-hours a camera watched only in part (down for part of the hour) ranks by what was counted and says "
    "'at least', with how many such hours it holds: the people missed are in no figure and no interval. Audiences "
    "under 18 are refused: footfall does not target minors."
)


def _age_placement(
    ctx: Context,
    session: ReadSession,
    site_id: str,
    span: Range,
    zone_ids: list[str] | None,
    audience: str,
    bands: Sequence[str],
    hours: str | None,
    days: str | None,
    zone_kind: str | None,
    sort: str,
    min_weeks: int,
    limit: int,
) -> dict[str, Any]:
    """Slots ranked for a gender × band audience from the released age cells (footfall.server.queries.
    ranked_age_slots)."""
    wanted = hours_of_week(hours, days)
    site = get_site(session, site_id)
    zones = zones_of_kind(passes_zones(session, site, zone_ids), zone_kind)
    span = released(span, ctx)
    genders = ["female", "male", "unknown"] if audience == "all" else [audience]
    ranked = queries.ranked_age_slots(
        session,
        [z.id for z in zones],
        span.start,
        span.end,
        genders=genders,
        bands=bands,
        hours_of_week=wanted,
        min_weeks=min_weeks,
    )
    by_pk = {z.id: z for z in zones}
    k = effective_k(site.k, ctx.settings.k_anonymity)
    first, second = (_age_share_low, _age_ranked) if sort == "share" else (_age_ranked, _age_share_low)

    def order(row: queries.AgeSlot) -> tuple[float, float, float, int, int]:
        # Slots without an estimate, tied at the end, come with those whose withheld people could hold the most
        # of the audience first (the upper end they show, before its Poisson allowance).
        return (-first(row), -second(row), -_age_ceiling(row, k) / row.weeks, row.zone_pk, row.how)

    # Slots are ranked before they are written out (a site's 33,600 slots of 200 zones took 0.7 s to write for a
    # page of 20), and the second figure is worked out only for the slots the first leaves in reach of the page.
    rows = ranked.rows
    if len(rows) > limit:
        cut = heapq.nlargest(limit, map(first, rows))[-1]
        rows = [row for row in rows if first(row) >= cut]
    page = sorted(rows, key=order)[:limit]
    # One read for the slots of the page only: it changes no rank, only what a slot says of itself.
    slots = [(row.zone_pk, row.how) for row in page]
    partly = queries.partly_observed_by_slot(session, slots, span.start, span.end, site.timezone)
    candidates = [
        _age_slot(by_pk[row.zone_pk], row, audience, bands, k, partly.get((row.zone_pk, row.how), 0)) for row in page
    ]
    return {
        "site_id": site.site_id,
        "audience": audience,
        "age": bands,
        "start": to_iso(span.start),
        "end": to_iso(span.end),
        "timezone": site.timezone,
        "k": k,
        "sort": sort,
        "method": AGE_METHOD,
        "slots": [{"rank": rank, **c} for rank, c in enumerate(candidates, start=1)],
        "suppressed_slots": ranked.suppressed,
    }


def _age_estimated(row: queries.AgeSlot) -> bool:
    """Whether a slot has an estimate of its audience. It has none where no one of its gender(s) is in a released
    band (``banded`` 0) and the people who could hold the audience are not: their bands withheld (a band below k),
    their age unknown (not estimated, as from a box without an age head, or undecided), or every split withheld. A
    released 0 of the gender (splits released with no one of it, and nothing of it withheld or of unknown age, or
    nobody in the slot at all) is a true 0, a lower bound only where hours or other splits were withheld, as the
    gender ranking counts it."""
    return row.banded > 0 or not (row.bands_withheld > 0 or row.age_unknown > 0 or 0 < row.people == row.unsplit)


def _age_expected(row: queries.AgeSlot) -> float | None:
    """A slot's expected audience per week, as the ranking shows it; None without an estimate."""
    return round(row.audience / row.weeks, 2) if _age_estimated(row) else None


def _age_ranked(row: queries.AgeSlot) -> float:
    """The expected audience as the ranking orders it: a slot without an estimate after every slot with one
    (it read "at least 0.0" and tied with the true zeros, ahead of them on the tie-break)."""
    expected = _age_expected(row)
    return expected if expected is not None else NO_FIGURE


def _age_ceiling(row: queries.AgeSlot, k: int) -> int:
    """The most of the audience a slot could hold: its count, its gender's people of unknown age, and every person
    withheld from it (a withheld hour at most k-1)."""
    return row.audience + row.age_unknown + row.bands_withheld + row.unsplit + row.withheld * (k - 1)


def _age_share_low(row: queries.AgeSlot) -> float:
    """The lower end of a slot's share of its gender(s) in released bands (age unknown left out, as they are in no
    band), as the ranking orders it: a slot without such people has no share and ranks after a released 0."""
    return round(wilson_interval(row.audience, row.banded)[0], 4) if row.banded else NO_FIGURE


def _age_slot(
    zone: Zone, row: queries.AgeSlot, audience: str, bands: Sequence[str], k: int, partly: int
) -> dict[str, Any]:
    """One slot of a gender × band audience. Its audience is the released band cells' sum, a lower bound where
    bands, splits or hours were withheld: then the explanation says "at least", and the interval's upper end
    reaches as far as the withheld people could take it (every one of them in the audience; a withheld hour at
    most k-1), never a narrow interval around a suppressed 0. Where none of its gender's bands was released and
    theirs were withheld (:func:`_age_estimated`), it has no estimate at all: never "at least 0.0". The share
    divides the audience by the people of its gender(s) in released bands (``banded``), not by people whose bands
    nobody may see, nor by people of unknown age (any of whom may be of the audience: the count is then a lower
    bound, as for withheld bands). Where a camera watched ``partly`` of its zone-hours only in part, the audience is
    a lower bound too, and says so; no interval reaches for the people the camera missed."""
    who = {"all": "people", "female": "women", "male": "men"}.get(audience, "people of unknown gender")
    noun = f"{who} aged {', '.join(bands)}"
    weeks, count = row.weeks, row.audience
    mean_people = row.people / weeks
    estimated = _age_estimated(row)
    expected = count / weeks
    expected_low, expected_high = poisson_mean_interval(count, weeks)
    if row.lower_bound:
        expected_high = max(expected_high, poisson_mean_interval(_age_ceiling(row, k), weeks)[1])
    # The ceiling is some of the slot's people (a withheld hour at most k-1), never more. Where it is all of them,
    # the upper end is that of the slot's own people per week, and the explanation says so: it is no more audience.
    everyone = row.lower_bound and _age_ceiling(row, k) >= row.people + row.withheld * (k - 1)
    if not estimated:
        expected_low = 0.0  # nothing released says how many: from none of them
    low, high = wilson_interval(count, row.banded) if row.banded else (None, None)
    raw = count / row.banded if row.banded else None
    zone_how = row.how
    label = how_label(zone_how)
    share_text = (
        f"{raw:.0%} of the {row.banded:,} {who} in released age bands"
        if raw is not None
        else f"no {who} in released age bands"
    )
    left_out = "; ".join(
        part
        for part in (
            f"the age bands of {row.bands_withheld:,} {who} were withheld for privacy (a band of theirs below {k})"
            if row.bands_withheld
            else "",
            f"{row.age_unknown:,} {who} of unknown age (not estimated, or undecided)" if row.age_unknown else "",
            f"{row.unsplit:,} people's gender split was withheld for privacy" if row.unsplit else "",
            f"{row.withheld:,} hour(s) with fewer than {k} people were withheld" if row.withheld else "",
            _partly_observed_text(partly),
        )
        if part
    )
    watched = AS_WATCHED if partly else ""
    up_to = f"{expected_high:,.1f} per week{watched}" + (
        ", the upper end of the 95% interval of the slot's own people" if everyone else ""
    )
    if not estimated:
        # No band of the gender released: a "0" here would rank and read like a slot none of the audience passes.
        amount = f"the number of {noun} is not estimated (anywhere from 0 to {up_to}: {left_out})"
    elif row.lower_bound:
        amount = f"at least {expected:,.1f} {noun} per week (up to {up_to}: {left_out})"
    elif partly:
        interval = f"{expected_low:,.1f}-{expected_high:,.1f}{watched}"
        amount = f"at least {expected:,.1f} {noun} per week ({interval}: {left_out})"
    else:
        amount = f"about {expected:,.1f} {noun} per week ({expected_low:,.1f}-{expected_high:,.1f})"
    return {
        "zone_pk": zone.id,
        "zone_id": zone.zone_id,
        "zone_name": zone.name,
        "zone_kind": zone.kind,
        "hour_of_week": zone_how,
        "weekday": WEEKDAYS[zone_how // 24],
        "hour": zone_how % 24,
        "label": label,
        "weeks_observed": weeks,
        "people": row.people,
        "withheld_hours": row.withheld,
        "classified": row.classified,
        "banded": row.banded,
        "age_unknown": row.age_unknown,
        "bands_withheld": row.bands_withheld,
        "audience_count": count,
        "audience_lower_bound": row.lower_bound,
        "hours_partly_observed": partly,
        "share": None,
        "share_low": round(low, 4) if low is not None else None,
        "share_high": round(high, 4) if high is not None else None,
        "share_raw": round(raw, 4) if raw is not None else None,
        # The schema's people_corrected is an int (0 when nothing was corrected), not nullable: band counts are not
        # corrected, so it is 0 here, with share_missing saying why.
        "people_corrected": 0,
        "share_missing": "age_bands_not_corrected",
        "expected_audience": round(expected, 2) if estimated else None,
        "expected_audience_low": round(expected_low, 2),
        "expected_audience_high": round(expected_high, 2),
        "explanation": (
            # Withheld hours' people are in no figure, nor those a camera missed: the mean is a lower bound then, as
            # the gender ranking says.
            f"{zone.name}, {label}: {'at least' if row.withheld or partly else 'on average'} {mean_people:,.1f} "
            f"people per week in this hour over {weeks} week(s), of whom {amount}; {share_text} (raw decisions, not "
            "corrected)."
        ),
    }


def _slot(
    zone: Zone,
    how: int,
    people: int,
    parts: np.ndarray,
    withheld: int,
    weeks: int,
    audience: str,
    corrected: shares.Share | None,
    k: int,
    partly: int,
) -> dict[str, Any]:
    """One slot of a gender audience (or everyone). With withheld hours its people are a lower bound: the
    explanation says "at least", and the interval's upper end reaches as far as the withheld hours could take it
    (at most k-1 people each, every one of them in the audience), as for an age audience (:func:`_age_slot`). With
    ``partly`` of its zone-hours watched only in part by a camera it is a lower bound as well, and says so; no
    interval reaches for the people the camera missed."""
    female, male = int(parts[0]), int(parts[1])
    classified = female + male
    mean_people = people / weeks
    label = how_label(how)
    raw = missing = None
    expected: float | None
    people_corrected = 0
    unseen = withheld * (k - 1) / weeks  # the most the withheld hours could add per week
    left_out = "; ".join(
        part
        for part in (
            f"{withheld:,} hour(s) with fewer than {k} people withheld" if withheld else "",
            _partly_observed_text(partly),
        )
        if part
    )
    lower_bound = withheld > 0 or partly > 0
    watched = AS_WATCHED if partly else ""
    if audience == "all" or corrected is None:
        share = low = high = None
        count = people
        expected = mean_people
        expected_low, expected_high = poisson_mean_interval(people, weeks)
        if withheld:
            expected_high = max(expected_high, poisson_mean_interval(people + withheld * (k - 1), weeks)[1])
        if lower_bound:
            reach = (
                f"up to {expected_high:,.1f}" if withheld else f"95% interval {expected_low:,.1f}-{expected_high:,.1f}"
            )
            amount = f"at least {mean_people:,.1f} people per week ({reach}{watched}: {left_out})"
        else:
            interval = f"95% interval {expected_low:,.1f}-{expected_high:,.1f}"
            amount = f"on average {mean_people:,.1f} people per week ({interval})"
        why = f"{zone.name}, {label}: {amount} in this hour over {weeks} week(s) observed."
    else:
        count = female if audience == "female" else male
        raw = count / classified if classified else None
        share, low, high = _for_audience(corrected, audience)
        people_corrected, missing = corrected.people, corrected.missing
        noun = "women" if audience == "female" else "men"
        unsplit = people - int(parts.sum())  # people of hours whose split was withheld (one gender below k)
        # With no released decision, "none decided" is true only where no split was withheld: people whose split
        # was withheld may well have been decided on, and nobody may see how.
        raw_text = (
            f"{raw:.0%} of the {classified:,} people the classifier decided on"
            if raw is not None
            else "no decision released"
            if unsplit > 0
            else "none decided"
        )
        if share is None or low is None or high is None:
            # Nothing says how many of these people are the audience (counts-only cells, splits withheld for
            # privacy, a bundle without known rates): no estimate, and an interval from none to every one of them,
            # never an exact 0 that ranks and reads like a slot nobody of the audience passes.
            expected, expected_low, expected_high = None, 0.0, mean_people + unseen
            evidence = f"no corrected share ({_missing_text(missing, classified, people, unsplit, k)}; raw: {raw_text})"
            reach = f"anywhere from 0 to {expected_high:,.1f} per week{watched}" + (f": {left_out}" if left_out else "")
            about = f"the number of {noun} is not estimated ({reach})"
        else:
            expected = mean_people * share
            expected_low, expected_high = mean_people * low, mean_people * high + unseen
            over = (
                f"{people_corrected:,} of the {people:,} people" if people_corrected < people else f"{people:,} people"
            )
            if unsplit > 0:  # counted through how likely a withheld split is (footfall.core.withheld_splits)
                over += (
                    f", {unsplit:,} of them in hours whose split is withheld for privacy (a part below {k}), "
                    "which count through how likely such a split is"
                )
            evidence = (
                f"{share:.0%} {noun} (95% interval {low:.0%}-{high:.0%}), corrected for the classifier's known errors "
                f"over {over} (raw: {raw_text})"
            )
            reach = f"up to {expected_high:,.1f}" if withheld else f"{expected_low:,.1f}-{expected_high:,.1f}"
            about = (
                f"at least {expected:,.1f} {noun} per week ({reach}{watched}: {left_out})"
                if lower_bound
                else f"about {expected:,.1f} {noun} per week ({expected_low:,.1f}-{expected_high:,.1f})"
            )
        why = (
            f"{zone.name}, {label}: {'at least' if lower_bound else 'on average'} {mean_people:,.1f} people per week "
            f"in this hour over {weeks} week(s); {evidence}, so {about}."
        )

    def rounded(value: float | None) -> float | None:
        return round(value, 4) if value is not None else None

    return {
        "zone_pk": zone.id,
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
        "audience_lower_bound": withheld > 0,
        "hours_partly_observed": partly,
        "share": rounded(share),
        "share_low": rounded(low),
        "share_high": rounded(high),
        "share_raw": rounded(raw),
        "people_corrected": people_corrected,
        "share_missing": missing,
        "expected_audience": round(expected, 2) if expected is not None else None,
        "expected_audience_low": round(expected_low, 2),
        "expected_audience_high": round(expected_high, 2),
        "explanation": why,
    }


MISSING = {
    "age_bands_not_corrected": "age-band counts are not corrected for the model's errors",
    "no_classified_people": "no classified people in its released cells",
    "unknown_rates": "a classifier bundle without known decision rates decided them",
    "decisions_do_not_fit": "the decisions do not fit the classifier's measured rates",
}


def _missing_text(missing: str | None, classified: int, people: int, unsplit: int, k: int) -> str:
    """Why a slot of a gender audience has no corrected share, in words true of the slot: "no classified people
    in its released cells" was also said where people were classified but their split was withheld."""
    if (missing or "no_classified_people") != "no_classified_people" or unsplit == 0 or classified > 0:
        return MISSING[missing or "no_classified_people"]
    why = f"withheld for privacy (a part below {k})"
    if unsplit == people:
        return f"no released decisions: the gender split of its {people:,} people was {why}"
    return (
        f"no released decisions: the gender split of {unsplit:,} of its {people:,} people was {why}, and the "
        "classifier decided on none of the rest"
    )


def _for_audience(corrected: shares.Share, audience: str) -> tuple[float | None, float | None, float | None]:
    """The corrected share of the audience and its interval: women's, or men's as the complement."""
    if corrected.share is None or corrected.low is None or corrected.high is None:
        return None, None, None
    if audience == "female":
        return corrected.share, corrected.low, corrected.high
    return 1.0 - corrected.share, 1.0 - corrected.high, 1.0 - corrected.low
