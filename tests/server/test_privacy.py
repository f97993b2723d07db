"""Privacy by construction (footfall.server.release): every attack of the privacy issue, replayed.

Each test builds two worlds that differ only in a withheld value (a cell below k, or the gender split of a
cell whose split is withheld), sends the attacker's requests to both, and finds the answers identical: an
answer that does not depend on a value cannot give it back, whatever it is subtracted from.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from footfall.server.release import released_end

from tests.server.conftest import BASE, Server, aggregate, make_server, minutes

K = 5
NINE = BASE + timedelta(hours=9)  # Monday 2026-11-16 09:00 UTC
DAY = {"start": "2026-11-16T00:00:00Z", "end": "2026-11-17T00:00:00Z"}


@contextmanager
def world(tmp_path: Path, name: str, messages: list[dict], **settings: object) -> Iterator[Server]:
    for server in make_server(f"sqlite:///{tmp_path / name}.db", **settings):
        assert server.ingest(*messages).status_code == 200
        yield server


def at(start: datetime, **counts: int) -> dict:
    return {"start": start, **counts}


def messages(cells: list[tuple[str, datetime, int, int, int]]) -> list[dict]:
    """One aggregate per (zone, hour start, female, male, unknown), each from its own camera."""
    return [
        aggregate(zone=zone, camera=f"cam-{i}", start=start, female=f, male=m, unknown=u)
        for i, (zone, start, f, m, u) in enumerate(cells)
    ]


# The issue's scene: zone a, 09:00-10:00, holds 3 women (below k) among 40 people; zone b and the hour
# after are busy. The other world has 4 women there and one man fewer.
def scene(secret_female: int) -> list[dict]:
    return messages(
        [
            ("a", NINE, secret_female, 33 - secret_female, 7),
            ("a", NINE + timedelta(hours=1), 12, 20, 5),
            ("b", NINE, 10, 25, 6),
            ("a", NINE + timedelta(days=7), 9, 22, 5),  # a week later, for the ad-placement ranges
        ]
    )


ATTACKS = {
    # zones: totals of a + b minus totals of b
    "zones a+b": ("/api/v1/sites/mall/traffic/totals", {"zone": ["a", "b"], **DAY}),
    "zone b": ("/api/v1/sites/mall/traffic/totals", {"zone": "b", **DAY}),
    # time: 09-11 minus 10-11
    "09-11": (
        "/api/v1/sites/mall/traffic/totals",
        {"zone": "a", "start": "2026-11-16T09:00:00Z", "end": "2026-11-16T11:00:00Z"},
    ),
    "10-11": (
        "/api/v1/sites/mall/traffic/totals",
        {"zone": "a", "start": "2026-11-16T10:00:00Z", "end": "2026-11-16T11:00:00Z"},
    ),
    # the day minus the 10:00 value of the heatmap, the peak hours or the hourly CSV (one page view)
    "day totals": ("/api/v1/sites/mall/traffic/totals", {"zone": "a", **DAY}),
    "heatmap": ("/api/v1/sites/mall/traffic/heatmap", {"zone": "a", **DAY}),
    "peak hours": ("/api/v1/sites/mall/traffic/peak-hours", {"zone": "a", **DAY}),
    "csv": ("/api/v1/sites/mall/traffic/export.csv", {"zone": "a", "granularity": "hour", **DAY}),
    "day series": ("/api/v1/sites/mall/traffic/series", {"zone": "a", "granularity": "day", **DAY}),
    "hour series": ("/api/v1/sites/mall/traffic/series", {"zone": "a", "granularity": "hour", **DAY}),
    "compare": ("/api/v1/sites/mall/traffic/compare", DAY),
    # ad placement: 16-30 Nov minus 23-30 Nov
    "ads 16-30": (
        "/api/v1/sites/mall/insights/ad-placement",
        {"audience": "female", "start": "2026-11-16T00:00:00Z", "end": "2026-11-30T00:00:00Z", "limit": 1000},
    ),
    "ads 23-30": (
        "/api/v1/sites/mall/insights/ad-placement",
        {"audience": "female", "start": "2026-11-23T00:00:00Z", "end": "2026-11-30T00:00:00Z", "limit": 1000},
    ),
}


def answers(server: Server, requests: dict[str, tuple[str, dict]]) -> dict[str, str]:
    out = {}
    for name, (path, params) in requests.items():
        response = server.get(path, **params)
        assert response.status_code == 200, (name, response.text)
        out[name] = response.text
    return out


def test_every_differencing_route_of_the_issue_recovers_nothing_below_k(tmp_path: Path) -> None:
    with world(tmp_path, "three", scene(3)) as three, world(tmp_path, "four", scene(4)) as four:
        seen_with_three, seen_with_four = answers(three, ATTACKS), answers(four, ATTACKS)
        both = three.get("/api/v1/sites/mall/traffic/totals", zone=["a", "b"], **DAY).json()["totals"]
        day = three.get("/api/v1/sites/mall/traffic/totals", zone="a", **DAY).json()["totals"]
    for name in ATTACKS:
        assert seen_with_three[name] == seen_with_four[name], f"{name} depends on the withheld count"
    # What the attacker sees is still useful: a@09 releases its 40 people, only not their split.
    assert both["people"] == 40 + 37 + 41 and both["female"] == 10 + 12 and both["unsplit"] == 40
    assert both["people_lower_bound"] is False
    assert day["people"] == 77 and day["female"] == 12 and day["unsplit"] == 40


def test_a_cell_below_k_is_withheld_whole_and_totals_say_they_are_lower_bounds(tmp_path: Path) -> None:
    busy = [("a", NINE + timedelta(hours=1), 10, 20, 5), ("b", NINE, 10, 25, 6)]
    quiet = messages([("a", NINE, 1, 1, 1), *busy])
    quieter = messages([("a", NINE, 0, 2, 0), *busy])
    with world(tmp_path, "x", quiet) as x, world(tmp_path, "y", quieter) as y:
        assert answers(x, ATTACKS) == answers(y, ATTACKS)
        totals = x.get("/api/v1/sites/mall/traffic/totals", zone="a", **DAY).json()["totals"]
        points = x.get("/api/v1/sites/mall/traffic/series", zone="a", **DAY).json()["points"]
    assert totals["people"] == 35 and totals["withheld_cells"] == 1 and totals["people_lower_bound"] is True
    assert points[0]["people"] is None and points[0]["withheld_cells"] == 1  # the withheld hour: nothing
    assert points[1]["people"] == 35 and points[1]["female"] == 10


def test_one_response_cannot_be_solved_for_its_hidden_parts_even_with_zeros_shown(tmp_path: Path) -> None:
    # Zone d: F 1, M 40, U 1. Showing people 42 and male 40 with female and unknown hidden would give both
    # away (each hidden value is at least 1 and zeros are shown, so both are exactly 1).
    with world(tmp_path, "d", messages([("d", NINE, 1, 40, 1)])) as d:
        point = d.get("/api/v1/sites/mall/traffic/series", zone="d", **DAY).json()["points"][0]
    assert point["people"] == 42
    assert point["female"] is None and point["male"] is None and point["unknown"] is None
    assert point["unsplit"] == 42 and point["female_share"] is None


def test_the_split_is_released_when_each_part_is_zero_or_at_least_k(tmp_path: Path) -> None:
    with world(tmp_path, "z", messages([("z", NINE, 0, 40, 5)])) as z:
        point = z.get("/api/v1/sites/mall/traffic/series", zone="z", **DAY).json()["points"][0]
    assert (point["female"], point["male"], point["unknown"], point["unsplit"]) == (0, 40, 5, 0)
    assert point["male_share"] == 1.0 and point["suppressed"] is False


def test_the_hour_in_progress_is_not_released_until_it_ends(tmp_path: Path) -> None:
    now = datetime.now().astimezone()
    minute = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
    if minute.minute == 59:  # the bucket must lie in the hour in progress
        minute -= timedelta(minutes=1)
    live = [aggregate(zone="a", start=minute, female=10, male=10)]
    window = {
        "zone": "a",
        "start": (now - timedelta(hours=3)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
    }
    with world(tmp_path, "closed", live) as closed, world(tmp_path, "open", live, release_open_hour=True) as opened:
        held = closed.get("/api/v1/sites/mall/traffic/totals", **window).json()
        shown = opened.get("/api/v1/sites/mall/traffic/totals", **window).json()
    if minute.hour == (datetime.now().astimezone()).hour:  # still the same hour when read
        assert held["totals"]["people"] == 0
    assert shown["totals"]["people"] == 20


def test_an_ended_hour_is_released_only_once_its_last_buckets_can_have_arrived() -> None:
    # The attack: read an hour the moment it ends (12 people), read again a minute later, after its last bucket
    # was delivered (14): the difference is who passed in the hour's last minute, 2 people, fewer than k. So a read
    # stops before an hour until the release delay has passed since its end.
    hour_end = int(NINE.timestamp()) + 3600
    delay = 600
    assert released_end(hour_end, hour_end + delay - 1, open_hour=False, delay=delay) == hour_end - 3600
    assert released_end(hour_end, hour_end + delay, open_hour=False, delay=delay) == hour_end
    # Without a delay the hour is answered at its end; with the open hour released, everything is.
    assert released_end(hour_end, hour_end, open_hour=False, delay=0) == hour_end
    assert released_end(hour_end + 1800, hour_end + 1, open_hour=True, delay=delay) == hour_end + 1800


def test_reads_hold_back_the_hour_that_just_ended(tmp_path: Path) -> None:
    now = datetime.now().astimezone()
    last_hour = now.replace(minute=30, second=0, microsecond=0) - timedelta(hours=1)  # ended under an hour ago
    sent = [aggregate(zone="a", start=last_hour, female=10, male=10)]
    window = {"zone": "a", "start": (now - timedelta(hours=3)).isoformat(), "end": now.isoformat()}
    # A delay of two hours has not passed since that hour ended; none has.
    with (
        world(tmp_path, "held", sent, release_delay_seconds=7200) as held,
        world(tmp_path, "shown", sent, release_delay_seconds=0) as shown,
    ):
        assert held.get("/api/v1/sites/mall/traffic/totals", **window).json()["totals"]["people"] == 0
        assert shown.get("/api/v1/sites/mall/traffic/totals", **window).json()["totals"]["people"] == 20


def test_k_is_configurable_and_a_change_of_k_recomputes_what_is_released(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    cells = messages([("a", NINE, 3, 30, 7)])
    for server in make_server(url):
        server.ingest(*cells)
        assert server.get("/api/v1/sites/mall/traffic/totals", **DAY).json()["totals"]["female"] is None
    for server in make_server(url, k_anonymity=2):
        # An hour readers saw under k = 5 shows nothing new at a looser k (whether it holds late people back would
        # show); its people move with its next step of the new k, but the split readers saw withheld stays so: shown
        # as 5 / 30 / 7 after 2 late people, it would narrow the withheld 3 / 30 / 7 down to three splits. Hours
        # nobody saw yet take the new k whole.
        totals = server.get("/api/v1/sites/mall/traffic/totals", **DAY).json()
        assert totals["k"] == 2 and totals["totals"]["people"] == 40 and totals["totals"]["female"] is None
        server.ingest(aggregate(zone="a", camera="cam-9", start=NINE + minutes(5), female=2))
        day = server.get("/api/v1/sites/mall/traffic/series", granularity="day", **DAY).json()["points"][0]
        assert day["female"] is None and day["people"] == 42
        server.ingest(aggregate(zone="a", camera="cam-9", start=NINE + minutes(65), female=3, male=2))
        hour = server.get("/api/v1/sites/mall/traffic/series", **DAY).json()["points"][-1]
        assert (hour["people"], hour["female"], hour["male"]) == (5, 3, 2) and hour["suppressed"] is False


def test_minutes_are_finer_than_the_release_unit_and_refused(tmp_path: Path) -> None:
    with world(tmp_path, "m", messages([("a", NINE, 10, 10, 0)])) as m:
        response = m.get("/api/v1/sites/mall/traffic/series", granularity="minute", **DAY)
    assert response.status_code == 422 and "hour" in response.text


@pytest.mark.parametrize("path", ["series", "totals", "compare", "heatmap", "peak-hours"])
def test_every_read_reports_what_it_withheld(tmp_path: Path, path: str) -> None:
    with world(tmp_path, path, messages([("a", NINE, 1, 1, 0), ("a", NINE + timedelta(hours=2), 9, 9, 9)])) as w:
        text = w.get(f"/api/v1/sites/mall/traffic/{path}", **DAY).text
    assert '"withheld_cells":1' in text.replace(" ", "")


def entrance_scene(secret_in: int) -> list[dict]:
    """A door whose 09:00 in-count (below k) is the secret; the hour after is busy, and a camera saw 2 at 09:00."""
    cells = [
        ("door.in", NINE, secret_in, "in"),
        ("door.out", NINE, 0, "out"),
        ("door.in", NINE + timedelta(hours=1), 12, "in"),
    ]
    cells += [("door.out", NINE + timedelta(hours=1), 7, "out"), ("cam-9", NINE, 2, "camera")]
    out = []
    for i, (zone, start, people, measure) in enumerate(cells):
        message = aggregate(zone=zone, camera="cam-9", start=start, seconds=3600, seq=i + 1, unknown=people)
        message["measure"] = measure
        out.append(message)
    return out


VISITOR_ATTACKS = {
    # the day's visitors minus the 10:00 hour's, and occupancy at 10:00 minus in − out of that hour
    "visitors hour": ("/api/v1/sites/mall/visitors", {"granularity": "hour", **DAY}),
    "visitors day": ("/api/v1/sites/mall/visitors", {"granularity": "day", **DAY}),
    "visitors 10-11": ("/api/v1/sites/mall/visitors", {"start": "2026-11-16T10:00:00Z", "end": "2026-11-16T11:00:00Z"}),
}


def test_the_visitors_api_recovers_nothing_below_k(tmp_path: Path) -> None:
    with world(tmp_path, "in3", entrance_scene(3)) as three, world(tmp_path, "in4", entrance_scene(4)) as four:
        seen_with_three, seen_with_four = answers(three, VISITOR_ATTACKS), answers(four, VISITOR_ATTACKS)
        body = three.get("/api/v1/sites/mall/visitors", **DAY).json()
    for name in VISITOR_ATTACKS:
        assert seen_with_three[name] == seen_with_four[name], f"{name} depends on the withheld count"
    assert body["totals"]["visitors"] == {
        "people": 12,
        "withheld_cells": 1,
        "people_lower_bound": True,
        "hours_partly_observed": 0,
        "unobserved_cells": 0,
    }
    assert body["totals"]["cameras"][0]["people"] is None
    assert body["occupancy_at_end"] == {
        "people": 5,
        "withheld_cells": 1,
        "unobserved_cells": 0,
        "hours_partly_observed": 0,
    }


def camera_scene(shop_a: int) -> list[dict]:
    """One camera whose view two shop fronts split: each person passes one of them, so the camera's distinct
    people are the two zones' passes added up. ``shop_a`` people pass the first; 12 the second."""
    camera = aggregate(zone="cam-1", camera="cam-1", start=NINE, seq=3, female=6 + shop_a, male=6)
    camera["measure"] = "camera"
    return [
        aggregate(zone="shop-a", camera="cam-1", start=NINE, seq=1, female=shop_a),
        aggregate(zone="shop-b", camera="cam-1", start=NINE, seq=2, female=6, male=6),
        camera,
    ]


