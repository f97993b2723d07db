"""The zone page's figures read as what they are, in a real headless Chromium against the real server (found in a
new user's review): the gender split card says what each percentage is a share of, shows the people whose split was
withheld and says its shares are the raw decisions; a zone no camera box reported in the range says "No data"
rather than zeros; and after a switch to 'gender-only' the age note does not deny the bands counted before it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from tests.server.conftest import aggregate  # noqa: E402
from tests.server.test_dashboard_browser import Page, browser, pct, start_server  # noqa: E402, F401

pytestmark = pytest.mark.browser


def last_hour() -> datetime:
    """The start of an hour the server answers whenever the test runs: an hour is answered once it has ended and
    the release delay (ten minutes) has passed, so in the first minutes of an hour the one before is not yet."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


def squeezed(text: str) -> str:
    return " ".join(text.split())


def test_every_share_of_the_gender_split_says_what_it_is_a_share_of(
    browser,  # noqa: F811 (the dashboard tests' Chromium fixture, imported above)
    tmp_path: Path,
) -> None:
    """Four hours at the atrium: two release their split (20/10/5 and 30/12/0), two withhold it (11/19/4 and 3/17/0:
    a part from 1 to k-1). Of 131 people, 77 have a released split, 72 of them decided female or male, and 54 are
    unsplit. The card showed "Unknown 5 · 6% of all" (6 % is of the 77, not of all 131), never mentioned the 54, and
    put the raw "Female 69%" where it reads against the corrected share of the Women card."""
    live, server, thread = start_server(f"sqlite:///{tmp_path / 'split.db'}")
    try:
        hour = last_hour()
        parts = [(20, 10, 5), (30, 12, 0), (11, 19, 4), (3, 17, 0)]
        live.ingest(
            [
                aggregate(
                    zone="atrium", start=hour - timedelta(hours=i), seconds=3600, seq=i + 1, female=f, male=m, unknown=u
                )
                for i, (f, m, u) in enumerate(parts)
            ]
        )
        totals = live.get("/sites/mall/traffic/totals", zone="atrium")["totals"]
        released = (totals["people"], totals["female"], totals["male"], totals["unknown"], totals["unsplit"])
        assert released == (131, 50, 22, 5, 54), totals
        page = Page(browser, live, tmp_path)
        page.open("/dashboard/zone?site=mall&zone=atrium", key=live.viewer_key)
        page.wait_ready()
        p = page.page
        card = squeezed(p.locator("#split").inner_text())
        # Every percentage on the card names its base.
        shares = list(re.finditer(r"\d+ ?%", card))
        assert shares, card
        for share in shares:
            assert card[share.end() :].startswith(" of "), f"{share.group()} says of what it is a share: {card}"
        female = squeezed(p.locator(".split-row[data-part=female]").inner_text())
        assert f"{pct(50 / 72)}% of the 72" in female, female
        male = squeezed(p.locator(".split-row[data-part=male]").inner_text())
        assert f"{pct(22 / 72)}% of the 72" in male, male
        unknown = squeezed(p.locator(".split-row[data-part=unknown]").inner_text())
        assert f"{pct(5 / 77)}% of the 77" in unknown and "released" in unknown, unknown
        assert "of all" not in unknown, unknown
        # The 54 people whose split was withheld are shown as such, with the reason.
        unsplit = p.locator(".split-row[data-part=unsplit]")
        assert page.value(".split-row[data-part=unsplit] .count [data-value]") == 54
        assert "withheld" in unsplit.inner_text().lower()
        assert "withheld for privacy" in card and "below 5" in card, card
        # The shares are the raw decisions, said so, so that the corrected Women figure is not a contradiction.
        assert "raw decisions" in card.lower() and "not corrected" in card, card
        assert "<5" not in card
        page.screenshot("zone-split-bases")
        page.close()
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)


