"""An hour a camera watched for only part of (a reboot, a lost stream, an agent started at 10:23) is flagged where
its people are read: its count is a lower bound, and read beside full hours it looked like a quiet hour. The agent
sends each zone a bucket every minute it runs, quiet ones too, so the server knows how much of each hour a camera
reported (footfall.server.rollups.observed)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest

pytest.importorskip("fastapi")

from footfall.server.rollups import raw_vs_hourly, raw_vs_observed

from tests.server.conftest import BASE, Server, aggregate, minutes

TEN = BASE + timedelta(hours=10)  # Monday 2026-11-16 10:00 UTC (the site is in UTC)
DAY = {"start": "2026-11-16T00:00:00Z", "end": "2026-11-17T00:00:00Z"}


def _minutes(first: int, last: int, *, start=TEN, camera: str = "cam-1", seq: int = 1, zone: str = "atrium") -> list:  # type: ignore[no-untyped-def]
    """A camera's minute buckets from minute ``first`` to ``last`` (inclusive) of the hour at ``start``, each with one
    woman: what an agent running for those minutes sends."""
    return [
        aggregate(zone=zone, camera=camera, start=start + minutes(m), seconds=60, seq=seq + m, female=1)
        for m in range(first, last + 1)
    ]


def _points(server: Server, **params: str) -> dict[str, tuple[int, int]]:
    body = server.get("/api/v1/sites/mall/traffic/series", **DAY, **params).json()
    return {p["label"]: (p["people"], p["hours_partly_observed"]) for p in body["points"]}


def test_an_hour_a_camera_watched_half_of_is_flagged_in_every_read(server: Server) -> None:
    """The camera ran 10:00-10:29 (30 minute buckets, 30 people), all of 11:00 (60 minute buckets) and all of 12:00
    (one 3600 s bucket): 10:00 is the one partly observed hour, in the series by hour and by day, the totals, the
    zone comparison, the peak hours and heatmap, and the CSV export."""
    response = server.ingest(
        *_minutes(0, 29),
        *_minutes(0, 59, start=TEN + timedelta(hours=1), seq=100),
        aggregate(zone="atrium", start=TEN + timedelta(hours=2), seconds=3600, seq=500, female=7),
    )
    assert response.status_code == 200, response.text
    assert _points(server) == {"2026-11-16 10:00": (30, 1), "2026-11-16 11:00": (60, 0), "2026-11-16 12:00": (7, 0)}
    assert _points(server, granularity="day") == {"2026-11-16": (97, 1)}
    totals = server.get("/api/v1/sites/mall/traffic/totals", **DAY).json()
    assert (totals["hours_observed"], totals["hours_partly_observed"]) == (3, 1)
    zone = server.get("/api/v1/sites/mall/traffic/compare", **DAY).json()["zones"][0]
    assert (zone["zone_id"], zone["hours_observed"], zone["hours_partly_observed"]) == ("atrium", 3, 1)
    peaks = {p["hour"]: p for p in server.get("/api/v1/sites/mall/traffic/peak-hours", **DAY).json()["hours"]}
    assert {hour: p["hours_partly_observed"] for hour, p in peaks.items()} == {10: 1, 11: 0, 12: 0}
    cells = server.get("/api/v1/sites/mall/traffic/heatmap", **DAY).json()["cells"]
    assert {c["hour_of_week"]: c["hours_partly_observed"] for c in cells} == {10: 1, 11: 0, 12: 0}
    export = server.get("/api/v1/sites/mall/traffic/export.csv", **DAY)
    rows = {row["bucket_local"]: row["hours_partly_observed"] for row in csv.DictReader(io.StringIO(export.text))}
    assert rows == {"2026-11-16 10:00": "1", "2026-11-16 11:00": "0", "2026-11-16 12:00": "0"}
    with server.db.read() as session:
        assert raw_vs_observed(session) == [] and raw_vs_hourly(session) == []


def test_buckets_sent_again_add_no_time_and_the_rest_of_the_hour_completes_it(server: Server) -> None:
    """The outbox delivers at least once: the same 30 minutes sent again (and again with newer counts) are still
    half an hour. The other half, arriving late, makes the hour whole."""
    server.ingest(*_minutes(0, 29))
    server.ingest(*_minutes(0, 29))  # the same messages again
    server.ingest(*_minutes(0, 29, seq=1000))  # newer counts of the same buckets
    assert _points(server) == {"2026-11-16 10:00": (30, 1)}
    server.ingest(*_minutes(30, 59))
    assert _points(server) == {"2026-11-16 10:00": (60, 0)}
    with server.db.read() as session:
        assert raw_vs_observed(session) == []


def test_one_camera_of_a_zone_down_for_part_of_the_hour_flags_it(server: Server) -> None:
    """Two cameras watch one wide door: cam-1 all hour, cam-2 for its first 20 minutes. The people cam-2 would have
    seen after 10:20 are missing whatever cam-1 saw, so the hour is partly observed; a zone only cam-1 watched is
    not."""
    server.ingest(
        aggregate(zone="door", camera="cam-1", start=TEN, seconds=3600, seq=1, female=40),
        *_minutes(0, 19, camera="cam-2", seq=10, zone="door"),
        aggregate(zone="hall", camera="cam-1", start=TEN, seconds=3600, seq=2, female=9),
    )
    zones = {
        z["zone_id"]: z["hours_partly_observed"]
        for z in server.get("/api/v1/sites/mall/traffic/compare", **DAY).json()["zones"]
    }
    assert zones == {"door": 1, "hall": 0}
    totals = server.get("/api/v1/sites/mall/traffic/totals", **DAY).json()
    assert totals["hours_partly_observed"] == 1


def test_the_hour_in_progress_is_not_partly_observed(sqlite_url: str) -> None:
    """A server that answers the hour in progress (the demo) has only its first minutes: that hour is not over, so it
    is not flagged. The hour before it, which the camera started within, is."""
    from datetime import UTC, datetime

    from tests.server.conftest import make_server

    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for server in make_server(sqlite_url, release_open_hour=True):
        server.ingest(
            aggregate(zone="atrium", start=hour, seconds=60, seq=2, female=7),
            aggregate(zone="atrium", start=hour - minutes(1), seconds=60, seq=1, female=6),
        )
        span = {"start": (hour - timedelta(hours=1)).isoformat(), "end": (hour + timedelta(hours=1)).isoformat()}
        points = server.get("/api/v1/sites/mall/traffic/series", **span).json()["points"]
        assert [(p["people"], p["hours_partly_observed"]) for p in points] == [(6, 1), (7, 0)]
        assert server.get("/api/v1/sites/mall/traffic/totals", **span).json()["hours_partly_observed"] == 1


def test_buckets_of_two_lengths_that_overlap_leave_the_hour_partly_observed(server: Server) -> None:
    """Found in review: a camera sent 10:00-10:19 in minute buckets, then its agent came back at 10:40 with
    bucket_seconds 3600 and sent the 10:00 bucket of the whole hour (replacing the 10:00 minute, same key). Summed,
    the camera reported 4740 s of the hour, which read as whole although 10:20-10:40 was not watched."""
    server.ingest(*_minutes(0, 19))
    server.ingest(aggregate(zone="atrium", start=TEN, seconds=3600, seq=100, female=20))
    assert _points(server) == {"2026-11-16 10:00": (39, 1)}
    with server.db.read() as session:
        assert raw_vs_observed(session) == []


def test_an_entrance_line_or_camera_a_camera_watched_part_of_the_hour_is_flagged_in_visitors(server: Server) -> None:
    """Found in review: /visitors never said so. The door's in-line camera ran 10:00-10:19, its out-line all hour;
    the camera's own visitors likewise ran 10:00-10:19."""

    def line(zone: str, measure: str, first: int, last: int, seq: int) -> list[dict]:
        messages = _minutes(first, last, zone=zone, seq=seq)
        return [{**m, "measure": measure} for m in messages]

    whole = {**aggregate(zone="door.out", start=TEN, seconds=3600, seq=500, unknown=8), "measure": "out"}
    server.ingest(*line("door.in", "in", 0, 19, 1), whole, *line("cam-1", "camera", 0, 19, 100))
    body = server.get("/api/v1/sites/mall/visitors", **DAY).json()
    [point] = [p for p in body["points"] if p["visitors"]["people"]]
    flags = (point["visitors"]["hours_partly_observed"], point["out"]["hours_partly_observed"])
    assert flags == (1, 0) and point["cameras"][0]["hours_partly_observed"] == 1
    totals = body["totals"]
    assert (totals["visitors"]["hours_partly_observed"], totals["out"]["hours_partly_observed"]) == (1, 0)


