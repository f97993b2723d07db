"""The HTTP surface attacked as a hostile or careless client would: oversized bodies sent without a key, a misspelt
field that silently changed what a key may do, input the validators admitted that PostgreSQL then refused with a
500 (a NUL character, an id beyond its column), and a zone name that a ';'-splitting spreadsheet ran as a formula."""

from __future__ import annotations

import asyncio
import csv as csvlib
import io
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server.conftest import Server, aggregate


def _call(
    app: Any, method: str, path: str, chunks: int, headers: list[tuple[bytes, bytes]], root_path: str = ""
) -> tuple[int, int]:
    """Sends a request of ``chunks`` MiB straight to the ASGI app, as uvicorn hands it over: chunk by chunk, on
    demand. Returns the status answered and how many MiB the app pulled before answering."""
    pulled: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if len(pulled) >= chunks:  # everything was read: what comes after the body is the client going away
            await asyncio.sleep(3600)
        pulled.append(1)
        return {"type": "http.request", "body": b" " * (1 << 20), "more_body": len(pulled) < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("203.0.113.9", 40000),
        "server": ("testserver", 80),
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=60))
    return next(m["status"] for m in sent if m["type"] == "http.response.start"), len(pulled)


@pytest.mark.parametrize(
    ("method", "path"),
    [("PATCH", "/api/v1/sites/mall"), ("POST", "/api/v1/admin/keys"), ("PUT", "/api/v1/sites/mall/zones/p")],
)
def test_a_huge_body_without_a_key_is_refused_before_it_is_read(sqlite_server: Server, method: str, path: str) -> None:
    """FastAPI reads and parses a route's JSON body before it resolves the route's dependencies, the key check among
    them: anyone who could reach the port had the server hold 300 MiB (or any amount) in memory (and parse it)
    before answering 401.
    The admin bodies are a few hundred bytes; a larger one is now refused as it streams in, before the key check."""
    status, pulled = _call(sqlite_server.client.app, method, path, chunks=300, headers=[])
    assert status == 413
    assert pulled <= 1, f"{pulled} MiB were read before the refusal"

    declared = sqlite_server.client.request(
        method, path, content=b"{}", headers={"Content-Type": "application/json", "Content-Length": str(300 << 20)}
    )
    assert declared.status_code == 413
    assert declared.json() == {"detail": "request body is larger than 64 KiB; the API's JSON bodies are small"}
    assert declared.headers["X-Content-Type-Options"] == "nosniff"  # answered inside the app's own middleware


def test_bodies_within_the_limit_and_ingest_batches_still_pass(sqlite_server: Server) -> None:
    admin = sqlite_server.headers("admin")
    name = "Food court " + "x" * 180
    response = sqlite_server.client.put("/api/v1/sites/mall/zones/food", json={"name": name}, headers=admin)
    assert response.status_code == 200 and response.json()["name"] == name
    # Ingest keeps its own 8 MiB bound, checked after the agent's key: a batch far above 64 KiB is an ordinary one.
    batch = [aggregate(zone=f"z{i % 7}", seq=i, female=5, male=5) for i in range(1000)]
    assert sum(len(str(m)) for m in batch) > 200 << 10
    stored = sqlite_server.ingest(*batch)
    assert stored.status_code == 200, stored.text[:300]
    assert stored.json()["accepted"] + stored.json()["duplicates"] == 1000
    # Behind a proxy that mounts the server under a prefix (uvicorn --root-path), ingest is still the exempt route:
    # 2 MiB reach it and are judged (422: no JSON in them), not refused at 64 KiB.
    agent = [(b"x-api-key", sqlite_server.keys["agent"].encode())]
    app = sqlite_server.client.app
    assert _call(app, "POST", "/footfall/api/v1/ingest", 2, agent, root_path="/footfall") == (422, 2)
    assert _call(app, "PATCH", "/footfall/api/v1/sites/mall", 2, [], root_path="/footfall") == (413, 1)