def test_a_zone_no_camera_box_reported_in_the_range_says_no_data_not_zero(
    browser,  # noqa: F811 (the dashboard tests' Chromium fixture, imported above)
    tmp_path: Path,
) -> None:
    """The atrium's box last reported ten days ago: over the last 7 days its totals have hours_observed 0. The page
    showed "People 0", Female/Male/Unknown 0, "raw 0 of 0 classified" and "no hour above the privacy threshold": a
    measured zero, and privacy blamed. A quiet zone that reported an hour nobody passed in still reads 0."""
    live, server, thread = start_server(f"sqlite:///{tmp_path / 'no-data.db'}")
    try:
        hour = last_hour()
        live.ingest(
            [
                aggregate(zone="atrium", start=hour - timedelta(days=10), seconds=3600, seq=1, female=12, male=9),
                aggregate(zone="entrance", start=hour, seconds=3600, seq=2, female=12, male=9),
                aggregate(zone="quiet", start=hour, seconds=3600, seq=3),  # watched, nobody passed
            ]
        )
        week = live.get("/sites/mall/traffic/totals", zone="atrium")  # the last 7 days, as the page asks
        assert week["hours_observed"] == 0 and week["totals"]["people"] == 0, week
        page = Page(browser, live, tmp_path)
        page.open("/dashboard/zone?site=mall&zone=atrium", key=live.viewer_key)
        page.wait_ready()
        p = page.page
        people = squeezed(p.locator("#kpi-people").inner_text())
        assert "No data" in people and "reported" in people, people
        assert p.locator("#kpis .kpi .value [data-value]").count() == 0, p.locator("#kpis").inner_text()
        assert "0 of 0" not in p.locator("#kpis").inner_text()
        peak = squeezed(p.locator("#kpi-peak").inner_text())
        assert "privacy" not in peak.lower() and "No data" in peak, peak
        split = squeezed(p.locator("#split").inner_text())
        assert "No data" in split and p.locator("#split [data-value]").count() == 0, split
        assert "0 people" not in squeezed(p.locator("#split-note").inner_text())
        assert "No data" in p.locator("#ages").inner_text() and "No counts" not in p.locator("#ages").inner_text()
        page.screenshot("zone-no-data")
        # A zone that reported, nobody passing, is a measured 0; one with people shows them.
        page.open("/dashboard/zone?site=mall&zone=quiet")
        page.wait_ready()
        assert page.value("#kpi-people .value [data-value]") == 0
        assert "No data" not in p.locator("#kpi-people").inner_text()
        for card in ("#kpi-female", "#kpi-male"):  # no "raw: 0 of 0 classified"
            assert "nobody passed in this range" in p.locator(card).inner_text(), p.locator(card).inner_text()
            assert "0 of 0" not in p.locator(card).inner_text()
        page.open("/dashboard/zone?site=mall&zone=entrance")
        page.wait_ready()
        assert page.value("#kpi-people .value [data-value]") == 21
        page.close()
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)


