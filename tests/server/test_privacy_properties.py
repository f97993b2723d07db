"""The privacy guarantee as a property: answers do not depend on withheld values.

Hypothesis draws a set of zone × hour cells and a second set that differs only in what footfall.server.release
withholds (the counts of a cell below k, the split of a cell whose split is withheld, a gender's age bands where
one of them is below k), each cell decided by the same classifier bundle in both (one with known rates, one
without, none named, or no gender at all: the corrected shares of footfall.server.shares), some cells with age
bands and some without, at a site in one of several time zones (the same in both), loads each into its own server,
and sends both the same random queries across every read endpoint: traffic, age tables and audiences, visitors,
the CSV export and the ad-placement ranking for gender and gender × band audiences. Every answer must be
identical. If no single answer depends on a withheld value, no
pair or any other combination of answers can reveal one: the attacker sees the same thing in both worlds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.server.conftest import BASE, Server, aggregate, make_server
from tests.server.test_ages import _table, _withheld_bands_redrawn  # the age tables its own property test draws

K = 5
ZONES = ("a", "b", "c")
START = BASE - timedelta(weeks=3)  # Monday 2026-10-26
HOURS = 17 * 24  # two and a half weeks, so ad-placement ranges span whole weeks
TABLES = (  # children first: a table is emptied before the ones its rows point to
    "bucket_ages",
    "rollup_hourly_age",
    "rollup_observed",
    "release_marked_cells",
    "buckets",
    "rollup_classifier_people",
    "rollup_hourly",
    "rollup_daily",
    "rollup_slot_cumulative",
    "rollup_slot_span",
    "rollup_camera_parts",
    "zones",
    "sites",
)


def _withheld(parts: tuple[int, int, int]) -> bool:
    return 1 <= sum(parts) < K


def _split_withheld(parts: tuple[int, int, int]) -> bool:
    return sum(parts) >= K and any(1 <= p < K for p in parts)


@st.composite
def twin_worlds(draw: st.DrawFn) -> tuple[list[dict], list[dict]]:
    """Cells for one world, and the same cells with every withheld value redrawn (still withheld)."""
    keys = draw(
        st.lists(st.tuples(st.sampled_from(ZONES), st.integers(0, HOURS - 1)), min_size=1, max_size=30, unique=True)
    )
    parts = st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(0, 12))
    small = st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4))
    released = st.tuples(st.integers(5, 30), st.integers(5, 30), st.integers(5, 30))  # splits shown: shares corrected
    first, second = [], []
    for i, (zone, hour) in enumerate(keys):
        cell = draw(st.one_of(small, parts, released))
        other = cell
        if _withheld(cell):
            other = draw(small.filter(_withheld))
        elif _split_withheld(cell):
            people = sum(cell)
            female = draw(st.integers(0, people))
            male = draw(st.integers(0, people - female))
            candidate = (female, male, people - female - male)
            other = candidate if _split_withheld(candidate) else cell
        start = START + timedelta(hours=hour, minutes=draw(st.integers(0, 59)))
        # Which bundle decided the cell is fleet configuration, the same in both worlds: one with known rates,
        # one without, an agent that names none, or a counts-only agent (no gender at all).
        bundle = draw(st.sampled_from(BUNDLES))
        # Age bands where the box estimates them (a gendered bundle and a drawn choice); the twin's withheld bands
        # redrawn, and all of its bands where its counts or split were.
        ages = bundle != "counts-only" and draw(st.booleans())
        tables = [draw(_table(cell))] if ages else [None]
        if ages:
            tables.append(draw(_table(other)) if other != cell else draw(_withheld_bands_redrawn(tables[0])))
        else:
            tables.append(None)
        for world, (f, m, u), table in ((first, cell, tables[0]), (second, other, tables[1])):
            message = aggregate(zone=zone, camera=f"cam-{i}", start=start, female=f, male=m, unknown=u)
            if bundle == "counts-only":
                message["gender"] = None
            elif bundle is not None:
                message["classifier"] = bundle
            if table:
                message["age"] = table
            world.append(message)
    return first, second


BUNDLES = ("gender@1", "gender@2", "nameless@9", None, "counts-only")
# Weak and vague rates (few validation people): most random cells fit them, so most answers carry a corrected share.
RATES = {"female": {"female": 5, "male": 2, "unknown": 4}, "male": {"female": 2, "male": 5, "unknown": 4}}


def _statuses() -> list[dict]:
    """The agents that report gender@1 and gender@2 with their decision rates (nameless@9 reports none)."""
    return [
        {
            "kind": "status",
            "schema_version": 1,
            "agent_id": f"agent-{version}",
            "site_id": "mall",
            "state": "online",
            "sent_at": START.isoformat(),
            "fps": 5.0,
            "latency_ms": 20.0,
            "outbox_depth": 0,
            "version": "test",
            "cameras": [],
            "models": [
                {
                    "bundle": "gender",
                    "version": version,
                    "task": "gender-classification",
                    "precision": "int8",
                    "parity": "passed",
                    "decision_rates": {"counts": RATES},
                }
            ],
        }
        for version in ("1", "2")
    ]


def _iso(hour: int) -> str:
    return (START + timedelta(hours=hour)).isoformat().replace("+00:00", "Z")


@st.composite
def queries(draw: st.DrawFn) -> tuple[str, dict]:
    start = draw(st.integers(-24, HOURS))
    end = draw(st.integers(start + 1, HOURS + 48))
    zones = draw(st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True))
    params: dict = {"start": _iso(start), "end": _iso(end), "zone": zones}
    path = draw(
        st.sampled_from(
            [
                "traffic/series",
                "traffic/totals",
                "traffic/compare",
                "traffic/heatmap",
                "traffic/peak-hours",
                "traffic/export.csv",
                "traffic/ages",
                "visitors",
                "insights/ad-placement",
            ]
        )
    )
    if path in ("traffic/series", "traffic/export.csv", "traffic/ages"):
        params["granularity"] = draw(st.sampled_from(["hour", "day", "week"]))
    if path == "traffic/ages" and draw(st.booleans()):
        params["audience"] = draw(st.sampled_from(["all", "female", "male", "unknown"]))
        params["age"] = draw(st.sampled_from(["0-12", "25-34", "18-34", "35+", "65+"]))
    if path == "visitors":
        del params["zone"]  # the site's entrances and cameras
        params["granularity"] = draw(st.sampled_from(["hour", "day"]))
    if path == "insights/ad-placement":
        params["audience"] = draw(st.sampled_from(["all", "female", "male"]))
        params["limit"] = 1000
        if draw(st.booleans()):
            params["age"] = draw(st.sampled_from(["25-34", "18-34", "35+"]))
            params["sort"] = draw(st.sampled_from(["audience", "share"])) if params["audience"] != "all" else "audience"
    return f"/api/v1/sites/mall/{path}", params


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    folder: Path = tmp_path_factory.mktemp("twins")
    running = [make_server(f"sqlite:///{folder / name}.db") for name in ("first", "second")]
    first, second = (next(server) for server in running)
    yield first, second
    for server in running:
        server.close()


# A site's hours of the week and days are local: UTC, an hour off it across a change of clocks (London's ends on
# 2026-10-25, in the range), half an hour off (Kolkata) and a half hour behind with a change of clocks (St John's).
TIME_ZONES = ("UTC", "Europe/London", "Asia/Kolkata", "America/St_Johns")


def _load(server: Server, messages: list[dict], timezone: str) -> None:
    with server.db.write() as session:
        for table in TABLES:
            session.execute(text(f"DELETE FROM {table}"))
    response = server.ingest(*_statuses(), *messages)
    assert response.status_code == 200 and not response.json()["rejected"], response.text
    if timezone != "UTC":
        changed = server.client.patch(
            "/api/v1/sites/mall", json={"timezone": timezone}, headers=server.headers("admin")
        )
        assert changed.status_code == 200, changed.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(worlds=twin_worlds(), timezone=st.sampled_from(TIME_ZONES), asked=st.lists(queries(), min_size=1, max_size=6))
def test_no_query_answer_depends_on_a_withheld_value(
    twins: tuple[Server, Server], worlds: tuple[list[dict], list[dict]], timezone: str, asked: list[tuple[str, dict]]
) -> None:
    for server, messages in zip(twins, worlds, strict=True):
        _load(server, messages, timezone)
    # Beside the drawn queries, every hour of every zone in two tables: a value that leaks anywhere shows there.
    everything = {"start": _iso(-24), "end": _iso(HOURS + 48), "zone": list(ZONES), "granularity": "hour"}
    whole = [(f"/api/v1/sites/mall/traffic/{path}", everything) for path in ("export.csv", "ages")]
    for path, params in [*whole, *asked]:
        one, other = (server.get(path, **params) for server in twins)
        if one.status_code == 404:  # a zone the drawn cells never created
            assert other.status_code == 404
            continue
        assert one.status_code == other.status_code == 200, one.text
        assert one.text == other.text, f"{path} {params} reveals a withheld value"
