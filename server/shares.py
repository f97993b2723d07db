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

Every answer is estimated by :func:`estimate_rows`, many at once and column by column from the rows of
:func:`_cells_query` (a 90-day hourly series is 2,160 points, a ranking page hundreds of slots, and a total is
estimated the same way as the points it sums), through footfall.core.quantify.estimate_many: the one estimator,
vectorised, which the edge uses too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, Literal

import numpy as np
from footfall.core import quantify
from footfall.core.quantify import DecisionRates, ShareEstimate
from footfall.core.withheld_splits import SplitCells
from footfall.server import queries
from footfall.server.classifiers import known_rates
from footfall.server.localtime import HOUR, day_range, local_hour_of_week, local_midnight, week_start
from footfall.server.queries import local_day_number
from footfall.server.release import DEFAULT_K, effective_k
from footfall.server.rollups import release_k
from footfall.server.tables import CameraPart, HourlyRollup, Site, Zone
from sqlalchemy import BigInteger, and_, case, cast, func, literal_column, select
from sqlalchemy.orm import Session

# Why a corrected share is null (the API's ``female_share_corrected_missing``).
Missing = Literal["no_classified_people", "unknown_rates", "decisions_do_not_fit"]


@dataclass(frozen=True)
class Share:
    """The corrected share of women, its 95 % interval, the people it covers, and why it is null when it is."""

    share: float | None
    low: float | None
    high: float | None
    people: int
    missing: Missing | None
    # Over several zones: released passes per distinct person the cameras feeding them counted, by which the interval
    # was widened (:func:`passes_per_person`); None for one zone, or where no camera counted its distinct people.
    passes_per_person: float | None = None

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
            "passes_per_person": None if self.passes_per_person is None else round(self.passes_per_person, 2),
        }


EPOCH_DAY = date(1970, 1, 1)
NONE_SEEN = Share(None, None, None, 0, "no_classified_people")


