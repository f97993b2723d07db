"""The corrected female share of any query: zones, a time range, each point of a series, each slot of the
ad-placement ranking (footfall.core.quantify, issue #14).

Every cell is attributed to the bundle that decided most of its people (footfall.server.classifiers). The
estimate of a query uses, per bundle, the sums of the **released** female, male and unknown of the cells
attributed to it, from the cells whose split was released (withheld splits are 0 in the released columns):
so, like every other answer, it is a function of released values only (footfall.server.release). Cells with
people whose gender was not decided (counts-only) are attributed to no bundle and not corrected. A cell of an
upgrade hour, decided partly by two bundles, is corrected with its majority bundle's rates.

Every answer is estimated by :func:`estimate_many`, many at once (a 90-day hourly series is 2,160 points, a
ranking page hundreds of slots, and a total is estimated the same way as the points it sums), through
footfall.core.quantify.estimate_many: the one estimator, vectorised, which the edge uses too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import numpy as np
from footfall.core import quantify
from footfall.core.quantify import DecisionRates, ShareEstimate
from footfall.server.classifiers import known_rates
from footfall.server.localtime import HOUR, day_range, local_hour_of_week, local_midnight, week_start
from footfall.server.tables import DailyClassifierRollup, HourlyRollup
from sqlalchemy import BigInteger, cast, func, select
from sqlalchemy.orm import Session

# Why a corrected share is null (the API's ``female_share_corrected_missing``).
Missing = Literal["no_classified_people", "unknown_rates", "decisions_do_not_fit"]
# bundle ref → (female, male, unknown) released in the cells attributed to it
Groups = dict[str, tuple[int, int, int]]


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


NONE_SEEN = Share(None, None, None, 0, "no_classified_people")


def _screen(groups: Groups, rates: Mapping[str, DecisionRates]) -> Share | None:
    """The answer when ``groups`` cannot be corrected (nobody, nobody decided, or a bundle whose rates are unknown),
    else None."""
    people = sum(sum(parts) for parts in groups.values())
    if people == 0:
        return NONE_SEEN
    if all(female + male == 0 for female, male, _ in groups.values()):
        # Undecided people alone: the likelihood is flat but for the small difference of the genders' undecided
        # rates, and its maximum sits at 0 or 100 % women: no figure to show (it read "100 % women" for 5 people).
        return Share(None, None, None, people, "no_classified_people")
    if any(sum(parts) > 0 and ref not in rates for ref, parts in groups.items()):
        return Share(None, None, None, people, "unknown_rates")
    return None


def estimate(groups: Groups, rates: Mapping[str, DecisionRates]) -> Share:
    """The corrected share of one query: :func:`estimate_many` of one, so a total and the points it sums are
    estimated alike (see the module)."""
    return estimate_many([groups], rates)[0]


def estimate_many(points: Sequence[Groups], rates: Mapping[str, DecisionRates]) -> list[Share]:
    """:func:`estimate` of many queries at once: points that use the same bundles are estimated together."""
    # A bundle none of whose cells released a split adds nothing, and needs no rates.
    points = [{ref: parts for ref, parts in groups.items() if sum(parts) > 0} for groups in points]
    answers: list[Share | None] = [_screen(groups, rates) for groups in points]
    by_bundles: dict[tuple[str, ...], list[int]] = {}
    for i, groups in enumerate(points):
        if answers[i] is None:
            by_bundles.setdefault(tuple(sorted(groups)), []).append(i)
    for refs, indices in by_bundles.items():
        observed = np.array([[points[i][ref] for ref in refs] for i in indices], float)  # (P, G, 3)
        validation = np.stack([rates[ref].matrix() for ref in refs])  # (G, 2, 3)
        for i, estimate in zip(indices, quantify.estimate_many(observed, validation), strict=True):
            answers[i] = _share(estimate)
    return [answer if answer is not None else NONE_SEEN for answer in answers]


def _share(estimate: ShareEstimate) -> Share:
    if estimate.share is None:
        return Share(None, None, None, estimate.people, "decisions_do_not_fit" if not estimate.fits else None)
    return Share(estimate.share, estimate.low, estimate.high, estimate.people, None)


def _released_parts(h: Any) -> tuple[Any, ...]:
    def total(column: Any) -> Any:
        return cast(func.sum(column), BigInteger)

    return (total(h.released_female), total(h.released_male), total(h.released_unknown))


def totals(session: Session, zone_pks: list[int], start: int, end: int) -> Share:
    """The corrected share of the zones' cells in [start, end)."""
    h = HourlyRollup
    groups: Groups = {}
    for ref, *parts in session.execute(
        select(h.classifier, *_released_parts(h))
        .where(h.zone_pk.in_(zone_pks), h.hour_start >= start, h.hour_start < end, h.classifier.is_not(None))
        .group_by(h.classifier)
    ):
        groups[ref] = (int(parts[0]), int(parts[1]), int(parts[2]))
    return estimate(groups, known_rates(session, groups))