@pytest.mark.parametrize("misspelt", [{"site": "riverside"}, {"agent": "box-1"}, {"sites_id": "riverside"}])
def test_a_misspelt_key_binding_is_refused_not_dropped(sqlite_server: Server, misspelt: dict[str, str]) -> None:
    """``{"role": "agent", "site": "riverside"}`` created an agent key bound to no site, and answered 201: the admin
    believed the key could write riverside's cells only, while it could write every site's (the binding is what
    keeps an agent from pushing another site's withheld cells over k and subtracting, server/API.md "Privacy")."""
    admin = sqlite_server.headers("admin")
    body = {"name": "box 1", "role": "agent", **misspelt}
    response = sqlite_server.client.post("/api/v1/admin/keys", json=body, headers=admin)
    assert response.status_code == 422, response.text
    (field,) = misspelt
    assert response.json()["detail"].startswith(f"{field}: Extra inputs are not permitted")
    keys = sqlite_server.client.get("/api/v1/admin/keys", headers=admin).json()
    assert [k["name"] for k in keys] == ["test agent", "test viewer", "test admin"]  # nothing was created

    bound = sqlite_server.client.post(
        "/api/v1/admin/keys", json={"name": "box 1", "role": "agent", "site_id": "riverside"}, headers=admin
    )
    assert bound.status_code == 201 and bound.json()["site_id"] == "riverside"


def test_input_postgresql_refuses_is_a_422_not_a_500(server: Server) -> None:
    """PostgreSQL's text columns refuse NUL and its integer columns stop at 2^31 - 1: a zone, site or key name
    holding a NUL, ``/agents?site=`` with one, or ``before_id`` beyond the dead-letter ids answered 500 there
    (SQLite stored or compared them). Each is now refused with the parameter named, on both databases."""
    server.ingest(aggregate(zone="p", female=6, male=6))
    client = TestClient(server.client.app, raise_server_exceptions=False)  # a 500 must show as one, not raise
    admin = server.headers("admin")
    refused: list[tuple[str, Any]] = [
        ("name", client.put("/api/v1/sites/mall/zones/p", json={"name": "Food\u0000court"}, headers=admin)),
        ("floor", client.put("/api/v1/sites/mall/zones/p", json={"floor": "L\u00002"}, headers=admin)),
        ("name", client.patch("/api/v1/sites/mall", json={"name": "Mall\u0000"}, headers=admin)),
        ("name", client.post("/api/v1/admin/keys", json={"name": "ops\u0000", "role": "viewer"}, headers=admin)),
        ("site", client.get("/api/v1/agents", params={"site": "mall\x00"}, headers=admin)),
        ("before_id", client.get("/api/v1/admin/dead-letters", params={"before_id": 2**31}, headers=admin)),
    ]
    for field, response in refused:
        assert response.status_code == 422, f"{field}: {response.status_code} {response.text[:200]}"
        detail = response.json()["detail"]
        assert detail.split(": ")[0].removeprefix("query.") == field and "\n" not in detail, detail
    # Nothing was changed by the refused writes, and ordinary values still pass.
    zones = client.get("/api/v1/sites/mall/zones", headers=admin).json()
    assert [(z["name"], z["floor"]) for z in zones] == [("p", None)]
    assert client.get("/api/v1/admin/dead-letters", params={"before_id": 2**31 - 1}, headers=admin).status_code == 200
    assert client.get("/api/v1/agents", params={"site": "mall"}, headers=admin).status_code == 200
    renamed = client.put("/api/v1/sites/mall/zones/p", json={"name": "Café «Nord» ☕", "floor": "L2"}, headers=admin)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Café «Nord» ☕"


def test_a_zone_name_runs_as_no_formula_where_spreadsheets_split_on_semicolons(sqlite_server: Server) -> None:
    """Excel in German, French, Dutch ... locales opens a CSV by splitting each line on ';', its list separator, and
    a comma is text there: a zone name ``Food;=cmd|' /C calc'!A0;court`` became three cells, the middle one a formula
    (the quote the name got at its start guarded only the first). Every cell a ';' can start is guarded too."""
    sqlite_server.ingest(aggregate(zone="p", female=6, male=6))
    names = [
        "Food;=cmd|' /C calc'!A0;court",
        'Food; "=HYPERLINK(""http://evil.example"")";x',
        "Kids;  +1+1",
        "Shop;@SUM(A1)",
        "Deals;-50%",
        ' "=1+1"',
        "Food court; L2",
    ]
    for name in names:
        response = sqlite_server.client.put(
            "/api/v1/sites/mall/zones/p", json={"name": name}, headers=sqlite_server.headers("admin")
        )
        assert response.status_code == 200 and response.json()["name"] == name  # the API keeps the name as given
        text = sqlite_server.get(
            "/api/v1/sites/mall/traffic/export.csv", start="2026-11-15T00:00:00Z", end="2026-11-17T00:00:00Z"
        ).text
        for delimiter in (",", ";"):
            for row in csvlib.reader(io.StringIO(text), delimiter=delimiter):
                for cell in row:
                    assert not cell.lstrip(' "').startswith(("=", "+", "-", "@")), (delimiter, name, cell)
        cell = list(csvlib.reader(io.StringIO(text)))[1][2]
        assert cell.replace("'", "") == name.replace("'", ""), cell  # only guarding quotes were added
    assert cell == "Food court; L2"  # a name that is no formula is exported as it is


