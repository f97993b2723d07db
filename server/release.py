"""Privacy by construction: what of each zone × hour cell may leave the server.

The release unit is one zone in one UTC hour, the site's local hour wherever its offset is a whole number
of hours; days, weeks and hours of week are unions of these cells. With k the site's effective k
(:func:`effective_k`: the server's k, or the site's own where an operator made it stricter):

- a cell with 1 to k-1 people is **withheld**: nothing of it is released, and answers count it in
  ``withheld_cells``;
- a cell with k or more people releases its people; its gender split (female, male, unknown) is released
  only when each of the three is 0 or at least k, and otherwise not at all (the people of such a cell are
  ``unsplit``). All three or none: with people released, hiding one part alone would give it away by
  subtraction, and hiding two whose sum is below k would tell that sum;
- dwell time is released for a cell whose people and dwell samples both reach k;
- a camera's cell (its distinct people, ``measure: camera``) is withheld whole while any of its parts is hidden
  (:func:`withhold_cameras_with_hidden_parts`): the people it, or another camera, saw pass one of its zones are 1
  to k-1, or that zone's cell holds late people back. The camera counts the same people as its zones, and would
  otherwise give a withheld one back by subtraction;
- a cell's people of one gender are also split by age band (``rollup_hourly_age``): that gender's bands are
  released only when the gender's count is (the cell's split is released and the gender has people) and each
  of its bands is 0 or at least k, and otherwise none of them (:func:`release_age_cells`). All or none again:
  the bands add up to the released gender count, so hiding one band alone would give it back by subtraction
  (female total minus the released female bands), and hiding two whose sum is below k would tell that sum.
  Band totals across genders are never stored or released on their own; answers sum released band cells.

The released values are stored beside the raw counts (``rollup_hourly.released_*``), and the daily rollup
and slot running totals hold sums of released values only. Every read endpoint sums those columns and no
others, so each number it returns is a sum of released cell values: no set of queries, however they are
combined, can give back a withheld value, because answers do not depend on it (the property test in
tests/server/test_privacy_properties.py changes withheld values and finds every answer unchanged).

The hour in progress is not released until it ends, unless the operator allows it (``release_open_hour``):
an answer that grows minute by minute would show who just walked past by comparing two refreshes. Nor is an
hour released the moment it ends: agents send each bucket when it closes and the broker delivers it seconds
later, so an hour read at its end would still grow by its last buckets, and two reads a minute apart would show
the people of its last minute. An hour is released ``release_delay`` seconds after its end (10 minutes by
default: ten of the agents' default one-minute buckets, and time to deliver them).

Counts can still arrive for an hour readers have seen: an agent back after an outage delivers what its outbox kept,
or sends a bucket again with other counts. Released at once, the change would show those late people by differencing
two answers, however few. So a cell readers have seen **moves in steps of at least k** (:func:`step_release`): its
new release is the rule's, applied to its new counts, only where every value readers saw (people, each part of a
shown split, each band of a gender whose bands were shown) changes by 0 or at least k and stays shown, and its dwell
only with k more or fewer samples; otherwise readers keep seeing the values they saw, and the late people wait until
later arrivals make the change reach k (the bundle its share is corrected with follows its buckets all the while:
footfall.server.classifiers). A shown split or band set is never taken back, so every later step is measured from
values readers actually saw; nor is a split or band set readers saw withheld ever shown (:func:`keep_withheld`),
since the known number of late people would give it back. The held-back people (fewer than k per value and cell)
stay in the raw counts. Ingest counts a cell as seen :data:`SEEN_MARGIN` seconds before reads may cover it. A change
of k shows no late person either: a seen cell takes the new rule on what it released (it can only hide), and one
whose shown values a stricter k hides is frozen (footfall.server.rollups.cells.release_site). With the open hour
released answers are live and every change shows, so nothing steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from footfall.server.localtime import HOUR
from footfall.server.tables import CameraPart, HourlyAge, HourlyRollup, Zone
from sqlalchemy import ColumnElement, and_, case, exists, func, literal, or_, select, tuple_, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.util import ClauseAdapter

DEFAULT_K = 5
# Seconds after its end that an hour is released: ten of the agents' default one-minute buckets, and delivery.
DEFAULT_RELEASE_DELAY = 600
# Ingest counts a cell as seen this many seconds before reads may cover it: its transaction commits a little after
# it reads the clock, and the replicas' clocks differ a little.
SEEN_MARGIN = 120
# A site's own k (admin API) lies between the server's k, a floor a site can only be made stricter than, and
# this: beyond it hardly any zone-hour would release anything.
MAX_SITE_K = 50
RELEASED_FIELDS = (
    "released_people",
    "released_female",
    "released_male",
    "released_unknown",
    "released_dwell_samples",
    "released_dwell_seconds",
    "withheld",
)
SPLIT_FIELDS = ("released_female", "released_male", "released_unknown")  # a released gender split
# The RELEASED_FIELDS of a cell withheld whole: nothing released, counted as withheld.
WITHHELD_CELL = {**{name: 0 for name in RELEASED_FIELDS if name != "withheld"}, "withheld": 1}


def effective_k(site_k: int | None, server_k: int) -> int:
    """The k a site's cells are released with: the server's k is a floor, so a site's own k can only make its
    release stricter (None: the site has none of its own)."""
    return server_k if site_k is None else max(site_k, server_k)


def released_values(columns: Any, k: Any) -> dict[str, Any]:
    """SQL expressions for each ``RELEASED_FIELDS`` column of a cell, from its raw columns (``columns`` is a
    table's ``.c``); ``k`` is an int or an SQL expression (a bound parameter per row, each cell with its site's
    k). This is the one place the release rule is written."""
    people = columns.people
    shown = people >= k

    def part_shown(part: Any) -> Any:
        return or_(part == 0, part >= k)

    split = and_(shown, part_shown(columns.female), part_shown(columns.male), part_shown(columns.unknown))
    dwell = and_(shown, columns.dwell_samples >= k)
    return {
        "released_people": case((shown, people), else_=0),
        "released_female": case((split, columns.female), else_=0),
        "released_male": case((split, columns.male), else_=0),
        "released_unknown": case((split, columns.unknown), else_=0),
        "released_dwell_samples": case((dwell, columns.dwell_samples), else_=0),
        "released_dwell_seconds": case((dwell, columns.dwell_seconds), else_=literal(0.0)),
        "withheld": case((and_(people >= 1, people < k), 1), else_=0),
    }


def release_age_cells(session: Session, k: int, cells: ColumnElement[bool], *, from_released: bool = False) -> None:
    """Recomputes ``released_people`` of the age cells ``cells`` selects (a condition on ``rollup_hourly_age``)
    with ``k``, from their hourly cell's released gender counts (so call this after those are up to date) and
    their sibling bands: a band is released when its gender's count is released (non-zero) and no band of that
    gender in the cell has 1 to k-1 people.

    ``from_released``: the rule applied to the bands' released people rather than their raw people, which can only
    hide (a change of k on cells readers have seen: :func:`footfall.server.rollups.cells.release_site`). ``cells``
    may then refer to no table but ``rollup_hourly_age`` and uncorrelated ones: it is also applied to an alias."""
    ages = HourlyAge.__table__
    if not from_released:
        # Only the bands whose release changes are written: a change of k leaves most as they were, and PostgreSQL
        # writes a new row version for every row an UPDATE sets, changed or not (24 s instead of 51 s for the 7.1 M
        # bands of 90 days of bench/server_bench.py's dataset at k 5 → 6).
        released = case((_band_shown(ages, k, released=False), ages.c.people), else_=0)
        session.execute(update(ages).where(cells, ages.c.released_people != released).values(released_people=released))
        return
    # The genders to hide are chosen by an uncorrelated subquery, which SQLite evaluates once, before the first band
    # changes (PostgreSQL reads every row as the statement began). Decided row by row, SQLite would see the bands it
    # already hid: a thin 25-34 set to 0 first no longer made its 35-44 sibling thin.
    band = ages.alias("band")
    hidden = select(band.c.zone_pk, band.c.hour_start, band.c.gender).where(
        ClauseAdapter(band).traverse(cells),
        band.c.released_people > 0,
        ~_band_shown(band, k, released=True),
    )
    session.execute(
        update(ages)
        .where(cells, ages.c.released_people > 0, tuple_(ages.c.zone_pk, ages.c.hour_start, ages.c.gender).in_(hidden))
        .values(released_people=0)
    )


def _band_shown(bands: Any, k: int, *, released: bool) -> ColumnElement[bool]:
    """Whether a band of ``bands`` (``rollup_hourly_age`` or an alias) is released with ``k``: its gender's count is
    released and no band of that gender in its cell has 1 to k-1 people (``released``: released people). This is the
    one place the age release rule is written."""
    hourly = HourlyRollup.__table__
    sibling = HourlyAge.__table__.alias("sibling")
    gender_released = (
        select(
            case(
                (bands.c.gender == "female", hourly.c.released_female),
                (bands.c.gender == "male", hourly.c.released_male),
                else_=hourly.c.released_unknown,
            )
        )
        .where(hourly.c.zone_pk == bands.c.zone_pk, hourly.c.hour_start == bands.c.hour_start)
        .scalar_subquery()
    )
    sibling_people = sibling.c.released_people if released else sibling.c.people
    thin_band = exists().where(
        sibling.c.zone_pk == bands.c.zone_pk,
        sibling.c.hour_start == bands.c.hour_start,
        sibling.c.gender == bands.c.gender,
        sibling_people >= 1,
        sibling_people < k,
    )
    # An age cell without its hourly cell (never: they are written together) would release nothing.
    return and_(func.coalesce(gender_released, 0) > 0, ~thin_band)


def withhold_cameras_with_hidden_parts(
    session: Session, k: int, cells: ColumnElement[bool], *, thin_only: bool = False
) -> None:
    """Withholds the camera cells (``measure: camera``) among the hourly cells ``cells`` selects while any of their
    parts is hidden. A part (``rollup_camera_parts``) is the people the camera saw pass one of its zones or lines
    that hour, 0 where it watched and nobody came; it is hidden when any camera's share of the same zone and hour
    (its own included) has 1 to k-1 people, when its zone's cell releases people other than its raw count
    (:func:`step_release` holds late people back there), or when another camera feeding that zone holds late people
    back itself. Call this after the zones' release, held cells included, and before the cameras' age cells are
    released.

    This is complementary suppression. A camera's distinct people are the sum of its parts wherever its zones
    split its view; released on its own merits, the camera minus the released zones gives a withheld zone back
    (13 - 12 = 1), a camera that sees part of a zone other cameras also see gives its part back the same way, and a
    camera that moves while its zone holds late people back shows them. With every part at 0 or at least k, and
    released as it is, the camera's figure holds no value below k that subtraction could isolate.

    Every camera feeding the zone is withheld, its own part 0 or not: were only cameras with people there withheld,
    how many were would bound the zone's count from below (four cameras withheld at a door whose withheld count is
    1 to 4 make it 4). Which cameras feed a zone is the fleet's configuration, so what is withheld tells no count."""
    hourly = HourlyRollup.__table__
    camera = Zone.__table__.alias("camera")
    zone_cell = HourlyRollup.__table__.alias("zone_cell")
    parts = CameraPart.__table__
    of_this_camera = camera_parts(camera, parts)
    # Its own share of a zone below k, or another camera's share of a zone it shares: the zone's total, this
    # camera's and the other cameras' figures would give that share back by subtraction.
    share = CameraPart.__table__.alias("share")
    thin_part = exists().where(
        *of_this_camera,
        share.c.zone_pk == parts.c.zone_pk,
        share.c.hour_start == parts.c.hour_start,
        share.c.people >= 1,
        share.c.people < k,
    )
    holding_part = exists().where(
        *of_this_camera,
        zone_cell.c.zone_pk == parts.c.zone_pk,
        zone_cell.c.hour_start == parts.c.hour_start,
        people_held_back(zone_cell.c),
    )
    # Another camera feeding one of its zones holds late people back: the zone's step minus this camera's would show
    # them.
    other_camera, other_cell = Zone.__table__.alias("other_camera"), HourlyRollup.__table__.alias("other_cell")
    holding_camera = exists().where(
        *of_this_camera,
        share.c.zone_pk == parts.c.zone_pk,
        share.c.hour_start == parts.c.hour_start,
        share.c.camera_id != camera.c.zone_id,
        other_camera.c.site_id == camera.c.site_id,
        other_camera.c.zone_id == share.c.camera_id,
        other_camera.c.measure == "camera",
        other_cell.c.zone_pk == other_camera.c.id,
        other_cell.c.hour_start == hourly.c.hour_start,
        people_held_back(other_cell.c),
    )
    # ``thin_only``: cameras readers have seen, at a change of k; whether a zone holds late people back must not
    # show there (footfall.server.rollups.cells.release_site).
    hidden = thin_part if thin_only else or_(thin_part, holding_part, holding_camera)
    session.execute(
        update(hourly)
        .where(cells, hourly.c.released_people > 0, hidden)
        .values(WITHHELD_CELL)
        .execution_options(synchronize_session=False)
    )


