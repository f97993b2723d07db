"""A site's time-zone change re-files its stored hours without holding up ingest, and leaves every derived
table exact (the privacy issue: a PATCH took 7.1 s and blocked ingest for 6.8 s)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from footfall.server.localtime import local_hour_of_week
from footfall.server.rollups import daily_vs_hourly, refile, slots_vs_hourly
from footfall.server.tables import HourlyRollup
from sqlalchemy import select

from tests.server.conftest import BASE, Server, aggregate

ZONES = ("a", "b", "c")


def _history(s: Server) -> None:
    messages = [
        aggregate(zone=zone, camera=f"cam-{zone}", start=BASE - timedelta(hours=hour), seq=hour, female=6, male=6)
        for zone in ZONES
        for hour in range(0, 24 * 40, 5)
    ]
    assert s.ingest(*messages).status_code == 200


def test_ingest_is_stored_while_a_time_zone_change_refiles_the_site(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    _history(server)
    refile_zone = refile.refile_zone
    first_zone_done = threading.Event()
    ingest_done = threading.Event()
    waited: list[bool] = []

    def refile_and_let_ingest_in(*args, **kwargs):  # type: ignore[no-untyped-def]
        cells = refile_zone(*args, **kwargs)
        if not first_zone_done.is_set():
            first_zone_done.set()
            # Between two zones, an aggregate sent now must be stored before the change goes on.
            waited.append(ingest_done.wait(timeout=30))
        return cells

    monkeypatch.setattr(refile, "refile_zone", refile_and_let_ingest_in)
    answers: list[int] = []
    patch = threading.Thread(
        target=lambda: answers.append(
            server.client.patch(
                "/api/v1/sites/mall", json={"timezone": "Asia/Kolkata"}, headers=server.headers("admin")
            ).status_code
        )
    )
    patch.start()
    assert first_zone_done.wait(timeout=60), "the time-zone change never refiled a zone"
    stored = server.ingest(aggregate(zone="b", camera="cam-new", start=BASE - timedelta(hours=2), female=9))
    ingest_done.set()
    patch.join(timeout=120)
    assert stored.status_code == 200 and stored.json()["accepted"] == 1
    assert waited == [True], "ingest waited for the whole time-zone change"
    assert answers == [200]
    with server.db.read() as session:
        assert daily_vs_hourly(session) == [] and slots_vs_hourly(session) == []
        assert _misfiled(session, "Asia/Kolkata") == 0


def test_an_interrupted_time_zone_change_is_finished_on_start(sqlite_url: str) -> None:
    from tests.server.conftest import make_server

    for server in make_server(sqlite_url):
        _history(server)
        with server.db.write() as session:  # what a crash between zones leaves behind
            refile.start_refile(session, "mall", "Asia/Kolkata")
    for server in make_server(sqlite_url):
        with server.db.read() as session:
            assert refile.pending_refiles(session) == {}
            assert daily_vs_hourly(session) == [] and slots_vs_hourly(session) == []
            assert _misfiled(session, "Asia/Kolkata") == 0


def _misfiled(session, tz: str) -> int:  # type: ignore[no-untyped-def]
    """Hourly cells whose hour of week is not their start's local hour of week in ``tz``."""
    rows = session.execute(select(HourlyRollup.hour_start, HourlyRollup.local_how)).all()
    assert rows
    return sum(how != local_hour_of_week(hour_start, tz) for hour_start, how in rows)
