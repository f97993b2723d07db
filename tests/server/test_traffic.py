"""Traffic API behaviour: site time zones and day boundaries, heatmap, peak hours, comparison, CSV,
ad-placement ranking with corrected shares, and clear 422s for bad parameters."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta

import pytest
from footfall.core.ages import AGE_DECISIONS
from footfall.server.rollups import slots_vs_hourly
from footfall.server.stats import poisson_mean_interval, wilson_interval

from tests.server.conftest import Server, aggregate


def _admin_patch(s: Server, path: str, body: dict) -> None:
    response = s.client.patch(path, json=body, headers=s.headers("admin"))
    assert response.status_code == 200, response.text


def test_days_follow_the_site_time_zone(server: Server) -> None:
    # 22:30 UTC on Sunday 15 Nov is 07:30 on Monday 16 Nov in Tokyo (UTC+9), and still Sunday in UTC.
    late = datetime(2026, 11, 15, 22, 30, tzinfo=UTC)
    server.ingest(
        aggregate(start=late, female=10, male=10),
        aggregate(start=late - timedelta(hours=10), female=6, male=6),
    )
    params = {"start": "2026-11-14T00:00:00Z", "end": "2026-11-18T00:00:00Z", "granularity": "day"}
    utc_days = {
        p["label"]: p["people"] for p in server.get("/api/v1/sites/mall/traffic/series", **params).json()["points"]
    }
    assert utc_days == {"2026-11-15": 32}
    _admin_patch(server, "/api/v1/sites/mall", {"timezone": "Asia/Tokyo"})
    body = server.get("/api/v1/sites/mall/traffic/series", **params).json()
    assert body["timezone"] == "Asia/Tokyo"
    tokyo_days = {p["label"]: (p["people"], p["start"]) for p in body["points"]}
    assert tokyo_days == {
        "2026-11-15": (12, "2026-11-14T15:00:00Z"),
        "2026-11-16": (20, "2026-11-15T15:00:00Z"),
    }
    # Weeks start on the local Monday.
    weeks = server.get("/api/v1/sites/mall/traffic/series", **{**params, "granularity": "week"}).json()["points"]
    assert [(w["label"], w["people"]) for w in weeks] == [
        ("week of 2026-11-09", 12),
        ("week of 2026-11-16", 20),
    ]
    # The heatmap files the late bucket under Monday 07:00 local.
    cells = server.get("/api/v1/sites/mall/traffic/heatmap", start=params["start"], end=params["end"]).json()["cells"]
    assert {(c["weekday"], c["hour"]): c["people"] for c in cells} == {("Sun", 21): 12, ("Mon", 7): 20}
    # New data after the change is filed in local time as well.
    server.ingest(aggregate(start=late + timedelta(hours=1), female=5, male=5))
    cells = server.get("/api/v1/sites/mall/traffic/heatmap", start=params["start"], end=params["end"]).json()["cells"]
    assert ("Mon", 8) in {(c["weekday"], c["hour"]) for c in cells}


def test_daylight_saving_day_has_23_hours(sqlite_server: Server) -> None:
    s = sqlite_server
    s.client.put("/api/v1/sites/mall/zones/entrance", json={}, headers=s.headers("admin"))
    _admin_patch(s, "/api/v1/sites/mall", {"timezone": "Europe/Berlin"})
    # 29 March 2026: Berlin springs forward; local midnight is 23:00 UTC the day before, the next 22:00 UTC.
    start = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    s.ingest(*[aggregate(start=start + timedelta(hours=h), seq=h, female=5, male=5) for h in range(24)])
    days = s.get(
        "/api/v1/sites/mall/traffic/series",
        start="2026-03-28T00:00:00Z",
        end="2026-03-31T00:00:00Z",
        granularity="day",
    ).json()["points"]
    assert [(d["label"], d["people"]) for d in days] == [("2026-03-29", 230), ("2026-03-30", 10)]


def test_hourly_series_totals_and_peak_hours(sqlite_server: Server) -> None:
    s = sqlite_server
    monday = datetime(2026, 11, 16, tzinfo=UTC)
    messages = []
    for day in range(7):
        for hour, people in ((9, 10), (13, 40), (18, 25)):
            start = monday + timedelta(days=day, hours=hour)
            messages.append(
                aggregate(
                    start=start,
                    seq=day * 24 + hour,
                    female=people // 2,
                    male=people - people // 2,
                    dwell=(people, 30.0),
                )
            )
    s.ingest(*messages)
    window = {"start": "2026-11-16T00:00:00Z", "end": "2026-11-23T00:00:00Z"}
    series = s.get("/api/v1/sites/mall/traffic/series", **window).json()
    assert len(series["points"]) == 21 and series["totals"]["people"] == 7 * 75
    assert series["totals"]["female_share"] == pytest.approx((7 * 37) / (7 * 75), abs=1e-4)
    totals = s.get("/api/v1/sites/mall/traffic/totals", **window).json()
    assert totals["totals"]["people"] == 525 and totals["mean_dwell_seconds"] == 30.0
    peaks = s.get("/api/v1/sites/mall/traffic/peak-hours", **window, top=2).json()["hours"]
    assert [(p["hour"], p["mean_people_per_day"], p["days_observed"]) for p in peaks] == [
        (13, 40.0, 7),
        (18, 25.0, 7),
    ]


def test_peak_hours_are_ranked_by_the_mean_per_day_they_show(sqlite_server: Server) -> None:
    """Found in review: ranked by their total, an hour seen on 2 days with 20 people a day came below one seen on 7
    days with 10 a day, and the 'Busiest hour' card named the quieter one."""
    monday = datetime(2026, 11, 16, tzinfo=UTC)
    messages = [aggregate(zone="a", start=monday + timedelta(days=d, hours=10), seq=d, male=10) for d in range(7)]
    messages += [aggregate(zone="a", start=monday + timedelta(days=d, hours=20), seq=d, male=20) for d in range(2)]
    assert sqlite_server.ingest(*messages).status_code == 200
    window = {"start": "2026-11-16T00:00:00Z", "end": "2026-11-23T00:00:00Z"}
    hours = sqlite_server.get("/api/v1/sites/mall/traffic/peak-hours", **window).json()["hours"]
    assert [(h["hour"], h["people"], h["mean_people_per_day"]) for h in hours] == [(20, 40, 20.0), (10, 70, 10.0)]


def test_a_zone_no_agent_reported_says_so_beside_its_zero(sqlite_server: Server) -> None:
    """Found in review: a zone whose camera was down all week read 0 people and 0 % of the traffic in /compare and
    /totals, as if nobody had passed, while /series had no point for it. A quiet zone that reported is a real 0."""
    s = sqlite_server
    before = datetime(2026, 11, 9, 10, tzinfo=UTC)  # the week before: both zones exist
    monday = datetime(2026, 11, 16, 10, tzinfo=UTC)
    assert (
        s.ingest(
            aggregate(zone="a", start=before, male=10),
            aggregate(zone="b", start=before, male=10),
            aggregate(zone="a", start=monday, seq=1, male=10),
            aggregate(zone="quiet", start=monday),
        ).status_code
        == 200
    )
    window = {"start": "2026-11-16T00:00:00Z", "end": "2026-11-23T00:00:00Z"}
    zones = {z["zone_id"]: z for z in s.get("/api/v1/sites/mall/traffic/compare", **window).json()["zones"]}
    seen = {name: (z["people"], z["hours_observed"], z["share_of_traffic"]) for name, z in zones.items()}
    assert seen == {"a": (10, 1, 1.0), "b": (0, 0, None), "quiet": (0, 1, 0.0)}
    totals = s.get("/api/v1/sites/mall/traffic/totals", zone="b", **window).json()
    assert (totals["totals"]["people"], totals["hours_observed"]) == (0, 0)


def test_an_hour_summed_over_zones_one_of_which_was_down_some_weeks_is_a_lower_bound(server: Server) -> None:
    """Found in review: zones a and b have 100 people every Saturday at 14:00, but b's camera was down two of four
    weeks. The all-zones heatmap said 150 a week, exact-looking, where the weeks both reported had 200."""
    saturday = datetime(2026, 11, 21, 14, tzinfo=UTC)
    hour = {"seconds": 3600, "male": 100}  # each camera watched the whole hour (footfall.server.rollups.observed)
    messages = [aggregate(zone="a", start=saturday - timedelta(weeks=w), seq=w, **hour) for w in range(4)]
    messages += [aggregate(zone="b", start=saturday - timedelta(weeks=w), seq=w, **hour) for w in range(2)]
    assert server.ingest(*messages).status_code == 200
    span = {"start": "2026-10-26T00:00:00Z", "end": "2026-11-23T00:00:00Z"}
    [cell] = server.get("/api/v1/sites/mall/traffic/heatmap", **span).json()["cells"]
    assert (cell["mean_people"], cell["weeks_observed"], cell["zone_weeks_unobserved"]) == (150.0, 4, 2)
    assert cell["people_lower_bound"] is True
    [hour] = server.get("/api/v1/sites/mall/traffic/peak-hours", **span).json()["hours"]
    assert (hour["mean_people_per_day"], hour["zone_days_unobserved"], hour["people_lower_bound"]) == (150.0, 2, True)
    for zone, weeks in (("a", 4), ("b", 2)):  # each zone on its own is exact
        [cell] = server.get("/api/v1/sites/mall/traffic/heatmap", zone=zone, **span).json()["cells"]
        assert (cell["mean_people"], cell["weeks_observed"], cell["zone_weeks_unobserved"]) == (100.0, weeks, 0)
        assert cell["people_lower_bound"] is False


def test_compare_and_csv_export(sqlite_server: Server) -> None:
    s = sqlite_server
    s.ingest(
        aggregate(zone="food", female=30, male=20),
        aggregate(zone="entrance", female=10, male=40),
        aggregate(zone="entrance", camera="cam-2", female=10, male=10),
    )
    window = {"start": "2026-11-16T00:00:00Z", "end": "2026-11-17T00:00:00Z"}
    zones = s.get("/api/v1/sites/mall/traffic/compare", **window).json()["zones"]
    assert [(z["zone_id"], z["people"], z["share_of_traffic"]) for z in zones] == [
        ("entrance", 70, 0.5833),
        ("food", 50, 0.4167),
    ]
    response = s.get("/api/v1/sites/mall/traffic/export.csv", **window, zone="food")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows == [
        {
            "site_id": "mall",
            "zone_id": "food",
            "zone_name": "food",
            "zone_kind": "unknown",
            "granularity": "hour",
            "bucket_start_utc": "2026-11-16T00:00:00Z",
            "bucket_local": "2026-11-16 00:00",
            "people": "50",
            "female": "30",
            "male": "20",
            "unknown": "0",
            "unsplit": "0",
            "withheld_cells": "0",
            "people_lower_bound": "false",
            # One minute bucket of the hour: the camera reported a minute of it (footfall.server.rollups.observed).
            "hours_partly_observed": "1",
            # The raw classify-and-count share; no corrected one: this agent names no bundle with known rates.
            "female_share": "0.6",
            "female_share_corrected": "",
            "female_share_low": "",
            "female_share_high": "",
            "people_corrected": "50",
            "female_share_corrected_missing": "unknown_rates",
            # People per gender × age band: this agent estimated no age, so all of each gender is age 'unknown'.
            **{
                f"{gender}_{band}": str(count if band == "unknown" else 0)
                for gender, count in (("female", 30), ("male", 20), ("unknown", 0))
                for band in AGE_DECISIONS
            },
            "female_bands_withheld": "0",
            "male_bands_withheld": "0",
            "unknown_bands_withheld": "0",
        }
    ]


def test_wilson_interval_matches_reference_values() -> None:
    # Reference values from the closed form (Wilson 1927), z = 1.96.
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert wilson_interval(0, 10)[0] == 0.0 and round(wilson_interval(0, 10)[1], 4) == 0.2775
    assert wilson_interval(10, 10)[1] == 1.0 and round(wilson_interval(10, 10)[0], 4) == 0.7225
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(5, 3)
    low, high = poisson_mean_interval(400, 4)
    assert (low, high) == pytest.approx((100 - 1.96 * 20 / 4, 100 + 1.96 * 20 / 4), rel=1e-3)


def _gender_status(bundle: str, version: str, rates: dict) -> dict:
    """An agent's status reporting its gender bundle with the bundle's decision rates."""
    return {
        "kind": "status",
        "schema_version": 1,
        "agent_id": "agent-1",
        "site_id": "mall",
        "state": "online",
        "sent_at": datetime(2026, 11, 16, tzinfo=UTC).isoformat(),
        "fps": 5.0,
        "latency_ms": 20.0,
        "outbox_depth": 0,
        "version": "test",
        "cameras": [],
        "models": [
            {
                "bundle": bundle,
                "version": version,
                "task": "gender-classification",
                "precision": "int8",
                "parity": "passed",
                "decision_rates": {"counts": rates},
            }
        ],
    }


def test_an_ad_slot_whose_splits_are_mostly_withheld_gets_the_share_of_all_its_people(sqlite_server: Server) -> None:
    """Found in review: expected_audience is people x a share, and that share was estimated over the hours that
    released a split alone: 3 weeks of 3 women in 20 and one of 10 in 20 read "50% women ... over 20 people". The
    withheld splits now count through how likely such a split is, and the explanation says so. (Here that says
    little: with 5 % unknown, two hours of 20 in three withhold their split for an unknown of 1 to 4 whatever
    the share, so the interval stays wide; tests/server/test_shares.py shows the lean it takes away.)"""
    rates = {"female": {"female": 90, "male": 5, "unknown": 5}, "male": {"female": 5, "male": 90, "unknown": 5}}
    messages: list[dict] = [_gender_status("gender", "2", rates)]
    monday = datetime(2026, 10, 26, 10, tzinfo=UTC)
    for week, (female, male) in enumerate([(3, 17), (3, 17), (3, 17), (10, 10)]):
        message = aggregate(zone="door", start=monday + timedelta(weeks=week), seq=week, female=female, male=male)
        messages.append(message | {"classifier": "gender@2"})
    assert sqlite_server.ingest(*messages).status_code == 200
    window = {"start": "2026-10-26T00:00:00Z", "end": "2026-11-23T00:00:00Z"}
    [slot] = sqlite_server.get("/api/v1/sites/mall/insights/ad-placement", **window, audience="female").json()["slots"]
    assert (slot["people"], slot["people_corrected"]) == (80, 80)
    assert slot["share_high"] - slot["share_low"] > 0.2, slot
    assert (
        "over 80 people, 60 of them in hours whose split is withheld for privacy (a part below 5)"
        in (slot["explanation"])
    ), slot["explanation"]


def test_ad_placement_ranks_slots_and_explains_itself(server: Server) -> None:
    s = server
    s.client.put(
        "/api/v1/sites/mall/zones/food",
        json={"name": "Food court", "kind": "ad_slot"},
        headers=s.headers("admin"),
    )
    monday = datetime(2026, 10, 26, tzinfo=UTC)
    # The bundle leaves a fifth of everyone undecided and reads one in eight of each gender as the other.
    rates = {"female": {"female": 70, "male": 10, "unknown": 20}, "male": {"female": 10, "male": 70, "unknown": 20}}
    messages: list[dict] = [_gender_status("gender", "2", rates)]
    for week in range(3):
        base = monday + timedelta(weeks=week)
        # Saturday 14:00 in the food court: many people, mostly women.
        # Monday 09:00 at the entrance: fewer, mixed.
        messages.append(
            aggregate(
                zone="food",
                start=base + timedelta(days=5, hours=14),
                seq=week * 10,
                female=60,
                male=20,
                unknown=20,
            )
        )
        messages.append(
            aggregate(
                zone="entrance", start=base + timedelta(hours=9), seq=week * 10 + 1, female=24, male=24, unknown=12
            )
        )
        messages.append(aggregate(zone="entrance", start=base + timedelta(hours=3), seq=week * 10 + 2, female=1))
    for message in messages[1:]:
        message["classifier"] = "gender@2"
    s.ingest(*messages)
    window = {"start": "2026-10-26T00:00:00Z", "end": "2026-11-16T00:00:00Z"}
    body = s.get("/api/v1/sites/mall/insights/ad-placement", **window, audience="female").json()
    assert body["suppressed_slots"] == 1  # the 03:00 slot with one person a week
    top, second = body["slots"]
    assert (top["zone_id"], top["weekday"], top["hour"], top["weeks_observed"]) == ("food", "Sat", 14, 3)
    # 60 women, 20 men, 20 undecided out of 100 is what this bundle makes of a crowd that is 5/6 women: the share
    # is the corrected one; classify and count (75 %) stays beside it.
    assert top["share"] == pytest.approx(5 / 6, abs=1e-3) and top["share_raw"] == 0.75
    assert top["classified"] == 240 and top["audience_count"] == 180 and top["people_corrected"] == 300
    assert top["share_low"] < 5 / 6 < top["share_high"] and top["share_missing"] is None
    assert top["expected_audience"] == pytest.approx(100 * top["share"], abs=0.01)
    assert top["expected_audience_low"] == pytest.approx(100 * top["share_low"], abs=0.01)
    assert "Food court, Sat 14:00-15:00" in top["explanation"] and "83% women (95% interval" in top["explanation"]
    assert "corrected for the classifier's known errors" in top["explanation"] and "raw: 75%" in top["explanation"]
    assert second["zone_id"] == "entrance" and second["expected_audience"] == pytest.approx(30.0, abs=0.01)
    assert "corrected for the classifier's known errors" in body["method"]
    # Filters: hours window, weekdays and zone kind.
    assert [
        x["zone_id"]
        for x in s.get("/api/v1/sites/mall/insights/ad-placement", **window, audience="male", hours="8-12").json()[
            "slots"
        ]
    ] == ["entrance"]
    assert (
        s.get("/api/v1/sites/mall/insights/ad-placement", **window, days="mon-fri").json()["slots"][0]["zone_id"]
        == "entrance"
    )
    assert [
        x["zone_id"]
        for x in s.get("/api/v1/sites/mall/insights/ad-placement", **window, zone_kind="ad_slot").json()["slots"]
    ] == ["food"]
    everyone = s.get("/api/v1/sites/mall/insights/ad-placement", **window, audience="all").json()["slots"][0]
    assert everyone["share"] is None and everyone["expected_audience"] == 100.0
    by_share = s.get("/api/v1/sites/mall/insights/ad-placement", **window, audience="male", sort="share").json()
    assert by_share["slots"][0]["zone_id"] == "entrance"
    assert math.isclose(by_share["slots"][0]["share"], 0.5, abs_tol=1e-3)


def test_ad_slot_without_a_share_claims_no_audience(server: Server) -> None:
    """A slot whose share cannot be corrected (counts-only cells; a split withheld for privacy) does not know how
    many women it reaches: it must not read "about 0.0 women per week (0.0-0.0)", an exact zero. Its estimate is
    null and its interval runs from 0 to everyone in the slot."""
    s = server
    monday = datetime(2026, 10, 26, tzinfo=UTC)
    rates = {"female": {"female": 70, "male": 10, "unknown": 20}, "male": {"female": 10, "male": 70, "unknown": 20}}
    counts_only = aggregate(zone="entrance", start=monday + timedelta(hours=9), unknown=40)
    counts_only["gender"] = None
    # Two women among 20 people: each part must be 0 or at least k, so the split is withheld, the people are not.
    unsplit = aggregate(zone="food", start=monday + timedelta(hours=14), seq=2, female=2, male=18)
    unsplit["classifier"] = "gender@2"
    s.ingest(_gender_status("gender", "2", rates), counts_only, unsplit)
    window = {"start": "2026-10-26T00:00:00Z", "end": "2026-11-02T00:00:00Z"}
    body = s.get("/api/v1/sites/mall/insights/ad-placement", **window, audience="female").json()
    by_zone = {slot["zone_id"]: slot for slot in body["slots"]}
    assert set(by_zone) == {"entrance", "food"}
    for zone, people in (("entrance", 40), ("food", 20)):
        slot = by_zone[zone]
        assert slot["share"] is None and slot["share_missing"] == "no_classified_people", slot
        assert slot["expected_audience"] is None, slot
        assert (slot["expected_audience_low"], slot["expected_audience_high"]) == (0.0, people), slot
        assert "about 0.0" not in slot["explanation"] and "not estimated" in slot["explanation"], slot


def test_a_gender_slot_without_an_estimate_ranks_after_a_true_zero(sqlite_server: Server) -> None:
    """As in the age ranking (the review of ccaaefa): a slot whose share cannot be corrected ranked as 0 and, tied
    with a slot whose corrected share of women is 0, came first on the zone tie-break. It ranks after it now."""
    s = sqlite_server
    monday = datetime(2026, 10, 26, tzinfo=UTC)
    rates = {"female": {"female": 70, "male": 10, "unknown": 20}, "male": {"female": 10, "male": 70, "unknown": 20}}
    counts_only = aggregate(zone="entrance", start=monday + timedelta(hours=9), unknown=40)  # the first zone
    counts_only["gender"] = None
    men = aggregate(zone="food", start=monday + timedelta(hours=9), seq=2, male=32, unknown=8)
    men["classifier"] = "gender@2"
    s.ingest(_gender_status("gender", "2", rates), counts_only, men)
    window = {"start": "2026-10-26T00:00:00Z", "end": "2026-11-02T00:00:00Z"}
    for sort in ("audience", "share"):
        body = s.get("/api/v1/sites/mall/insights/ad-placement", **window, audience="female", sort=sort).json()
        food, entrance = body["slots"]
        assert (food["zone_id"], food["expected_audience"], food["share_low"]) == ("food", 0.0, 0.0), (sort, food)
        assert (entrance["zone_id"], entrance["expected_audience"]) == ("entrance", None), (sort, entrance)
    # Two slots without an estimate: the one that could hold more women comes first, not the first zone created.
    more = aggregate(zone="food", start=monday + timedelta(hours=14), seq=3, unknown=60)
    more["gender"] = None
    s.ingest(more)
    body = s.get("/api/v1/sites/mall/insights/ad-placement", **window, audience="female").json()
    unestimated = [(slot["zone_id"], slot["people"]) for slot in body["slots"] if slot["expected_audience"] is None]
    assert unestimated == [("food", 60), ("entrance", 40)]


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("traffic/series", {"granularity": "year"}, "query.granularity: Input should be"),
        (
            "traffic/series",
            {"start": "2026-11-17T00:00:00Z", "end": "2026-11-16T00:00:00Z"},
            "must be after start",
        ),
        ("traffic/series", {"start": "yesterday"}, "query.start: Input should be a valid datetime"),
        (
            "traffic/series",
            {"start": "2025-01-01T00:00:00Z", "end": "2026-11-01T00:00:00Z", "granularity": "hour"},
            "covers at most 400 days",
        ),
        ("traffic/series", {"start": "1970-01-01T00:00:00Z"}, "outside the supported years"),
        ("traffic/peak-hours", {"top": 0}, "query.top: Input should be greater than or equal to 1"),
        (
            "insights/ad-placement",
            {"audience": "kids"},
            "query.audience: Input should be 'female', 'male' or 'all'",
        ),
        ("insights/ad-placement", {"hours": "9 to 5"}, "hours: '9 to 5' is not a window like '10-22'"),
        ("insights/ad-placement", {"days": "funday"}, "days: 'funday' is not like 'mon-fri'"),
        # The first three letters were all that was read: 'monkey,sunshine' ranked Mondays and Sundays.
        ("insights/ad-placement", {"days": "monkey,sunshine"}, "days: 'monkey' is not like 'mon-fri'"),
        # A kind no zone can have ranked nothing, which read like a site without traffic.
        ("insights/ad-placement", {"zone_kind": "ad-slot"}, "zone_kind: 'ad-slot' is not one of unknown, entrance"),
        ("insights/ad-placement", {"sort": "share"}, "sort: 'share' needs audience 'female' or 'male'"),
        # Digits of other scripts were read as numbers: Arabic-Indic '١٠-٢٢' ranked 10:00-22:00, and fullwidth
        # '２５-３４' was the band 25-34. A query names hours and ages in ASCII digits, as the API documents.
        ("insights/ad-placement", {"hours": "\u0661\u0660-\u0662\u0662"}, "is not a window like '10-22'"),
        ("traffic/ages", {"age": "\uff12\uff15-\uff13\uff14"}, "age: unknown age band"),
        # A gender without bands was dropped in silence (the answer said audience null): it picks an age audience.
        ("traffic/ages", {"audience": "female"}, "audience: the gender of an age audience, given with age"),
    ],
)
def test_bad_parameters_get_a_clear_422(sqlite_server: Server, path: str, params: dict, message: str) -> None:
    sqlite_server.ingest(aggregate(female=5, male=5))
    response = sqlite_server.get(f"/api/v1/sites/mall/{path}", **params)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize(
    "query",
    [
        "age=18-24&age=25-34",  # ranked one band of the two, with a 200
        "audience=female&audience=male",
        "start=2026-11-16T00:00:00Z&start=2026-11-16T10:00:00Z&end=2026-11-17T00:00:00Z",
    ],
)
def test_a_parameter_that_takes_one_value_given_twice_is_a_422(sqlite_server: Server, query: str) -> None:
    """FastAPI keeps the last of a repeated parameter without a word: the answer was for something else than asked."""
    sqlite_server.ingest(aggregate(female=5, male=5))
    name = query.split("=")[0]
    for path in ("insights/ad-placement", "traffic/ages"):
        response = sqlite_server.client.get(
            f"/api/v1/sites/mall/{path}?{query}", headers=sqlite_server.headers("viewer")
        )
        if name == "audience" and path == "traffic/ages":
            continue
        assert response.status_code == 422, (path, response.text)
        assert response.json()["detail"].startswith(f"{name}: given 2 times; it takes one value")
    # A parameter that takes several values still does.
    both = sqlite_server.client.get(
        "/api/v1/sites/mall/traffic/series?zone=entrance&zone=entrance", headers=sqlite_server.headers("viewer")
    )
    assert both.status_code == 200
    assert sqlite_server.get("/api/v1/sites/mall/insights/ad-placement", days="saturday,Sunday").status_code == 200


@pytest.mark.parametrize(
    ("path", "query", "name"),
    [
        ("traffic/totals", "zones=food", "zones"),  # answered every zone, not food
        ("traffic/series", "granularty=day", "granularty"),  # answered hours
        ("traffic/compare", "age=25-34&audience=female", "age"),  # answered everyone
        ("traffic/totals", "Start=2026-11-16T00:00:00Z", "Start"),  # answered the last 7 days
    ],
)
def test_a_parameter_the_endpoint_does_not_take_is_a_422_that_names_it(
    sqlite_server: Server, path: str, query: str, name: str
) -> None:
    """Found by an adversarial review: a misspelt or foreign parameter was ignored without a word, and the answer
    (200) was for something else than asked."""
    sqlite_server.ingest(aggregate(female=5, male=5))
    response = sqlite_server.client.get(f"/api/v1/sites/mall/{path}?{query}", headers=sqlite_server.headers("viewer"))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"{name}: not a query parameter of this endpoint (it takes "), detail
    assert "start" in detail and "end" in detail


def test_an_age_point_of_withheld_cells_only_is_null_and_unknown_sites_agents_are_404(sqlite_server: Server) -> None:
    """/traffic/ages said 0 people for an hour whose only cell was withheld, where the series says null."""
    nine = datetime(2026, 11, 16, 9, tzinfo=UTC)
    sqlite_server.ingest(
        aggregate(start=nine, female=10, male=10), aggregate(start=nine + timedelta(hours=2), female=2)
    )
    day = {"start": "2026-11-16T00:00:00Z", "end": "2026-11-17T00:00:00Z"}
    points = sqlite_server.get("/api/v1/sites/mall/traffic/ages", granularity="hour", **day).json()["points"]
    by_hour = {p["label"][-5:]: (p["people"], p["people_lower_bound"], p["withheld_cells"]) for p in points}
    assert by_hour["09:00"] == (20, False, 0) and by_hour["11:00"] == (None, True, 1)
    response = sqlite_server.get("/api/v1/agents", site="no-such-site")
    assert response.status_code == 404 and response.json()["detail"] == "no site 'no-such-site'"


def test_unknown_site_and_zone_are_404_with_their_names(sqlite_server: Server) -> None:
    sqlite_server.ingest(aggregate(female=5, male=5))
    assert sqlite_server.get("/api/v1/sites/nowhere/traffic/series").json()["detail"] == "no site 'nowhere'"
    response = sqlite_server.get("/api/v1/sites/mall/traffic/series", zone="moon")
    assert response.status_code == 404 and "no zone 'moon'" in response.json()["detail"]
    bad_tz = sqlite_server.client.patch(
        "/api/v1/sites/mall", json={"timezone": "Mars/Olympus"}, headers=sqlite_server.headers("admin")
    )
    assert bad_tz.status_code == 422 and "unknown time zone 'Mars/Olympus'" in bad_tz.json()["detail"]


def test_an_hour_the_camera_watched_and_nobody_passed_counts_as_zero_in_means(server: Server) -> None:
    """A Monday 09:00 with 50 people and three Mondays whose buckets were empty: 12.5 people per week, not 50 over
    the one week someone came (which overstated every quiet slot, and the audience ad placement expects there).
    An hour no agent reported (Monday 10:00) is no observation at all."""
    monday = datetime(2026, 11, 16, 9, tzinfo=UTC)
    messages = [aggregate(zone="a", start=monday, seconds=3600, female=30, male=20)]
    messages += [aggregate(zone="a", start=monday - timedelta(weeks=w), seconds=3600, seq=1 + w) for w in (1, 2, 3)]
    assert server.ingest(*messages).status_code == 200
    span = {"start": "2026-10-26T00:00:00Z", "end": "2026-11-23T00:00:00Z"}
    cells = server.get("/api/v1/sites/mall/traffic/heatmap", zone="a", **span).json()["cells"]
    assert [(c["weekday"], c["hour"], c["weeks_observed"], c["mean_people"]) for c in cells] == [("Mon", 9, 4, 12.5)]
    (peak,) = server.get("/api/v1/sites/mall/traffic/peak-hours", zone="a", **span).json()["hours"]
    assert (peak["hour"], peak["days_observed"], peak["mean_people_per_day"]) == (9, 4, 12.5)
    (slot,) = server.get("/api/v1/sites/mall/insights/ad-placement", audience="female", **span).json()["slots"]
    assert slot["weeks_observed"] == 4 and "on average 12.5 people per week" in slot["explanation"]
    points = server.get("/api/v1/sites/mall/traffic/series", zone="a", **span).json()["points"]
    # The quiet hours are zeros, not gaps, and not hidden: nobody passed, so no woman and no man either.
    assert [(p["people"], p["female"], p["male"], p["suppressed"]) for p in points] == [(0, 0, 0, False)] * 3 + [
        (50, 30, 20, False)
    ]


def test_an_hours_window_past_midnight_runs_into_the_next_day(sqlite_server: Server) -> None:
    """Review: ``days=fri&hours=22-2`` ranked Friday 00:00-02:00 and 22:00-24:00, Friday's early morning, and left
    out Saturday 00:00-02:00, the rest of the Friday night it names."""
    friday = datetime(2026, 11, 13, tzinfo=UTC)
    messages = [
        aggregate(zone="bar", start=friday + timedelta(hours=hour), seq=hour, female=6, male=6, seconds=3600)
        for hour in (0, 1, 22, 23, 24, 25)  # Friday 00, 01, 22, 23 and Saturday 00, 01
    ]
    sqlite_server.ingest(*messages)
    window = {"start": "2026-11-09T00:00:00Z", "end": "2026-11-16T00:00:00Z"}
    for audience, age in (("all", None), ("female", "25-34")):
        params = {"audience": audience, "days": "fri", "hours": "22-2", "min_weeks": 1, **window}
        if age:
            params["age"] = age
        body = sqlite_server.get("/api/v1/sites/mall/insights/ad-placement", **params).json()
        slots = sorted((slot["weekday"], slot["hour"]) for slot in body["slots"])
        assert slots == [("Fri", 22), ("Fri", 23), ("Sat", 0), ("Sat", 1)], (audience, body)
    # A window that does not wrap stays within its day; no days: every day's window, as before.
    body = sqlite_server.get("/api/v1/sites/mall/insights/ad-placement", hours="0-2", days="sat", min_weeks=1, **window)
    assert sorted((slot["weekday"], slot["hour"]) for slot in body.json()["slots"]) == [("Sat", 0), ("Sat", 1)]
    body = sqlite_server.get("/api/v1/sites/mall/insights/ad-placement", hours="22-2", min_weeks=1, **window).json()
    assert len(body["slots"]) == 6


def test_a_slot_with_withheld_hours_says_at_least_for_every_audience(sqlite_server: Server) -> None:
    """The review's repro: of four Mondays at 09:00, three had 4 people each (withheld at k = 5). 'On average 2.5 people
    per week (1.0-4.0)' ruled out the true 5.5: the slot says its count is a lower bound, and its interval reaches
    as far as the withheld hours could take it, for everyone and for a gender audience as for an age audience."""
    monday = datetime(2026, 10, 26, 9, tzinfo=UTC)
    messages = [aggregate(zone="a", start=monday, female=5, male=5)]
    messages += [aggregate(zone="a", start=monday + timedelta(weeks=w), seq=w, female=2, male=2) for w in (1, 2, 3)]
    assert sqlite_server.ingest(*messages).status_code == 200
    window = {"start": "2026-10-26T00:00:00Z", "end": "2026-11-17T00:00:00Z"}
    for audience in ("all", "female"):
        body = sqlite_server.get("/api/v1/sites/mall/insights/ad-placement", **window, audience=audience).json()
        [slot] = body["slots"]
        assert (slot["people"], slot["withheld_hours"], slot["weeks_observed"]) == (10, 3, 4)
        assert slot["audience_lower_bound"] is True, audience
        assert slot["expected_audience_high"] >= (10 + 3 * 4) / 4 * (1 if audience == "all" else 0.5), audience
        assert (
            "at least" in slot["explanation"] and "3 hour(s) with fewer than 5 people withheld" in slot["explanation"]
        )
        assert "about" not in slot["explanation"] and "on average" not in slot["explanation"], slot["explanation"]


@pytest.mark.parametrize("batches", ["together", "later hour first"])
def test_a_local_hour_that_happens_twice_when_clocks_go_back_is_one_week_observed(server: Server, batches: str) -> None:
    """Europe/Berlin, Sunday 25 October 2026: local 02:00-03:00 happens at 00:00 and at 01:00 UTC. With one week of
    data that hour said 2 weeks (and 2 days) observed, and its mean per week was halved; over whole weeks (the
    running totals) and ragged ones (the hourly cells) alike."""
    admin = server.headers("admin")
    assert (
        server.client.patch("/api/v1/sites/mall", json={"timezone": "Europe/Berlin"}, headers=admin).status_code == 200
    )
    first, second = (
        aggregate(zone="a", start=datetime(2026, 10, 25, hour, tzinfo=UTC), seq=hour, female=5, male=5)
        for hour in (0, 1)
    )
    if batches == "together":
        assert server.ingest(first, second).status_code == 200
    else:
        assert server.ingest(second).status_code == 200 and server.ingest(first).status_code == 200
    for span in (
        {"start": "2026-10-19T00:00:00Z", "end": "2026-10-26T00:00:00Z"},  # one whole UTC week
        {"start": "2026-10-21T00:00:00Z", "end": "2026-10-28T00:00:00Z"},  # the week cut: hourly cells
        {"start": "2026-10-25T00:30:00Z", "end": "2026-10-26T00:00:00Z"},  # only the second of the two
    ):
        whole = span["start"] < "2026-10-25T00:30"
        people = 20 if whole else 10
        [cell] = server.get("/api/v1/sites/mall/traffic/heatmap", zone="a", **span).json()["cells"]
        assert (cell["weekday"], cell["hour"], cell["people"], cell["weeks_observed"]) == ("Sun", 2, people, 1), span
        [hour] = server.get("/api/v1/sites/mall/traffic/peak-hours", zone="a", **span).json()["hours"]
        assert (hour["hour"], hour["days_observed"], hour["mean_people_per_day"]) == (2, 1, people), span
        [slot] = server.get("/api/v1/sites/mall/insights/ad-placement", zone="a", **span).json()["slots"]
        assert (slot["weeks_observed"], slot["expected_audience"]) == (1, people), span
    with server.db.read() as session:
        assert slots_vs_hourly(session) == []


def test_the_hour_that_happens_twice_has_two_labels_in_the_series_and_the_csv(sqlite_server: Server) -> None:
    """London, Sunday 25 October 2026: local 01:00-02:00 happens at 00:00 and at 01:00 UTC. The hourly series and the
    CSV's ``bucket_local`` labelled both "2026-10-25 01:00", which reads as one hour counted twice."""
    admin = sqlite_server.headers("admin")
    patched = sqlite_server.client.patch("/api/v1/sites/mall", json={"timezone": "Europe/London"}, headers=admin)
    assert patched.status_code == 200
    starts = [datetime(2026, 10, 25, hour, tzinfo=UTC) for hour in (0, 1, 2)]
    assert sqlite_server.ingest(*(aggregate(start=t, seq=i, male=10) for i, t in enumerate(starts))).status_code == 200
    span = {"start": "2026-10-25T00:00:00Z", "end": "2026-10-25T03:00:00Z"}
    expected = ["2026-10-25 01:00 (UTC+01:00)", "2026-10-25 01:00 (UTC+00:00)", "2026-10-25 02:00"]
    points = sqlite_server.get("/api/v1/sites/mall/traffic/series", granularity="hour", **span).json()["points"]
    assert [p["label"] for p in points] == expected
    exported = sqlite_server.get("/api/v1/sites/mall/traffic/export.csv", granularity="hour", **span).text
    assert [row["bucket_local"] for row in csv.DictReader(io.StringIO(exported))] == expected