def camera_parts(camera: Any, parts: Any) -> tuple[ColumnElement[bool], ...]:
    """Conditions on ``camera`` (an alias of ``zones``) and ``parts`` (``rollup_camera_parts``) that make them the
    zones row and the parts of the camera cell being judged (an hourly cell of ``rollup_hourly``, not aliased): its
    parts of that hour in zones of its own site."""
    hourly = HourlyRollup.__table__
    part_zone = Zone.__table__.alias("part_zone")
    return (
        camera.c.id == hourly.c.zone_pk,
        camera.c.measure == "camera",
        parts.c.camera_id == camera.c.zone_id,
        parts.c.hour_start == hourly.c.hour_start,
        part_zone.c.id == parts.c.zone_pk,
        part_zone.c.site_id == camera.c.site_id,
    )


def people_held_back(columns: Any) -> ColumnElement[bool]:
    """SQL: a cell (``columns``: an hourly table's ``.c``) that releases people other than its raw count: late people
    held back (:func:`step_release`), or a frozen cell (``shown``: a change of k altered what readers had seen of
    it) with people it does not release, withheld or not."""
    return and_(columns.released_people != columns.people, or_(columns.released_people > 0, columns.shown.is_not(None)))


def released_end(end: int, now: float, open_hour: bool, delay: int = 0) -> int:
    """The end of what a read may cover: ``end``, but not past the start of the hour in progress, nor past an
    hour that ended less than ``delay`` seconds ago (its last buckets may still be on their way), unless the
    operator releases the open hour too."""
    return end if open_hour else min(end, readable_until(now, delay))