@pytest.mark.parametrize(
    ("content", "content_type", "status", "detail"),
    [
        (
            b'{"name": "x"}',
            "text/plain",
            415,
            "the request body must be JSON (Content-Type: application/json), not text/plain",
        ),
        (b"name=x", "application/x-www-form-urlencoded", 415, "not application/x-www-form-urlencoded"),
        (b"", None, 422, "body: a JSON object is required"),
        (b'["x"]', "application/json", 422, "body: Input should be a valid dictionary"),
    ],
    ids=["json-as-text", "form", "no-body", "a-list"],
)
def test_a_body_that_is_not_a_json_object_is_told_so(
    sqlite_server: Server, content: bytes, content_type: str | None, status: int, detail: str
) -> None:
    """JSON sent as text/plain (curl's -d without -H) was answered 'request: Input should be a valid dictionary or
    object to extract fields from', which names neither the body nor the header at fault."""
    headers = sqlite_server.headers("admin") | ({"Content-Type": content_type} if content_type else {})
    response = sqlite_server.client.patch("/api/v1/sites/mall", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"] and "\n" not in response.json()["detail"], response.text


def test_a_sweep_over_every_hour_a_query_may_name_fills_the_time_caches_only_to_a_few_megabytes() -> None:
    # Reads may name any hour of 2000-2100 (876,600 of them): each cache must stay small when all are asked for.
    import tracemalloc

    from footfall.server import localtime, occupancy

    first = int(localtime.EARLIEST.timestamp())
    caches = (localtime.local_hour_of_week, localtime.local_day, occupancy.reset_before)
    for cache in caches:
        cache.cache_clear()
    tracemalloc.start()
    try:
        for cache in caches:
            maxsize = cache.cache_info().maxsize
            assert maxsize is not None, f"{cache.__name__}: an unbounded cache"
            extra = ("22:00",) if cache is occupancy.reset_before else ()
            for index in range(maxsize + 100):
                cache(first + index * localtime.HOUR, "Europe/Berlin", *extra)
            assert cache.cache_info().currsize == maxsize
        held_mb = tracemalloc.get_traced_memory()[0] / 1e6
    finally:
        tracemalloc.stop()
        for cache in caches:
            cache.cache_clear()
    # 13 MB here with 20,000 entries each; 109 MB with the 200,000 they had before.
    assert held_mb < 24, f"the time caches hold {held_mb:.0f} MB when full"


@pytest.mark.postgres
def test_while_the_database_is_down_every_request_gets_a_503_that_says_so(caplog: pytest.LogCaptureFixture) -> None:
    # Not a 500 "internal error": the client (an agent posting over HTTP, a dashboard, a script) should retry.
    import logging

    from prometheus_client import generate_latest

    from tests.server.conftest import make_server
    from tests.services import PostgresServer

    postgres = PostgresServer(durable=True).start()  # the keys made just before the crash must survive it
    servers = make_server(postgres.url)
    server = next(servers)
    try:
        assert server.get("/api/v1/sites").status_code == 200
        postgres.halt()
        with caplog.at_level(logging.WARNING, logger="footfall.server"):
            answers = [server.get("/api/v1/sites"), server.ingest(aggregate(female=5)), server.get("/healthz")]
            answers.append(server.get("/api/v1/sites"))
        for answer in answers:
            assert answer.status_code == 503, (answer.status_code, answer.text)
            assert answer.json()["status"] == "database_unavailable", answer.json()
            assert "the database cannot answer now" in answer.json()["detail"]
        assert answers[0].headers["Retry-After"]
        down = [record for record in caplog.records if "the database cannot answer" in record.getMessage()]
        assert len(down) == 1, "said once for the outage, not once per request"
        # What FOOTFALL_METRICS_PORT serves (no key to look up): the figures of the outage, and that it is one.
        scraped = generate_latest(server.client.app.state.metrics.registry).decode()  # type: ignore[attr-defined]
        assert "footfall_server_database_up 0.0" in scraped
        assert "footfall_server_ingest_stalled 0.0" in scraped and "footfall_server_agents{" not in scraped
        postgres.resume()
        # A minute without a refusal ends the outage (a success between refusals, as a key read while writes fail,
        # does not): the clocks of the outage lines move on a minute.
        app_state = server.client.app.state  # type: ignore[attr-defined]
        for outage in (app_state.context.database_down, app_state.metrics.collector.database_down):
            outage.clock = lambda: time.monotonic() + 61
        with caplog.at_level(logging.INFO, logger="footfall.server"):
            assert server.get("/api/v1/sites").status_code == 200
            assert server.ingest(aggregate(female=5)).status_code == 200
        # Before, the outage's line was the last word: nothing said when the requests were answered again.
        back = [record for record in caplog.records if "the database answers requests again" in record.getMessage()]
        assert len(back) == 1, "said once, when the first request after the outage was answered"
        assert back[0].__dict__["fields"]["requests_refused"] == len(answers), back[0].__dict__
        with caplog.at_level(logging.INFO, logger="footfall.server"):
            scraped = generate_latest(server.client.app.state.metrics.registry).decode()  # type: ignore[attr-defined]
        assert "footfall_server_database_up 1.0" in scraped and 'footfall_server_agents{state="online"}' in scraped
        assert any("metrics scraped with the database's figures again" in r.getMessage() for r in caplog.records)
    finally:
        servers.close()
        server.db.dispose()
        postgres.stop()


def test_a_statement_the_database_refuses_is_told_apart_from_a_database_that_cannot_answer(sqlite_url: str) -> None:
    from footfall.server.db import Database, refused_statement
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    database = Database(sqlite_url)
    try:
        with pytest.raises(OperationalError) as refused, database.engine.connect() as connection:
            connection.execute(text("SELECT * FROM no_such_table"))
        assert refused_statement(refused.value)  # a bug: a 500, and no retry cures it
        with database.engine.begin() as connection:  # a full disk: the database cannot answer now
            connection.execute(text("CREATE TABLE filler (x BLOB)"))
            pages = connection.execute(text("PRAGMA page_count")).scalar()
            connection.execute(text(f"PRAGMA max_page_count = {pages + 1}"))
        with pytest.raises(OperationalError) as full, database.engine.begin() as connection:
            connection.execute(text(f"PRAGMA max_page_count = {pages + 1}"))
            connection.execute(text("INSERT INTO filler VALUES (zeroblob(100000))"))
        assert "full" in str(full.value) and not refused_statement(full.value)
    finally:
        database.dispose()
    gone = Database("postgresql+psycopg://footfall@127.0.0.1:1/gone")
    try:
        with pytest.raises(OperationalError) as unreachable, gone.engine.connect():
            pass
        assert not refused_statement(unreachable.value)
    finally:
        gone.dispose()


@pytest.mark.postgres
def test_a_message_that_finds_every_pooled_connection_busy_is_retried_not_dead_lettered(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A burst of requests holds every pooled connection past the pool's timeout, then lets them go. Taken as the
    # message's own fault, it was stored again on its own, now with a free connection, and dead-lettered: refused to
    # its agent, which forgets what is refused, a count lost to load.
    from footfall.server.db import TRANSIENT_DB_ERRORS, Database
    from footfall.server.ingest import Incoming, Ingestor
    from footfall.server.migrate import upgrade
    from footfall.server.tables import DeadLetter
    from sqlalchemy import func, select

    from tests.server.conftest import _fresh_postgres_database, encoded, fixed_date_ingestor

    fresh = _fresh_postgres_database(postgres_url)
    database = Database(next(fresh), pool_timeout_s=0.2)
    try:
        upgrade(database.engine)
        ingestor = fixed_date_ingestor(database)
        held = [database.engine.connect() for _ in range(16)]  # pool_size 8 + max_overflow 8
        batch = Ingestor._ingest_batch

        def storing_in_a_burst(self: Ingestor, items):  # type: ignore[no-untyped-def]
            try:
                return batch(self, items)  # times out on the busy pool
            finally:
                while held:  # the burst is over
                    held.pop().close()

        monkeypatch.setattr(Ingestor, "_ingest_batch", storing_in_a_burst)
        with pytest.raises(TRANSIENT_DB_ERRORS):
            ingestor.ingest([Incoming(encoded(aggregate(female=5)), "http")])
        with database.read() as session:
            assert session.scalar(select(func.count()).select_from(DeadLetter)) == 0
        assert ingestor.ingest([Incoming(encoded(aggregate(female=5)), "http")]).accepted == 1
    finally:
        database.dispose()
        fresh.close()
