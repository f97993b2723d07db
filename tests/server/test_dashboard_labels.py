"""Dashboard figures that must mean what their labels say, in a real headless Chromium against the real server
(found by review): people nobody classified are no gender figure, not a withheld one; sums and means that leave
withheld hours out read "at least"; a withheld total is never "0 people"; and a range longer than the API answers
in hours still loads the zone page."""

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


def bucket(zone: str, hour: datetime, seq: int, female: int, male: int, unknown: int) -> AggregateMessage:
    counts = GenderCounts(female=female, male=male, unknown=unknown)
    return AggregateMessage(
        agent_id="box-1",
        site_id="mall",
        camera_id="cam-1",
        zone_id=zone,
        bucket_start=hour,
        bucket_seconds=3600,
        seq=seq,
        people=counts.total,
        gender=counts,
    )


@pytest.fixture(scope="module")
def labelled_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The lobby's camera decided nobody's gender (20 undecided people an hour, three hours); the kiosk had 12
    people (6 women, 6 men) in an hour and 3 people (withheld) in the same hour of the day before."""
    folder = tmp_path_factory.mktemp("labels-db")
    live, server, thread = start_server(f"sqlite:///{folder / 'footfall.db'}")
    end_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    lobby = [bucket("lobby", end_hour - timedelta(hours=h), h, 0, 0, 20) for h in (2, 3, 4)]
    kiosk = [
        bucket("kiosk", end_hour - timedelta(hours=2), 10, 6, 6, 0),
        bucket("kiosk", end_hour - timedelta(hours=26), 11, 2, 1, 0),
    ]
    try:
        with httpx.Client(base_url=live.url + "/api/v1", timeout=60) as client:
            admin = {"X-API-Key": live.admin_key}
            for zone in ("lobby", "kiosk"):
                client.put(f"/sites/mall/zones/{zone}", headers=admin, json={"name": zone.title(), "kind": "other"})
            response = client.post(
                "/ingest",
                content="[" + ",".join(m.model_dump_json() for m in lobby + kiosk) + "]",
                headers={"X-API-Key": live.agent_key, "Content-Type": "application/json"},
            )
            assert response.status_code == 200 and not response.json()["rejected"], response.text
        yield live
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)


def test_people_nobody_classified_are_shown_as_no_gender_figure_not_as_a_withheld_one(
    browser,  # noqa: F811 (the dashboard tests' Chromium fixture, imported above)
    labelled_server: LiveServer,
    tmp_path: Path,
) -> None:
    """It showed "<5 women, withheld for privacy" for 60 people none of whom was classified, and hatched the split."""
    page = Page(browser, labelled_server, tmp_path)
    try:
        page.open("/dashboard/zone?site=mall&zone=lobby", key=labelled_server.viewer_key)
        page.wait_ready()
        p = page.page
        split = p.locator("#split")
        assert split.locator("[data-unclassified=true]").count() == 2  # women and men: "–"
        assert split.locator("[data-suppressed=true]").count() == 0
        assert split.locator("rect.seg.suppressed").count() == 0
        assert "Nobody here was classified" in split.inner_text()
        assert p.locator("#split-note").inner_text() == "60 people in range"
        assert p.locator("#kpis [data-unclassified=true]").count() >= 2
        rows = p.locator("#series-rows tbody tr")
        assert rows.count() >= 3
        assert p.locator("#series-rows tbody [data-suppressed=true]").count() == 0
        assert p.locator("#series-rows tbody [data-unclassified=true]").count() == 2 * 3
        page.screenshot("zone-unclassified")
    finally:
        page.close()


def test_sums_and_means_that_leave_withheld_hours_out_say_at_least(
    browser,  # noqa: F811
    labelled_server: LiveServer,
    tmp_path: Path,
) -> None:
    """The kiosk's released hour (12) beside a withheld one (3) read "12 people in range", "6.0" per day and "12" in
    the zones table: all exact-looking, all lower bounds."""
    page = Page(browser, labelled_server, tmp_path)
    try:
        page.open("/dashboard/zone?site=mall&zone=kiosk", key=labelled_server.viewer_key)
        page.wait_ready()
        p = page.page
        assert p.locator("#split-note").inner_text() == "at least 12 people in range"
        assert p.locator("#kpi-per-day [data-lower-bound=true]").count() == 1
        assert p.locator("#peak-list [data-lower-bound=true]").count() >= 1
        page.open("/dashboard/", key=labelled_server.viewer_key)
        page.wait_ready()
        week = p.locator("#zones-table tr[data-zone=kiosk] td[data-col=week] [data-lower-bound=true]")
        assert week.count() == 1 and week.inner_text() == "≥ 12"
    finally:
        page.close()


def test_an_ad_slot_without_a_share_shows_no_audience_not_zero(
    browser,  # noqa: F811
    labelled_server: LiveServer,
    tmp_path: Path,
) -> None:
    """No slot here has a corrected share (the lobby decided nobody; the kiosk's bundle has no known rates): the ranking
    read "0.0 women per week (0.0-0.0)" and "Best slot: ... about 0.0 women", a certain zero."""
    page = Page(browser, labelled_server, tmp_path)
    try:
        page.open("/dashboard/ad-placement?site=mall&audience=female", key=labelled_server.viewer_key)
        page.wait_ready()
        p = page.page
        rows = p.locator("#ranking-table tbody tr.slot, #ranking-table tbody tr.top")
        assert rows.count() >= 3
        assert p.locator("#ranking-table tbody .v[data-value=none]").count() == rows.count()
        assert p.locator("#ranking-table tbody circle").count() == 0  # no estimate's dot at 0 either
        assert p.locator("#best-slot[data-estimate=none]").count() == 1
        assert "0.0 women" not in p.locator("#best-slot").inner_text()
        assert p.locator("#slotmap rect.cell.unestimated").count() >= 3
    finally:
        page.close()


def test_the_zone_page_loads_a_range_longer_than_the_api_answers_in_hours(
    browser,  # noqa: F811
    labelled_server: LiveServer,
    tmp_path: Path,
) -> None:
    """The age pyramid asked for hours whatever the range: over 400 days the API refused (422), and the page showed
    "Request refused" at every granularity."""
    today = datetime.now(UTC).date()
    first = (today - timedelta(days=500)).isoformat()
    page = Page(browser, labelled_server, tmp_path)
    try:
        page.open(
            f"/dashboard/zone?site=mall&zone=kiosk&range=custom&from={first}&to={today.isoformat()}&g=week",
            key=labelled_server.viewer_key,
        )
        page.wait_ready()
        p = page.page
        assert p.locator(".banner.error").count() == 0
        p.wait_for_selector("#ages svg.pyramid-svg", timeout=10_000)
        assert p.locator("label[for=sel-age-hour]").text_content() == "Week"  # the pyramid per week of the range
    finally:
        page.close()


def test_a_key_the_server_refuses_never_repaints_the_figures_kept_for_another(
    browser,  # noqa: F811
    labelled_server: LiveServer,
    tmp_path: Path,
) -> None:
    """The overview kept its last figures for the key's public 10-character prefix: any string with that prefix (a
    revoked key, or one typed by someone who read `footfall keys list`) painted them again under the key dialog."""
    page = Page(browser, labelled_server, tmp_path)
    try:
        p = page.page
        page.open("/dashboard/", key=labelled_server.viewer_key)
        page.wait_ready()
        assert p.locator("#zones-table tr[data-zone=kiosk]").count() == 1  # the figures are kept for this key
        impostor = labelled_server.viewer_key[:10] + "x" * (len(labelled_server.viewer_key) - 10)
        page.open("/dashboard/", key=impostor)
        p.locator("#key-dialog").wait_for(state="visible")
        assert p.locator("#zones-table").count() == 0 and p.locator("[data-metric=today]").count() == 0
        page.open("/dashboard/", key=labelled_server.viewer_key)  # the refused key cleared what was kept
        page.wait_ready()
        assert p.locator("#zones-table tr[data-zone=kiosk]").count() == 1
    finally:
        page.close(allowed=("status of 401",))


def test_occupancy_is_shown_unknown_after_an_entrance_hour_nobody_observed(browser, tmp_path: Path) -> None:  # noqa: F811
    """The entrance camera was down the hour before (the corridor camera reported it, the door did not), so people
    in and out then are missing: occupancy read "4" (6 in − 2 out this hour), a number that looks counted."""
    live, server, thread = start_server(
        f"sqlite:///{tmp_path / 'gap.db'}", release_open_hour=True, default_timezone="UTC"
    )
    try:
        this_hour = (datetime.now(UTC) - timedelta(minutes=3)).replace(minute=0, second=0, microsecond=0)
        last_hour = this_hour - timedelta(hours=1)
        cells = [("corridor", "camera", last_hour, 9), ("corridor", "camera", this_hour, 8)]
        cells += [("door.in", "in", this_hour, 6), ("door.out", "out", this_hour, 2)]
        messages = [
            AggregateMessage(
                agent_id="box-1",
                site_id="mall",
                camera_id="corridor",
                zone_id=zone,
                bucket_start=start,
                bucket_seconds=3600,
                seq=seq,
                people=people,
                gender=None,
                measure=measure,  # type: ignore[arg-type]  # a literal of the wire's Measure
            )
            for seq, (zone, measure, start, people) in enumerate(cells, start=1)
        ]
        # A second camera counts the same line: its counts add up, which the card must say.
        messages.append(messages[-2].model_copy(update={"camera_id": "porch", "seq": 10, "people": 5}))
        with httpx.Client(base_url=live.url + "/api/v1", timeout=60) as client:
            # Closing three hours back, so both hours fall in the day occupancy counts, whenever the test runs.
            closing = f"{(this_hour - timedelta(hours=3)).hour:02d}:00"
            response = client.patch(
                "/sites/mall", headers={"X-API-Key": live.admin_key}, json={"closing_time": closing}
            )
            assert response.status_code == 200, response.text
            response = client.post(
                "/ingest",
                content="[" + ",".join(m.model_dump_json() for m in messages) + "]",
                headers={"X-API-Key": live.agent_key, "Content-Type": "application/json"},
            )
            assert response.status_code == 200 and not response.json()["rejected"], response.text
        page = Page(browser, live, tmp_path)
        try:
            page.open("/dashboard/", key=live.viewer_key)
            page.wait_ready()
            p = page.page
            unknown = p.locator("#kpi-occupancy [data-unknown=true]")
            assert unknown.count() == 1 and unknown.inner_text() == "–"
            assert "not observed" in (unknown.get_attribute("title") or "")
            card = p.locator("article[data-site='mall'] [data-metric=occupancy] [data-unknown=true]")
            assert card.count() == 1
            shared = p.locator("article[data-site='mall'] .shared-entrances")
            assert "“door” is counted by 2 cameras (corridor, porch)" in shared.inner_text()
        finally:
            page.close()
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)