def test_a_local_hour_is_one_week_observed_each_week_across_the_clocks_going_forward(server: Server) -> None:
    """Found in review: Monday 00:00 in London fell at 00:00 UTC on 23 March and at Sunday 23:00 UTC on 30 March, in
    one UTC week, so four Mondays of 10 people read 3 weeks and 13.33 a week on the heatmap and peak hours (ad
    placement, which counts each hour once, said 4 and 10.0)."""
    admin = server.headers("admin")
    assert (
        server.client.patch("/api/v1/sites/mall", json={"timezone": "Europe/London"}, headers=admin).status_code == 200
    )
    # Local Monday 00:00-01:00 on four Mondays; the clocks go forward on Sunday 29 March.
    mondays = [datetime(2026, 3, 16, 0), datetime(2026, 3, 23, 0), datetime(2026, 3, 29, 23), datetime(2026, 4, 5, 23)]
    messages = [aggregate(zone="a", start=d.replace(tzinfo=UTC), seq=i, male=10) for i, d in enumerate(mondays)]
    assert server.ingest(*messages).status_code == 200
    span = {"start": "2026-03-15T00:00:00Z", "end": "2026-04-12T00:00:00Z"}
    [cell] = server.get("/api/v1/sites/mall/traffic/heatmap", **span).json()["cells"]
    assert (cell["weekday"], cell["hour"], cell["weeks_observed"], cell["mean_people"]) == ("Mon", 0, 4, 10.0)
    [hour] = server.get("/api/v1/sites/mall/traffic/peak-hours", **span).json()["hours"]
    assert (hour["hour"], hour["days_observed"], hour["mean_people_per_day"]) == (0, 4, 10.0)
    [slot] = server.get("/api/v1/sites/mall/insights/ad-placement", **span).json()["slots"]
    assert (slot["weeks_observed"], slot["expected_audience"]) == (4, 10.0)