CAMERA_ATTACKS = {
    "shop-a hour": ("/api/v1/sites/mall/traffic/series", {"zone": "shop-a", "granularity": "hour", **DAY}),
    "shop-b": ("/api/v1/sites/mall/traffic/totals", {"zone": "shop-b", **DAY}),
    "cameras": ("/api/v1/sites/mall/visitors", {"granularity": "hour", **DAY}),
}


def test_a_zone_below_k_of_a_camera_is_withheld(tmp_path: Path) -> None:
    with world(tmp_path, "a1", camera_scene(1)) as one:
        path, params = CAMERA_ATTACKS["shop-a hour"]
        point = one.get(path, **params).json()["points"][0]
    assert (point["people"], point["withheld_cells"]) == (None, 1)


def test_a_cameras_people_minus_its_other_zones_recover_nothing_below_k(tmp_path: Path) -> None:
    with world(tmp_path, "a1", camera_scene(1)) as one, world(tmp_path, "a3", camera_scene(3)) as three:
        seen_with_one, seen_with_three = answers(one, CAMERA_ATTACKS), answers(three, CAMERA_ATTACKS)
    for name in CAMERA_ATTACKS:
        assert seen_with_one[name] == seen_with_three[name], f"{name} depends on the withheld count"


def shared_door_scene(door_in: list[int]) -> list[dict]:
    """Four cameras watch one door and each its own shop front (10 people each). At 09:00 ``door_in[i]`` people
    come in past cam-i (a total below k); agents send every zone's bucket each half hour, a quiet one as 0, and
    each camera its distinct people. The hour after is busy at the door."""
    out: list[dict] = []

    def send(zone: str, camera: str, start: datetime, people: int, measure: str) -> None:
        message = aggregate(zone=zone, camera=camera, start=start, seq=len(out) + 1, unknown=people)
        message["measure"], message["bucket_seconds"] = measure, 1800
        out.append(message)

    for i, people in enumerate(door_in):
        camera = f"cam-{i}"
        for half, share, shop in ((NINE, people, 10), (NINE + timedelta(minutes=30), 0, 0)):
            send("door.in", camera, half, share, "in")
            send("door.out", camera, half, 0, "out")
            send(f"shop-{i}", camera, half, shop, "passes")
            send(camera, camera, half, share + shop, "camera")
        for half in (NINE + timedelta(hours=1), NINE + timedelta(hours=1, minutes=30)):
            send("door.in", camera, half, 5, "in")
            send(camera, camera, half, 5, "camera")
    return out


