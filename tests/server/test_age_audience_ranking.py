"""The ad-placement ranking for a gender × age-band audience (new-user review): a slot whose audience's bands were
all withheld has no estimate (never "at least 0.0") and ranks after every slot with one, in both sorts; the upper
end of an audience never passes the slot's own people; a missing corrected share says why in true words; and the
ads page passes any ``age`` on to the API, shows it, and shows the API's refusal instead of a ranking."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from footfall.server.stats import poisson_mean_interval

from tests.server.conftest import Server, aggregate, make_server
from tests.server.test_ages import NINE, SITE, TWO_WEEKS, aged, ages, with_ages
from tests.server.test_dashboard_browser import LiveServer, Page, browser, start_server  # noqa: F401

K = 5
PLACEMENT = f"{SITE}/insights/ad-placement"


@pytest.fixture()
def mixed(sqlite_url: str) -> Iterator[Server]:
    """Men 25-34 at 09:00 in five zones, ingested in this order (so the zones' keys follow it):

    - ``hidden``: 30 men of 25-34 beside 2 of 45-54 (below k): none of the men's bands is released;
    - ``hidden2``: 7 men of 25-34 beside 3 of 45-54, and 9 women: the men's bands withheld again;
    - ``none``: 8 men, all 35-44: the men's bands released, and a true 0 men of 25-34;
    - ``women``: 12 women and no man: the split released with 0 men, a true 0 again (no share: no men);
    - ``some``: 10 men of 25-34 and 6 of 35-44: released.
    """
    for server in make_server(sqlite_url, k_anonymity=K):
        messages = [
            aged(zone="hidden", camera="cam-1", male={"25-34": 30, "45-54": 2}),
            aged(zone="hidden2", camera="cam-2", male={"25-34": 7, "45-54": 3}, female={"25-34": 9}),
            aged(zone="none", camera="cam-3", male={"35-44": 8}),
            aged(zone="women", camera="cam-4", female={"25-34": 12}),
            aged(zone="some", camera="cam-5", male={"25-34": 10, "35-44": 6}),
        ]
        assert server.ingest(*messages).status_code == 200
        yield server


def ranking(server: Server, **params: object) -> list[dict]:
    response = server.get(PLACEMENT, **{"audience": "male", "age": "25-34", **TWO_WEEKS, **params})
    assert response.status_code == 200, response.text
    return response.json()["slots"]


def test_a_slot_whose_audience_bands_were_all_withheld_has_no_estimate(mixed: Server) -> None:
    """The review's repro: every men's band of the slot was withheld (one band below k). It read "≥ 0.0" and
    "at least 0.0 men aged 25-34"; it has no estimate, its interval runs from 0 to what the withheld could hold,
    and its explanation says the bands were withheld."""
    slots = {slot["zone_id"]: slot for slot in ranking(mixed)}
    hidden = slots["hidden"]
    assert hidden["expected_audience"] is None and hidden["expected_audience_low"] == 0.0
    assert hidden["audience_lower_bound"] is True and hidden["bands_withheld"] == 32 and hidden["banded"] == 0
    assert hidden["expected_audience_high"] >= 32  # all 32 men, in one week, could be 25-34
    why = hidden["explanation"]
    assert "0.0 men" not in why and "at least 0.0" not in why, why
    assert "not estimated" in why and "withheld for privacy" in why and "32 men" in why, why
    # Released bands with a true 0 still show 0: as a figure, exact where nothing of the men was withheld.
    for zone in ("none", "women"):
        assert slots[zone]["expected_audience"] == 0.0, zone
        assert slots[zone]["audience_lower_bound"] is False, zone
        assert "about 0.0 men aged 25-34" in slots[zone]["explanation"], zone
    assert slots["some"]["expected_audience"] == 10.0


def test_slots_without_an_estimate_rank_after_every_slot_with_one_in_both_sorts(mixed: Server) -> None:
    """The withheld slots were ranked as 0.0 beside the true zeros, and came first on the tie-break (their keys
    are lower). They rank after every slot with an estimate; by share, a null share ranks after a released 0."""
    by_audience = [slot["zone_id"] for slot in ranking(mixed)]
    assert by_audience[:1] == ["some"] and set(by_audience[1:3]) == {"none", "women"}, by_audience
    assert by_audience[3:] == ["hidden", "hidden2"], by_audience
    by_share = [slot["zone_id"] for slot in ranking(mixed, sort="share")]
    # 'none' has a released share of 0 (0 of 8 men); 'women' has no share (no man) but an estimate of 0.
    assert by_share == ["some", "none", "women", "hidden", "hidden2"], by_share
    # A page is the head of the whole ranking, the slots without an estimate included.
    for sort in ("audience", "share"):
        whole = ranking(mixed, sort=sort, limit=1000)
        for limit in range(1, 6):
            assert ranking(mixed, sort=sort, limit=limit) == whole[:limit], (sort, limit)


def test_people_whose_age_was_never_estimated_are_not_a_confident_zero(sqlite_url: str) -> None:
    """Review: a box without an age head sends its 20 women of each hour as age 'unknown'. Women 25-34 there read as
    "about 0.0 ... (0.0-0.5)", "0% of the 20 women whose age bands were released", not a lower bound, and ranked
    beside true zeros: any of the 20 may be 25-34. People of unknown age are in no band: they make the audience a
    lower bound, are not what a share divides by, and a slot of nothing else has no estimate. /traffic/ages says
    the same of its audience."""
    for server in make_server(sqlite_url, k_anonymity=K):
        ageless = aggregate(start=NINE, seconds=3600, camera="cam-1", zone="ageless", female=20, male=10)
        messages = [
            ageless,
            aged(zone="some", camera="cam-2", female={"25-34": 5, "35-44": 5, "unknown": 6}),
            aged(zone="none", camera="cam-3", female={"35-44": 8}),
        ]
        assert server.ingest(*messages).status_code == 200
        for sort in ("audience", "share"):
            slots = ranking(server, audience="female", sort=sort)
            assert [slot["zone_id"] for slot in slots] == ["some", "none", "ageless"], (sort, slots)
            by_zone = {slot["zone_id"]: slot for slot in slots}
            ageless_slot = by_zone["ageless"]
            assert ageless_slot["expected_audience"] is None and ageless_slot["audience_lower_bound"] is True
            assert (ageless_slot["banded"], ageless_slot["age_unknown"], ageless_slot["share_raw"]) == (0, 20, None)
            assert ageless_slot["expected_audience_high"] >= 20, ageless_slot
            assert (
                "not estimated" in ageless_slot["explanation"]
                and "20 women of unknown age" in (ageless_slot["explanation"])
            ), ageless_slot["explanation"]
            some = by_zone["some"]
            # 5 of the 10 women in bands, and up to 6 more of unknown age.
            assert (some["banded"], some["age_unknown"], some["share_raw"]) == (10, 6, 0.5), some
            assert some["audience_lower_bound"] is True and "at least 5.0 women" in some["explanation"]
            assert some["expected_audience_high"] >= 11
            # Everyone of the gender in a band: a true 0, exact.
            assert by_zone["none"]["expected_audience"] == 0.0 and by_zone["none"]["audience_lower_bound"] is False
        totals = ages(server, zone="ageless", audience="female", age="25-34")["totals"]
        assert totals["audience_people"] == 0 and totals["audience_lower_bound"] is True, totals
        totals = ages(server, zone="none", audience="female", age="25-34")["totals"]
        assert totals["audience_people"] == 0 and totals["audience_lower_bound"] is False, totals


def test_a_site_whose_audience_bands_are_all_withheld_ranks_only_slots_without_an_estimate(sqlite_url: str) -> None:
    for server in make_server(sqlite_url, k_anonymity=K):
        messages = [
            aged(zone=f"z{i}", camera=f"cam-{i}", male={"25-34": 10 + i, "45-54": 1}, female={"35-44": 6})
            for i in range(3)
        ]
        assert server.ingest(*messages).status_code == 200
        slots = ranking(server)
        assert len(slots) == 3 and all(slot["expected_audience"] is None for slot in slots)
        assert all(slot["expected_audience_high"] > 0 for slot in slots)
        assert not any("0.0 men" in slot["explanation"] for slot in slots)


def test_an_audience_never_reaches_above_the_slots_own_people(sqlite_url: str) -> None:
    """The review read "58.5 people per week ... of whom at least 0.0 men aged 25-34 (up to 69.1)": the audience's
    upper end is capped at the upper end of the slot's own people per week (withheld hours at k-1 each), and the
    explanation says where the cap comes from when it is reached."""
    for server in make_server(sqlite_url, k_anonymity=K):
        weeks = [NINE, NINE + timedelta(days=7)]
        messages = [
            aged(zone="a", start=start, seq=i + 1, male={"25-34": 50 + i, "45-54": 2}) for i, start in enumerate(weeks)
        ]
        messages.append(aged(zone="b", camera="cam-2", seq=9, male={"25-34": 20, "35-44": 9}, female={"0-12": 3}))
        assert server.ingest(*messages).status_code == 200
        for audience in ("male", "female", "all"):
            for slot in ranking(server, audience=audience):
                people_high = poisson_mean_interval(
                    slot["people"] + slot["withheld_hours"] * (K - 1), slot["weeks_observed"]
                )[1]
                assert slot["expected_audience_high"] <= round(people_high, 2) + 1e-9, (audience, slot)
        a = next(slot for slot in ranking(server) if slot["zone_id"] == "a")
        assert a["expected_audience"] is None and a["weeks_observed"] == 2
        assert "the slot's own people" in a["explanation"], a["explanation"]


def test_a_missing_corrected_share_says_when_the_split_was_withheld(sqlite_url: str) -> None:
    """A gender slot whose only hour released its people but withheld its split (4 undecided < k): its
    explanation said "no corrected share (no classified people in its released cells; raw: none decided)", but 30
    people were decided on; their split is what was withheld."""
    for server in make_server(sqlite_url, k_anonymity=K):
        assert server.ingest(aggregate(zone="a", start=NINE, female=11, male=19, unknown=4)).status_code == 200
        slot = server.get(PLACEMENT, audience="female", **TWO_WEEKS).json()["slots"][0]
        assert slot["expected_audience"] is None and slot["classified"] == 0
        why = slot["explanation"]
        assert "no classified people" not in why and "none decided" not in why, why
        assert "withheld for privacy" in why and "34 people" in why, why
        # Nobody decided at all (only undecided people, split released): the words stay as they were.
        assert server.ingest(aggregate(zone="b", start=NINE, seq=2, unknown=9)).status_code == 200
        slots = server.get(PLACEMENT, audience="female", **TWO_WEEKS).json()["slots"]
        b = next(s for s in slots if s["zone_id"] == "b")
        assert "no classified people in its released cells" in b["explanation"] and "none decided" in b["explanation"]


# ---- the ads page in a headless Chromium ----

browser_tests = pytest.mark.browser


def test_slots_without_an_estimate_come_with_the_most_withheld_first(sqlite_url: str) -> None:
    """Among slots without an estimate, the one whose withheld people could hold the most of the audience comes
    first, not the first zone created."""
    for server in make_server(sqlite_url, k_anonymity=K):
        small = aged(zone="a", camera="cam-1", male={"25-34": 6, "45-54": 2})  # 8 men's bands withheld
        big = aged(zone="b", camera="cam-2", male={"25-34": 40, "45-54": 3})  # 43
        assert server.ingest(small, big).is_success
        for sort in ("audience", "share"):
            slots = ranking(server, sort=sort)
            assert [(slot["zone_id"], slot["expected_audience"]) for slot in slots] == [("b", None), ("a", None)], sort


def test_a_slot_nobody_passed_is_a_true_zero(sqlite_url: str) -> None:
    """A camera that saw nobody in the slot released 0 people: a true 0, not 'not estimated (anywhere from 0 to 2.0
    ... per week per week: )' ranked after every estimate (the review of ccaaefa)."""
    for server in make_server(sqlite_url, k_anonymity=K):
        quiet = aggregate(zone="quiet", camera="cam-1", start=NINE, seconds=3600)  # watched, nobody passed
        assert server.ingest(quiet, aged(zone="some", camera="cam-2", male={"25-34": 10, "35-44": 6})).is_success
        slots = {slot["zone_id"]: slot for slot in ranking(server)}
        assert slots["quiet"]["expected_audience"] == 0.0 and slots["quiet"]["audience_lower_bound"] is False
        assert "about 0.0 men aged 25-34 per week" in slots["quiet"]["explanation"], slots["quiet"]["explanation"]
        assert "per week per week" not in " ".join(slot["explanation"] for slot in slots.values())