# --- ad placement: a slot whose week was watched only in part ----------------------------------------------

PLACEMENT = "/api/v1/sites/mall/insights/ad-placement"
TWO_WEEKS = {"start": "2026-11-16T00:00:00Z", "end": "2026-11-30T00:00:00Z"}
NEXT_TEN = TEN + timedelta(weeks=1)  # Monday 2026-11-23 10:00 UTC


def _whole(zone: str, start: datetime, seq: int, **people: int) -> dict:
    """A bucket of the whole hour at ``start``: an hour the camera watched all of."""
    return aggregate(zone=zone, start=start, seconds=3600, seq=seq, **people)


def _two_mondays(*, first: dict | None = None, second: list[dict] | None = None) -> list[dict]:
    """Two Mondays at 10:00: the atrium's camera watched the first whole (40 women) and only 10:00-10:29 of the second
    (30 women), so its slot reads 35 a week where more passed; the atrium at 11:00 and the hall at 10:00 were watched
    whole both weeks (10 and 20 women). ``first`` and ``second`` replace the atrium's two 10:00 hours."""
    return [
        first or _whole("atrium", TEN, 1, female=40),
        *(second or _minutes(0, 29, start=NEXT_TEN, seq=100)),
        _whole("atrium", TEN + timedelta(hours=1), 2, female=10),
        _whole("atrium", NEXT_TEN + timedelta(hours=1), 3, female=10),
        _whole("hall", TEN, 4, female=20),
        _whole("hall", NEXT_TEN, 5, female=20),
    ]


