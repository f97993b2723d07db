"""The running totals per zone × local hour of week (the ad-placement ranking's rollup) stay exact: equal to
the released values of the hourly rollups under replays, out-of-order updates, data arriving for old weeks
and new weeks, zero-count buckets and a site time-zone change, on SQLite and PostgreSQL; and the ranking's
slot sums equal a plain aggregation of the hourly rows for ranges that cut weeks anywhere."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from footfall.server import queries
from footfall.server.migrate import head_revision, upgrade
from footfall.server.rollups import daily_vs_hourly, ensure_release, raw_vs_hourly, rebuild_slots, slots_vs_hourly
from footfall.server.tables import HourlyRollup, SlotCumulative, Zone
from sqlalchemy import func, select, text

from tests.server.conftest import BASE, Server, aggregate

LATEST = BASE + timedelta(days=6, hours=20)  # Sunday evening, still in the past
ZONES = ("entrance", "food", "hall")


def _random_batch(rng: random.Random, size: int) -> list[dict]:
    batch = []
    for _ in range(size):
        start = LATEST - timedelta(minutes=rng.randrange(0, 9 * 7 * 24 * 60, 30))  # up to 9 weeks back
        zero = rng.random() < 0.1  # a zero count creates no hourly row; it still counts as a bucket
        batch.append(
            aggregate(
                camera=rng.choice(["cam-1", "cam-2"]),
                zone=rng.choice(ZONES),
                start=start,
                seq=rng.randrange(0, 6),
                female=0 if zero else rng.randrange(0, 9),
                male=0 if zero else rng.randrange(0, 9),
                unknown=0 if zero else rng.randrange(0, 3),
            )
        )
    return batch


def _naive_slots(server: Server, start: int, end: int) -> set[tuple]:
    """Slots summed from the hourly rows, less those whose every hour was withheld (nothing to show)."""
    h = HourlyRollup
    with server.db.read() as session:
        rows = {
            tuple(int(v) for v in row)
            for row in session.execute(
                select(
                    h.zone_pk,
                    h.local_how,
                    func.sum(h.released_people),
                    func.sum(h.released_female),
                    func.sum(h.released_male),
                    func.sum(h.released_unknown),
                    func.sum(h.withheld),
                    func.count(),
                )
                .where(h.hour_start >= start, h.hour_start < end)
                .group_by(h.zone_pk, h.local_how)
            )
        }
    return {row for row in rows if row[2] > 0 or row[6] == 0}


def _ranked_slots(server: Server, start: int, end: int, hours_of_week: list[int]) -> set[tuple]:
    with server.db.read() as session:
        zone_pks = list(session.scalars(select(Zone.id)))
        ranked = queries.ranked_slots(
            session,
            zone_pks,
            start,
            end,
            audience="female",
            sort="audience",
            hours_of_week=hours_of_week,
            min_weeks=1,
            limit=1000,
        )
    return set(ranked.rows)


def _check_ranges(server: Server, rng: random.Random) -> None:
    low, high = int((LATEST - timedelta(weeks=10)).timestamp()), int(LATEST.timestamp()) + 7200
    ranges = [(low, high), (low, low + 3 * 86_400)]  # everything; less than a week
    ranges += [tuple(sorted(rng.randrange(low, high) for _ in range(2))) for _ in range(6)]  # ragged ends
    for start, end in ranges:
        assert _ranked_slots(server, start, end, list(range(168))) == _naive_slots(server, start, end)
    evenings = [d * 24 + h for d in range(7) for h in range(18, 23)]
    start, end = ranges[-1]
    assert _ranked_slots(server, start, end, evenings) == {
        row for row in _naive_slots(server, start, end) if row[1] in evenings
    }


def test_slot_totals_stay_exact_under_replays_and_old_weeks(server: Server) -> None:
    rng = random.Random(5)
    sent: list[dict] = []
    for _ in range(5):
        batch = _random_batch(rng, 70)
        sent += batch
        server.ingest(*batch)
        with server.db.read() as session:
            assert slots_vs_hourly(session) == []
    replay = rng.sample(sent, len(sent))  # everything again, shuffled: nothing may change
    server.ingest(*replay[:150])
    server.ingest(*replay[150:])
    with server.db.read() as session:
        assert raw_vs_hourly(session) == [] and slots_vs_hourly(session) == []
        assert session.scalar(select(func.count()).select_from(SlotCumulative)) % 168 == 0
    _check_ranges(server, rng)


def test_slot_totals_follow_a_time_zone_change(server: Server) -> None:
    rng = random.Random(8)
    server.ingest(*_random_batch(rng, 120))
    response = server.client.patch(
        "/api/v1/sites/mall", json={"timezone": "America/New_York"}, headers=server.headers("admin")
    )
    assert response.status_code == 200, response.text
    server.ingest(*_random_batch(rng, 60))  # new data filed in New York hours of week
    with server.db.read() as session:
        assert slots_vs_hourly(session) == []
    _check_ranges(server, rng)
    # The API answers from the same sums: a slot's weeks observed and counts match the hourly rows.
    body = server.get(
        "/api/v1/sites/mall/insights/ad-placement",
        start=(LATEST - timedelta(weeks=10)).isoformat(),
        end=(LATEST + timedelta(hours=2)).isoformat(),
        limit=3,
    ).json()
    assert body["timezone"] == "America/New_York" and len(body["slots"]) == 3


def test_migration_fills_the_slot_totals_from_existing_hourly_rollups(database_url: str) -> None:
    from footfall.server.db import Database

    db = Database(database_url)
    try:
        upgrade(db.engine, "0001")
        hour = int(datetime(2026, 10, 5, 9, tzinfo=UTC).timestamp())  # a Monday 09:00 UTC: hour of week 9
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO sites VALUES ('mall', 'Mall', 'UTC', 0)"))
            conn.execute(
                text(
                    "INSERT INTO zones (site_id, zone_id, name, kind, created_at) VALUES ('mall', 'a', 'A', 'other', 0)"
                )
            )
            for week, female in ((0, 4), (2, 6)):
                conn.execute(
                    text("INSERT INTO rollup_hourly VALUES (1, :h, 9, :p, :f, 1, 0, 0, 0)"),
                    {"h": hour + week * 7 * 86_400, "p": female + 1, "f": female},
                )
        assert upgrade(db.engine) == head_revision()
        ensure_release(db, 1, seen_end=None)  # what the server does on start; k = 1 releases every count
        with db.read() as session:
            assert daily_vs_hourly(session) == []
            assert slots_vs_hourly(session) == []
            rows = session.execute(
                select(SlotCumulative.week, SlotCumulative.female, SlotCumulative.hours)
                .where(SlotCumulative.local_how == 9)
                .order_by(SlotCumulative.week)
            ).all()
        assert [(f, n) for _, f, n in rows] == [(4, 1), (4, 1), (10, 2)]  # dense: the empty week carries
    finally:
        db.dispose()


def test_the_hour_repeated_when_clocks_go_back_counts_twice_in_its_slot(sqlite_server: Server) -> None:
    s = sqlite_server
    s.ingest(aggregate(start=BASE, female=5))  # creates the site
    response = s.client.patch("/api/v1/sites/mall", json={"timezone": "America/New_York"}, headers=s.headers("admin"))
    assert response.status_code == 200, response.text
    # 1 November 2026, New York: 01:00-02:00 local happens twice, at 05:00 and 06:00 UTC, in one batch.
    first = datetime(2026, 11, 1, 5, 10, tzinfo=UTC)
    s.ingest(
        aggregate(start=first, seq=2, female=6, male=6),
        aggregate(start=first + timedelta(hours=1), seq=3, female=7, male=7),
    )
    with s.db.read() as session:
        assert slots_vs_hourly(session) == []


def test_the_ranking_counts_a_repeated_hour_at_a_ragged_end_as_one_week(server: Server) -> None:
    """A range that starts and ends inside weeks reads its ragged ends from the hourly cells, where the second of
    a local hour that happens twice (clocks going back) adds no week: one week observed, both hours' people, in the
    gender ranking and in an age audience's."""
    s = server
    s.ingest(aggregate(start=BASE, female=5))  # creates the site
    response = s.client.patch("/api/v1/sites/mall", json={"timezone": "America/New_York"}, headers=s.headers("admin"))
    assert response.status_code == 200, response.text
    first = datetime(2026, 11, 1, 5, 10, tzinfo=UTC)  # 01:00-02:00 local, twice: 05:00 and 06:00 UTC
    s.ingest(
        aggregate(start=first, seq=2, female=6, male=6),
        aggregate(start=first + timedelta(hours=1), seq=3, female=7, male=7),
    )
    span = {"start": "2026-10-31T12:00:00Z", "end": "2026-11-02T12:00:00Z"}  # a Saturday to a Monday: no whole week
    for age in (None, "25-34"):  # the gender ranking, and an age audience's: its slots are read alike
        asked = {"age": age} if age else {}
        [slot] = s.get("/api/v1/sites/mall/insights/ad-placement", audience="all", **span, **asked).json()["slots"]
        assert (slot["weekday"], slot["hour"], slot["weeks_observed"], slot["people"]) == ("Sun", 1, 1, 26), age


