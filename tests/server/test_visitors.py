"""Site visitors, in/out and occupancy (GET /sites/{site}/visitors), and zones that count other things than passes
(a camera's distinct visitors, an entrance line's in and out) kept out of every zone figure."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from itertools import accumulate

import pytest

from tests.server.conftest import BASE, Server, aggregate

HOUR = timedelta(hours=1)
DAY = {"start": "2026-11-16T00:00:00Z", "end": "2026-11-17T00:00:00Z"}
VISITORS = "/api/v1/sites/mall/visitors"


def counted(measure: str, zone: str, people: int, start: datetime, *, seq: int = 1, camera: str = "cam-1") -> dict:
    """An aggregate of ``measure`` ('passes', 'camera', 'in', 'out') with ``people``, none of them classified: an hour
    the camera watched whole (``start`` on the hour)."""
    message = aggregate(zone=zone, camera=camera, start=start, seconds=3600, seq=seq, unknown=people)
    message["measure"] = measure
    if measure == "camera":
        message["zone_id"] = camera
    return message


def door(hour: int, entered: int, left: int, *, day: datetime = BASE) -> list[dict]:
    """The 'door' entrance line's in and out counts in the hour starting at ``hour`` o'clock UTC."""
    start = day + timedelta(hours=hour)
    return [
        counted("in", "door.in", entered, start, seq=hour * 2),
        counted("out", "door.out", left, start, seq=hour * 2 + 1),
    ]


def stored(s: Server, *messages: dict) -> dict:
    body = s.ingest(*messages).json()
    assert not body["rejected"], body
    return body


def admin_patch(s: Server, body: dict):  # type: ignore[no-untyped-def]
    return s.client.patch("/api/v1/sites/mall", json=body, headers=s.headers("admin"))


# --- ingest: a zone keeps one measure ----------------------------------------------------------------------


def test_an_aggregate_whose_measure_disagrees_with_its_zone_is_refused_with_the_reason(server: Server) -> None:
    # A camera id reused as a zone name: were the zone's passes added to the camera's visitors, the camera figure
    # would count people twice.
    stored(server, counted("camera", "cam-1", 8, BASE))
    body = server.ingest(counted("passes", "cam-1", 6, BASE, seq=2, camera="cam-2")).json()
    assert body["accepted"] == 0 and len(body["rejected"]) == 1
    reason = body["rejected"][0]["reason"]
    assert "measure" in reason and "'passes'" in reason and "'camera'" in reason
    letters = server.client.get("/api/v1/admin/dead-letters", headers=server.headers("admin")).json()
    assert [item["reason"] for item in letters["items"]] == [reason]
    # Within one batch, the first message names the zone's measure and the other is refused.
    body = server.ingest(counted("in", "gate.in", 5, BASE), counted("passes", "gate.in", 5, BASE, seq=3)).json()
    assert body["accepted"] == 1 and [r["index"] for r in body["rejected"]] == [1]
    cameras = server.get(VISITORS, **DAY).json()["totals"]["cameras"]
    assert cameras == [
        {
            "camera_id": "cam-1",
            "people": 8,
            "withheld_cells": 0,
            "people_lower_bound": False,
            "hours_partly_observed": 0,
        }
    ]


def test_a_zone_an_admin_named_before_any_count_takes_the_measure_of_its_first_aggregate(server: Server) -> None:
    # The attack: PUT 'door.in' (as zone passes, the only kind an admin can create) before the entrance counts;
    # were its measure fixed then, every in-count would be refused and lost.
    put = server.client.put(
        "/api/v1/sites/mall/zones/door.in", json={"name": "Main door, in"}, headers=server.headers("admin")
    )
    assert put.status_code == 200
    stored(server, *door(9, 12, 4))
    body = server.get(VISITORS, **DAY).json()
    assert body["totals"]["visitors"]["people"] == 12
    zones = server.client.get("/api/v1/sites/mall/zones", headers=server.headers("viewer")).json()
    assert "door.in" not in [zone["zone_id"] for zone in zones]  # not a zone of passes any more
    # Once it holds counts, its measure is fixed.
    body = server.ingest(counted("passes", "door.in", 6, BASE, seq=99)).json()
    assert body["accepted"] == 0 and "measure" in body["rejected"][0]["reason"]


# --- occupancy ---------------------------------------------------------------------------------------------


def test_occupancy_is_in_minus_out_at_every_hour(server: Server) -> None:
    flows = [(9, 20, 0), (10, 15, 5), (11, 10, 10), (12, 0, 25), (13, 5, 10)]
    stored(server, *[m for hour, entered, left in flows for m in door(hour, entered, left)])
    body = server.get(VISITORS, **DAY).json()
    assert body["entrances"] == ["door"] and body["visitors_note"] is None
    expected = list(accumulate(entered - left for _, entered, left in flows))
    assert expected == [20, 30, 30, 5, 0]  # never below 0 here, so the running sum is in − out exactly
    assert [p["occupancy"]["people"] for p in body["points"]] == expected
    assert [p["visitors"]["people"] for p in body["points"]] == [f[1] for f in flows]
    assert [p["out"]["people"] for p in body["points"]] == [f[2] for f in flows]
    assert body["totals"]["visitors"]["people"] == 50 and body["totals"]["out"]["people"] == 50
    assert body["occupancy_at_end"] == {
        "people": 0,
        "withheld_cells": 0,
        "unobserved_cells": 0,
        "hours_partly_observed": 0,
    }
    # A range starting mid-day counts the hours since the closing time before it.
    later = server.get(VISITORS, start="2026-11-16T11:00:00Z", end="2026-11-16T12:00:00Z").json()
    assert [p["occupancy"]["people"] for p in later["points"]] == [30]
    # Days: the day's in and out, and the occupancy at its end.
    days = server.get(VISITORS, granularity="day", start="2026-11-15T00:00:00Z", end="2026-11-18T00:00:00Z").json()
    assert [(p["label"], p["visitors"]["people"], p["occupancy"]["people"]) for p in days["points"]] == [
        ("2026-11-16", 50, 0)
    ]


def test_occupancy_starts_again_from_zero_at_the_closing_time(server: Server) -> None:
    stored(server, *door(20, 10, 0), *door(21, 5, 0), *door(22, 5, 0), *door(9, 5, 0, day=BASE + timedelta(days=1)))
    stored(server, *[m for hour in range(23, 33) for m in door(hour, 0, 0)])  # the quiet night the agent reports
    window = {"start": "2026-11-16T18:00:00Z", "end": "2026-11-17T12:00:00Z"}
    busy = ("2026-11-16 20:00", "2026-11-16 21:00", "2026-11-16 22:00", "2026-11-17 09:00")

    def occupancy(answer: dict) -> list[int]:
        return [p["occupancy"]["people"] for p in answer["points"] if p["label"] in busy]

    midnight = server.get(VISITORS, **window).json()
    assert midnight["closing_time"] == "00:00"
    assert occupancy(midnight) == [10, 15, 20, 5]
    patched = admin_patch(server, {"closing_time": "22:00"})
    assert patched.status_code == 200 and patched.json()["closing_time"] == "22:00"
    assert server.get("/api/v1/sites", role="viewer").json()[0]["closing_time"] == "22:00"
    closing = server.get(VISITORS, **window).json()
    assert closing["closing_time"] == "22:00"
    # 20:00 and 21:00 end the day at 15; the 22:00 hour starts a new day, which the next morning goes on with.
    assert occupancy(closing) == [10, 15, 5, 10]
    upto_close = server.get(VISITORS, start="2026-11-16T18:00:00Z", end="2026-11-16T22:00:00Z").json()
    assert upto_close["occupancy_at_end"]["people"] == 15
    after_close = server.get(VISITORS, start="2026-11-16T18:00:00Z", end="2026-11-16T23:00:00Z").json()
    assert after_close["occupancy_at_end"]["people"] == 5
    # null: back to midnight.
    assert admin_patch(server, {"closing_time": None}).status_code == 200
    # Digits of another script are not a time ('٢٢:٠٠' was stored as it came).
    for bad in ("24:00", "9:00", "\u0662\u0662:\u0660\u0660"):
        refused = admin_patch(server, {"closing_time": bad})
        assert refused.status_code == 422 and "is not a local time like '22:00'" in refused.json()["detail"], bad
    assert server.get(VISITORS, **window).json()["closing_time"] == "00:00"


@pytest.mark.parametrize("bad", ["25:00", "22", "10pm", "7:30", ""])
def test_a_closing_time_that_is_not_a_local_time_is_refused_clearly(sqlite_server: Server, bad: str) -> None:
    stored(sqlite_server, *door(9, 5, 0))
    response = admin_patch(sqlite_server, {"closing_time": bad})
    assert response.status_code == 422
    assert "closing_time" in response.text and "HH:MM" in response.text


def test_occupancy_never_goes_below_zero_when_outs_exceed_ins(server: Server) -> None:
    # People already inside when counting started leave through the door: 10 out before anyone came in.
    stored(server, *door(9, 0, 10), *door(10, 5, 0), *door(11, 5, 20), *door(12, 10, 5))
    points = server.get(VISITORS, **DAY).json()["points"]
    assert [p["occupancy"]["people"] for p in points] == [0, 5, 0, 5]
    assert all(p["occupancy"]["people"] >= 0 for p in points)


# --- no entrances ------------------------------------------------------------------------------------------


def test_a_site_without_entrance_lines_says_so_and_still_gives_its_cameras(server: Server) -> None:
    stored(server, counted("camera", "cam-1", 12, BASE + 9 * HOUR), counted("passes", "west", 20, BASE + 9 * HOUR))
    body = server.get(VISITORS, **DAY).json()
    assert body["entrances"] == [] and body["cameras"] == ["cam-1"]
    assert body["visitors_note"] and "no entrance lines" in body["visitors_note"]
    assert body["totals"]["visitors"] is None and body["occupancy_at_end"] is None
    (point,) = body["points"]
    assert point["visitors"] is None and point["occupancy"] is None
    assert point["cameras"] == [
        {
            "camera_id": "cam-1",
            "people": 12,
            "withheld_cells": 0,
            "people_lower_bound": False,
            "hours_partly_observed": 0,
        }
    ]


# --- zone figures count passes only ------------------------------------------------------------------------


def test_cameras_and_entrance_directions_never_appear_among_zones(server: Server) -> None:
    nine = BASE + 9 * HOUR
    stored(
        server,
        counted("passes", "west", 20, nine),
        counted("camera", "cam-1", 12, nine),
        *door(9, 7, 6),
    )
    # The same hour a week later, for the ad-placement ranking.
    stored(server, counted("passes", "west", 10, nine + timedelta(days=7), seq=5))
    compare = server.get("/api/v1/sites/mall/traffic/compare", **DAY).json()
    assert [z["zone_id"] for z in compare["zones"]] == ["west"] and compare["totals"]["people"] == 20
    assert compare["zones"][0]["share_of_traffic"] == 1.0
    for path in ("series", "totals"):
        answer = server.get(f"/api/v1/sites/mall/traffic/{path}", **DAY).json()
        assert answer["zones"] == ["west"] and answer["totals"]["people"] == 20, path
    heatmap = server.get("/api/v1/sites/mall/traffic/heatmap", **DAY).json()
    assert [c["people"] for c in heatmap["cells"]] == [20]
    rows = list(csv.DictReader(io.StringIO(server.get("/api/v1/sites/mall/traffic/export.csv", **DAY).text)))
    assert {r["zone_id"] for r in rows} == {"west"}
    slots = server.get(
        "/api/v1/sites/mall/insights/ad-placement", start="2026-11-16T00:00:00Z", end="2026-11-30T00:00:00Z"
    ).json()["slots"]
    assert {s["zone_id"] for s in slots} == {"west"}
    assert [z["zone_id"] for z in server.get("/api/v1/sites/mall/zones").json()] == ["west"]
    everything = server.get("/api/v1/sites/mall/zones", measure="all").json()
    assert {(z["zone_id"], z["measure"]) for z in everything} == {
        ("west", "passes"),
        ("cam-1", "camera"),
        ("door.in", "in"),
        ("door.out", "out"),
    }
    assert server.get("/api/v1/sites").json()[0]["zones"] == 1
    # Asked for by id, a camera is pointed to where its figures are.
    refused = server.get("/api/v1/sites/mall/traffic/totals", zone="cam-1", **DAY)
    assert refused.status_code == 422 and "/visitors" in refused.text
    # The visitors API has them, each on its own.
    body = server.get(VISITORS, **DAY).json()
    assert body["totals"]["visitors"]["people"] == 7 and body["totals"]["out"]["people"] == 6
    assert [c["people"] for c in body["totals"]["cameras"]] == [12]


# --- privacy -----------------------------------------------------------------------------------------------


def test_the_visitors_api_withholds_small_cells_like_every_read(server: Server) -> None:
    # 3 people in at 09:00 (below k = 5): withheld whole, so the figures are lower bounds and say so.
    stored(server, *door(9, 3, 0), *door(10, 6, 6), counted("camera", "cam-1", 2, BASE + 9 * HOUR))
    body = server.get(VISITORS, **DAY).json()
    nine, ten = body["points"]
    assert nine["visitors"] == {
        "people": None,
        "withheld_cells": 1,
        "people_lower_bound": True,
        "hours_partly_observed": 0,
        "unobserved_cells": 0,
    }
    assert nine["cameras"] == [
        {
            "camera_id": "cam-1",
            "people": None,
            "withheld_cells": 1,
            "people_lower_bound": True,
            "hours_partly_observed": 0,
        }
    ]
    # Nothing released counted anyone by 09:00's end: occupancy is unknown, not 0.
    assert nine["occupancy"] == {"people": None, "withheld_cells": 1, "unobserved_cells": 0, "hours_partly_observed": 0}
    # 6 in, 6 out; the 3 withheld are not in it, and the withheld cell says the 0 is uncertain.
    assert ten["occupancy"] == {"people": 0, "withheld_cells": 1, "unobserved_cells": 0, "hours_partly_observed": 0}
    assert body["totals"]["visitors"] == {
        "people": 6,
        "withheld_cells": 1,
        "people_lower_bound": True,
        "hours_partly_observed": 0,
        "unobserved_cells": 0,
    }
    assert "3" not in str([p["visitors"] for p in body["points"]])


# --- what occupancy and visitors cannot see: withheld and unobserved entrance hours -------------------------


def test_occupancy_is_unknown_while_every_entrance_cell_since_the_closing_time_was_withheld(server: Server) -> None:
    # 3 and 2 people in (below k = 5): both in-cells withheld, the out-cells quiet. Nothing released says how many
    # are inside, so occupancy is null, never a 0 that looks counted.
    stored(server, *door(9, 3, 0), *door(10, 2, 0))
    body = server.get(VISITORS, **DAY).json()
    assert [p["occupancy"] for p in body["points"]] == [
        {"people": None, "withheld_cells": 1, "unobserved_cells": 0, "hours_partly_observed": 0},
        {"people": None, "withheld_cells": 2, "unobserved_cells": 0, "hours_partly_observed": 0},
    ]
    assert body["occupancy_at_end"] == {
        "people": None,
        "withheld_cells": 2,
        "unobserved_cells": 0,
        "hours_partly_observed": 0,
    }
    day = server.get(VISITORS, granularity="day", **DAY).json()["points"][0]
    assert day["occupancy"]["people"] is None and day["visitors"]["people"] is None
    # Once a released cell counts people, the figure is shown, with the withheld cells that make it uncertain.
    stored(server, *door(11, 6, 0))
    body = server.get(VISITORS, **DAY).json()
    assert body["occupancy_at_end"] == {
        "people": 6,
        "withheld_cells": 2,
        "unobserved_cells": 0,
        "hours_partly_observed": 0,
    }
    # After the closing time nothing withheld is carried: a known 0.
    stored(server, *door(9, 0, 0, day=BASE + timedelta(days=1)))
    next_day = server.get(VISITORS, start="2026-11-17T00:00:00Z", end="2026-11-18T00:00:00Z").json()
    assert next_day["occupancy_at_end"] == {
        "people": 0,
        "withheld_cells": 0,
        "unobserved_cells": 0,
        "hours_partly_observed": 0,
    }


def test_an_hour_the_entrance_camera_did_not_report_makes_visitors_a_lower_bound_and_occupancy_unknown(
    server: Server,
) -> None:
    # The agent sends a cell for every zone of every hour it watched, quiet ones as 0 (ZoneAggregator.touch), so
    # a missing hour between two reported ones is an hour nobody watched: 20 came in at 09:00, the camera was down
    # at 10:00 (when they may have left), and 5 came in at 11:00.
    stored(server, *door(9, 20, 0), *door(11, 5, 0))
    body = server.get(VISITORS, **DAY).json()
    assert [p["label"] for p in body["points"]] == ["2026-11-16 09:00", "2026-11-16 10:00", "2026-11-16 11:00"]
    nine, ten, eleven = body["points"]
    assert nine["visitors"] == {
        "people": 20,
        "withheld_cells": 0,
        "people_lower_bound": False,
        "hours_partly_observed": 0,
        "unobserved_cells": 0,
    }
    assert nine["occupancy"] == {"people": 20, "withheld_cells": 0, "unobserved_cells": 0, "hours_partly_observed": 0}
    assert ten["visitors"] == {
        "people": None,
        "withheld_cells": 0,
        "people_lower_bound": True,
        "hours_partly_observed": 0,
        "unobserved_cells": 1,
    }
    assert ten["out"] == {
        "people": None,
        "withheld_cells": 0,
        "people_lower_bound": True,
        "hours_partly_observed": 0,
        "unobserved_cells": 1,
    }
    assert ten["occupancy"] == {"people": None, "withheld_cells": 0, "unobserved_cells": 2, "hours_partly_observed": 0}
    assert eleven["visitors"]["people"] == 5 and eleven["visitors"]["people_lower_bound"] is False
    assert eleven["occupancy"] == {
        "people": None,
        "withheld_cells": 0,
        "unobserved_cells": 2,
        "hours_partly_observed": 0,
    }
    assert body["totals"]["visitors"] == {
        "people": 25,
        "withheld_cells": 0,
        "people_lower_bound": True,
        "hours_partly_observed": 0,
        "unobserved_cells": 1,
    }
    assert body["occupancy_at_end"]["people"] is None
    (day,) = server.get(VISITORS, granularity="day", **DAY).json()["points"]
    assert day["visitors"] == {
        "people": 25,
        "withheld_cells": 0,
        "people_lower_bound": True,
        "hours_partly_observed": 0,
        "unobserved_cells": 1,
    }
    assert day["occupancy"]["people"] is None
    # The next day starts again from a known 0 at the closing time.
    stored(server, *door(9, 5, 0, day=BASE + timedelta(days=1)))
    next_day = server.get(VISITORS, start="2026-11-17T00:00:00Z", end="2026-11-18T00:00:00Z").json()
    assert next_day["occupancy_at_end"] == {
        "people": 5,
        "withheld_cells": 0,
        "unobserved_cells": 0,
        "hours_partly_observed": 0,
    }


def test_an_entrance_silent_while_another_camera_of_the_site_reports_was_not_observed(server: Server) -> None:
    # The door's camera stops after 09:00; the corridor camera (another agent) goes on reporting at 10:00.
    nine, ten = BASE + 9 * HOUR, BASE + 10 * HOUR
    stored(
        server,
        *door(9, 12, 5),
        counted("camera", "corridor", 30, nine, seq=50, camera="corridor"),
        counted("camera", "corridor", 30, ten, seq=51, camera="corridor"),
    )
    body = server.get(VISITORS, **DAY).json()
    first, second = body["points"]
    assert first["occupancy"] == {"people": 7, "withheld_cells": 0, "unobserved_cells": 0, "hours_partly_observed": 0}
    assert second["visitors"]["people"] is None and second["visitors"]["unobserved_cells"] == 1
    assert second["occupancy"] == {
        "people": None,
        "withheld_cells": 0,
        "unobserved_cells": 2,
        "hours_partly_observed": 0,
    }
    assert body["totals"]["visitors"]["people_lower_bound"] is True


def test_quiet_hours_the_agent_reported_are_exact(server: Server) -> None:
    stored(server, *door(9, 20, 0), *door(10, 0, 0), *door(11, 0, 20))
    body = server.get(VISITORS, **DAY).json()
    assert [p["visitors"]["unobserved_cells"] for p in body["points"]] == [0, 0, 0]
    assert [p["occupancy"]["people"] for p in body["points"]] == [20, 20, 0]
    assert body["totals"]["visitors"]["people_lower_bound"] is False


def test_an_entrance_line_two_cameras_count_is_named(server: Server) -> None:
    # Two cameras send the 'door' line: two doorways given one id (the sum is right), or one doorway watched twice
    # (the sum is twice the visitors). The server cannot tell which, so the answer names the line and its cameras.
    nine = BASE + 9 * HOUR
    stored(
        server,
        *door(9, 20, 0),
        counted("in", "door.in", 20, nine, seq=100, camera="cam-2"),
        counted("out", "door.out", 0, nine, seq=101, camera="cam-2"),
        counted("in", "side.in", 6, nine, seq=102, camera="cam-3"),
    )
    body = server.get(VISITORS, **DAY).json()
    assert body["totals"]["visitors"]["people"] == 46
    assert body["shared_entrances"] == [{"entrance": "door", "cameras": ["cam-1", "cam-2"]}]
    # A range without the second camera's hours names nothing.
    stored(server, *door(9, 5, 0, day=BASE + timedelta(days=1)))
    later = server.get(VISITORS, start="2026-11-17T00:00:00Z", end="2026-11-18T00:00:00Z").json()
    assert later["shared_entrances"] == []
