"""An address that names no site (an old bookmark, a site id typed wrong) says so on every page that takes
``site=``, in a real headless Chromium against the real server: the zone and ad-placement pages showed the first
site's figures under it without a word. The message names what was asked, as text (never parsed as HTML), offers
the sites to pick from and the overview, shows no site's figures and leaves the address as it was; a valid site,
or none, works as before. The overview shows every site and takes no ``site=``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from footfall.core.wire import AggregateMessage, GenderCounts  # noqa: E402

from tests.server.test_dashboard_browser import LiveServer, Page, browser, start_server  # noqa: E402, F401

pytestmark = pytest.mark.browser

# Listed by site id: "mall" is the first site, the one an unknown site used to show.
SITES = {"mall": ("Riverside Mall", "food-court", "Food court"), "outlet": ("Harbour Outlet", "gate", "Harbour gate")}
HOSTILE = "<img src=x onerror=alert(1)>"
FIGURES = {
    "zone": ("#kpis", "#series", "#split", "#peaks", "#ages", "#heatmap"),
    "ad-placement": ("#headline", "#slotmap", "#ranking", "#how"),
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Two named sites, one zone each, with an hour of counts two hours back (40 women, 60 men in the mall; 20 women,
    30 men at the outlet's gate)."""
    folder = tmp_path_factory.mktemp("unknown-site-db")
    server_live, server, thread = start_server(f"sqlite:///{folder / 'footfall.db'}")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    try:
        admin = {"X-API-Key": server_live.admin_key}
        with httpx.Client(base_url=server_live.url + "/api/v1", timeout=60) as client:
            for site, (name, zone, zone_name) in SITES.items():
                client.put(
                    f"/sites/{site}/zones/{zone}", headers=admin, json={"name": zone_name, "kind": "shop_front"}
                ).raise_for_status()
                client.patch(f"/sites/{site}", headers=admin, json={"name": name}).raise_for_status()
        server_live.ingest(
            [
                AggregateMessage(
                    agent_id=f"{site}-box",
                    site_id=site,
                    camera_id="cam",
                    zone_id=zone,
                    bucket_start=hour,
                    bucket_seconds=3600,
                    seq=1,
                    people=scale * 100,
                    gender=GenderCounts(female=scale * 40, male=scale * 60, unknown=0),
                )
                for scale, (site, (_, zone, _)) in zip((2, 1), SITES.items(), strict=True)
            ]
        )
        assert [s["site_id"] for s in server_live.get("/sites")] == list(SITES)  # type: ignore[index]
        yield server_live
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)


class Tab(Page):
    """A Page that notes every dialog (an alert run from the address would open one)."""

    def __init__(self, chromium, live: LiveServer, shots: Path):  # type: ignore[no-untyped-def]
        super().__init__(chromium, live, shots)
        self.dialogs: list[str] = []

        def on_dialog(dialog) -> None:  # type: ignore[no-untyped-def]
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", on_dialog)

    def go(self, path: str) -> None:
        self.open(path, key=None if self.page.url.startswith(self.live.url) else self.live.viewer_key)
        self.wait_ready()

    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlparse(self.page.url).query)

    def main_text(self) -> str:
        """What the page says outside its controls (the site picker names every site)."""
        return self.page.locator("#content").evaluate(
            "(n) => { const c = n.cloneNode(true); c.querySelector('#controls')?.remove(); return c.innerText; }"
        )


@pytest.fixture()
def tab(browser, live: LiveServer, tmp_path: Path) -> Iterator[Tab]:  # noqa: F811
    opened = Tab(browser, live, tmp_path)
    yield opened
    opened.close()