def test_after_a_switch_to_gender_only_the_age_note_keeps_the_bands_counted_before(
    browser,  # noqa: F811 (the dashboard tests' Chromium fixture, imported above)
    tmp_path: Path,
) -> None:
    """The atrium counted age bands for two hours; then the site switched to 'gender-only' and its next hour came
    without age. The note said its people "are counted as age unknown" above a pyramid of the bands counted before
    the switch. A site that never estimated age has no earlier bands to mention."""
    live, server, thread = start_server(f"sqlite:///{tmp_path / 'gender-only.db'}")
    admin = {"X-API-Key": live.admin_key}
    try:
        hour = last_hour()
        bands = {"female": {"25-34": 10, "35-44": 6}, "male": {"25-34": 8, "45-54": 5}, "unknown": {}}
        live.ingest(
            [
                {
                    **aggregate(
                        zone="atrium", start=hour - timedelta(hours=i), seconds=3600, seq=i, female=16, male=13
                    ),
                    "age": bands,
                }
                for i in (2, 3)
            ]
            + [aggregate(site="outlet", agent="box-9", zone="gate", start=hour, seconds=3600, seq=1, female=7, male=6)]
        )
        for site in ("mall", "outlet"):
            httpx.patch(
                f"{live.url}/api/v1/sites/{site}", headers=admin, json={"demographics": "gender-only"}, timeout=30
            ).raise_for_status()
        live.ingest([aggregate(zone="atrium", start=hour, seconds=3600, seq=4, female=9, male=7)])
        page = Page(browser, live, tmp_path)
        page.open("/dashboard/zone?site=mall&zone=atrium", key=live.viewer_key)
        page.wait_ready()
        p = page.page
        p.wait_for_selector("#ages svg.pyramid-svg", timeout=10_000)
        assert p.locator("#ages rect.bar.female[data-band='25-34']").first.get_attribute("data-value") == "20"
        note = squeezed(p.locator("#ages-note").inner_text())
        assert "off" in note and "gender-only" in note, note
        assert "its people are counted as age unknown" not in note, note
        assert "before" in note and "still show" in note, note
        page.open("/dashboard/zone?site=outlet&zone=gate")
        page.wait_ready()
        never = squeezed(p.locator("#ages-note").inner_text())
        assert "off" in never and "age unknown" in never and "before" not in never, never
        page.close()
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)


def test_an_hour_a_camera_watched_part_of_is_marked_on_the_zone_page(
    browser,  # noqa: F811 (the dashboard tests' Chromium fixture, imported above)
    tmp_path: Path,
) -> None:
    """The atrium's camera ran all of one hour (40 people) and the first 20 minutes of the hour before (20 people):
    the page reads the people as "at least", says one hour was partly observed, and marks that hour on the chart,
    its table row and the legend; the overview's zones table reads the week as "at least". Before, the short hour
    read as a quiet one."""
    live, server, thread = start_server(f"sqlite:///{tmp_path / 'partial.db'}")
    try:
        hour = last_hour()
        short = hour - timedelta(hours=1)
        live.ingest(
            [
                aggregate(zone="atrium", start=hour, seconds=3600, seq=100, female=20, male=20),
                *(
                    aggregate(zone="atrium", start=short + timedelta(minutes=m), seconds=60, seq=m + 1, female=1)
                    for m in range(20)
                ),
            ]
        )
        totals = live.get("/sites/mall/traffic/totals", zone="atrium")
        assert (totals["totals"]["people"], totals["hours_partly_observed"]) == (60, 1), totals
        page = Page(browser, live, tmp_path)
        page.open("/dashboard/zone?site=mall&zone=atrium", key=live.viewer_key)
        page.wait_ready()
        p = page.page
        people = squeezed(p.locator("#kpi-people").inner_text())
        assert "≥ 60" in people and "1 hour partly observed" in people, people
        assert p.locator("#kpi-people .value [data-lower-bound=true]").count() == 1
        assert p.locator("#series rect.partly-observed").count() == 1
        assert p.locator("#series-legend [data-legend=partly-observed]").count() == 1
        rows = [squeezed(row.text_content() or "") for row in p.locator("#series-rows tbody tr").all()]
        assert any("≥ 20" in row for row in rows) and any("40" in row and "≥" not in row for row in rows), rows
        page.screenshot("zone-partly-observed")
        assert not page.errors, page.errors
        # The overview's zones table reads the week's people as at least its count, and says why.
        page.open("/dashboard/", key=live.viewer_key)
        page.wait_ready()
        week = p.locator("#zones-table tr[data-zone=atrium] td[data-col=week] [data-value]")
        assert week.get_attribute("data-partly-observed") == "1" and "≥ 60" in (week.text_content() or "")
        assert "partly observed" in (week.get_attribute("title") or "")
        assert not page.errors, page.errors
        page.close()
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)