def estimate_rows(
    answers: int,
    answer: Sequence[int],
    rows: Sequence[Sequence[Any]],
    rates: Mapping[str, DecisionRates],
    k: int,
    *,
    with_total: bool = False,
    passes_per_person: float | None = None,
) -> list[Share]:
    """The corrected shares of ``answers`` answers from their released cells: ``rows`` of :func:`_cells_query`,
    ``answer`` the answer each belongs to; ``with_total``: one answer more, of every row, last. Column-wise,
    without a Python step per answer (a 90-day hourly series is 2,160 answers): answers whose shown splits come
    from the same bundles are estimated together.

    ``passes_per_person`` (over several zones, :func:`passes_per_person`): every count is taken as that many times
    fewer people, each person's passes being one draw, not several; the sampling part of the interval widens by its
    square root, the rates' part does not (it does not shrink with more people), and the estimate barely moves
    (its likelihood is the same to a power). ``people_corrected`` stays the passes."""
    if not rows:
        return [NONE_SEEN] * (answers + with_total)
    ref_names, *columns = zip(*rows, strict=True)
    codes: dict[str, int] = {}
    first_seen = np.array([codes.setdefault(name, len(codes)) for name in ref_names], np.int64)
    refs = sorted(codes)  # bundles in name order
    ref = np.array([codes[name] for name in refs], np.int64).argsort()[first_seen]
    point = np.asarray(answer, np.int64)
    people_of, shown_of, cells_of, *decisions = (np.asarray(column, np.int64) for column in columns)
    if with_total:
        point = np.concatenate([point, np.full(point.size, answers)])
        ref, people_of, shown_of, cells_of, *decisions = (
            np.concatenate([column, column]) for column in (ref, people_of, shown_of, cells_of, *decisions)
        )
        answers += 1
    sums = np.zeros((answers, len(refs), 3))
    np.add.at(sums, (point, ref), np.column_stack(decisions).astype(float))
    # A bundle none of whose cells showed a split adds nothing (its withheld splits alone say next to nothing).
    used = sums.sum(axis=2) > 0  # (answers, bundles)
    seen = sums.sum(axis=(1, 2)).astype(np.int64)
    decided = sums[..., :2].sum(axis=(1, 2)) > 0
    known = np.array([name in rates for name in refs])
    out: list[Share] = [NONE_SEEN] * answers
    for i in np.flatnonzero((seen > 0) & ~decided):
        # Undecided people alone: the likelihood is flat but for the small difference of the genders' undecided
        # rates, and its maximum sits at 0 or 100 % women: no figure to show (it read "100 % women" for 5 people).
        out[i] = Share(None, None, None, int(seen[i]), "no_classified_people")
    unrated = (seen > 0) & decided & (used & ~known).any(axis=1)
    for i in np.flatnonzero(unrated):
        out[i] = Share(None, None, None, int(seen[i]), "unknown_rates")
    estimable = np.flatnonzero((seen > 0) & decided & ~unrated)
    if not estimable.size:
        return out
    scale = passes_per_person if passes_per_person is not None and passes_per_person > 1.0 else 1.0
    patterns, which = np.unique(used[estimable], axis=0, return_inverse=True)
    for pattern, bundles in enumerate(patterns):
        indices = estimable[which.reshape(-1) == pattern]
        groups = np.flatnonzero(bundles)
        observed = sums[indices][:, groups] / scale  # (P, G, 3)
        validation = np.stack([rates[refs[g]].matrix() for g in groups])  # (G, 2, 3)
        crowd_of, group_of = np.full(answers, -1), np.full(len(refs), -1)
        crowd_of[indices], group_of[groups] = np.arange(indices.size), np.arange(groups.size)
        mine = (crowd_of[point] >= 0) & (group_of[ref] >= 0)
        withheld_cells = np.where(shown_of[mine] == 1, 0, cells_of[mine])
        split_cells = (
            SplitCells(
                crowd_of[point[mine]],
                group_of[ref[mine]],
                people_of[mine],
                np.where(shown_of[mine] == 1, cells_of[mine], 0) / scale,
                withheld_cells / scale,
                k,
            )
            if mine.any()
            else None
        )
        # The people the estimate is about, as passes (the estimator's own count is of the scaled draws).
        people = sums[indices][:, groups].sum(axis=(1, 2)) + np.bincount(
            crowd_of[point[mine]], weights=withheld_cells * people_of[mine], minlength=indices.size
        )
        estimates = quantify.estimate_many(observed, validation, split_cells)
        for i, estimate_, covered in zip(indices, estimates, people.round().astype(int).tolist(), strict=True):
            out[i] = replace(_share(estimate_), people=covered, passes_per_person=passes_per_person)
    return out


def _share(estimate: ShareEstimate) -> Share:
    if estimate.share is None:
        return Share(None, None, None, estimate.people, "decisions_do_not_fit" if not estimate.fits else None)
    return Share(estimate.share, estimate.low, estimate.high, estimate.people, None)