def assert_no_site(tab: Tab, page: str, asked: str) -> None:
    p = tab.page
    message = p.locator("#site-missing")
    assert message.is_visible(), f"{page}: no message for an unknown site"
    assert f"No site '{asked}'" in message.inner_text(), message.inner_text()
    assert message.locator("a[href='/dashboard/']").count() >= 1, "the message links to the overview"
    assert tab.query().get("site") == [asked], f"{page}: the address must keep what was asked for: {p.url}"
    said = tab.main_text()
    for name, _, zone_name in SITES.values():
        assert name not in said and zone_name not in said, f"{page} names another site: {said}"
    for figures in FIGURES[page]:
        box = p.locator(figures)
        assert not box.is_visible() or not box.inner_text().strip(), f"{page}: {figures} shows figures"
    for drawn in ("#kpi-people", "svg.series-chart", "#ranking-table", "svg.slotmap", "#best-slot"):
        assert p.locator(drawn).count() == 0 or not p.locator(drawn).first.is_visible(), f"{page}: {drawn}"
    picker = p.locator("#sel-site")
    assert picker.is_visible(), f"{page}: a site picker"
    values = picker.locator("option").evaluate_all("(nodes) => nodes.map((n) => n.value)")
    assert [v for v in values if v] == list(SITES), values
    assert picker.input_value() == "", "the picker names no site as chosen"
    assert f"No site '{asked}'" in p.title(), p.title()
    assert not tab.dialogs, tab.dialogs


@pytest.mark.parametrize(
    ("page", "query"),
    [("zone", "site=nope&zone=food-court"), ("zone", "site=nope"), ("ad-placement", "site=nope&audience=female")],
)
def test_an_unknown_site_says_so_and_shows_no_other_sites_figures(tab: Tab, page: str, query: str) -> None:
    tab.go(f"/dashboard/{page}?{query}")
    assert_no_site(tab, page, "nope")
    assert parse_qs(urlparse(tab.page.url).query) == parse_qs(query), "the address is left as it was"
    tab.screenshot(f"unknown-site-{page}")
    # Picking a site shows it, and the message goes.
    p = tab.page
    p.locator("#sel-site").select_option("outlet")
    p.wait_for_url(lambda url: parse_qs(urlparse(url).query).get("site") == ["outlet"])
    tab.wait_ready()
    assert not p.locator("#site-missing").is_visible()
    if page == "zone":
        p.locator("#kpi-people").wait_for()
        assert tab.value("#kpi-people .value [data-value]") == 100
        assert p.locator("h1#title").inner_text() == "Harbour gate"
    else:
        p.locator("#ranking-table").wait_for()
        assert p.locator("#ranking-table tr.slot").first.get_attribute("data-zone") == "gate"
    assert "Harbour Outlet" in p.locator("#crumbs").inner_text()


@pytest.mark.parametrize("page", ["zone", "ad-placement"])
def test_a_site_id_with_markup_in_it_is_shown_as_text(tab: Tab, page: str) -> None:
    tab.go(f"/dashboard/{page}?site={quote(HOSTILE)}")
    assert_no_site(tab, page, HOSTILE)
    p = tab.page
    assert p.locator("img[src=x]").count() == 0, "the address's markup became an element"
    assert p.locator("#site-missing").evaluate("(n) => n.querySelectorAll('img, script').length") == 0
    p.wait_for_timeout(300)  # an onerror would have fired by now
    assert not tab.dialogs, tab.dialogs


@pytest.mark.parametrize(
    ("page", "query", "site"),
    [
        ("zone", "site=outlet", "outlet"),
        ("zone", "", "mall"),
        ("zone", "site=", "mall"),
        ("ad-placement", "site=outlet", "outlet"),
        ("ad-placement", "", "mall"),
    ],
)
def test_a_valid_site_or_none_works_as_before(tab: Tab, page: str, query: str, site: str) -> None:
    tab.go(f"/dashboard/{page}?{query}")
    p = tab.page
    assert p.locator("#site-missing").count() == 0 or not p.locator("#site-missing").is_visible()
    assert tab.query().get("site") == [site], "no site asked: the first, named in the address"
    name, zone, zone_name = SITES[site]
    assert name in p.locator("#crumbs").inner_text()
    if page == "zone":
        assert p.locator("h1#title").inner_text() == zone_name
        assert tab.value("#kpi-people .value [data-value]") == (200 if site == "mall" else 100)
        assert p.locator("#sel-site").input_value() == site
    else:
        p.locator("#ranking-table").wait_for()
        assert p.locator("#ranking-table tr.slot").first.get_attribute("data-zone") == zone


def test_the_overview_takes_no_site_and_shows_every_site(tab: Tab) -> None:
    """The overview lists every site: ``site=`` there filters nothing and hides nothing, known or not."""
    tab.go("/dashboard/?site=nope")
    p = tab.page
    for site, (name, _, _) in SITES.items():
        assert name in p.locator(f"article[data-site='{site}']").inner_text()
    assert p.locator("#site-missing").count() == 0
    assert not tab.dialogs