def _ranking(server: Server, **params: str) -> list[dict]:
    response = server.get(PLACEMENT, **TWO_WEEKS, **params)
    assert response.status_code == 200, response.text
    return response.json()["slots"]


def test_a_slot_with_a_week_watched_only_in_part_is_flagged_and_keeps_its_rank(server: Server) -> None:
    """Found in review: the ad-placement ranking took a week of a slot that a camera watched half of in like any
    other, so its mean per week read as an average where it is a lower bound. The slot counts such hours, says
    "at least" and why, and keeps its place: it ranks by what was counted, as every figure is."""
    assert server.ingest(*_two_mondays()).status_code == 200
    slots = _ranking(server)
    assert [(s["zone_id"], s["label"], s["people"], s["hours_partly_observed"]) for s in slots] == [
        ("atrium", "Mon 10:00-11:00", 70, 1),
        ("hall", "Mon 10:00-11:00", 40, 0),
        ("atrium", "Mon 11:00-12:00", 20, 0),
    ]
    top, hall, later = slots
    assert top["explanation"].startswith("atrium, Mon 10:00-11:00: at least 35.0 people per week"), top
    assert "a camera watched 1 of its hours only in part" in top["explanation"], top
    # The flag is its own: nothing was withheld, so audience_lower_bound keeps its one meaning.
    assert (top["withheld_hours"], top["audience_lower_bound"]) == (0, False)
    for whole in (hall, later):
        assert "on average" in whole["explanation"] and "only in part" not in whole["explanation"], whole
    # A window that leaves the atrium's 10:00 out leaves its partly observed hour out with it.
    assert [s["hours_partly_observed"] for s in _ranking(server, hours="11-12")] == [0]


def test_a_gender_audience_of_a_slot_watched_only_in_part_is_at_least(sqlite_server: Server) -> None:
    """The corrected share is a share of who was counted: the people a camera missed take nothing from it, but the
    audience per week (people × share) is a lower bound, and says so."""
    from tests.server.test_traffic import _gender_status

    rates = {"female": {"female": 90, "male": 5, "unknown": 5}, "male": {"female": 5, "male": 90, "unknown": 5}}
    half = [
        aggregate(zone="atrium", start=NEXT_TEN + minutes(m), seconds=60, seq=100 + m, female=1, male=int(m < 10))
        for m in range(30)
    ]
    messages = _two_mondays(first=_whole("atrium", TEN, 1, female=30, male=10), second=half)
    messages = [message | {"classifier": "gender@2"} for message in messages]
    assert sqlite_server.ingest(_gender_status("gender", "2", rates), *messages).status_code == 200
    top = _ranking(sqlite_server, audience="female")[0]
    assert (top["zone_id"], top["hour"], top["hours_partly_observed"], top["share_missing"]) == ("atrium", 10, 1, None)
    assert top["explanation"].startswith("atrium, Mon 10:00-11:00: at least 40.0 people per week"), top
    assert f"so at least {top['expected_audience']:,.1f} women per week" in top["explanation"], top
    assert "a camera watched 1 of its hours only in part" in top["explanation"], top