SHARED_DOOR_ATTACKS = {
    "visitors 09-10": ("/api/v1/sites/mall/visitors", {"start": "2026-11-16T09:00:00Z", "end": "2026-11-16T10:00:00Z"}),
    "visitors day": ("/api/v1/sites/mall/visitors", {"granularity": "hour", **DAY}),
    "shops": ("/api/v1/sites/mall/traffic/series", {"zone": [f"shop-{i}" for i in range(4)], **DAY}),
}


def test_which_cameras_saw_someone_at_a_shared_door_recovers_nothing_below_k(tmp_path: Path) -> None:
    # Attack (adversarial review): the cameras listed with a shared entrance for one hour, and the cameras
    # withheld in it, were those whose share of the door was at least 1: four of them with the door's in-count
    # withheld (1 to 4) gave the count, 4, exactly. Which cameras feed a door is now the fleet's configuration
    # (a quiet share is a part of 0), and every camera feeding a zone hour that has a share below k is withheld.
    worlds = {"1111": [1, 1, 1, 1], "1110": [1, 1, 1, 0], "2100": [2, 1, 0, 0], "3000": [3, 0, 0, 0]}
    seen = {}
    for name, door_in in worlds.items():
        with world(tmp_path, name, shared_door_scene(door_in)) as server:
            seen[name] = answers(server, SHARED_DOOR_ATTACKS)
            path, params = SHARED_DOOR_ATTACKS["visitors 09-10"]
            body = server.get(path, **params).json()
    for name in worlds:
        for attack in SHARED_DOOR_ATTACKS:
            assert seen[name][attack] == seen["1111"][attack], f"{attack} tells {name} from 1111"
    (point,) = body["points"]
    assert point["visitors"]["people"] is None and point["visitors"]["withheld_cells"] == 1
    assert body["shared_entrances"] == [{"entrance": "door", "cameras": [f"cam-{i}" for i in range(4)]}]
    assert [camera["people"] for camera in point["cameras"]] == [None] * 4