def test_an_age_audience_counts_a_local_hour_that_happens_twice_as_one_week(sqlite_server: Server) -> None:
    """Found in review: the gender audience counted the repeated 01:00 of 25 October (London) as one week, the age
    audience as two, with the people per week that much lower (10.0 instead of 15.0)."""
    admin = sqlite_server.headers("admin")
    patched = sqlite_server.client.patch("/api/v1/sites/mall", json={"timezone": "Europe/London"}, headers=admin)
    assert patched.status_code == 200
    messages = []
    for seq, start in enumerate([datetime(2026, 10, 18, 0), datetime(2026, 10, 25, 0), datetime(2026, 10, 25, 1)]):
        message = aggregate(zone="a", start=start.replace(tzinfo=UTC), seconds=3600, seq=seq, female=10)
        message["age"] = {"female": {"25-34": 10}}
        messages.append(message)
    assert sqlite_server.ingest(*messages).status_code == 200
    span = {"start": "2026-10-12T00:00:00Z", "end": "2026-11-02T00:00:00Z"}
    for audience in ({"audience": "female"}, {"audience": "female", "age": "25-34"}):
        [slot] = sqlite_server.get("/api/v1/sites/mall/insights/ad-placement", **span, **audience).json()["slots"]
        assert (slot["people"], slot["weeks_observed"]) == (30, 2), audience
        assert "on average 15.0 people per week in this hour over 2 week(s)" in slot["explanation"], audience