def by_zone(session: Session, zone_pks: list[int], start: int, end: int) -> list[Share]:
    """The corrected share of each zone of ``zone_pks`` (in that order) over [start, end)."""
    h = HourlyRollup
    points: dict[int, Groups] = {pk: {} for pk in zone_pks}
    for zone_pk, ref, *parts in session.execute(
        select(h.zone_pk, h.classifier, *_released_parts(h))
        .where(h.zone_pk.in_(zone_pks), h.hour_start >= start, h.hour_start < end, h.classifier.is_not(None))
        .group_by(h.zone_pk, h.classifier)
    ):
        points[zone_pk][ref] = (int(parts[0]), int(parts[1]), int(parts[2]))
    refs = {ref for groups in points.values() for ref in groups}
    return estimate_many([points[pk] for pk in zone_pks], known_rates(session, refs))


def series(
    session: Session, zone_pks: list[int], start: int, end: int, granularity: str, tz: str, keys: Sequence[Any]
) -> tuple[list[Share], Share]:
    """The corrected share of each point of footfall.server.queries.series (``keys`` its keys: UTC hour starts,
    or local days / week starts) and of all of them together, read the way it reads its counts: hours from
    the hourly cells, whole days from the daily sums per bundle, a last day cut short by ``end`` from its
    hourly cells."""
    if not keys:
        return [], NONE_SEEN
    index = {key: i for i, key in enumerate(keys)}
    points: list[Groups] = [{} for _ in keys]

    def add(key: Any, ref: str, parts: Sequence[Any]) -> None:
        i = index.get(key)
        if i is None:
            return
        held = points[i].get(ref, (0, 0, 0))
        points[i][ref] = (held[0] + int(parts[0]), held[1] + int(parts[1]), held[2] + int(parts[2]))

    h = HourlyRollup
    if granularity == "hour":
        for hour, ref, *parts in session.execute(
            select(h.hour_start, h.classifier, *_released_parts(h))
            .where(h.zone_pk.in_(zone_pks), h.hour_start >= start, h.hour_start < end, h.classifier.is_not(None))
            .group_by(h.hour_start, h.classifier)
        ):
            add(int(hour), ref, parts)
    else:
        point_of = week_start if granularity == "week" else (lambda day: day)
        first, stop = day_range(start, end, tz)
        cut = stop - timedelta(days=1) if stop > first and local_midnight(stop, tz) > end else None
        d = DailyClassifierRollup
        for day, ref, *parts in session.execute(
            select(d.day, d.classifier, *_released_parts(d))
            .where(d.zone_pk.in_(zone_pks), d.day >= first, d.day < (cut or stop))
            .group_by(d.day, d.classifier)
        ):
            add(point_of(day), ref, parts)
        if cut is not None:
            for ref, *parts in session.execute(
                select(h.classifier, *_released_parts(h))
                .where(
                    h.zone_pk.in_(zone_pks),
                    h.hour_start >= local_midnight(cut, tz),
                    h.hour_start < end,
                    h.classifier.is_not(None),
                )
                .group_by(h.classifier)
            ):
                add(point_of(cut), ref, parts)
    total: Groups = {}
    for groups in points:
        for ref, (female, male, unknown) in groups.items():
            held = total.get(ref, (0, 0, 0))
            total[ref] = (held[0] + female, held[1] + male, held[2] + unknown)
    rates = known_rates(session, total)
    return estimate_many(points, rates), estimate(total, rates)  # the total alone, exactly as /totals has it


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
    points: list[Groups] = [{} for _ in wanted]
    # Zones × hours by the primary key (both lists IN): SQLite walks row-value IN lists without its index. The
    # cross product holds other slots' cells too; they are not in ``index`` and are skipped.
    for offset in range(0, len(pool_hours), 2000):
        for zone_pk, how, ref, *parts in session.execute(
            select(h.zone_pk, h.local_how, h.classifier, *_released_parts(h))
            .where(
                h.zone_pk.in_(pool_zones),
                h.hour_start.in_(pool_hours[offset : offset + 2000]),
                h.local_how.in_(hows),  # as stored: a cell being re-filed under a new time zone waits for it
                h.classifier.is_not(None),
            )
            .group_by(h.zone_pk, h.local_how, h.classifier)
        ):
            i = index.get((int(zone_pk), int(how)))
            if i is not None:
                held = points[i].get(ref, (0, 0, 0))
                points[i][ref] = (held[0] + int(parts[0]), held[1] + int(parts[1]), held[2] + int(parts[2]))
    refs = {ref for groups in points for ref in groups}
    return estimate_many(points, known_rates(session, refs))
