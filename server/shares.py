"""The corrected female share of any query: zones, a time range, each point of a series, each slot of the
ad-placement ranking (footfall.core.quantify, issue #14).

Every cell is attributed to the bundle that decided most of its people (footfall.server.classifiers). The
estimate of a query uses, per bundle, the sums of the **released** female, male and unknown of the cells
attributed to it, from the cells whose split was released (withheld splits are 0 in the released columns), and
the released people of each cell, split shown or not: a split is withheld where one of its parts is 1 to k-1, so
the hours whose split shows are the even ones, and their decisions alone lean toward an even split (or, at 30
people an hour, hold too many unknowns to fit the rates at all). The withheld splits enter the estimate through
the chance that a split of their size is withheld (footfall.core.withheld_splits). Like every other answer it
is a function of released values only (footfall.server.release): each cell's people, and its split where shown,
with the k they were released with. Cells with
people whose gender was not decided (counts-only) are attributed to no bundle and not corrected. A cell of an
upgrade hour, decided partly by two bundles, is corrected with its majority bundle's rates.

Every answer is estimated by :func:`estimate_many`, many at once (a 90-day hourly series is 2,160 points, a
ranking page hundreds of slots, and a total is estimated the same way as the points it sums), through
footfall.core.quantify.estimate_many: the one estimator, vectorised, which the edge uses too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

import numpy as np
from footfall.core import quantify
from footfall.core.quantify import DecisionRates, ShareEstimate
from footfall.core.withheld_splits import SplitCells
from footfall.server.classifiers import known_rates
from footfall.server.localtime import HOUR, day_range, local_hour_of_week, local_midnight, week_start
from footfall.server.queries import local_day_number
from footfall.server.release import DEFAULT_K, effective_k
from footfall.server.rollups import release_k
from footfall.server.tables import HourlyRollup, Site, Zone
from sqlalchemy import BigInteger, case, cast, func, literal_column, select
from sqlalchemy.orm import Session

# Why a corrected share is null (the API's ``female_share_corrected_missing``).
Missing = Literal["no_classified_people", "unknown_rates", "decisions_do_not_fit"]


@dataclass
class Cells:
    """The released cells of one answer, per bundle they are attributed to."""

    sums: dict[str, list[int]] = field(default_factory=dict)  # ref → released [female, male, unknown]
    sizes: dict[tuple[str, int], list[int]] = field(default_factory=dict)  # (ref, people) → [shown, withheld] cells

    def add(self, ref: str, people: int, shown: bool, cells: int, female: int, male: int, unknown: int) -> None:
        """``cells`` cells of ``people`` released people attributed to ``ref``, their split shown or not, whose
        released female, male and unknown add up to those given. (Called once per row of a 90-day series of
        every zone: some 180,000 times.)"""
        held = self.sums.get(ref)
        if held is None:
            held = self.sums[ref] = [0, 0, 0]
        held[0] += female
        held[1] += male
        held[2] += unknown
        key = (ref, people)
        counts = self.sizes.get(key)
        if counts is None:
            counts = self.sizes[key] = [0, 0]
        counts[0 if shown else 1] += cells

    def merge(self, other: Cells) -> None:
        for ref, parts in other.sums.items():
            held = self.sums.setdefault(ref, [0, 0, 0])
            for i in range(3):
                held[i] += parts[i]
        for key, (shown, withheld) in other.sizes.items():
            held = self.sizes.setdefault(key, [0, 0])
            held[0] += shown
            held[1] += withheld

    def shown(self) -> dict[str, list[int]]:
        """The bundles whose cells showed a split, with their released decisions."""
        return {ref: parts for ref, parts in self.sums.items() if sum(parts) > 0}


@dataclass(frozen=True)
class Share:
    """The corrected share of women, its 95 % interval, the people it covers, and why it is null when it is."""

    share: float | None
    low: float | None
    high: float | None
    people: int
    missing: Missing | None

    def fields(self) -> dict[str, Any]:
        """The API's fields for it (rounded to 4 places, like the raw shares)."""

        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {
            "female_share_corrected": rounded(self.share),
            "female_share_low": rounded(self.low),
            "female_share_high": rounded(self.high),
            "people_corrected": self.people,
            "female_share_corrected_missing": self.missing,
        }


EPOCH_DAY = date(1970, 1, 1)
NONE_SEEN = Share(None, None, None, 0, "no_classified_people")