def test_an_age_audience_of_a_slot_watched_only_in_part_is_at_least(sqlite_server: Server) -> None:
    """The same for a gender × band audience: the band counts of a half-watched hour are a lower bound too."""
    from tests.server.test_ages import with_ages

    half = [
        with_ages(aggregate(zone="atrium", start=NEXT_TEN + minutes(m), seconds=60, seq=100 + m), female={"25-34": 1})
        for m in range(30)
    ]
    first = with_ages(_whole("atrium", TEN, 1), female={"25-34": 40})
    assert sqlite_server.ingest(*_two_mondays(first=first, second=half)).status_code == 200
    slots = {(s["zone_id"], s["hour"]): s for s in _ranking(sqlite_server, audience="female", age="25-34")}
    top = slots[("atrium", 10)]
    assert (top["hours_partly_observed"], top["expected_audience"], top["audience_lower_bound"]) == (1, 35.0, False)
    assert top["explanation"].startswith("atrium, Mon 10:00-11:00: at least 35.0 people per week"), top
    assert "of whom at least 35.0 women aged 25-34 per week" in top["explanation"], top
    assert "a camera watched 1 of its hours only in part" in top["explanation"], top
    assert (
        slots[("hall", 10)]["hours_partly_observed"] == 0 and "only in part" not in slots[("hall", 10)]["explanation"]
    )


# --- occupancy: a running sum that took in an entrance hour watched only in part ---------------------------


def _door(measure: str, start: datetime, seq: int, people: int, *, minutes_watched: int = 60) -> list[dict]:
    """The door's ``measure`` ('in' or 'out') line in the hour at ``start``: ``people`` in one whole-hour bucket, or
    one person a minute for the first ``minutes_watched`` minutes (a camera down after them)."""
    zone = f"door.{measure}"
    if minutes_watched == 60:
        return [{**_whole(zone, start, seq, unknown=people), "measure": measure}]
    return [
        {**aggregate(zone=zone, start=start + minutes(m), seconds=60, seq=seq + m, unknown=1), "measure": measure}
        for m in range(minutes_watched)
    ]


def test_occupancy_after_an_entrance_hour_watched_only_in_part_says_so_until_the_closing_time(server: Server) -> None:
    """Found in review: occupancy is a running sum of in − out since the closing time, and an entrance hour a
    camera watched only part of (10:00-10:19 of the in-line) left out people who came in then: every figure after
    it, to the next closing time, is uncertain, and said nothing. It counts those hours, the way withheld_cells
    counts withheld ones, from the closing time on (before the range asked, too), and starts again at 0."""
    nine, ten, eleven = TEN - timedelta(hours=1), TEN, TEN + timedelta(hours=1)
    messages = [
        *_door("in", nine, 1, 20),
        *_door("out", nine, 2, 0),
        *_door("in", ten, 100, 20, minutes_watched=20),
        *_door("out", ten, 3, 5),
        *_door("in", eleven, 4, 5),
        *_door("out", eleven, 5, 0),
        *_door("in", TEN + timedelta(days=1), 6, 7),
        *_door("out", TEN + timedelta(days=1), 7, 0),
    ]
    assert server.ingest(*messages).status_code == 200
    body = server.get("/api/v1/sites/mall/visitors", **DAY).json()
    occupancy = [
        (p["label"], p["occupancy"]["people"], p["occupancy"]["hours_partly_observed"]) for p in body["points"]
    ]
    assert occupancy == [("2026-11-16 09:00", 20, 0), ("2026-11-16 10:00", 35, 1), ("2026-11-16 11:00", 40, 1)]
    assert body["occupancy_at_end"]["hours_partly_observed"] == 1
    (day,) = server.get("/api/v1/sites/mall/visitors", granularity="day", **DAY).json()["points"]
    assert (day["occupancy"]["people"], day["occupancy"]["hours_partly_observed"]) == (40, 1)
    # A range from 11:00 reads the hours since the closing time before it: the 10:00 hour still stands behind its
    # occupancy, while its visitors (11:00 only) were watched whole.
    later = server.get("/api/v1/sites/mall/visitors", start="2026-11-16T11:00:00Z", end="2026-11-16T12:00:00Z").json()
    [point] = later["points"]
    assert (point["occupancy"]["hours_partly_observed"], point["visitors"]["hours_partly_observed"]) == (1, 0)
    # The next day starts again from the closing time with nothing carried.
    next_day = server.get("/api/v1/sites/mall/visitors", start="2026-11-17T00:00:00Z", end="2026-11-18T00:00:00Z")
    assert next_day.json()["occupancy_at_end"] == {
        "people": 7,
        "withheld_cells": 0,
        "unobserved_cells": 0,
        "hours_partly_observed": 0,
    }