def seen_until(now: float, open_hour: bool, delay: int) -> int | None:
    """The end of the hours ingest must treat as seen by readers at ``now`` (None: the open hour is released,
    answers are live and nothing steps), with :data:`SEEN_MARGIN` to spare."""
    return None if open_hour else readable_until(now + SEEN_MARGIN, delay)


def read_until(now: float, open_hour: bool, delay: int) -> int | None:
    """The end of the hours a read may already have covered at ``now``, with :data:`SEEN_MARGIN` to spare the other
    way (None: live answers): what a reader can have seen of a cell, where :func:`seen_until` is what ingest must treat
    as seen. A record of what readers saw (rollup_hourly.split_withheld_people) is made only for these hours."""
    return None if open_hour else readable_until(now - SEEN_MARGIN, delay)


def readable_until(now: float, delay: int) -> int:
    """The end of the last hour reads cover at ``now`` (the open hour not released): not the hour in progress, nor
    an hour that ended less than ``delay`` seconds ago."""
    settled = int(now) - delay
    return settled - settled % HOUR


@dataclass(frozen=True)
class CellRelease:
    """What one zone × hour cell releases: its ``RELEASED_FIELDS`` values, in that order, and the released people of
    its age cells by (gender, band) (absent: 0)."""

    values: tuple[float, ...]
    bands: Mapping[tuple[str, str], int]

    def value(self, name: str) -> float:
        return self.values[RELEASED_FIELDS.index(name)]

    @property
    def split_withheld(self) -> bool:
        """It shows people but not their split."""
        return self.value("released_people") > 0 and not any(self.value(name) for name in SPLIT_FIELDS)


