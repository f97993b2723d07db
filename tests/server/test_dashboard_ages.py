"""The zone page's age pyramid (issue #17) in a real headless Chromium against the real server: one row per band,
women to the left and men to the right, each bar's value and width from the traffic API, a suppressed gender's
bands drawn as suppressed (never as 0), for one hour and for the whole range."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from footfall.core.wire import AggregateMessage, GenderCounts  # noqa: E402

from tests.server.test_dashboard_browser import LiveServer, Page, browser, start_server  # noqa: E402, F401

pytestmark = pytest.mark.browser

BANDS = ["65+", "55-64", "45-54", "35-44", "25-34", "18-24", "13-17", "0-12", "unknown"]


def aged(
    hour: datetime, seq: int, female: dict[str, int], male: dict[str, int], unknown: dict[str, int] | None = None
) -> AggregateMessage:
    unknown = unknown or {}
    counts = GenderCounts(female=sum(female.values()), male=sum(male.values()), unknown=sum(unknown.values()))
    return AggregateMessage(
        agent_id="box-1",
        site_id="mall",
        camera_id="cam-1",
        zone_id="food-court",
        bucket_start=hour,
        bucket_seconds=3600,
        seq=seq,
        people=counts.total,
        gender=counts,
        age={"female": female, "male": male, "unknown": unknown},  # type: ignore[dict-item]
    )


@pytest.fixture(scope="module")
def aged_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str, str]]:
    """A site whose food court has three hours with age bands; in the middle one a women's band is below k, so
    the women's bands of that hour are suppressed, and in the last one a band of the people of unknown gender is.
    An hour before them has 3 people (below k): withheld whole. Yields the server and the thin hour's and the
    withheld hour's UTC starts as the API says them."""
    folder = tmp_path_factory.mktemp("ages-db")
    live, server, thread = start_server(f"sqlite:///{folder / 'footfall.db'}")
    end_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    hours = [end_hour - timedelta(hours=h) for h in (4, 3, 2, 5)]
    messages = [
        aged(hours[0], 1, {"18-24": 12, "25-34": 20, "35-44": 8}, {"25-34": 15, "45-54": 6}),
        aged(hours[1], 2, {"25-34": 3, "35-44": 9}, {"25-34": 7, "65+": 5, "unknown": 5}),  # women's 3 < k
        aged(hours[2], 3, {"25-34": 10, "55-64": 5}, {"18-24": 9, "0-12": 6}, {"25-34": 6, "35-44": 2}),
        aged(hours[3], 4, {"25-34": 2}, {"25-34": 1}),  # 3 people < k: the hour is withheld
    ]
    try:
        with httpx.Client(base_url=live.url + "/api/v1", timeout=60) as client:
            admin = {"X-API-Key": live.admin_key}
            client.put("/sites/mall/zones/food-court", headers=admin, json={"name": "Food court", "kind": "food_court"})
            response = client.post(
                "/ingest",
                content="[" + ",".join(m.model_dump_json() for m in messages) + "]",
                headers={"X-API-Key": live.agent_key, "Content-Type": "application/json"},
            )
            assert response.status_code == 200 and not response.json()["rejected"], response.text
        yield live, hours[1].strftime("%Y-%m-%dT%H:%M:%SZ"), hours[3].strftime("%Y-%m-%dT%H:%M:%SZ")
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def lopsided_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Women and men of the same age profile, three hours each; the men's 25-34 is below k in two of them, so the
    men's bands are released in one hour and the women's in all three."""
    folder = tmp_path_factory.mktemp("lopsided-db")
    live, server, thread = start_server(f"sqlite:///{folder / 'footfall.db'}")
    end_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    messages = [
        aged(
            end_hour - timedelta(hours=h), seq, {"25-34": 10, "35-44": 10}, {"25-34": 10 if h == 4 else 3, "35-44": 10}
        )
        for seq, h in enumerate((4, 3, 2), start=1)
    ]
    try:
        live.ingest(messages)
        yield live
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)


def bars(page: Page) -> dict[tuple[str, str], tuple[float | None, float]]:
    """(gender, band) → (value, or None when drawn as suppressed; drawn width) of every pyramid bar."""
    found = {}
    for bar in page.page.locator("#ages svg.pyramid-svg rect.bar").all():
        suppressed = bar.get_attribute("data-suppressed") == "true"
        value = None if suppressed else float(bar.get_attribute("data-value") or "nan")
        found[(bar.get_attribute("data-gender") or "", bar.get_attribute("data-band") or "")] = (
            value,
            float(bar.get_attribute("width") or "nan"),
        )
    return found


def test_zone_page_draws_an_age_pyramid_per_hour_with_suppressed_bands_shown_as_suppressed(
    browser,  # noqa: F811 (the dashboard tests' Chromium fixture, imported above)
    aged_server: tuple[LiveServer, str, str],
    tmp_path: Path,
) -> None:
    live, thin_hour, _ = aged_server
    page = Page(browser, live, tmp_path)
    try:
        page.open(f"/dashboard/zone?site=mall&zone=food-court&ah={thin_hour}", key=live.viewer_key)
        page.wait_ready()
        p = page.page
        p.wait_for_selector("#ages svg.pyramid-svg", timeout=10_000)
        answer = live.get(
            "/sites/mall/traffic/ages",
            zone="food-court",
            start=(datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:00:00Z"),
            end=datetime.now(UTC).strftime("%Y-%m-%dT%H:00:00Z"),
        )
        hour = next(point for point in answer["points"] if point["start"] == thin_hour)
        drawn = bars(page)
        assert len(drawn) == 2 * len(BANDS)
        # The hour with a women's band below k: every women's bar is suppressed (hatched, no value), none is 0.
        assert all(drawn[("female", band)][0] is None for band in BANDS)
        assert p.locator("#ages rect.bar.female.suppressed").count() == len(BANDS)
        assert all(value is None for value in hour["bands"]["female"].values())
        for band in BANDS:
            assert drawn[("male", band)][0] == hour["bands"]["male"][band]
        widths = {band: drawn[("male", band)][1] for band in BANDS}
        assert widths["25-34"] > widths["65+"] == widths["unknown"] > 0 and widths["0-12"] == 0
        assert p.locator(".pyramid-row[data-gender=female] [data-suppressed=true]").count() == 1
        assert "12 people are not broken down by age" in p.locator("#ages").inner_text()
        assert p.locator(".pyramid-row[data-gender=female] .withheld").get_attribute("data-withheld") == "12"
        page.screenshot("zone-age-pyramid-hour")

        # The whole range: each bar sums the released bands of its hours (the suppressed hour adds nothing).
        p.select_option("#sel-age-hour", "all")
        p.wait_for_selector("#ages[data-hour=all] svg.pyramid-svg", timeout=10_000)
        drawn = bars(page)
        totals = answer["totals"]["bands"]
        assert drawn[("female", "25-34")][0] == totals["female"]["25-34"] == 30
        assert drawn[("male", "25-34")][0] == totals["male"]["25-34"] == 15 + 7
        assert drawn[("female", "25-34")][1] == max(width for _, width in drawn.values())
        assert drawn[("male", "0-12")][0] == 6  # children are counted like anyone else
        assert p.locator("#ages rect.bar.suppressed").count() == 0
        # The rows sum released bands only, say so, and give the withheld people of each gender beside them;
        # the note counts the unknown gender's withheld bands (6 + 2) and the withheld hour too.
        rows = {g: p.locator(f".pyramid-row[data-gender={g}]") for g in ("female", "male", "unknown")}
        assert all("released bands" in row.inner_text() for row in rows.values())
        assert rows["female"].locator(".count [data-value]").get_attribute("data-value") == str(12 + 20 + 8 + 10 + 5)
        assert rows["female"].locator(".withheld").get_attribute("data-withheld") == "12"
        assert rows["male"].locator(".withheld").count() == 0
        assert rows["unknown"].locator(".withheld").get_attribute("data-withheld") == "8"
        note = p.locator("#ages p.faint").inner_text()
        assert "20 people are not broken down by age" in note and "8 of unknown gender" in note
        assert "1 hour with fewer than 5 people" in note
        page.screenshot("zone-age-pyramid-range")
    finally:
        page.close()


def test_zone_page_draws_a_withheld_hour_as_suppressed_not_as_zero(
    browser,  # noqa: F811 (the dashboard tests' Chromium fixture, imported above)
    aged_server: tuple[LiveServer, str, str],
    tmp_path: Path,
) -> None:
    live, _, withheld_hour = aged_server
    page = Page(browser, live, tmp_path)
    try:
        page.open(f"/dashboard/zone?site=mall&zone=food-court&ah={withheld_hour}", key=live.viewer_key)
        page.wait_ready()
        p = page.page
        p.wait_for_selector(f"#ages[data-hour='{withheld_hour}'] svg.pyramid-svg", timeout=10_000)
        drawn = bars(page)
        assert all(value is None for value, _ in drawn.values())  # every bar suppressed: no "Women 0 / Men 0"
        for gender in ("female", "male"):
            row = p.locator(f".pyramid-row[data-gender={gender}]")
            assert row.locator("[data-suppressed=true]").count() == 1 and row.locator("[data-value]").count() == 0
        assert "1 hour with fewer than 5 people" in p.locator("#ages").inner_text()
    finally:
        page.close()


def test_ad_placement_page_ranks_a_gender_and_band_audience_and_offers_no_band_under_18(
    browser,  # noqa: F811 (the dashboard tests' Chromium fixture, imported above)
    aged_server: tuple[LiveServer, str, str],
    tmp_path: Path,
) -> None:
    live, _, _ = aged_server
    page = Page(browser, live, tmp_path)
    try:
        page.open("/dashboard/ad-placement?site=mall&audience=female&age=25-34", key=live.viewer_key)
        page.wait_ready()
        p = page.page
        p.wait_for_selector("#ranking-table", timeout=10_000)
        offered = [o.get_attribute("value") for o in p.locator("#sel-age option").all()]
        assert offered == ["", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"]  # never 0-12 or 13-17
        assert p.locator("#sel-age").input_value() == "25-34"
        answer = live.get(
            "/sites/mall/insights/ad-placement",
            audience="female",
            age="25-34",
            start=(datetime.now(UTC) - timedelta(days=28)).strftime("%Y-%m-%dT00:00:00Z"),
            end=datetime.now(UTC).strftime("%Y-%m-%dT%H:00:00Z"),
        )
        rows = p.locator("#ranking-table tr.slot")
        assert rows.count() == len(answer["slots"]) == 3
        # The hour whose women's bands are suppressed ranks last: none of its women is counted into a band.
        assert [slot["audience_count"] for slot in answer["slots"]] == [20, 10, 0]
        first = answer["slots"][0]
        assert float(rows.first.locator(".v").first.get_attribute("data-value") or "nan") == first["expected_audience"]
        assert "women aged 25-34" in p.locator("#best-slot").inner_text()
        # The suppressed hour has no estimate: shown as "—" (never "≥ 0.0") with its women whose bands were
        # withheld, and an interval that reaches as far as they could take it, never a narrow interval around 0.
        last = answer["slots"][2]
        assert last["audience_lower_bound"] is True and last["bands_withheld"] == 12
        assert last["expected_audience"] is None and "women aged 25-34 is not estimated" in last["explanation"]
        assert last["expected_audience_high"] >= 12
        assert rows.nth(2).locator(".v").first.inner_text() == "—"
        assert "12 with age bands withheld" in rows.nth(2).inner_text()
        assert not rows.first.locator(".v").first.inner_text().startswith("≥")
        assert "never ranked: footfall does not target minors" in p.locator("#how").inner_text()
        page.screenshot("ads-women-25-34")
    finally:
        page.close()


def test_the_whole_range_pyramid_compares_age_profiles_not_counts_released_in_different_hours(
    browser,  # noqa: F811 (the dashboard tests' Chromium fixture, imported above)
    lopsided_server: LiveServer,
    tmp_path: Path,
) -> None:
    """Over a range, each gender's bars sum only the hours whose bands it released, and the fewer gender's are
    withheld more often: drawn as counts, the women's bars stood three times the men's for the same profile (60
    women in released bands against 20 men, with 26 men's bands withheld). Each side is its gender's profile."""
    page = Page(browser, lopsided_server, tmp_path)
    try:
        page.open("/dashboard/zone?site=mall&zone=food-court&ah=all", key=lopsided_server.viewer_key)
        page.wait_ready()
        p = page.page
        p.wait_for_selector("#ages[data-hour=all] svg.pyramid-svg", timeout=10_000)
        drawn = bars(page)
        assert drawn[("female", "25-34")][0] == 30 and drawn[("male", "25-34")][0] == 10  # the counts, as released
        for band in ("25-34", "35-44"):
            assert drawn[("female", band)][1] == pytest.approx(drawn[("male", band)][1])  # one profile, one width
            share = p.locator(f"#ages rect.bar.male[data-band='{band}']").get_attribute("data-share")
            assert float(share or "nan") == pytest.approx(0.5)
        title = p.locator("#ages rect.bar.male[data-band='25-34'] title").text_content() or ""
        assert "10, 50% of the 20 men in released bands" in title
        assert "age profile" in p.locator("#ages p.faint").inner_text()
        assert p.locator(".pyramid-row[data-gender=male] .withheld").get_attribute("data-withheld") == "26"
    finally:
        page.close()
