"""Messages that pass JSON but not Python's own limits (integers of over 4300 digits, a time that leaves the
calendar in UTC), misspelt admin fields and time-zone names that are folders: each gets a clear refusal, the
valid rest of a batch is stored, and nothing answers 500."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from footfall.server.settings import Settings
from footfall.server.tables import Bucket, DeadLetter
from sqlalchemy import func, select

from tests.server.conftest import Server, agent_status, aggregate, encoded, make_server, make_storing_fail


def stored(server: Server) -> tuple[int, int]:
    with server.db.read() as session:
        buckets = session.execute(select(func.count()).select_from(Bucket)).scalar_one()
        dead = session.execute(select(func.count()).select_from(DeadLetter)).scalar_one()
    return buckets, dead


def post(server: Server, body: bytes):  # type: ignore[no-untyped-def]
    client = TestClient(server.client.app, raise_server_exceptions=False)
    return client.post(
        "/api/v1/ingest", content=body, headers={**server.headers("agent"), "Content-Type": "application/json"}
    )


HUGE_SEQ = encoded(aggregate(zone="z2", seq=2, female=5)).replace(b'"seq": 2', b'"seq": 1' + b"0" * 5000)
OFF_CALENDAR = encoded(aggregate(zone="z2", seq=2, female=5)).replace(
    b'"bucket_start": "2026-11-16T00:00:00Z"', b'"bucket_start": "0001-01-01T00:00:00+14:00"'
)


@pytest.mark.parametrize("poison", [HUGE_SEQ, OFF_CALENDAR], ids=["integer-of-5001-digits", "before-year-1-in-utc"])
def test_a_message_beyond_pythons_limits_is_refused_and_the_rest_stored(sqlite_server: Server, poison: bytes) -> None:
    assert poison != encoded(aggregate(zone="z2", seq=2, female=5))  # the replacement took
    response = post(sqlite_server, b"[" + encoded(aggregate(female=5, seq=1)) + b"," + poison + b"]")
    assert response.status_code == 422, response.text
    (rejection,) = response.json()["rejected"]
    assert rejection["index"] == 1
    assert stored(sqlite_server) == (1, 1)  # the valid message kept, the poison dead-lettered


def test_a_nul_character_is_refused_and_dead_lettered_on_every_database(server: Server) -> None:
    """PostgreSQL's text columns refuse NUL: a raw NUL byte answered 500 (its dead letter could not be written), and
    a \\u0000 escape in a status string was refused as 'storing failed: DataError'."""
    raw = post(server, b'{"kind": "aggregate"\x00}')
    assert raw.status_code == 422, raw.text
    assert "not valid JSON" in raw.json()["rejected"][0]["reason"]
    status = agent_status()
    status["version"] = "1.0\x00"  # json.dumps writes it as \u0000
    response = post(server, b"[" + encoded(aggregate(female=5, seq=1)) + b"," + json.dumps(status).encode() + b"]")
    assert response.status_code == 422, response.text
    (rejection,) = response.json()["rejected"]
    assert rejection["index"] == 1 and "NUL character" in rejection["reason"]
    assert stored(server) == (1, 2)  # the valid message kept, both poisons dead-lettered
    with server.db.read() as session:
        assert all("\x00" not in row.payload for row in session.scalars(select(DeadLetter)))


def test_a_message_over_the_wire_limit_is_refused_before_it_is_parsed(sqlite_server: Server) -> None:
    """MQTT has no body limit of its own: a 40 MB status was parsed whole before the schema refused it."""
    from footfall.core.wire import MAX_MESSAGE_BYTES

    huge = encoded(aggregate(female=5, seq=2))[:-1] + b', "padding": "' + b"x" * MAX_MESSAGE_BYTES + b'"}'
    response = post(sqlite_server, b"[" + encoded(aggregate(female=5, seq=1)) + b"," + huge + b"]")
    assert response.status_code == 422, response.text
    (rejection,) = response.json()["rejected"]
    assert rejection["index"] == 1 and f"at most {MAX_MESSAGE_BYTES:,}" in rejection["reason"]


@pytest.mark.parametrize("value", [b"60.0", b'"60"'])
def test_bucket_seconds_is_a_json_integer_as_the_counts_are(sqlite_server: Server, value: bytes) -> None:
    body = encoded(aggregate(female=5)).replace(b'"bucket_seconds": 60', b'"bucket_seconds": ' + value)
    assert body != encoded(aggregate(female=5))
    response = post(sqlite_server, body)
    assert response.status_code == 422 and "bucket_seconds" in response.json()["rejected"][0]["reason"], response.text


def test_a_batch_stored_one_by_one_keeps_each_refusals_code(sqlite_server: Server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A counts-only site refuses gender with code 'counts-only' (the agent sends again without it); a batch
    that falls back to one by one must not turn that into a plain 'rejected', which would lose those counts."""
    admin = sqlite_server.headers("admin")
    assert sqlite_server.client.patch(
        "/api/v1/sites/mall", json={"demographics": "counts-only"}, headers=admin
    ).is_success
    make_storing_fail(monkeypatch, "poison", ValueError("boom"))
    poison = aggregate(zone="poison", seq=2)
    poison["gender"] = None
    response = post(sqlite_server, json.dumps([aggregate(female=5, male=5, seq=1), poison]).encode())
    codes = {r["index"]: r["code"] for r in response.json()["rejected"]}
    assert codes == {0: "counts-only", 1: "rejected"}