def _screen(groups: Mapping[str, list[int]], rates: Mapping[str, DecisionRates]) -> Share | None:
    """The answer when the shown splits of ``groups`` cannot be corrected (nobody, nobody decided, or a bundle whose
    rates are unknown), else None."""
    people = sum(sum(parts) for parts in groups.values())
    if people == 0:
        return NONE_SEEN
    if all(female + male == 0 for female, male, _ in groups.values()):
        # Undecided people alone: the likelihood is flat but for the small difference of the genders' undecided
        # rates, and its maximum sits at 0 or 100 % women: no figure to show (it read "100 % women" for 5 people).
        return Share(None, None, None, people, "no_classified_people")
    if any(ref not in rates for ref in groups):
        return Share(None, None, None, people, "unknown_rates")
    return None


def estimate(cells: Cells, rates: Mapping[str, DecisionRates], k: int) -> Share:
    """The corrected share of one query: :func:`estimate_many` of one, so a total and the points it sums are
    estimated alike (see the module)."""
    return estimate_many([cells], rates, k)[0]


def estimate_many(points: Sequence[Cells], rates: Mapping[str, DecisionRates], k: int) -> list[Share]:
    """:func:`estimate` of many queries at once (``k``: the one their cells were released with): points whose
    shown splits come from the same bundles are estimated together."""
    # A bundle none of whose cells showed a split adds nothing (its withheld splits alone say next to nothing).
    shown = [point.shown() for point in points]
    answers: list[Share | None] = [_screen(groups, rates) for groups in shown]
    by_bundles: dict[tuple[str, ...], list[int]] = {}
    for i, groups in enumerate(shown):
        if answers[i] is None:
            by_bundles.setdefault(tuple(sorted(groups)), []).append(i)
    for refs, indices in by_bundles.items():
        observed = np.array([[shown[i][ref] for ref in refs] for i in indices], float)  # (P, G, 3)
        validation = np.stack([rates[ref].matrix() for ref in refs])  # (G, 2, 3)
        group_of = {ref: g for g, ref in enumerate(refs)}
        entries = [
            (row, group_of[ref], people, counts[0], counts[1])
            for row, i in enumerate(indices)
            for (ref, people), counts in points[i].sizes.items()
            if ref in group_of
        ]
        cells = SplitCells.of(entries, k) if entries else None
        for i, estimate in zip(indices, quantify.estimate_many(observed, validation, cells), strict=True):
            answers[i] = _share(estimate)
    return [answer if answer is not None else NONE_SEEN for answer in answers]


def _share(estimate: ShareEstimate) -> Share:
    if estimate.share is None:
        return Share(None, None, None, estimate.people, "decisions_do_not_fit" if not estimate.fits else None)
    return Share(estimate.share, estimate.low, estimate.high, estimate.people, None)


def _cell_columns(h: Any) -> tuple[Any, ...]:
    """The columns read per group of cells: bundle, released people, split shown (1) or not (0), how many such
    cells, and their released female, male and unknown."""

    def total(column: Any) -> Any:
        return cast(func.sum(column), BigInteger)

    return (
        h.classifier,
        h.released_people,
        _shown(h),
        func.count(),
        total(h.released_female),
        total(h.released_male),
        total(h.released_unknown),
    )


def _shown(h: Any) -> Any:
    """1 where the cell's split is shown, else 0; written without bound values, so that PostgreSQL sees the one
    in GROUP BY as the one selected."""
    zero: Any = literal_column("0")
    one: Any = literal_column("1")
    return case((h.released_female + h.released_male + h.released_unknown > zero, one), else_=zero)


def _cells_query(h: Any, keys: Sequence[Any], *where: Any) -> Any:
    """Released cells attributed to a bundle, grouped by ``keys`` and by :func:`_cell_columns`' first three."""
    return (
        select(*keys, *_cell_columns(h))
        .where(h.released_people > 0, h.classifier.is_not(None), *where)
        .group_by(*keys, h.classifier, h.released_people, _shown(h))
    )


def _add(cells: Cells, row: Sequence[Any]) -> None:
    """One row of :func:`_cells_query` (without its keys) into ``cells``."""
    ref, people, shown, count, female, male, unknown = row
    cells.add(ref, people, shown == 1, count, female or 0, male or 0, unknown or 0)


def release_k_of(session: Session, zone_pks: Sequence[int]) -> int:
    """The k the zones' cells were released with: their site's effective k (one site per query)."""
    site_k = session.scalar(select(Site.k).join(Zone, Zone.site_id == Site.site_id).where(Zone.id.in_(zone_pks[:1])))
    return effective_k(site_k, release_k(session) or DEFAULT_K)


def totals(session: Session, zone_pks: list[int], start: int, end: int) -> Share:
    """The corrected share of the zones' cells in [start, end)."""
    h = HourlyRollup
    cells = Cells()
    for row in session.execute(_cells_query(h, (), h.zone_pk.in_(zone_pks), h.hour_start >= start, h.hour_start < end)):
        _add(cells, row)
    return estimate(cells, known_rates(session, cells.sums), release_k_of(session, zone_pks))