def test_a_day_or_week_series_states_the_range_it_counts(sqlite_server: Server) -> None:
    """A range starting mid-day: the day series left the first, partial, day out and still echoed the start asked
    for, so its totals (30) disagreed with /totals over 'the same' range (50); a week series from a Friday gave its
    one point the start of the Monday before. Now each answer states what it counts."""
    monday = datetime(2026, 11, 16, tzinfo=UTC)
    hours = [monday + timedelta(days=d, hours=h) for d in range(7) for h in (9, 20)]
    sqlite_server.ingest(*(aggregate(start=t, seq=i, female=5, male=5) for i, t in enumerate(hours)))
    asked = {"start": "2026-11-18T05:00:00Z", "end": "2026-11-20T12:00:00Z"}
    days = sqlite_server.get("/api/v1/sites/mall/traffic/series", granularity="day", **asked).json()
    assert (days["start"], days["end"]) == ("2026-11-19T00:00:00Z", "2026-11-20T12:00:00Z")
    stated = {"start": days["start"], "end": days["end"]}
    totals = sqlite_server.get("/api/v1/sites/mall/traffic/totals", **stated).json()["totals"]
    assert days["totals"]["people"] == totals["people"] == sum(p["people"] for p in days["points"]) == 30
    week = {"start": "2026-11-20T00:00:00Z", "end": "2026-11-23T00:00:00Z"}
    weeks = sqlite_server.get("/api/v1/sites/mall/traffic/series", granularity="week", **week).json()
    assert [(p["start"], p["label"], p["people"]) for p in weeks["points"]] == [
        ("2026-11-20T00:00:00Z", "week of 2026-11-16", 60)
    ]
    csv_rows = list(
        csv.DictReader(
            io.StringIO(sqlite_server.get("/api/v1/sites/mall/traffic/export.csv", granularity="day", **asked).text)
        )
    )
    assert [row["bucket_start_utc"] for row in csv_rows] == ["2026-11-19T00:00:00Z", "2026-11-20T00:00:00Z"]


