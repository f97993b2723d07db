"""Running totals of released values per zone × local hour of week (``rollup_slot_cumulative``): how the
ad-placement ranking reads any range of whole weeks from two rows per slot instead of one hourly row per slot
and week.

Ingest adds each change of an hourly cell's released values (footfall.server.release) to the slot's row of
its UTC week and of every later week, in the same transaction as the hourly rollup, so the running totals
always equal sums of the released hourly values. A zone's rows are dense from its first to its last week,
so a query finds the row of any week by key: weeks after the last one hold the last totals, weeks before the
first one hold zeros.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from footfall.server.localtime import HOUR, MONDAY_EPOCH, WEEK, week_epoch
from footfall.server.sql import insert_for, locked
from footfall.server.tables import HourlyRollup, SlotCumulative, SlotSpan
from sqlalchemy import (
    BigInteger,
    Connection,
    Float,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    literal,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import CompoundSelect, Select

HOURS_OF_WEEK = 168
SLOT_FIELDS = ("people", "female", "male", "unknown", "withheld", "hours")
# The hourly columns the first five slot fields sum (``hours`` counts the weeks with an hourly row: when clocks go
# back, a local hour happens twice in one week, and is one week observed).
SLOT_SOURCES = ("released_people", "released_female", "released_male", "released_unknown", "withheld")

# (zone_pk, UTC week, local hour of week) → [people, female, male, unknown, withheld, new hourly rows]
SlotDeltas = dict[tuple[int, int, int], list[int]]


def apply_slot_deltas(session: Session, deltas: SlotDeltas) -> None:
    """Adds ``deltas`` to the running totals of their week and every later week of the zone."""
    changed = {key: delta for key, delta in deltas.items() if any(delta)}
    if not changed:
        return
    touched: dict[int, list[int]] = defaultdict(list)
    for zone_pk, week, _ in changed:
        touched[zone_pk].append(week)
    zones = sorted(touched)
    span = SlotSpan.__table__
    cumulative = SlotCumulative.__table__
    insert = insert_for(session)
    # A zone's first delta creates its span; the insert's returned rows are the zones that are new here.
    created = {
        row[0]
        for row in session.execute(
            insert(span).on_conflict_do_nothing(index_elements=["zone_pk"]).returning(span.c.zone_pk),
            [{"zone_pk": z, "first_week": min(touched[z]), "last_week": max(touched[z])} for z in zones],
        )
    }
    query = select(span.c.zone_pk, span.c.first_week, span.c.last_week).where(span.c.zone_pk.in_(zones))
    # One writer per zone at a time: extending the dense rows and adding deltas must not interleave.
    query = locked(query.order_by(span.c.zone_pk), session)
    spans = {row[0]: (row[1], row[2]) for row in session.execute(query)}
    zero_weeks: list[dict[str, int]] = []  # per zone, the weeks [low, high] whose rows start at zero
    copies: list[dict[str, int]] = []
    new_spans: list[dict[str, int]] = []
    for zone_pk in zones:
        low, high = min(touched[zone_pk]), max(touched[zone_pk])
        if zone_pk in created:
            zero_weeks.append({"z": zone_pk, "low": low, "high": high})
            continue
        first, last = spans[zone_pk]
        if low < first:
            zero_weeks.append({"z": zone_pk, "low": low, "high": first - 1})
        copies += [{"z": zone_pk, "source": last, "target": week} for week in range(last + 1, high + 1)]
        if low < first or high > last:
            new_spans.append({"z": zone_pk, "first": min(low, first), "last": max(high, last)})
    if zero_weeks:
        # Made by the database, not as one Python row per week and hour: a zone's span may hold a year of weeks.
        session.execute(_ZERO_WEEKS, zero_weeks)
    if copies:
        source = cumulative.alias("source")
        session.execute(
            cumulative.insert().from_select(
                ["zone_pk", "week", "local_how", *SLOT_FIELDS],
                select(
                    source.c.zone_pk,
                    bindparam("target", type_=BigInteger),
                    source.c.local_how,
                    *(source.c[name] for name in SLOT_FIELDS),
                ).where(source.c.zone_pk == bindparam("z"), source.c.week == bindparam("source")),
            ),
            copies,
        )
    if new_spans:
        session.execute(
            update(span)
            .where(span.c.zone_pk == bindparam("z"))
            .values(first_week=bindparam("first"), last_week=bindparam("last")),
            new_spans,
        )
    session.execute(
        update(cumulative)
        .where(
            cumulative.c.zone_pk == bindparam("z"),
            cumulative.c.local_how == bindparam("how"),
            cumulative.c.week >= bindparam("w"),
        )
        .values({name: cumulative.c[name] + bindparam(f"d_{name}") for name in SLOT_FIELDS}),
        [
            {"z": z, "w": w, "how": x, **{f"d_{n}": int(v) for n, v in zip(SLOT_FIELDS, delta, strict=True)}}
            for (z, w, x), delta in sorted(changed.items())
        ],
    )


# A zone's rows of weeks :low to :high, every hour of week, all zero.
_ZERO_WEEKS = text(
    f"""
    WITH RECURSIVE hows(how) AS (SELECT 0 UNION ALL SELECT how + 1 FROM hows WHERE how < {HOURS_OF_WEEK - 1}),
    weeks(week) AS (SELECT :low UNION ALL SELECT week + 1 FROM weeks WHERE week < :high)
    INSERT INTO rollup_slot_cumulative (zone_pk, week, local_how, {", ".join(SLOT_FIELDS)})
    SELECT :z, week, how, {", ".join("0" for _ in SLOT_FIELDS)} FROM weeks CROSS JOIN hows ORDER BY week, how
    """
).bindparams(bindparam("z", type_=BigInteger), bindparam("low", type_=BigInteger), bindparam("high", type_=BigInteger))

_REBUILD_SPANS = text(
    """
    INSERT INTO rollup_slot_span (zone_pk, first_week, last_week)
    SELECT zone_pk, min((hour_start - :monday) / :week), max((hour_start - :monday) / :week)
    FROM rollup_hourly WHERE zone_pk IN :zones GROUP BY zone_pk
    """
).bindparams(bindparam("zones", expanding=True))

# Every week of each zone's span × 168 hours of week, each with its running totals (a window sum over the
# slot's weeks of that week's hourly rows); portable SQL for PostgreSQL and SQLite. A cell adds a week observed
# unless the hour before it is the same local hour of week (clocks going back: one week, two cells), as ingest
# counts it; not one per UTC week, which holds two local weeks of a slot when clocks go forward (London's
# Monday 00:00 on 23 and 30 March 2026 are both in the UTC week of the 23rd). Written in key order, so
# the 168 rows a query reads per zone and week lie on a few pages (ingest appends them in that order too):
# in the order of the window they were spread over 168 pages and reading them took 4x longer.
_REBUILD_TOTALS = text(
    """
    WITH RECURSIVE hows(how) AS (SELECT 0 UNION ALL SELECT how + 1 FROM hows WHERE how < 167),
    weeks(zone_pk, week, last_week) AS (
        SELECT zone_pk, first_week, last_week FROM rollup_slot_span WHERE zone_pk IN :zones
        UNION ALL SELECT zone_pk, week + 1, last_week FROM weeks WHERE week < last_week
    ),
    cells(zone_pk, week, how, p, f, m, u, w, n) AS (
        SELECT r.zone_pk, (r.hour_start - :monday) / :week, r.local_how, r.released_people, r.released_female,
            r.released_male, r.released_unknown, r.withheld,
            CASE WHEN EXISTS (
                SELECT 1 FROM rollup_hourly e
                WHERE e.zone_pk = r.zone_pk AND e.hour_start = r.hour_start - :hour AND e.local_how = r.local_how
            ) THEN 0 ELSE 1 END
        FROM rollup_hourly r WHERE r.zone_pk IN :zones
    ),
    sums(zone_pk, week, how, p, f, m, u, w, n) AS (
        SELECT zone_pk, week, how, sum(p), sum(f), sum(m), sum(u), sum(w), sum(n) FROM cells GROUP BY 1, 2, 3
    )
    INSERT INTO rollup_slot_cumulative (zone_pk, week, local_how, people, female, male, unknown, withheld, hours)
    SELECT w.zone_pk, w.week, x.how,
        sum(coalesce(s.p, 0)) OVER slot, sum(coalesce(s.f, 0)) OVER slot, sum(coalesce(s.m, 0)) OVER slot,
        sum(coalesce(s.u, 0)) OVER slot, sum(coalesce(s.w, 0)) OVER slot, sum(coalesce(s.n, 0)) OVER slot
    FROM weeks w CROSS JOIN hows x
    LEFT JOIN sums s ON s.zone_pk = w.zone_pk AND s.week = w.week AND s.how = x.how
    WINDOW slot AS (PARTITION BY w.zone_pk, x.how ORDER BY w.week)
    ORDER BY w.zone_pk, w.week, x.how
    """
).bindparams(bindparam("zones", expanding=True))


def rebuild_slots(bind: Session | Connection, zone_pks: list[int]) -> int:
    """Recomputes the running totals of ``zone_pks`` from the released values of their hourly cells, inside the
    database (after a time-zone change or a change of k, or after a bulk load); returns the rows written."""
    if not zone_pks:
        return 0
    cumulative, span = SlotCumulative.__table__, SlotSpan.__table__
    bind.execute(delete(cumulative).where(cumulative.c.zone_pk.in_(zone_pks)))
    bind.execute(delete(span).where(span.c.zone_pk.in_(zone_pks)))
    weeks = {"monday": MONDAY_EPOCH, "week": WEEK}
    bind.execute(_REBUILD_SPANS, {"zones": list(zone_pks), **weeks})
    # Session.execute() is typed to give a Result; for a text statement it is a CursorResult, with rowcount.
    return bind.execute(_REBUILD_TOTALS, {"zones": list(zone_pks), "hour": HOUR, **weeks}).rowcount or 0  # type: ignore[attr-defined]  # CursorResult


def slot_parts(
    zone_pks: list[int], start: int, end: int, hours_of_week: list[int] | None
) -> Select[*tuple[Any, ...]] | CompoundSelect[*tuple[Any, ...]]:
    """Rows (zone_pk, how, p, f, m, u, w, n) whose sums per (zone_pk, how) are the released hourly values'
    sums (people, female, male, unknown, withheld cells) and row count over hours starting in [start, end):
    the hours before the first and after the last whole UTC week come from the hourly rollup, the whole weeks
    from two running-total rows per slot (end minus start)."""
    h = HourlyRollup.__table__
    earlier = HourlyRollup.__table__.alias("earlier")
    twin = (
        earlier.c.zone_pk == h.c.zone_pk,
        earlier.c.hour_start == h.c.hour_start - HOUR,
        earlier.c.local_how == h.c.local_how,
    )
    first_week = -((MONDAY_EPOCH - start) // WEEK)  # the first week starting at or after ``start``
    stop_week = (end - MONDAY_EPOCH) // WEEK  # the first week not ending by ``end``

    def hourly(low: int, high: int) -> Select[*tuple[Any, ...]]:
        how_filter = [h.c.local_how.in_(hours_of_week)] if hours_of_week is not None else []
        return select(
            h.c.zone_pk.label("zone_pk"),
            h.c.local_how.label("how"),
            cast(h.c.released_people, Float).label("p"),
            cast(h.c.released_female, Float).label("f"),
            cast(h.c.released_male, Float).label("m"),
            cast(h.c.released_unknown, Float).label("u"),
            cast(h.c.withheld, Integer).label("w"),
            # One per week: the second of a local hour that happens twice (clocks going back) adds none.
            # Integers: PostgreSQL sums bigints as slow numerics.
            # The zones and the upper end are implied by the twin's; said, they let PostgreSQL hash the earlier
            # hours by an index range (it read every hour after ``low`` of every zone: 47 ms of a 90-day ranking).
            case(
                (
                    exists().where(
                        *twin, earlier.c.zone_pk.in_(zone_pks), earlier.c.hour_start >= low, earlier.c.hour_start < high
                    ),
                    literal(0, Integer),
                ),
                else_=literal(1, Integer),
            ).label("n"),
        ).where(h.c.zone_pk.in_(zone_pks), h.c.hour_start >= low, h.c.hour_start < high, *how_filter)

    if first_week >= stop_week:
        return hourly(start, end)
    return union_all(
        hourly(start, week_epoch(first_week)),
        _totals_at(zone_pks, stop_week - 1, 1, hours_of_week),
        _totals_at(zone_pks, first_week - 1, -1, hours_of_week),
        hourly(week_epoch(stop_week), end),
    )


def _totals_at(zone_pks: list[int], week: int, sign: int, hours_of_week: list[int] | None) -> Select[*tuple[Any, ...]]:
    """``sign`` × the running totals at the end of ``week`` per slot (zones without data by then: none)."""
    c, s = SlotCumulative.__table__, SlotSpan.__table__
    row_week = case((s.c.last_week < week, s.c.last_week), else_=literal(week, BigInteger))
    how_filter = [c.c.local_how.in_(hours_of_week)] if hours_of_week is not None else []
    return (
        select(
            c.c.zone_pk.label("zone_pk"),
            c.c.local_how.label("how"),
            cast(c.c.people * sign, Float).label("p"),
            cast(c.c.female * sign, Float).label("f"),
            cast(c.c.male * sign, Float).label("m"),
            cast(c.c.unknown * sign, Float).label("u"),
            cast(c.c.withheld * sign, Integer).label("w"),
            cast(c.c.hours * sign, Integer).label("n"),
        )
        .select_from(s.join(c, and_(c.c.zone_pk == s.c.zone_pk, c.c.week == row_week)))
        .where(s.c.zone_pk.in_(zone_pks), s.c.first_week <= week, *how_filter)
    )