def by_zone(session: Session, zone_pks: list[int], start: int, end: int) -> list[Share]:
    """The corrected share of each zone of ``zone_pks`` (in that order) over [start, end)."""
    h = HourlyRollup
    points: dict[int, Cells] = {pk: Cells() for pk in zone_pks}
    query = _cells_query(h, (h.zone_pk,), h.zone_pk.in_(zone_pks), h.hour_start >= start, h.hour_start < end)
    for zone_pk, *row in session.execute(query):
        _add(points[zone_pk], row)
    refs = {ref for cells in points.values() for ref in cells.sums}
    return estimate_many([points[pk] for pk in zone_pks], known_rates(session, refs), release_k_of(session, zone_pks))


def series(
    session: Session, zone_pks: list[int], start: int, end: int, granularity: str, tz: str, keys: Sequence[Any]
) -> tuple[list[Share], Share]:
    """The corrected share of each point of footfall.server.queries.series (``keys`` its keys: UTC hour starts,
    or local days / week starts) and of all of them together. Each point reads its hour cells: the estimate
    needs each cell's size, which the daily sums do not keep."""
    if not keys:
        return [], NONE_SEEN
    index = {key: i for i, key in enumerate(keys)}
    points = [Cells() for _ in keys]
    h = HourlyRollup
    if granularity == "hour":
        query = _cells_query(h, (h.hour_start,), h.zone_pk.in_(zone_pks), h.hour_start >= start, h.hour_start < end)
        for hour, *row in session.execute(query):
            i = index.get(int(hour))
            if i is not None:
                _add(points[i], row)
    else:
        first, stop = day_range(start, end, tz)
        # The hour cells of local days, grouped by day in SQL (footfall.server.queries.local_day_number).
        hours = (
            select(
                local_day_number().label("day"),
                *(h.classifier, h.released_people, h.released_female, h.released_male, h.released_unknown),
            )
            .where(
                h.zone_pk.in_(zone_pks),
                h.hour_start >= max(start, local_midnight(first, tz)),
                h.hour_start < min(end, local_midnight(stop, tz)),
            )
            .subquery()
        )
        for number, *row in session.execute(_cells_query(hours.c, (hours.c.day,))):
            day = EPOCH_DAY + timedelta(days=int(number))
            i = index.get(week_start(day) if granularity == "week" else day)
            if i is not None:
                _add(points[i], row)
    total = Cells()
    for cells in points:
        total.merge(cells)
    rates = known_rates(session, total.sums)
    k = release_k_of(session, zone_pks)
    return estimate_many(points, rates, k), estimate(total, rates, k)  # the total alone, exactly as /totals has it


def slots(
    session: Session, zone_pks: list[int], start: int, end: int, wanted: Sequence[tuple[int, int]], tz: str
) -> list[Share]:
    """The corrected share of each zone × local hour of week slot in ``wanted``, over [start, end) (``tz``: the
    site's time zone)."""
    if not wanted:
        return []
    h = HourlyRollup
    # The cells of each slot by key (a ranking's few hundred slots are a few thousand cells), not by scanning
    # every hour of their zones: the hours of each local hour of week in the range, worked out once.
    hows = sorted({how for _, how in wanted})
    hours_of: dict[int, list[int]] = {how: [] for how in hows}
    for hour in range(start + (-start) % HOUR, end, HOUR):
        listed = hours_of.get(local_hour_of_week(hour, tz))
        if listed is not None:
            listed.append(hour)
    pool_zones = sorted({zone for zone, _ in wanted} & set(zone_pks))
    pool_hours = sorted({hour for how in hows for hour in hours_of[how]})
    index = {slot: i for i, slot in enumerate(wanted)}
    points = [Cells() for _ in wanted]
    # Zones × hours by the primary key (both lists IN): SQLite walks row-value IN lists without its index. The
    # cross product holds other slots' cells too; they are not in ``index`` and are skipped.
    for offset in range(0, len(pool_hours), 2000):
        query = _cells_query(
            h,
            (h.zone_pk, h.local_how),
            h.zone_pk.in_(pool_zones),
            h.hour_start.in_(pool_hours[offset : offset + 2000]),
            h.local_how.in_(hows),  # as stored: a cell being re-filed under a new time zone waits for it
        )
        for zone_pk, how, *row in session.execute(query):
            i = index.get((int(zone_pk), int(how)))
            if i is not None:
                _add(points[i], row)
    refs = {ref for cells in points for ref in cells.sums}
    return estimate_many(points, known_rates(session, refs), release_k_of(session, zone_pks))