def test_a_slot_seen_twice_in_one_utc_week_when_clocks_go_forward_counts_two_weeks(server: Server) -> None:
    """Found by review: London's local Monday 00:10 falls on 23 March 2026 00:10 UTC and, after the clocks go
    forward, on 29 March 23:10 UTC: two local weeks in one UTC week. Ingest counted both; rebuilding the running
    totals (after a time-zone change, a change of k, a bulk load) counted one per UTC week, so the same cells read
    as 3 weeks, 13.3 women a week instead of 10, and the totals disagreed with the hourly cells."""
    s = server
    s.ingest(aggregate(start=BASE, female=5))  # creates the site
    response = s.client.patch("/api/v1/sites/mall", json={"timezone": "Europe/London"}, headers=s.headers("admin"))
    assert response.status_code == 200, response.text
    mondays = [datetime(2026, 3, 16, 0, 10), datetime(2026, 3, 23, 0, 10), datetime(2026, 3, 29, 23, 10)]
    mondays.append(datetime(2026, 4, 5, 23, 10))
    s.ingest(*(aggregate(start=t.replace(tzinfo=UTC), seq=2 + i, female=10) for i, t in enumerate(mondays)))
    span = {"start": "2026-03-16T00:00:00Z", "end": "2026-04-13T00:00:00Z"}  # four whole UTC weeks

    def weeks() -> list[tuple[str, int, int, float]]:
        with s.db.read() as session:
            assert slots_vs_hourly(session) == []
        body = s.get("/api/v1/sites/mall/insights/ad-placement", audience="all", **span).json()
        return [(x["weekday"], x["hour"], x["weeks_observed"], x["expected_audience"]) for x in body["slots"]]

    assert weeks() == [("Mon", 0, 4, 10.0)]
    with s.db.write() as session:
        rebuild_slots(session, list(session.scalars(select(Zone.id))))
    assert weeks() == [("Mon", 0, 4, 10.0)]