@pytest.mark.parametrize("body", [{"retention_day": 7}, {"K": 10}])
def test_a_misspelt_site_setting_is_refused_not_ignored(sqlite_server: Server, body: dict) -> None:
    response = sqlite_server.client.patch("/api/v1/sites/mall", json=body, headers=sqlite_server.headers("admin"))
    assert response.status_code == 422 and next(iter(body)) in response.text, response.text


@pytest.mark.parametrize(
    "name",
    # Found by an adversarial review, after the first two: files of the zoneinfo folder that load but name no IANA
    # zone ('localtime' is the host's own, so replicas could file a site's days apart; 'right/' counts leap seconds).
    ["America", "a" * 300, "localtime", "posixrules", "Factory", "right/UTC", "right/Europe/Berlin"],
)
def test_a_time_zone_that_is_a_folder_or_too_long_or_no_iana_zone_is_refused(sqlite_server: Server, name: str) -> None:
    client = TestClient(sqlite_server.client.app, raise_server_exceptions=False)
    response = client.patch("/api/v1/sites/mall", json={"timezone": name}, headers=sqlite_server.headers("admin"))
    assert response.status_code == 422 and "unknown time zone" in response.text, response.text


def test_a_posix_copy_of_a_zone_is_taken_by_its_plain_name(sqlite_server: Server) -> None:
    """Found by a review: 'posix/Asia/Tokyo' was stored as typed, and browsers refuse the prefix (the dashboard threw
    a RangeError); the server setting did the same for every site it made."""
    response = sqlite_server.client.patch(
        "/api/v1/sites/mall", json={"timezone": "posix/Asia/Tokyo"}, headers=sqlite_server.headers("admin")
    )
    assert response.status_code == 200 and response.json()["timezone"] == "Asia/Tokyo", response.text
    assert Settings(default_timezone="posix/Europe/Paris").default_timezone == "Europe/Paris"


@pytest.mark.parametrize("start", ["1999-12-31T23:00:00Z", "1970-01-01T00:00:00Z"])
def test_a_bucket_before_the_years_reads_answer_for_is_refused_not_stored(sqlite_server: Server, start: str) -> None:
    """Reads answer for 2000-2099 only: a bucket before is refused with that reason, not stored unreadable."""
    message = aggregate(female=5)
    message["bucket_start"] = start
    response = sqlite_server.ingest(message)
    assert response.status_code == 422 and "outside the years footfall answers for" in response.text, response.text
    assert stored(sqlite_server) == (0, 1)