_PEOPLE_FIELDS = ("released_people", *SPLIT_FIELDS, "withheld")
_DWELL_FIELDS = ("released_dwell_samples", "released_dwell_seconds")


def _steps(change: float, k: int) -> bool:
    return change == 0 or abs(change) >= k


def _bands_step(shown: CellRelease, candidate: CellRelease, k: int) -> bool:
    """Each gender whose bands readers saw still shows them, each band changed by 0 or at least k."""
    for gender in {g for (g, _), people in shown.bands.items() if people > 0}:
        keys = {key for key in (*shown.bands, *candidate.bands) if key[0] == gender}
        if sum(candidate.bands.get(key, 0) for key in keys) == 0:
            return False
        if not all(_steps(candidate.bands.get(key, 0) - shown.bands.get(key, 0), k) for key in keys):
            return False
    return True


def keep_withheld(shown: CellRelease, candidate: CellRelease) -> CellRelease:
    """``candidate`` without what readers saw withheld of a cell that showed people: its split (and so every band),
    or a shown gender's bands. Shown later, it would come back by subtraction: the people readers saw move by a
    known number of late people, and 4 women and 10 men (withheld, 4 < k) plus 5 late women is the only withheld
    split that 9 / 10 / 0 can come from."""
    if shown.value("released_people") == 0:
        return candidate
    if shown.split_withheld:
        values = tuple(
            0.0 if name in SPLIT_FIELDS else value
            for name, value in zip(RELEASED_FIELDS, candidate.values, strict=True)
        )
        return CellRelease(values, {})
    banded = {gender for (gender, _), people in shown.bands.items() if people > 0}
    unbanded = {name.removeprefix("released_") for name in SPLIT_FIELDS if shown.value(name)} - banded
    return CellRelease(candidate.values, {key: n for key, n in candidate.bands.items() if key[0] not in unbanded})


