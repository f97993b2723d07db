"""An hour a camera watched for only part of (a reboot, a lost stream, an agent started at 10:23) is flagged where
its people are read: its count is a lower bound, and read beside full hours it looked like a quiet hour. The agent
sends each zone a bucket every minute it runs, quiet ones too, so the server knows how much of each hour a camera
reported (footfall.server.rollups.observed)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

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
