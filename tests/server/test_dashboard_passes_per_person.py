"""The overview's female share over a site's zones says that one person makes several passes, and that its interval
counts people, not passes (footfall.server.shares.passes_per_person), in a real headless Chromium against the real
server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from tests.server.conftest import agent_status, aggregate
from tests.server.test_dashboard_browser import (  # noqa: F401
    Page,
    browser,
    clear_of_midnight,
    start_server,
)

pytestmark = pytest.mark.browser

RATES = {"female": {"female": 720, "male": 160, "unknown": 120}, "male": {"female": 30, "male": 900, "unknown": 70}}


def test_the_overview_share_over_overlapping_zones_is_widened_and_says_why(
    browser,  # noqa: F811 (the dashboard tests' Chromium fixture, imported above)
    tmp_path: Path,
) -> None:
    live, server, thread = start_server(f"sqlite:///{tmp_path / 'share.db'}", release_open_hour=True)
    try:
        now = clear_of_midnight(before=timedelta(minutes=2), after=timedelta(minutes=3))
        start = (now - timedelta(minutes=3)).replace(second=0, microsecond=0)
        model = {"bundle": "gender", "version": "3", "task": "gender-classification", "precision": "int8"}
        status = agent_status(models=[model | {"parity": "passed", "decision_rates": {"counts": RATES, "source": "t"}}])
        # The same 60 people (30 women) through three zones of one camera, and the camera's 60 distinct visitors.
        crowd = {"female": 26, "male": 24, "unknown": 10}
        messages = [
            {**aggregate(zone=zone, start=start, seq=i + 1, **crowd), "classifier": "gender@3"}
            for i, zone in enumerate(("west", "mid", "east"))
        ]
        camera = {**aggregate(zone="cam-1", start=start, seq=9, **crowd), "classifier": "gender@3", "measure": "camera"}
        live.ingest([status, *messages, camera])
        page = Page(browser, live, tmp_path)
        try:
            page.open("/dashboard/", key=live.viewer_key)
            page.wait_ready()
            share = page.page.locator("#kpi-share .corrected-share")
            assert share.get_attribute("data-passes-per-person") == "3"
            assert "One person passes 3.0 of these zones on average" in (share.get_attribute("title") or "")
        finally:
            page.close()
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)