def test_an_answer_states_the_whole_hours_it_counts(sqlite_server: Server) -> None:
    """An hour is the finest unit released, counted where it starts in the range. A window from 13:59:59 to
    14:00:01 answered the whole 14:00 hour (25 people) and echoed two seconds; 13:30 to 13:45 answered 0 people
    and echoed a quarter of an hour in which nothing could be counted. Each answer now states its whole hours."""
    hour = datetime(2026, 11, 16, 14, tzinfo=UTC)
    sqlite_server.ingest(
        aggregate(start=hour - timedelta(hours=1), seq=1, female=6, male=6),
        aggregate(start=hour, seq=2, female=10, male=15),
    )
    asked = {"start": "2026-11-16T13:59:59Z", "end": "2026-11-16T14:00:01Z"}
    for path in ("totals", "series", "peak-hours"):
        answer = sqlite_server.get(f"/api/v1/sites/mall/traffic/{path}", **asked).json()
        assert (answer["start"], answer["end"]) == ("2026-11-16T14:00:00Z", "2026-11-16T15:00:00Z"), path
    assert sqlite_server.get("/api/v1/sites/mall/traffic/totals", **asked).json()["totals"]["people"] == 25
    # Nothing starts in a quarter of an hour: the answer says it covers no time, as well as 0 people.
    quarter = {"start": "2026-11-16T13:30:00Z", "end": "2026-11-16T13:45:00Z"}
    nothing = sqlite_server.get("/api/v1/sites/mall/traffic/totals", **quarter).json()
    assert nothing["start"] == nothing["end"] == "2026-11-16T14:00:00Z"
    assert nothing["totals"]["people"] == 0 and nothing["hours_observed"] == 0
    # Whole hours asked are answered as asked, and half past to half past counts the two hours starting inside.
    assert (
        sqlite_server.get(
            "/api/v1/sites/mall/traffic/totals", start="2026-11-16T13:00:00Z", end="2026-11-16T15:00:00Z"
        ).json()["totals"]["people"]
        == 12 + 25
    )
    halves = sqlite_server.get(
        "/api/v1/sites/mall/traffic/totals", start="2026-11-16T12:30:00Z", end="2026-11-16T14:30:00Z"
    ).json()
    assert (halves["start"], halves["end"], halves["totals"]["people"]) == (
        "2026-11-16T13:00:00Z",
        "2026-11-16T15:00:00Z",
        37,
    )