def step_release(shown: CellRelease, candidate: CellRelease, k: int) -> CellRelease:
    """What a cell that readers have seen releases after its counts changed: ``candidate`` (the release rule on its
    new counts) where every value readers saw moves by 0 or at least k and stays shown, else ``shown`` as it was;
    people, split and bands move together (the bands add up to the split), dwell on its own (by k samples).

    A shown cell is never withheld again, so one whose counts fall below k (a bucket sent again with fewer
    people) keeps answering what it answered: its release can exceed its raw counts. Nor is what readers saw
    withheld of it ever shown (:func:`keep_withheld`): a split or a gender's bands stay withheld."""
    candidate = keep_withheld(shown, candidate)
    people = shown.value("released_people")
    split_shown = any(shown.value(name) for name in SPLIT_FIELDS)
    moves = people == 0 or (
        candidate.value("released_people") > 0
        and _steps(candidate.value("released_people") - people, k)
        and (
            not split_shown
            or (
                any(candidate.value(name) for name in SPLIT_FIELDS)
                and all(_steps(candidate.value(name) - shown.value(name), k) for name in SPLIT_FIELDS)
            )
        )
        and _bands_step(shown, candidate, k)
    )
    samples = shown.value("released_dwell_samples")
    # Dwell moves with k more or fewer samples only: the same samples with other seconds (a bucket sent again)
    # would tell how the dwell of those few people changed.
    dwell_moves = samples == 0 or (
        candidate.value("released_dwell_samples") > 0 and abs(candidate.value("released_dwell_samples") - samples) >= k
    )
    chosen = {name: candidate if moves else shown for name in _PEOPLE_FIELDS}
    chosen.update({name: candidate if dwell_moves else shown for name in _DWELL_FIELDS})
    return CellRelease(
        tuple(chosen[name].value(name) for name in RELEASED_FIELDS), (candidate if moves else shown).bands
    )