def _cell_columns(h: Any) -> tuple[Any, ...]:
    """The columns read per group of cells: bundle, split people (:func:`_split_people`), split shown (1) or not
    (0), how many such cells, and their released female, male and unknown."""

    def total(column: Any) -> Any:
        return cast(func.coalesce(func.sum(column), 0), BigInteger)

    return (
        h.classifier,
        _split_people(h),
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


def _split_people(h: Any) -> Any:
    """The people a cell's split is of: its released people, or, where its split was kept withheld after late people,
    the people it showed when readers saw that split withheld (``rollup_hourly.split_withheld_people``). The withheld
    split says some part was 1 to k-1 at that size; the late people's decisions were never shown, so they are no
    part of the estimate (nor of ``people_corrected``). Never more than the cell shows now: a bucket sent again with
    fewer people steps it down (found in review). A cell that releases nobody (hidden by a stricter k) is 0."""
    kept = and_(_shown(h) == literal_column("0"), h.split_withheld_people < h.released_people)
    return case((kept, h.split_withheld_people), else_=h.released_people)


def _cells_query(h: Any, keys: Sequence[Any], *where: Any) -> Any:
    """Released cells attributed to a bundle, grouped by ``keys`` and by :func:`_cell_columns`' first three."""
    return (
        select(*keys, *_cell_columns(h))
        .where(h.released_people > 0, h.classifier.is_not(None), *where)
        .group_by(*keys, h.classifier, _split_people(h), _shown(h))
    )


def release_k_of(session: Session, zone_pks: Sequence[int]) -> int:
    """The k the zones' cells were released with: their site's effective k (one site per query)."""
    site_k = session.scalar(select(Site.k).join(Zone, Zone.site_id == Site.site_id).where(Zone.id.in_(zone_pks[:1])))
    return effective_k(site_k, release_k(session) or DEFAULT_K)


def passes_per_person(
    session: Session, zone_pks: list[int], start: int, end: int, passes: int | None = None
) -> float | None:
    """How many passes of the zones ``zone_pks`` each person made, on average, over [start, end): their released
    passes over the released distinct people (``camera`` measure) of the cameras that watched them
    (``rollup_camera_parts``), both over the hours in which every such camera's own count was released; None for
    one zone, or where no hour had them all (agents that send no camera count, cameras withheld for privacy). One
    person walking through three zones is three passes, and an estimate over them counts that person three times.
    ``passes``: the zones' released people over the range, where the caller has summed them already.

    An hour with a camera whose count is missing or withheld (a part of it, maybe in a zone outside the answer, had
    1 to k-1 people) would put its zones' passes over too few people: it is left out of both sums, found in review.
    The cameras' people are all they saw, other zones' passers-by too, so this is at most the true figure: the
    interval it widens stays on the narrow side, never past it. Both sums are released values, and which cameras
    feed a zone is configuration (footfall.server.release.withhold_cameras_with_hidden_parts). Read with indexed
    sums only: a join of every camera-hour with its parts ran for minutes on SQLite (200 zones, 90 days)."""
    if len(zone_pks) < 2:
        return None
    h, parts = HourlyRollup, CameraPart
    in_range = (h.hour_start >= start, h.hour_start < end)
    # Every part row, 0 included: which cameras feed a zone is configuration, whether one saw someone a count.
    cameras = session.scalars(
        select(parts.camera_id)
        .where(parts.zone_pk.in_(zone_pks), parts.hour_start >= start, parts.hour_start < end)
        .distinct()
    ).all()
    if not cameras:
        return None
    site = select(Zone.site_id).where(Zone.id == zone_pks[0]).scalar_subquery()
    camera_pks = session.scalars(
        select(Zone.id).where(Zone.site_id == site, Zone.measure == "camera", Zone.zone_id.in_(cameras))
    ).all()
    if len(camera_pks) < len(cameras):  # a camera that sends no count of its own: no hour has them all
        return None
    released = func.sum(case((h.withheld == 0, 1), else_=0))
    people, whole, partial = 0, 0, []
    for hour, counted, seen in session.execute(
        select(h.hour_start, released, func.sum(h.released_people))
        .where(h.zone_pk.in_(camera_pks), *in_range)
        .group_by(h.hour_start)
    ):
        if counted == len(camera_pks):
            people, whole = people + int(seen or 0), whole + 1
        else:
            partial.append(int(hour))
    if not whole or not people:
        return None
    if passes is None:
        passes = int(session.scalar(select(func.sum(h.released_people)).where(h.zone_pk.in_(zone_pks), *in_range)) or 0)
    # The passes of the hours not every camera counted come off the range's. An hour no camera counted at all has
    # no passes either: a camera that runs sends its count every period, quiet ones too, beside its zones'.
    for offset in range(0, len(partial), 500):
        passes -= int(
            session.scalar(
                select(func.sum(h.released_people)).where(
                    h.zone_pk.in_(zone_pks), h.hour_start.in_(partial[offset : offset + 500])
                )
            )
            or 0
        )
    return max(1.0, passes / people) if passes > 0 else None


def totals(session: Session, zone_pks: list[int], start: int, end: int, passes: int | None = None) -> Share:
    """The corrected share of the zones' cells in [start, end), over several zones with its interval widened by
    the passes each person made (:func:`passes_per_person`; ``passes``: the zones' released people, where the caller
    has them)."""
    h = HourlyRollup
    query = _cells_query(h, (), h.zone_pk.in_(zone_pks), h.hour_start >= start, h.hour_start < end)
    rows: list[Sequence[Any]] = list(session.execute(query))
    rates = known_rates(session, {row[0] for row in rows})
    per_person = passes_per_person(session, zone_pks, start, end, passes)
    return estimate_rows(
        1, [0] * len(rows), rows, rates, release_k_of(session, zone_pks), passes_per_person=per_person
    )[0]


def by_zone(session: Session, zone_pks: list[int], start: int, end: int) -> list[Share]:
    """The corrected share of each zone of ``zone_pks`` (in that order) over [start, end)."""
    h = HourlyRollup
    index = {pk: i for i, pk in enumerate(zone_pks)}
    answer, rows = [], []
    query = _cells_query(h, (h.zone_pk,), h.zone_pk.in_(zone_pks), h.hour_start >= start, h.hour_start < end)
    for zone_pk, *row in session.execute(query):
        answer.append(index[zone_pk])
        rows.append(row)
    rates = known_rates(session, {row[0] for row in rows})
    return estimate_rows(len(zone_pks), answer, rows, rates, release_k_of(session, zone_pks))


def series(
    session: Session, zone_pks: list[int], start: int, end: int, granularity: queries.Granularity, tz: str
) -> tuple[queries.Rows, list[Share], Share]:
    """footfall.server.queries.series, with the corrected share of each of its points and of all of them together.
    Each point reads its hour cells: the estimate needs each cell's size, which the daily sums do not keep; an
    hourly series reads them once for both (footfall.server.queries.hourly_series_by)."""
    answer: list[int] = []
    rows: list[Sequence[Any]] = []
    h = HourlyRollup
    if granularity == "hour":
        counts, groups = queries.hourly_series_by(
            session, zone_pks, start, end, (h.classifier, _split_people(h), _shown(h))
        )
        if not counts.keys:
            return counts, [], NONE_SEEN
        index = {hour: i for i, hour in enumerate(counts.keys)}
        decisions = groups.parts.tolist()
        cells = groups.occurrences.tolist()
        for g, (hour, classifier, people, shown) in enumerate(groups.keys):
            if classifier is not None and people > 0:  # as _cells_query: released cells attributed to a bundle
                answer.append(index[hour])
                rows.append((classifier, people, shown, cells[g], *decisions[g]))
    else:
        counts = queries.series(session, zone_pks, start, end, granularity, tz)
        if not counts.keys:
            return counts, [], NONE_SEEN
        index = {key: i for i, key in enumerate(counts.keys)}
        first, stop = day_range(start, end, tz)
        # The hour cells of local days, grouped by day in SQL (footfall.server.queries.local_day_number).
        hours = (
            select(
                local_day_number().label("day"),
                *(h.classifier, h.released_people, h.split_withheld_people),
                *(h.released_female, h.released_male, h.released_unknown),
            )
            .where(
                h.zone_pk.in_(zone_pks),
                h.hour_start >= max(start, local_midnight(first, tz)),
                h.hour_start < min(end, local_midnight(stop, tz)),
            )
            .subquery()
        )
        point_of: dict[int, int | None] = {}  # day number -> its point, worked out once per day
        for number, *row in session.execute(_cells_query(hours.c, (hours.c.day,))):
            i = point_of.get(number, -1)
            if i == -1:
                day = EPOCH_DAY + timedelta(days=int(number))
                i = point_of[number] = index.get(week_start(day) if granularity == "week" else day)
            if i is not None:
                answer.append(i)
                rows.append(row)
    rates = known_rates(session, {row[0] for row in rows})
    # The total is one answer more, of every row: estimated exactly as /totals has it.
    # Over several zones each point is estimated with the passes per person of the whole range: a point's own would
    # rest on a few hours' counts.
    per_person = passes_per_person(session, zone_pks, start, end, int(counts.people.sum()))
    *points, total = estimate_rows(
        len(counts.keys),
        answer,
        rows,
        rates,
        release_k_of(session, zone_pks),
        with_total=True,
        passes_per_person=per_person,
    )
    return counts, points, total


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
    answer: list[int] = []
    rows: list[Sequence[Any]] = []
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
                answer.append(i)
                rows.append(row)
    rates = known_rates(session, {row[0] for row in rows})
    return estimate_rows(len(wanted), answer, rows, rates, release_k_of(session, zone_pks))
