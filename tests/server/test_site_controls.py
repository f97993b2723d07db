"""An operator's per-site controls (issue #18): the demographics mode, k and raw-data retention, set through
the admin API within limits, and applied by ingest, the release and retention."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from footfall.server.db import Database
from footfall.server.retention import run_retention
from footfall.server.rollups import daily_vs_hourly, slots_vs_hourly
from footfall.server.tables import Bucket, DeadLetter, HourlyRollup
from sqlalchemy import func, select

from tests.server.conftest import BASE, Server, agent_status, aggregate, lock_waiters, make_server
from tests.server.test_privacy import ATTACKS, DAY, NINE, answers, messages

SITE = "/api/v1/sites/mall"


def patch(server: Server, body: dict, site: str = SITE):  # type: ignore[no-untyped-def]
    return server.client.patch(site, json=body, headers=server.headers("admin"))


def counts_only(message: dict) -> dict:
    """What an agent of a counts-only site sends: no gender at all (null), everyone unclassified."""
    return {**message, "gender": None}


# -- the admin API and its limits --------------------------------------------------------------------------


def test_a_site_can_only_be_made_stricter_than_the_server_and_within_limits(sqlite_url: str) -> None:
    for server in make_server(sqlite_url, k_anonymity=5):
        assert server.ingest(aggregate(unknown=1)).status_code == 200  # creates the site
        refused = {
            "k below the server's floor": {"k": 4},
            "k of 0": {"k": 0},
            "k above 50": {"k": 51},
            "retention of 0 days": {"retention_days": 0},
            "retention beyond the server's": {"retention_days": 3651},  # the server keeps raw data forever here
            "an unknown mode": {"demographics": "some"},
            "k as text": {"k": "ten"},
            "k as a numeral in text": {"k": "7"},
            "k as a float": {"k": 7.0},
            "k as true": {"k": True},
            "retention as true (1 day: destructive)": {"retention_days": True},
            "retention as text": {"retention_days": "30"},
            "a mode of null": {"demographics": None},
        }
        for name, body in refused.items():
            response = patch(server, body)
            assert response.status_code == 422, (name, response.text)
            assert "Traceback" not in response.text
        assert "the server's k (5) is a floor" in patch(server, {"k": 4}).json()["detail"]
        # A site not seen yet is set up before its first camera counts.
        early = patch(server, {"demographics": "counts-only"}, site="/api/v1/sites/new-mall")
        assert early.status_code == 200 and early.json()["demographics"] == "counts-only"
        assert patch(server, {"k": 10}, site="/api/v1/sites/bad site").status_code == 422  # not an identifier
        assert server.client.patch(SITE, json={"k": 10}, headers=server.headers("viewer")).status_code == 403
        # The answer to a PATCH is the site as GET /sites shows it (zones, agents), not a half-filled copy.
        listed = next(s for s in server.get("/api/v1/sites").json() if s["site_id"] == "mall")
        assert patch(server, {"name": "Mall"}).json() == {**listed, "name": "Mall"}
        site = patch(server, {"k": 10, "retention_days": 7, "demographics": "counts-only"}).json()
        assert (site["k"], site["own_k"], site["retention_days"], site["demographics"]) == (10, 10, 7, "counts-only")
        listed = server.get("/api/v1/sites").json()[0]
        assert (listed["k"], listed["retention_days"], listed["demographics"]) == (10, 7, "counts-only")
        back = patch(server, {"k": None, "retention_days": None}).json()  # null: the server's again
        assert (back["k"], back["own_k"], back["retention_days"], back["demographics"]) == (
            5,
            None,
            None,
            "counts-only",
        )


def test_retention_may_not_exceed_the_servers(tmp_path: Path) -> None:
    for server in make_server(f"sqlite:///{tmp_path / 'r.db'}"):
        context = server.client.app.state.context  # type: ignore[attr-defined]
        context.settings = context.settings.model_copy(update={"retention_days": 35})
        server.ingest(aggregate(unknown=1))
        assert patch(server, {"retention_days": 36}).status_code == 422
        assert "at most the server's retention (35 days)" in patch(server, {"retention_days": 36}).json()["detail"]
        assert patch(server, {"retention_days": 35}).json()["retention_days"] == 35


def test_a_sites_own_retention_applies_on_a_server_that_keeps_raw_buckets_forever(server: Server) -> None:
    """The attack: an operator shortens one site's retention on a keep-forever server; it must not be a promise
    that nothing keeps (the retention loop runs, and deletes that site's old buckets only)."""
    from footfall.server.background import start_background_work
    from footfall.server.retention import RetentionLoop

    context = server.client.app.state.context  # type: ignore[attr-defined]
    context.settings = context.settings.model_copy(update={"retention_days": None, "mqtt_url": None})
    workers = start_background_work(context)
    try:
        assert any(isinstance(worker, RetentionLoop) for worker in workers)
    finally:
        for worker in workers:
            worker.stop()
    server.ingest(aggregate(start=BASE, unknown=6), aggregate(start=BASE, site="other", camera="cam-9", unknown=6))
    assert patch(server, {"retention_days": 3}).json()["retention_days"] == 3
    result = run_retention(server.db, days=None, now=(BASE + timedelta(days=10)).timestamp())
    assert result.raw_deleted == 1 and result.cutoff == 0  # no server-wide cut
    with server.db.read() as session:
        assert session.execute(select(Bucket.camera_id)).scalars().all() == ["cam-9"]


# -- demographics mode: what ingest refuses ----------------------------------------------------------------


def test_a_counts_only_site_refuses_aggregates_with_gender_and_stores_those_without(server: Server) -> None:
    server.ingest(aggregate(unknown=1))
    assert patch(server, {"demographics": "counts-only"}).status_code == 200
    response = server.ingest(
        aggregate(start=NINE, seq=2, female=3, male=4),
        counts_only(aggregate(start=NINE, seq=3, camera="cam-2", unknown=6)),
    )
    assert response.status_code == 422
    body = response.json()
    assert body["accepted"] == 1 and [r["index"] for r in body["rejected"]] == [0]
    assert "demographics mode 'counts-only'" in body["rejected"][0]["reason"]
    assert body["site_settings"]["demographics"] == "counts-only"
    with server.db.read() as session:
        reasons = list(session.scalars(select(DeadLetter.reason)))
        stored = session.execute(select(Bucket.camera_id, Bucket.people, Bucket.unknown)).all()
    assert any("counts-only" in reason for reason in reasons)
    assert ("cam-2", 6, 6) in stored and all(camera != "cam-1" or people == 1 for camera, people, _ in stored)


def test_an_off_site_refuses_every_aggregate_with_a_reason_and_full_takes_them_again(server: Server) -> None:
    server.ingest(aggregate(unknown=1))
    assert patch(server, {"demographics": "off"}).json()["demographics"] == "off"
    response = server.ingest(
        counts_only(aggregate(start=NINE, seq=2, unknown=6)), aggregate(start=NINE, seq=3, camera="c", male=6)
    )
    assert response.status_code == 422 and len(response.json()["rejected"]) == 2
    assert all("demographics mode 'off'" in r["reason"] for r in response.json()["rejected"])
    assert patch(server, {"demographics": "full"}).status_code == 200
    response = server.ingest(
        counts_only(aggregate(start=NINE, seq=4, unknown=6)), aggregate(start=NINE, seq=5, camera="c", male=6)
    )
    assert response.status_code == 200 and response.json()["accepted"] == 2
    assert response.json()["site_settings"] == {
        **response.json()["site_settings"],
        "demographics": "full",
        "site_id": "mall",
    }


def dead_letter_payloads(server: Server) -> list[dict]:
    letters = server.get("/api/v1/admin/dead-letters", role="admin").json()["items"]
    return [json.loads(letter["payload"]) for letter in letters]


@pytest.mark.parametrize(
    ("mode", "not_kept"),
    [("off", {"people", "gender", "age", "dwell"}), ("counts-only", {"gender", "age"}), ("gender-only", {"age"})],
)
def test_a_refused_aggregate_keeps_in_its_dead_letter_nothing_the_site_refuses(
    sqlite_server: Server, mode: str, not_kept: set[str]
) -> None:
    """Found by attack: an agent that had not applied the mode yet sent a bucket of one woman aged 25-34; the server
    refused it and then kept it whole for 90 days, readable by any admin key: the gender of one person at a site set
    to collect none, the age at a 'gender-only' one. Its dead letter keeps what the site would have kept."""
    server = sqlite_server
    server.ingest(aggregate(unknown=1))
    assert patch(server, {"demographics": mode}).status_code == 200
    one_woman = aggregate(zone="pharmacy", start=NINE, seq=2, female=1, dwell=(1, 40.0))
    one_woman["age"] = {"female": {"25-34": 1}}
    assert server.ingest(one_woman).json()["rejected"]
    [letter] = [p for p in dead_letter_payloads(server) if p.get("zone_id") == "pharmacy"]
    assert not_kept.isdisjoint(letter), letter
    assert (letter["agent_id"], letter["seq"], letter["bucket_start"]) == ("agent-1", 2, "2026-11-16T09:00:00Z")
    [item] = server.get("/api/v1/admin/dead-letters", role="admin").json()["items"][:1]
    assert f"not kept: {', '.join(sorted(not_kept))}" in item["reason"], item["reason"]


def test_a_counts_only_period_shows_no_gender_figures_not_zeros(server: Server) -> None:
    server.ingest(*(counts_only(aggregate(start=NINE + timedelta(minutes=m), seq=m + 1, unknown=4)) for m in range(3)))
    totals = server.get(f"{SITE}/traffic/totals", zone="entrance", **DAY).json()["totals"]
    assert totals["people"] == 12 and totals["unknown"] == 12
    assert totals["female"] is None and totals["male"] is None
    assert totals["female_share"] is None and totals["male_share"] is None
    series = server.get(f"{SITE}/traffic/series", zone="entrance", granularity="hour", **DAY).json()["points"]
    assert [(p["people"], p["female"], p["male"]) for p in series] == [(12, None, None)]


def test_an_agents_status_says_which_mode_it_applies(server: Server) -> None:
    assert server.ingest(agent_status(demographics="counts-only")).status_code == 200
    [agent] = server.get("/api/v1/agents").json()
    assert agent["demographics"] == "counts-only"


# -- per-site k --------------------------------------------------------------------------------------------


@contextmanager
def site_world(tmp_path: Path, name: str, hidden: int, *, k_first: bool) -> Iterator[Server]:
    """The privacy scene with a site k of 10 (server k 5): zone a at 09:00 holds ``hidden`` people (7 or 8: at
    least the server's k, below the site's), set before the data came (ingest's release) or after it (the
    recomputation)."""
    cells = messages(
        [
            ("a", NINE, 2, 2, hidden - 4),
            ("a", NINE + timedelta(hours=1), 12, 20, 5),
            ("b", NINE, 10, 25, 6),
            ("a", NINE + timedelta(days=7), 9, 22, 5),
        ]
    )
    for server in make_server(f"sqlite:///{tmp_path / name}.db", k_anonymity=5):
        if k_first:
            server.ingest(aggregate(zone="a", start=BASE - timedelta(days=30), unknown=1))
            assert patch(server, {"k": 10}).status_code == 200
        assert server.ingest(*cells).status_code == 200
        if not k_first:
            assert patch(server, {"k": 10}).status_code == 200
        yield server


@pytest.mark.parametrize("k_first", [True, False], ids=["k-then-data", "data-then-k"])
def test_a_site_with_k_10_never_releases_a_7_person_cell_by_any_route(tmp_path: Path, k_first: bool) -> None:
    with (
        site_world(tmp_path, "seven", 7, k_first=k_first) as seven,
        site_world(tmp_path, "eight", 8, k_first=k_first) as eight,
    ):
        seen_with_seven, seen_with_eight = answers(seven, ATTACKS), answers(eight, ATTACKS)
        day = seven.get(f"{SITE}/traffic/totals", zone="a", **DAY).json()
        with seven.db.read() as session:
            assert daily_vs_hourly(session) == [] and slots_vs_hourly(session) == []
    for name in ATTACKS:
        assert seen_with_seven[name] == seen_with_eight[name], f"{name} depends on a cell below the site's k"
    assert day["k"] == 10
    assert day["totals"]["people"] == 37 and day["totals"]["withheld_cells"] == 1  # the 7 are withheld whole


def test_resetting_a_sites_k_releases_its_cells_again_and_other_sites_keep_theirs(sqlite_url: str) -> None:
    for server in make_server(sqlite_url, k_anonymity=5):
        server.ingest(
            aggregate(zone="a", start=NINE, unknown=7),
            aggregate(zone="a", start=NINE, site="other", agent="agent-1", camera="cam-9", unknown=7),
        )

        def released(site: str, server: Server = server) -> int:
            response = server.get(f"/api/v1/sites/{site}/traffic/totals", zone="a", **DAY)
            return int(response.json()["totals"]["people"] or 0)

        assert (released("mall"), released("other")) == (7, 7)
        patch(server, {"k": 8})
        assert (released("mall"), released("other")) == (0, 7)
        patch(server, {"k": None})
        assert (released("mall"), released("other")) == (7, 7)
        with server.db.read() as session:
            assert daily_vs_hourly(session) == [] and slots_vs_hourly(session) == []
            assert session.scalar(select(func.sum(HourlyRollup.withheld))) == 0


@pytest.mark.postgres
def test_a_change_of_k_works_for_a_role_that_may_not_create_temporary_tables(postgres_url: str) -> None:
    # Hardening guides revoke TEMPORARY on the database from PUBLIC. The server's role then creates no temporary
    # table, and a change of a site's k must still recompute its cells, not fail with a database error.
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    role = f"r_{name}"
    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
        conn.execute(f'REVOKE TEMPORARY ON DATABASE "{name}" FROM PUBLIC, "{role}"')
    url = postgres_url.replace("//footfall@", f"//{role}@").rsplit("/", 1)[0] + f"/{name}"
    try:
        with (
            psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute("CREATE TEMPORARY TABLE probe (x int)")  # the attack holds: no temporary table here
        for server in make_server(url, k_anonymity=5):
            server.ingest(aggregate(zone="a", start=NINE, unknown=7))

            def released(server: Server = server) -> int:
                response = server.get(f"{SITE}/traffic/totals", zone="a", **DAY)
                return int(response.json()["totals"]["people"] or 0)

            assert released() == 7
            assert patch(server, {"k": 8}).status_code == 200
            assert released() == 0
            assert patch(server, {"k": None}).status_code == 200
            assert released() == 7
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.mark.postgres
@pytest.mark.parametrize("admin_first", [False, True], ids=["start-first", "admin-first"])
def test_the_starts_release_of_every_site_and_an_admins_change_of_one_sites_k_both_hold(
    postgres_url: str, admin_first: bool
) -> None:
    # Two replicas: one starts after a change of the server's k (5 → 6) and releases every site again in one
    # transaction, while the other serves an admin's change of the second site's k to 8. They take turns, whichever
    # began first. Neither may fail (a deadlock failed the start or answered the admin 500), and the start must not
    # release the site again with the k the admin's change replaced (it read the sites' k before its turn).
    from tests.server.conftest import _fresh_postgres_database

    for url in _fresh_postgres_database(postgres_url):
        for server in make_server(url, k_anonymity=5):
            server.ingest(
                aggregate(zone="a", start=NINE, unknown=7),
                aggregate(zone="a", start=NINE, site="other", agent="agent-1", camera="cam-9", unknown=7),
            )
            assert _start_and_admin_change_of_k(server.db, admin_first) == []

            def released(site: str, server: Server = server) -> int:
                response = server.get(f"/api/v1/sites/{site}/traffic/totals", zone="a", **DAY)
                return int(response.json()["totals"]["people"] or 0)

            assert (released("mall"), released("other")) == (7, 0)  # k 6 for the mall, the admin's 8 for the other


def _start_and_admin_change_of_k(db: Database, admin_first: bool) -> list[Exception]:
    """The start's release of every site with the server's new k 6 (footfall.server.rollups.ensure_release) and an
    admin's change of the second site's k to 8, in two threads. The first to begin stops in its transaction (the
    start after its first site, the admin's change before it commits) until the other waits for a lock or ended;
    returns what failed."""
    from footfall.server.rollups import cells as cells_module
    from footfall.server.rollups import ensure_release, release_site
    from footfall.server.tables import Site
    from sqlalchemy import update

    from tests.waiting import wait_until

    errors: list[Exception] = []
    paused, go_on = threading.Event(), threading.Event()
    release_one_site = cells_module._release_site

    def start() -> None:
        def released_then_paused(session, *args) -> None:  # type: ignore[no-untyped-def]
            release_one_site(session, *args)
            if threading.current_thread() is threads[0] and not admin_first and not paused.is_set():
                paused.set()
                go_on.wait(60)

        if admin_first:
            paused.wait(60)
        try:
            cells_module._release_site = released_then_paused
            ensure_release(db, 6, None)
        except Exception as exc:  # what failed is the finding
            errors.append(exc)
        finally:
            cells_module._release_site = release_one_site

    def change() -> None:
        if not admin_first:
            paused.wait(60)
        try:
            with db.write() as session:
                session.execute(update(Site).where(Site.site_id == "other").values(k=8))
                release_site(session, "other", 8, None)
                if admin_first:
                    paused.set()
                    go_on.wait(60)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start), threading.Thread(target=change)]
    waiting = threads[1] if not admin_first else threads[0]
    for thread in threads:
        thread.start()

    def waits_or_ended() -> bool:
        return lock_waiters(db) > 0 or not waiting.is_alive()

    assert paused.wait(60)
    wait_until(waits_or_ended)
    go_on.set()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    return errors