@pytest.fixture(scope="module")
def aged_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server with three sites: at 'mall' every men's band is withheld (a band of theirs below k in each
    zone-hour); at 'plaza' the bands are released, men of 18-24 at the food court and of 25-34 at the atrium; at
    'ageless' a box without an age head sends everyone as age unknown."""
    folder = tmp_path_factory.mktemp("age-ranking-db")
    live, server, thread = start_server(f"sqlite:///{folder / 'footfall.db'}")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)

    def one(site: str, zone: str, seq: int, start: datetime, **bands: dict[str, int]) -> dict:
        message = aggregate(agent=f"box-{site}", site=site, zone=zone, start=start, seconds=3600, seq=seq)
        return with_ages(message, **bands)

    try:
        live.ingest(
            [
                one("mall", "atrium", 1, hour, male={"25-34": 30, "45-54": 2}, female={"25-34": 10}),
                one("mall", "food", 2, hour, male={"25-34": 12, "18-24": 1}, female={"35-44": 8}),
                one("mall", "atrium", 3, hour - timedelta(hours=1), male={"25-34": 9, "65+": 4}),
                one("plaza", "food", 1, hour, male={"18-24": 20, "25-34": 5, "35-44": 10}),
                one("plaza", "atrium", 2, hour, male={"25-34": 15, "35-44": 5}, female={"18-24": 7}),
                aggregate(
                    agent="box-ageless", site="ageless", zone="atrium", start=hour, seconds=3600, female=20, male=9
                ),
            ]
        )
        yield live
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)


@browser_tests
def test_the_ads_page_says_no_slot_has_an_estimate_when_every_band_was_withheld(
    browser,  # noqa: F811 (the dashboard tests' Chromium fixture, imported above)
    aged_live: LiveServer,
    tmp_path: Path,
) -> None:
    page = Page(browser, aged_live, tmp_path)
    page.open("/dashboard/ad-placement?site=mall&audience=male&age=25-34", key=aged_live.viewer_key)
    page.wait_ready()
    p = page.page
    best = p.locator("#best-slot")
    assert best.get_attribute("data-estimate") == "none"
    text = best.inner_text()
    assert "Best slot" not in text and "0.0 men" not in text, text
    assert "No slot has an estimate of men aged 25-34" in text and "age bands" in text, text
    assert "withheld for privacy" in text and "classifier" not in text, text
    rows = p.locator("#ranking-table tr.slot")
    assert rows.count() == 3
    assert all(v == "none" for v in rows.locator(".ci .v").evaluate_all("nodes => nodes.map((n) => n.dataset.value)"))
    assert "≥ 0.0" not in p.locator("#ranking").inner_text()
    example = p.locator("#worked-example").inner_text()
    assert "= 0.0 per week" not in example and not re.search(r"(?<![\d,])0 men", example), example
    assert "withheld for privacy" in example and "no estimate" in example, example
    how = p.locator("#how").inner_text()
    assert "listed without an estimate" in how, how
    # The map numbers no slot and scales to nothing: it read "0 … 0.0 men aged 25-34 per week" with ranks 1-3.
    assert p.locator("#slotmap .rank-label").count() == 0
    legend = p.locator("#slotmap .heat-legend")
    assert legend.get_attribute("data-estimate") == "none" and "No slot has an estimate" in legend.inner_text()
    page.screenshot("ad-placement-age-no-estimate")
    page.close()


@browser_tests
def test_the_ads_page_says_the_age_was_unknown_where_no_box_estimated_it(
    browser,  # noqa: F811
    aged_live: LiveServer,
    tmp_path: Path,
) -> None:
    """Review: at a site whose boxes estimate no age, the page said the women's bands were withheld for privacy and to
    try a longer range, which can never help there."""
    page = Page(browser, aged_live, tmp_path)
    page.open("/dashboard/ad-placement?site=ageless&audience=female&age=25-34", key=aged_live.viewer_key)
    page.wait_ready()
    p = page.page
    best = p.locator("#best-slot")
    assert best.get_attribute("data-estimate") == "none"
    texts = {
        "banner": best.inner_text(),
        "note": p.locator("#no-estimate").inner_text(),
        "row": p.locator("#ranking-table tr.slot .v.faint").first.get_attribute("title") or "",
        "example": p.locator("#worked-example").inner_text(),
    }
    for where, text in texts.items():
        assert "withheld for privacy" not in text and "longer range" not in text, (where, text)
    assert "age of the women here is unknown" in texts["banner"] and "unknown" in texts["row"], texts
    assert "camera boxes whose model estimates age" in texts["note"], texts["note"]
    assert "age of 20 women is unknown" in texts["example"], texts["example"]
    assert p.locator("#ranking-table .age-unknown").inner_text() == "20 of unknown age"
    page.close()


@browser_tests
def test_the_ads_page_passes_an_age_range_or_list_on_and_shows_a_refusal(
    browser,  # noqa: F811
    aged_live: LiveServer,
    tmp_path: Path,
) -> None:
    page = Page(browser, aged_live, tmp_path)
    page.open("/dashboard/ad-placement?site=plaza&audience=male&age=18-34", key=aged_live.viewer_key)
    page.wait_ready()
    p = page.page
    select = p.locator("#sel-age")
    assert select.input_value() == "18-34"
    assert select.locator("option:checked").inner_text() == "18-34"
    assert "men aged 18-34" in p.locator("#subtitle").inner_text()
    # Ranked for 18-34: the food court's 25 men of 18-34 first, the atrium's 15 next (for 25-34 alone the atrium
    # would lead).
    rows = p.locator("#ranking-table tr.slot")
    assert [rows.nth(i).get_attribute("data-zone") for i in range(rows.count())] == ["food", "atrium"]
    assert float(rows.first.locator(".ci .v").get_attribute("data-value") or "nan") == 25.0
    assert "18-34" in p.locator("#best-slot").inner_text()

    # A list of bands passes on too, and a band the select offers is just selected.
    page.open("/dashboard/ad-placement?site=plaza&audience=male&age=18-24,25-34")
    page.wait_ready()
    assert p.locator("#sel-age").input_value() == "18-24,25-34"
    assert float(p.locator("#ranking-table tr.slot .ci .v").first.get_attribute("data-value") or "nan") == 25.0
    page.open("/dashboard/ad-placement?site=plaza&audience=male&age=25-34")
    page.wait_ready()
    assert p.locator("#sel-age option").count() == 7  # All ages and the six adult bands: no extra option
    assert p.locator("#ranking-table tr.slot").first.get_attribute("data-zone") == "atrium"

    # An audience under 18: the API's refusal where the ranking goes, not a ranking of everyone.
    page.open("/dashboard/ad-placement?site=plaza&audience=male&age=13-17")
    p.wait_for_selector("#ranking [data-state=refused]", timeout=20_000)
    assert p.locator("#sel-age").input_value() == "13-17"
    refusal = p.locator("#ranking").inner_text()
    assert "audiences under 18 are refused" in refusal, refusal
    assert p.locator("#ranking-table").count() == 0 and p.locator("#best-slot").count() == 0
    page.screenshot("ad-placement-age-refused")
    # The select still works: back to all ages ranks again.
    p.select_option("#sel-age", "")
    p.wait_for_selector("#ranking-table", timeout=20_000)
    assert "age=" not in p.url
    page.close(allowed=("status of 422",))