def test_a_day_series_of_a_half_hour_time_zone_keeps_its_first_local_day(sqlite_server: Server) -> None:
    """Kolkata's midnight is 18:30Z: with the range moved up to the whole hour 19:00Z, the first local day read as
    begun before the range and was left out of day and week answers (the review of 8e2c3e4), though every one of its
    hour cells (from 19:00Z, 00:30 local) starts in it."""
    sqlite_server.ingest(
        aggregate(start=datetime(2026, 11, 16, 20, tzinfo=UTC), seq=1, female=10, male=10),  # 17 Nov 01:30 local
        aggregate(start=datetime(2026, 11, 17, 20, tzinfo=UTC), seq=2, female=7, male=7),  # 18 Nov 01:30 local
    )
    admin = sqlite_server.headers("admin")
    assert sqlite_server.client.patch("/api/v1/sites/mall", json={"timezone": "Asia/Kolkata"}, headers=admin).is_success
    days = {"start": "2026-11-17T00:00:00+05:30", "end": "2026-11-19T00:00:00+05:30"}
    hours = sqlite_server.get("/api/v1/sites/mall/traffic/series", granularity="hour", **days).json()
    assert sum(p["people"] for p in hours["points"]) == 34
    for path in ("series", "ages", "export.csv"):
        for granularity in ("day", "week"):
            answer = sqlite_server.get(f"/api/v1/sites/mall/traffic/{path}", granularity=granularity, **days)
            if path == "export.csv":
                rows = list(csv.DictReader(io.StringIO(answer.text)))
                assert sum(int(row["people"]) for row in rows) == 34, (granularity, rows)
                continue
            body = answer.json()
            assert body["start"] == "2026-11-16T18:30:00Z", (path, granularity, body["start"])
            assert sum(p["people"] for p in body["points"]) == 34, (path, granularity, body["points"])
    series = sqlite_server.get("/api/v1/sites/mall/traffic/series", granularity="day", **days).json()
    assert [(p["label"], p["people"]) for p in series["points"]] == [("2026-11-17", 20), ("2026-11-18", 14)]