# -- per-site retention ------------------------------------------------------------------------------------


def test_a_site_with_shorter_retention_loses_its_raw_buckets_sooner_and_refuses_older_ones(server: Server) -> None:
    now = (BASE + timedelta(days=10)).timestamp()
    old = BASE  # 10 days before "now"
    server.ingest(aggregate(start=old, unknown=6), aggregate(start=old, site="other", camera="cam-9", unknown=6))
    patch(server, {"retention_days": 3})
    result = run_retention(server.db, days=35, now=now)
    assert result.raw_deleted == 1
    with server.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Bucket)) == 1  # the other site's, kept 35 days
    late = server.ingest(aggregate(start=old + timedelta(minutes=1), seq=5, female=1, unknown=1))
    assert late.status_code == 422 and "site's raw-data retention window" in late.json()["rejected"][0]["reason"]
    # Nor does its dead letter keep its counts for 90 days: raw counts that old are not kept.
    [letter] = [p for p in dead_letter_payloads(server) if p.get("seq") == 5]
    assert {"people", "gender", "age", "dwell"}.isdisjoint(letter), letter
    kept = server.ingest(aggregate(start=old + timedelta(minutes=1), seq=6, site="other", camera="cam-9", unknown=2))
    assert kept.status_code == 200
    # the rollups keep what the deleted buckets counted
    assert (
        server.get(
            f"{SITE}/traffic/totals", zone="entrance", start="2026-11-16T00:00:00Z", end="2026-11-17T00:00:00Z"
        ).json()["totals"]["people"]
        == 6
    )