def test_an_agent_naming_ever_new_zones_is_stopped_at_the_sites_zone_cap(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A zone id that changes with every bucket (a timestamp in the config's ids) would add a year of hourly cells
    and slot rows per id: past the site's cap, new ids are refused with the reason; known ones still count."""
    for server in make_server(f"sqlite:///{tmp_path / 'cap.db'}", max_zones_per_site=3):
        known = [aggregate(zone=f"zone-{i}", seq=i, female=5) for i in range(3)]
        assert server.ingest(*known).status_code == 200
        more = [aggregate(zone="zone-0", seq=10, male=5), aggregate(zone="zone-new", seq=11, male=5)]
        response = post(server, b"[" + b",".join(encoded(m) for m in more) + b"]")
        assert response.status_code == 422, response.text
        (rejection,) = response.json()["rejected"]
        assert rejection["index"] == 1 and "FOOTFALL_MAX_ZONES_PER_SITE" in rejection["reason"]
        assert stored(server) == (3, 1)  # zone-0 sent again and kept (it replaces its bucket), zone-new dead-lettered
        zones = server.get("/api/v1/sites/mall/zones").json()
        assert sorted(z["zone_id"] for z in zones) == ["zone-0", "zone-1", "zone-2"]
        # Another site has a cap of its own.
        assert server.ingest(aggregate(site="other-mall", zone="zone-new", seq=12, male=5)).status_code == 200


def test_a_key_naming_ever_new_sites_is_stopped_at_the_servers_site_cap(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Found by attack: an agent key not bound to a site created a site per message; 10,000 of them took 17.7 s to
    send, and GET /sites, the first call of every dashboard page, then took 46 s (it paired every site with every
    agent). Past FOOTFALL_MAX_SITES new sites are refused with the reason; known sites still count."""
    for server in make_server(f"sqlite:///{tmp_path / 'sites.db'}", max_sites=3):
        first = [aggregate(site=f"mall-{i}", agent=f"box-{i}", seq=1, female=5) for i in range(3)]
        assert server.ingest(*first).status_code == 200
        more = [aggregate(site="mall-0", agent="box-0", seq=2, male=5), aggregate(site="mall-x", agent="box-x", male=5)]
        response = server.ingest(*more)
        assert response.status_code == 422, response.text
        (rejection,) = response.json()["rejected"]
        assert rejection["index"] == 1 and "FOOTFALL_MAX_SITES" in rejection["reason"], rejection
        assert sorted(site["site_id"] for site in server.get("/api/v1/sites").json()) == ["mall-0", "mall-1", "mall-2"]


def test_a_key_naming_ever_new_agents_is_stopped_at_the_servers_agent_cap(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Statuses and aggregates created an agent row for any agent id an unbound key named, each with a series of
    its own in /metrics, without bound. Past FOOTFALL_MAX_AGENTS new agents are refused with the reason; known
    agents still report and count."""
    for server in make_server(f"sqlite:///{tmp_path / 'agents.db'}", max_agents=2):
        first = [aggregate(agent="box-1", camera="c1", seq=1, female=5), agent_status(agent="box-2")]
        assert server.ingest(*first).status_code == 200
        more = [
            aggregate(agent="box-1", camera="c1", seq=2, male=5),
            aggregate(agent="box-3", camera="c3", seq=1, male=5),
            agent_status(agent="box-4"),
            agent_status(agent="box-2"),
        ]
        response = server.ingest(*more)
        assert response.status_code == 422, response.text
        rejected = {r["index"]: r["reason"] for r in response.json()["rejected"]}
        assert sorted(rejected) == [1, 2] and all("FOOTFALL_MAX_AGENTS" in r for r in rejected.values()), rejected
        agents = sorted(a["agent_id"] for a in server.get("/api/v1/agents", role="admin").json())
        assert agents == ["box-1", "box-2"]


def test_a_bucket_longer_than_the_hour_it_would_be_counted_in_is_refused(sqlite_server: Server) -> None:
    """The server counts and releases by the hour: a day's bucket stored at its start would read as one busy hour
    after midnight. It is refused with the reason, dead-lettered, and the rest of its batch is stored."""
    day = aggregate(zone="z2", seq=2, female=5)
    day["bucket_seconds"] = 86_400
    response = post(sqlite_server, b"[" + encoded(aggregate(female=5, seq=1)) + b"," + encoded(day) + b"]")
    assert response.status_code == 422, response.text
    (rejection,) = response.json()["rejected"]
    assert rejection["index"] == 1 and "bucket_seconds" in rejection["reason"], rejection
    assert stored(sqlite_server) == (1, 1)
