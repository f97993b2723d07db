"""The corrected female share (issue #14) on the server, attacked with synthetic buckets whose truth is known:
decisions made exactly as a bundle with known rates would make them for a crowd of known share. On SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
import io
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from footfall.core.quantify import DecisionCounts, DecisionRates, corrected_share
from footfall.server.rollups import daily_vs_hourly, raw_vs_classifiers, raw_vs_hourly
from footfall.server.shares import Share, estimate_rows
from sqlalchemy import text

from tests.server.conftest import (
    BASE,
    Server,
    _fresh_postgres_database,
    agent_status,
    aggregate,
    encoded,
    fixed_date_ingestor,
    lock_waiters,
    make_server,
)

SERIES = "/api/v1/sites/mall/traffic/series"
TOTALS = "/api/v1/sites/mall/traffic/totals"
DAY = {"start": "2026-11-16T00:00:00Z", "end": "2026-11-17T00:00:00Z"}

# Women are read as men five times as often as men as women, and go unknown more often: classify and count
# leans male.
LEANS_MALE = {
    "female": {"female": 720, "male": 160, "unknown": 120},
    "male": {"female": 30, "male": 900, "unknown": 70},
}
# The reverse: men read as women.
LEANS_FEMALE = {
    "female": {"female": 900, "male": 40, "unknown": 60},
    "male": {"female": 200, "male": 700, "unknown": 100},
}


@dataclass
class Cells:
    """The released cells of one answer built a cell at a time, as rows of the server's cells query."""

    rows: list[tuple[str, int, int | bool, int, int, int, int]] = field(default_factory=list)

    def add(self, ref: str, people: int, shown: bool, cells: int, female: int, male: int, unknown: int) -> None:
        self.rows.append((ref, people, shown, cells, female, male, unknown))

    @property
    def sums(self) -> dict[str, list[int]]:
        """Per bundle, its cells' released female, male and unknown."""
        out: dict[str, list[int]] = {}
        for ref, _, _, _, *parts in self.rows:
            out[ref] = [a + b for a, b in zip(out.get(ref, [0, 0, 0]), parts, strict=True)]
        return out


def estimate(cells: Cells, rates: dict[str, DecisionRates], k: int) -> Share:
    """The corrected share of one answer."""
    return estimate_rows(1, [0] * len(cells.rows), cells.rows, rates, k)[0]


def estimate_many(points: list[Cells], rates: dict[str, DecisionRates], k: int) -> list[Share]:
    """The corrected share of each of ``points``, estimated together."""
    answer = [i for i, cells in enumerate(points) for _ in cells.rows]
    return estimate_rows(len(points), answer, [row for cells in points for row in cells.rows], rates, k)


def status(agent: str, bundle: str, version: str, rates: dict | None) -> dict:
    model: dict = {"bundle": bundle, "version": version, "task": "gender-classification", "precision": "int8"}
    model["parity"] = "passed"
    if rates is not None:
        model["decision_rates"] = {"counts": rates, "source": "test"}
    return agent_status(agent=agent, models=[model])


def decided(people: int, share: float, rates: dict) -> tuple[int, int, int]:
    """The decisions a bundle with ``rates`` makes, in expectation, for ``people`` of whom ``share`` are women."""
    matrix = np.array([[rates[t][d] for d in ("female", "male", "unknown")] for t in ("female", "male")], float)
    matrix /= matrix.sum(axis=1, keepdims=True)
    expected = people * (share * matrix[0] + (1 - share) * matrix[1])
    female, male = (round(float(v)) for v in expected[:2])
    return female, male, people - female - male


def classified(*, classifier: str | None, people: int, share: float, rates: dict, **fields: object) -> dict:
    female, male, unknown = decided(people, share, rates)
    message = aggregate(female=female, male=male, unknown=unknown, **fields)  # type: ignore[arg-type]
    if classifier is not None:
        message["classifier"] = classifier
    return message


def hours(n: int) -> list[datetime]:
    return [BASE + timedelta(hours=h) for h in range(n)]


def test_an_agent_cannot_replace_a_known_bundles_rates(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    """The attack: a second agent (or a stolen agent key) reports other rates for the same bundle ref, which
    would skew every site's correction; the first rates stay, and the attempt is logged."""
    assert server.ingest(status("agent-1", "gender", "3", LEANS_MALE)).status_code == 200
    with caplog.at_level("WARNING", logger="footfall.server.classifiers"):
        assert server.ingest(status("agent-2", "gender", "3", LEANS_FEMALE)).status_code == 200
    [warning] = [r for r in caplog.records if "other decision rates for a known bundle" in r.getMessage()]
    assert warning.fields == {"bundle": "gender@3", "agent": "agent-2"}  # type: ignore[attr-defined]
    cells = [
        classified(classifier="gender@3", people=200, share=0.6, rates=LEANS_MALE, start=start, seq=i)
        for i, start in enumerate(hours(6))
    ]
    server.ingest(*cells)
    assert abs(server.get(TOTALS, **DAY).json()["totals"]["female_share_corrected"] - 0.6) < 0.005


def test_the_correction_recovers_a_known_share_that_classify_and_count_misses(server: Server) -> None:
    assert server.ingest(status("agent-1", "gender", "3", LEANS_MALE)).status_code == 200
    cells = [
        classified(classifier="gender@3", people=200, share=0.6, rates=LEANS_MALE, start=start, seq=i)
        for i, start in enumerate(hours(24))
    ]
    assert server.ingest(*cells).json()["accepted"] == 24
    totals = server.get(TOTALS, **DAY).json()["totals"]
    assert totals["people"] == totals["people_corrected"] == 4800
    assert totals["female_share"] < 0.56  # raw classify and count: 0.6 · 0.72 + 0.4 · 0.03 over the decided
    assert abs(totals["female_share_corrected"] - 0.6) < 0.005
    assert totals["female_share_low"] <= 0.6 <= totals["female_share_high"]
    assert totals["female_share_corrected_missing"] is None
    series = server.get(SERIES, **DAY).json()
    for point in series["points"]:  # each hour, 200 people, covers the truth too
        assert point["female_share_low"] <= 0.6 <= point["female_share_high"], point
        assert point["people_corrected"] == 200
    assert series["totals"]["female_share_corrected"] == totals["female_share_corrected"]
    [day] = server.get(SERIES, **DAY, granularity="day").json()["points"]
    assert day["people_corrected"] == 4800 and abs(day["female_share_corrected"] - 0.6) < 0.005
    with server.db.read() as session:
        assert raw_vs_classifiers(session) == [] and raw_vs_hourly(session) == []


def test_withheld_splits_do_not_pull_the_share_toward_an_even_split(server: Server) -> None:
    """The attack: a quiet zone, about 15 people an hour and 30 % women. An hour's split shows only where each of its
    female, male and unknown decisions is 0 or at least k, so the hours that show are the even ones, with few
    unknowns or many: from them alone this week's decisions fit no mix of the rates (no share), and other weeks read
    about 40 %. The withheld splits count through the chance that a split of their size is withheld, and the
    estimate finds the truth again."""
    server.ingest(status("agent-1", "gender", "3", LEANS_MALE))
    matrix = np.array([[LEANS_MALE[t][d] for d in ("female", "male", "unknown")] for t in ("female", "male")], float)
    matrix /= matrix.sum(axis=1, keepdims=True)
    rng = np.random.default_rng(11)
    messages, women, everyone, shown = [], 0, 0, np.zeros(3)
    for i, start in enumerate(hours(24 * 7)):
        people = int(rng.poisson(15))
        her = int(rng.binomial(people, 0.3))
        female, male, unknown = (
            int(v) for v in rng.multinomial(her, matrix[0]) + rng.multinomial(people - her, matrix[1])
        )
        if people >= 5:
            women, everyone = women + her, everyone + people
            if all(v == 0 or v >= 5 for v in (female, male, unknown)):
                shown += (female, male, unknown)
        message = aggregate(female=female, male=male, unknown=unknown, start=start, seq=i)
        message["classifier"] = "gender@3"
        messages.append(message)
    assert server.ingest(*messages).json()["accepted"] == 24 * 7
    truth = women / everyone
    alone = corrected_share([(DecisionCounts(*(int(v) for v in shown)), DecisionRates(counts=LEANS_MALE))])
    assert alone.share is None or abs(alone.share - truth) > 0.05  # what the shown splits alone said
    week = {"start": BASE.isoformat(), "end": (BASE + timedelta(days=7)).isoformat()}
    totals = server.get(TOTALS, **week).json()["totals"]
    assert totals["unsplit"] > totals["people"] / 2  # most hours withheld their split
    assert totals["people_corrected"] == totals["people"] == everyone
    assert abs(totals["female_share_corrected"] - truth) < 0.03, (totals, truth)
    assert totals["female_share_low"] <= truth <= totals["female_share_high"]
    days = server.get(SERIES, **week, granularity="day").json()
    assert days["totals"]["female_share_corrected"] == totals["female_share_corrected"]
    covered = [p["female_share_low"] <= truth <= p["female_share_high"] for p in days["points"]]
    assert sum(covered) >= 6, days["points"]


def test_intervals_widen_as_counts_shrink(server: Server) -> None:
    server.ingest(status("agent-1", "gender", "3", LEANS_MALE))
    people = (1000, 250, 60)  # one hour each, one zone each; each decision at least k, so every split is released
    server.ingest(
        *(classified(classifier="gender@3", people=n, share=0.5, rates=LEANS_MALE, zone=f"z{n}") for n in people)
    )
    widths = []
    for n in people:
        totals = server.get(TOTALS, **DAY, zone=f"z{n}").json()["totals"]
        assert totals["people_corrected"] == n
        assert totals["female_share_low"] <= 0.5 <= totals["female_share_high"]
        widths.append(totals["female_share_high"] - totals["female_share_low"])
    assert widths == sorted(widths) and widths[-1] > 3 * widths[0], widths


def test_buckets_of_two_bundles_are_corrected_with_their_own_rates(server: Server) -> None:
    """Two agents in one zone, one bundle each, leaning opposite ways: each hour is corrected with the rates of
    the bundle that decided it. Corrected with either bundle's rates alone, the day would be wrong."""
    server.ingest(status("agent-1", "gender", "3", LEANS_MALE), status("agent-2", "gender", "4", LEANS_FEMALE))
    cells = []
    for i, start in enumerate(hours(12)):  # agent-1 in the morning, agent-2 in the afternoon
        cells.append(classified(classifier="gender@3", people=150, share=0.45, rates=LEANS_MALE, start=start, seq=i))
        cells.append(
            classified(
                classifier="gender@4",
                people=150,
                share=0.45,
                rates=LEANS_FEMALE,
                agent="agent-2",
                camera="cam-2",
                start=start + timedelta(hours=12),
                seq=i,
            )
        )
    server.ingest(*cells)
    totals = server.get(TOTALS, **DAY).json()["totals"]
    assert abs(totals["female_share_corrected"] - 0.45) < 0.005, totals
    assert totals["female_share_low"] <= 0.45 <= totals["female_share_high"]
    decisions = (totals["female"], totals["male"], totals["unknown"])
    for wrong in (LEANS_MALE, LEANS_FEMALE):  # one bundle's rates for everyone: off by points
        alone = corrected_share([(DecisionCounts(*decisions), DecisionRates(counts=wrong))])
        assert alone.share is None or abs(alone.share - 0.45) > 0.02
    # An upgrade hour decided by both: corrected with the rates of the bundle that sent most of its buckets (ran
    # longer), gender@3 here for two minutes against one.
    mixed = BASE + timedelta(days=1)
    server.ingest(
        classified(classifier="gender@3", people=150, share=0.45, rates=LEANS_MALE, start=mixed, seq=100),
        classified(
            classifier="gender@3",
            people=150,
            share=0.45,
            rates=LEANS_MALE,
            start=mixed + timedelta(minutes=1),
            seq=101,
        ),
        classified(
            classifier="gender@4",
            people=20,
            share=0.45,
            rates=LEANS_FEMALE,
            agent="agent-2",
            camera="cam-2",
            start=mixed,
            seq=100,
        ),
    )
    hour = server.get(TOTALS, start="2026-11-17T00:00:00Z", end="2026-11-17T01:00:00Z").json()["totals"]
    assert hour["people_corrected"] == 320
    with server.db.read() as session:
        assert raw_vs_classifiers(session) == []


def test_a_bundle_without_known_rates_gives_no_corrected_share_and_says_why(server: Server) -> None:
    server.ingest(status("agent-1", "gender", "3", None))  # reports its bundle, but no rates
    unnamed = aggregate(female=60, male=60, unknown=10, camera="cam-2")  # an agent that names no bundle
    server.ingest(classified(classifier="gender@3", people=100, share=0.5, rates=LEANS_MALE))
    for zone_messages in ([], [unnamed]):
        server.ingest(*zone_messages)
        totals = server.get(TOTALS, **DAY).json()["totals"]
        assert totals["female_share_corrected"] is None and totals["female_share_low"] is None
        assert totals["female_share_corrected_missing"] == "unknown_rates"
        assert totals["female_share"] is not None  # the raw decisions stay available
    server.ingest(status("agent-1", "gender", "3", LEANS_MALE))  # rates learnt later apply to stored cells
    later = server.get(TOTALS, start=DAY["start"], end="2026-11-16T00:59:00Z").json()["totals"]
    # The unnamed bundle sent as many of the cell's buckets as gender@3, and comes first: still not corrected.
    assert later["female_share_corrected_missing"] == "unknown_rates"
    server.ingest(aggregate(female=30, male=30, unknown=5, camera="cam-2", seq=2, start=BASE + timedelta(hours=1)))
    server.ingest(
        classified(classifier="gender@3", people=100, share=0.5, rates=LEANS_MALE, start=BASE + timedelta(hours=2))
    )
    only_named = server.get(TOTALS, start="2026-11-16T02:00:00Z", end="2026-11-16T03:00:00Z").json()["totals"]
    assert only_named["female_share_corrected_missing"] is None and only_named["people_corrected"] == 100


def test_counts_only_cells_are_not_corrected(server: Server) -> None:
    server.ingest(status("agent-1", "gender", "3", LEANS_MALE))
    counts_only = aggregate(unknown=40, camera="cam-2")
    counts_only["gender"] = None
    server.ingest(
        classified(classifier="gender@3", people=200, share=0.6, rates=LEANS_MALE),  # hour 0: mixed
        counts_only,
        classified(classifier="gender@3", people=200, share=0.6, rates=LEANS_MALE, start=BASE + timedelta(hours=1)),
        {**counts_only, "bucket_start": "2026-11-16T02:00:00Z"},  # hour 2: counts-only alone
    )
    totals = server.get(TOTALS, **DAY).json()["totals"]
    assert totals["people"] == 480 and totals["people_corrected"] == 200  # only hour 1 is corrected
    assert totals["female_share_low"] <= 0.6 <= totals["female_share_high"]
    alone = server.get(TOTALS, start="2026-11-16T02:00:00Z", end="2026-11-16T03:00:00Z").json()["totals"]
    assert alone["female_share_corrected"] is None
    assert alone["female_share_corrected_missing"] == "no_classified_people" and alone["people_corrected"] == 0
    # The mixed hour's counts-only bucket sent again with gender (the site back in full mode) is corrected.
    again = classified(classifier="gender@3", people=40, share=0.6, rates=LEANS_MALE, camera="cam-2", seq=2)
    server.ingest(again)
    assert server.get(TOTALS, **DAY).json()["totals"]["people_corrected"] == 440
    with server.db.read() as session:
        assert raw_vs_classifiers(session) == []


def test_decisions_unlike_the_rates_are_not_corrected(server: Server) -> None:
    server.ingest(status("agent-1", "gender", "3", LEANS_MALE))
    server.ingest(aggregate(female=10, male=10, unknown=400) | {"classifier": "gender@3"})  # a camera unlike validation
    totals = server.get(TOTALS, **DAY).json()["totals"]
    assert totals["female_share_corrected"] is None
    assert totals["female_share_corrected_missing"] == "decisions_do_not_fit"


def test_the_csv_export_carries_the_raw_and_the_corrected_share(server: Server) -> None:
    server.ingest(status("agent-1", "gender", "3", LEANS_MALE))
    server.ingest(classified(classifier="gender@3", people=200, share=0.6, rates=LEANS_MALE))
    text = server.get("/api/v1/sites/mall/traffic/export.csv", **DAY).text
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert float(row["female_share_low"]) <= 0.6 <= float(row["female_share_high"])
    assert float(row["female_share"]) < 0.56 and row["people_corrected"] == "200"
    assert row["female_share_corrected_missing"] == ""


def test_many_points_at_once_agree_with_one_at_a_time() -> None:
    """The server estimates a series' points together, grouped by the bundles they use; each is what
    footfall.core.quantify.corrected_share says of it alone (from 3 people to 3,000, one bundle and two)."""
    rates = {"a@1": DecisionRates(counts=LEANS_MALE), "b@1": DecisionRates(counts=LEANS_FEMALE)}
    rng = np.random.default_rng(7)
    points = []
    for people in (3, 8, 20, 60, 200, 700, 3000):
        share = float(rng.uniform(0.2, 0.8))
        points.append({"a@1": decided(people, share, LEANS_MALE)})
        points.append({"a@1": decided(people, share, LEANS_MALE), "b@1": decided(people // 2, share, LEANS_FEMALE)})
    for groups, fast in zip(points, estimate_many([shown(p) for p in points], rates, 5), strict=True):
        alone = corrected_share([(DecisionCounts(*parts), rates[ref]) for ref, parts in sorted(groups.items())])
        assert fast.people == alone.people and (fast.missing == "decisions_do_not_fit") == (not alone.fits)
        if alone.share is None:
            continue
        assert fast.share == alone.share  # each stops its own EM: nothing of the block it is estimated in
        assert (fast.low, fast.high) == (alone.low, alone.high), (groups, fast, alone)


def test_ad_placement_ranks_by_the_corrected_share(server: Server) -> None:
    """Zone a's bundle reads men as women and zone b's reads women as men: by the raw decisions a has more women
    (56 % against 49 %), in truth b has (60 % against 45 %). The ranking follows the corrected estimate."""
    server.ingest(status("agent-1", "gender", "3", LEANS_MALE), status("agent-2", "gender", "4", LEANS_FEMALE))
    messages = []
    for week in range(4):
        start = BASE - timedelta(weeks=4 - week) + timedelta(hours=10)
        messages.append(
            classified(
                classifier="gender@4",
                people=300,
                share=0.45,
                rates=LEANS_FEMALE,
                agent="agent-2",
                zone="a",
                start=start,
            )
        )
        messages.append(
            classified(classifier="gender@3", people=300, share=0.6, rates=LEANS_MALE, zone="b", start=start)
        )
    server.ingest(*messages)
    body = server.get(
        "/api/v1/sites/mall/insights/ad-placement",
        start=(BASE - timedelta(weeks=4)).isoformat(),
        end=BASE.isoformat(),
        audience="female",
        sort="share",
    ).json()
    first, second = body["slots"]
    assert (first["zone_id"], second["zone_id"]) == ("b", "a")
    assert first["share_raw"] < second["share_raw"]
    assert abs(first["share"] - 0.6) < 0.01 and abs(second["share"] - 0.45) < 0.01
    assert first["share_low"] > second["share_high"]


def test_people_nobody_decided_get_no_corrected_share() -> None:
    """Found by review: 5 undecided people of a bundle whose women go undecided more often read as "100 % women"
    (interval 21-100 %), and the ad ranking offered the slot as an all-female audience. Undecided people alone hold
    no figure; with decided people beside them, they count through their expected split as before."""
    rates = {"a@1": DecisionRates(counts=LEANS_MALE), "b@2": DecisionRates(counts=LEANS_FEMALE)}
    for groups in ({"a@1": (0, 0, 5)}, {"a@1": (0, 0, 9), "b@2": (0, 0, 3)}):
        answer = estimate(shown(groups), rates, 5)
        assert answer.share is None and answer.missing == "no_classified_people", groups
        assert answer.people == sum(sum(parts) for parts in groups.values())
    mixed = estimate(shown({"a@1": (0, 0, 5), "b@2": decided(200, 0.5, LEANS_FEMALE)}), rates, 5)
    assert mixed.share is not None and mixed.people == 205


def test_a_bundle_without_rates_whose_cells_released_no_split_changes_nothing() -> None:
    """Found by the privacy property test: a series point whose only cell of an unknown bundle withheld its split
    (0, 0, 0 released) is corrected with the other bundle alone, and does not fail."""
    rates = {"a@1": DecisionRates(counts=LEANS_MALE)}
    groups = shown({"a@1": decided(200, 0.5, LEANS_MALE)})
    groups.add("nameless@9", 7, False, 1, 0, 0, 0)
    [many] = estimate_many([groups], rates, 5)
    assert many.share is not None and many.people == 200
    alone = corrected_share([(DecisionCounts(*groups.sums["a@1"]), rates["a@1"])])
    assert alone.share == pytest.approx(many.share, abs=1e-6)
    assert estimate(groups, rates, 5) == many


def test_answers_read_column_by_column_are_each_what_they_are_alone() -> None:
    """estimate_rows reads the cell rows of every answer of a query at once, the total as one answer more. Each
    answer, whatever its neighbours (two bundles, one without rates, withheld splits, people nobody decided, rows
    in any order), is what it is estimated alone, and the total is that of every row together."""
    rates = {"a@1": DecisionRates(counts=LEANS_MALE), "b@1": DecisionRates(counts=LEANS_FEMALE)}
    rng = np.random.default_rng(3)
    points = []
    for people in (60, 150, 600):  # shown splits: each part 0 or at least k
        split = decided(people, 0.4, LEANS_MALE)
        cells = Cells()
        cells.add("a@1", people, True, 1, *split)
        cells.add("a@1", 9, False, 3, 0, 0, 0)  # three hours of 9 whose splits were withheld
        points.append(cells)
    mixed = Cells()
    mixed.add("a@1", 80, True, 1, *decided(80, 0.4, LEANS_MALE))
    mixed.add("b@1", 60, True, 1, *decided(60, 0.4, LEANS_FEMALE))
    unrated, undecided, only_withheld = Cells(), Cells(), Cells()
    unrated.add("a@1", 100, True, 1, *decided(100, 0.4, LEANS_MALE))
    unrated.add("nameless@9", 8, True, 1, 5, 3, 0)
    undecided.add("a@1", 7, True, 1, 0, 0, 7)
    only_withheld.add("b@1", 6, False, 1, 0, 0, 0)
    points += [mixed, unrated, undecided, only_withheld, Cells()]
    for chosen in (points, [cells for cells in points if cells is not unrated]):
        answer = [i for i, cells in enumerate(chosen) for _ in cells.rows]
        rows = [row for cells in chosen for row in cells.rows]
        order = rng.permutation(len(rows))
        *each, total = estimate_rows(
            len(chosen), [answer[i] for i in order], [rows[i] for i in order], rates, 5, with_total=True
        )
        assert each == [estimate(cells, rates, 5) for cells in chosen]
        assert total == estimate(Cells(rows=list(rows)), rates, 5)
    assert [e.missing for e in each[-3:]] == ["no_classified_people"] * 3  # undecided, withheld only, nobody
    assert total.share is not None and total.people == sum(r[1] * r[3] for r in rows)  # withheld people too
    assert estimate(unrated, rates, 5).missing == "unknown_rates"


def test_no_answer_depends_on_the_answers_estimated_beside_it() -> None:
    """Found by review: EM stopped when a whole block of answers had converged, so a series' total, estimated with
    its points, moved their shares (and its own) in the 9th decimal, enough to cross a rounding or fit boundary.
    Random queries of up to 7 answers (three bundles and one without rates, withheld splits, undecided people):
    every answer, and the total, is exactly what it is estimated alone."""
    rates = {"a@1": DecisionRates(counts=LEANS_MALE), "b@1": DecisionRates(counts=LEANS_FEMALE)}
    rates["c@1"] = DecisionRates(counts={"female": LEANS_FEMALE["male"], "male": LEANS_MALE["female"]})
    refs = ["a@1", "b@1", "c@1", "zz@0"]
    rng = np.random.default_rng(1)
    for _ in range(80):
        answers, answer, rows = int(rng.integers(1, 8)), [], []
        for _ in range(int(rng.integers(0, 25))):
            ref, people, cells = refs[int(rng.choice(4, p=[0.4, 0.3, 0.2, 0.1]))], int(rng.integers(1, 40)), 1
            female = int(rng.integers(0, people + 1))
            male = int(rng.integers(0, people - female + 1))
            split = [(0, 0, 0), (0, 0, people), (female, male, people - female - male)][
                int(rng.choice(3, p=[0.4, 0.1, 0.5]))
            ]
            answer.append(int(rng.integers(0, answers)))
            rows.append((ref, people, int(sum(split) > 0), cells, *split))
        *each, total = estimate_rows(answers, answer, rows, rates, 5, with_total=True)
        for i, estimated in enumerate(each):
            mine = [row for a, row in zip(answer, rows, strict=True) if a == i]
            assert estimated == estimate_rows(1, [0] * len(mine), mine, rates, 5)[0]
        assert total == estimate_rows(1, [0] * len(rows), rows, rates, 5)[0]


def test_each_bundle_keeps_its_own_rates_whatever_order_its_rows_come_in() -> None:
    """Rows name their bundle; the answer reads each bundle's decisions with that bundle's rates, whichever
    bundle's row comes first (three bundles: every order), as corrected_share does with the groups named."""
    leans_more = {
        "female": {"female": 600, "male": 300, "unknown": 100},
        "male": {"female": 10, "male": 950, "unknown": 40},
    }
    rates = {
        ref: DecisionRates(counts=c) for ref, c in (("a@1", LEANS_MALE), ("b@1", LEANS_FEMALE), ("c@1", leans_more))
    }
    groups = {ref: decided(people, 0.3, rates[ref].counts) for ref, people in (("a@1", 400), ("b@1", 90), ("c@1", 250))}
    alone = corrected_share([(DecisionCounts(*groups[ref]), rates[ref]) for ref in sorted(groups)])
    for order in itertools.permutations(groups):
        [answer] = estimate_rows(1, [0, 0, 0], [(ref, sum(groups[ref]), 1, 1, *groups[ref]) for ref in order], rates, 5)
        assert answer.share == pytest.approx(alone.share, abs=1e-6), order
        assert answer.low == pytest.approx(alone.low, abs=1e-6) and answer.high == pytest.approx(alone.high, abs=1e-6)


def shown(groups: dict[str, tuple[int, int, int]]) -> Cells:
    """Each bundle's decisions as one cell whose split was shown."""
    cells = Cells()
    for ref, parts in groups.items():
        cells.add(ref, sum(parts), True, 1, *parts)
    return cells


def test_days_follow_a_time_zone_change_and_a_stricter_k(server: Server) -> None:
    """Days read the released splits of their hour cells: under a new time zone they are the new local days, and
    with a site's stricter k they are what the cells release with it."""
    server.ingest(status("agent-1", "gender", "3", LEANS_MALE), status("agent-2", "gender", "4", LEANS_FEMALE))
    cells = []
    for i, start in enumerate(hours(48)):
        bundle, rates, agent = ("gender@3", LEANS_MALE, "agent-1") if i % 3 else ("gender@4", LEANS_FEMALE, "agent-2")
        people = 30 + 7 * (i % 5)
        cells.append(classified(classifier=bundle, people=people, share=0.5, rates=rates, agent=agent, start=start))
    server.ingest(*cells)
    window = {"start": "2026-11-15T00:00:00Z", "end": "2026-11-19T00:00:00Z"}

    def consistent() -> None:
        with server.db.read() as session:
            assert daily_vs_hourly(session) == []

    def days() -> list[tuple[str, int]]:
        points = server.get(SERIES, **window, granularity="day").json()["points"]
        return [(p["label"], p["people_corrected"]) for p in points]

    consistent()
    assert [n for _, n in days()] and sum(n for _, n in days()) > 0
    admin = server.headers("admin")
    assert server.client.patch("/api/v1/sites/mall", json={"timezone": "Asia/Tokyo"}, headers=admin).status_code == 200
    consistent()
    tokyo = days()
    assert tokyo[0][0] == "2026-11-16" and len(tokyo) == 3  # 48 UTC hours from Monday 00:00 span three Tokyo days
    before = sum(n for _, n in tokyo)
    assert server.client.patch("/api/v1/sites/mall", json={"k": 12}, headers=admin).status_code == 200
    consistent()
    assert sum(n for _, n in days()) < before  # fewer splits released with k = 12


def test_a_day_of_23_hours_corrects_the_cells_of_its_own_hours(server: Server) -> None:
    """Day points read their hour cells grouped by local day in SQL, a query per stretch of one UTC offset:
    29 March 2026 in Berlin has 23 hours (23:00 UTC the day before to 22:00 UTC), and its corrected share is the
    one /totals gives for exactly those hours."""
    server.ingest(status("agent-1", "gender", "3", LEANS_MALE))
    admin = server.headers("admin")
    assert (
        server.client.patch("/api/v1/sites/mall", json={"timezone": "Europe/Berlin"}, headers=admin).status_code == 200
    )
    first = datetime(2026, 3, 28, 23, tzinfo=UTC)
    server.ingest(
        *[
            classified(
                classifier="gender@3",
                people=60 + h,
                share=0.5,
                rates=LEANS_MALE,
                start=first + timedelta(hours=h),
                seq=h,
            )
            for h in range(24)
        ]
    )
    days = server.get(SERIES, start="2026-03-28T00:00:00Z", end="2026-03-31T00:00:00Z", granularity="day").json()
    ours = [(p["label"], p["people"], p["people_corrected"]) for p in days["points"]]
    assert ours == [("2026-03-29", sum(range(60, 83)), sum(range(60, 83))), ("2026-03-30", 83, 83)]
    day = server.get(TOTALS, start=first.isoformat(), end=(first + timedelta(hours=23)).isoformat()).json()["totals"]
    assert day["female_share_corrected"] == days["points"][0]["female_share_corrected"]


def _bucket(agent: str, minute: int, counts: tuple[int, int, int], classifier: str | None) -> dict:
    female, male, unknown = counts
    message = aggregate(
        agent=agent, camera=agent, start=BASE + timedelta(minutes=minute), female=female, male=male, unknown=unknown
    )
    if classifier is None:  # a counts-only box: its people are all unknown
        message["gender"] = None
    else:
        message["classifier"] = classifier
    return message


ATTRIBUTION_READS = {
    "day": ("/api/v1/sites/mall/traffic/totals", DAY),
    "hour series": (SERIES, {"granularity": "hour", **DAY}),
    "day series": (SERIES, {"granularity": "day", **DAY}),
    "csv": ("/api/v1/sites/mall/traffic/export.csv", {"granularity": "hour", **DAY}),
}


@pytest.mark.parametrize(
    ("one", "other", "first_alone"),
    [
        # The same boxes sent the same buckets; one person came past the counts-only box, or nobody did.
        (
            [("box-2", 0, (0, 0, 0), None), ("box-1", 0, (10, 10, 5), "gender@3"), ("box-1", 1, (5, 5, 5), "gender@3")],
            [("box-2", 0, (0, 0, 1), None), ("box-1", 0, (10, 10, 5), "gender@3"), ("box-1", 1, (5, 5, 4), "gender@3")],
            False,
        ),
        # The same, the counts-only box's bucket stored on its own first: one for an hour no cell holds yet.
        (
            [("box-2", 0, (0, 0, 0), None), ("box-1", 0, (10, 10, 5), "gender@3"), ("box-1", 1, (5, 5, 5), "gender@3")],
            [("box-2", 0, (0, 0, 1), None), ("box-1", 0, (10, 10, 5), "gender@3"), ("box-1", 1, (5, 5, 4), "gender@3")],
            True,
        ),
        # An upgrade hour: the old bundle ran two minutes, the new one one; which decided more people is theirs.
        (
            [
                ("box-1", 0, (10, 10, 5), "gender@3"),
                ("box-1", 1, (5, 5, 2), "gender@3"),
                ("box-3", 2, (1, 1, 1), "gender@4"),
            ],
            [
                ("box-1", 0, (1, 1, 0), "gender@3"),
                ("box-1", 1, (1, 1, 0), "gender@3"),
                ("box-3", 2, (14, 14, 8), "gender@4"),
            ],
            False,
        ),
    ],
    ids=["a-counts-only-box", "its-empty-bucket-first", "an-upgrade-hour"],
)
def test_which_bundle_corrects_a_cell_tells_nothing_of_its_people(
    tmp_path, one: list, other: list, first_alone: bool
) -> None:  # type: ignore[no-untyped-def]
    """A cell is attributed by the buckets each bundle sent (fleet configuration), not by the people each decided:
    attributed by people, the corrected share (null, or another bundle's rates) told that a person came past a
    counts-only box, or which bundle decided more, facts about fewer than k people. Two worlds with the same
    buckets and the same released counts, whose people split otherwise between the boxes, answer alike."""
    seen = []
    for name, buckets in (("one", one), ("other", other)):
        for server in make_server(f"sqlite:///{tmp_path / name}.db"):
            statuses = [status("box-1", "gender", "3", LEANS_MALE), status("box-3", "gender", "4", LEANS_FEMALE)]
            assert server.ingest(*statuses).status_code == 200
            messages = [_bucket(*b) for b in buckets]
            for batch in [messages[:1], messages[1:]] if first_alone else [messages]:
                assert server.ingest(*batch).status_code == 200
            seen.append({read: server.get(path, **params).text for read, (path, params) in ATTRIBUTION_READS.items()})
            with server.db.read() as session:
                assert raw_vs_classifiers(session) == []
    for read in ATTRIBUTION_READS:
        assert seen[0][read] == seen[1][read], f"{read} depends on which box decided whom"


def _store_an_empty_bucket_while_a_cell_is_created(server: Server) -> None:
    """Replica one stores box-1's people for an hour no cell holds yet and keeps its transaction open; replica
    two stores a counts-only box's empty bucket for that hour meanwhile; then replica one commits."""
    import threading

    from footfall.server.ingest import Incoming

    people = Incoming(encoded(_bucket("box-1", 0, (10, 10, 5), "gender@3")), "http")
    empty = Incoming(encoded(_bucket("box-2", 1, (0, 0, 0), None)), "http")
    first, second = fixed_date_ingestor(server.db), fixed_date_ingestor(server.db)
    done = threading.Event()

    def store_empty() -> None:
        second.ingest([empty])
        done.set()

    def waiting_or_done() -> bool:
        return done.is_set() or lock_waiters(server.db) > 0

    replica = threading.Thread(target=store_empty)
    with server.db.write() as session:
        first._ingest(session, [people])
        replica.start()
        deadline = time.monotonic() + 60
        while not waiting_or_done():
            assert time.monotonic() < deadline, "the second replica neither waited nor finished"
            time.sleep(0.01)
    replica.join(60)
    assert done.is_set()


@pytest.mark.postgres
def test_an_empty_bucket_stored_while_another_replica_creates_its_cell_still_counts(postgres_url: str) -> None:
    """Found by review: two replicas at once, one creating a cell with people, the other storing a counts-only
    box's empty bucket for it. A row lock cannot cover a cell that does not exist, so each missed the other's
    counts and the cell stayed attributed to box-1's bundle (as if the counts-only box had not run), where one
    person past that box would have made it unattributed. The second replica now waits for the first."""
    for url in _fresh_postgres_database(postgres_url):
        for server in make_server(url):
            server.ingest(status("box-1", "gender", "3", LEANS_MALE))
            # Both boxes known and the zone created an hour later: only the cell is new.
            later = [_bucket("box-1", 60, (5, 5, 0), "gender@3"), _bucket("box-2", 60, (0, 0, 0), None)]
            assert server.ingest(*later).status_code == 200
            _store_an_empty_bucket_while_a_cell_is_created(server)
            with server.db.read() as session:
                assert raw_vs_classifiers(session) == []
                cells = session.execute(text("SELECT hour_start, classifier FROM rollup_hourly ORDER BY hour_start"))
                assert [bundle for _, bundle in cells] == [None, None]


def _three_zones_one_crowd(server: Server, camera_counts: bool) -> dict:
    """One camera sees 300 people walk through three zones each (900 passes), half of them women; with
    ``camera_counts``, the agent also sends the camera's distinct visitors (its ``camera`` measure), as agents do."""
    server.ingest(status("agent-1", "gender", "3", LEANS_MALE))
    messages = []
    for i, zone in enumerate(("west", "mid", "east")):
        messages.append(
            classified(
                classifier="gender@3", people=300, share=0.5, rates=LEANS_MALE, zone=zone, seq=i + 1, seconds=3600
            )
        )
    if camera_counts:
        camera = classified(classifier="gender@3", people=300, share=0.5, rates=LEANS_MALE, zone="cam-1", seconds=3600)
        messages.append(camera | {"measure": "camera"})
    assert server.ingest(*messages).json()["accepted"] == len(messages)
    return server.get(TOTALS, **DAY).json()["totals"]


INTERVAL = ("female_share_corrected", "female_share_low", "female_share_high")


def test_an_interval_over_overlapping_zones_counts_people_not_passes(server: Server, tmp_path: Path) -> None:
    """Found in a new-operator review: the overview's female share pooled the passes of zones one person walks
    through one after another, and its interval treated 900 passes as 900 people. Over several zones each count is
    taken as the passes per distinct person the cameras feeding them counted times fewer people (the design effect
    of counting each person several times): here three zones of the same 300 people answer as one zone of them,
    where the sampling part of the interval was √3 too narrow (the rates' part does not shrink with more people)."""
    pooled = _three_zones_one_crowd(server, camera_counts=True)
    for twin in make_server(f"sqlite:///{tmp_path / 'twin.db'}"):
        unknown = _three_zones_one_crowd(twin, camera_counts=False)  # agents that send no camera counts
    assert pooled["people"] == unknown["people"] == pooled["people_corrected"] == 900
    assert (pooled["passes_per_person"], unknown["passes_per_person"]) == (3.0, None)
    one = server.get(TOTALS, **DAY, zone="west").json()["totals"]  # one zone: each person passes it once
    assert one["passes_per_person"] is None and one["people_corrected"] == 300
    assert [pooled[name] for name in INTERVAL] == pytest.approx([one[name] for name in INTERVAL], abs=2e-4)
    narrow = unknown["female_share_high"] - unknown["female_share_low"]
    assert narrow < (one["female_share_high"] - one["female_share_low"]) / 1.3  # what it said: far too sure
    days = server.get(SERIES, **DAY, granularity="day").json()
    assert days["totals"]["passes_per_person"] == 3.0
    assert [days["totals"][name] for name in INTERVAL] == [pooled[name] for name in INTERVAL]
    assert [days["points"][0][name] for name in INTERVAL] == [pooled[name] for name in INTERVAL]


def _crowd(zone: str, camera: str, people: int, seq: int, measure: str = "passes") -> dict:
    message = classified(
        classifier="gender@3",
        people=people,
        share=0.5,
        rates=LEANS_MALE,
        zone=zone,
        camera=camera,
        seq=seq,
        seconds=3600,
    )
    return message | {"measure": measure}


def test_passes_per_person_leaves_out_hours_a_camera_count_is_missing_or_withheld(server: Server) -> None:
    """Found in review: a camera withheld for privacy (a zone of its, outside the answer, had 2 people) counted 0
    people beside its zones' passes, and a camera of an older agent (no camera count) none: passes over too few
    people, an interval widened for nothing. Such hours are left out of both sums."""
    server.ingest(status("agent-1", "gender", "3", LEANS_MALE))
    later = BASE + timedelta(hours=1)
    messages = [
        # 09:00: cam-1 sees 300 pass west and mid; cam-2 sees 300 pass east and 2 pass x (its hour is withheld).
        _crowd("west", "cam-1", 300, 1),
        _crowd("mid", "cam-1", 300, 2),
        _crowd("cam-1", "cam-1", 300, 3, "camera"),
        _crowd("east", "cam-2", 300, 4),
        _crowd("x", "cam-2", 2, 5),
        _crowd("cam-2", "cam-2", 300, 6, "camera"),
    ]
    assert server.ingest(*messages).json()["accepted"] == len(messages)
    with_withheld = server.get(TOTALS, **DAY, zone=["west", "mid", "east"]).json()["totals"]
    assert with_withheld["passes_per_person"] is None  # the only hour had a withheld camera
    # 10:00: both cameras counted, cam-2 without its zone x: 900 passes of 600 people.
    messages = [
        {**message, "bucket_start": later.isoformat().replace("+00:00", "Z"), "seq": 10 + i}
        for i, message in enumerate(messages)
        if message["zone_id"] != "x"
    ]
    assert server.ingest(*messages).json()["accepted"] == len(messages)
    assert server.get(TOTALS, **DAY, zone=["west", "mid", "east"]).json()["totals"]["passes_per_person"] == 1.5
    # An older agent's camera sends no count of its own: its hours say nothing of how many people made the passes.
    older = [_crowd(zone, "cam-3", 300, 20 + i) for i, zone in enumerate(("south", "north"))]
    assert server.ingest(*older).json()["accepted"] == 2
    assert server.get(TOTALS, **DAY, zone=["south", "north"]).json()["totals"]["passes_per_person"] is None


def test_passes_per_person_reads_every_count_as_that_many_times_fewer_people() -> None:
    """An answer over zones where each person made two passes is estimated as the same cells would be with half of
    every count (the shown decisions and the cells whose splits were withheld): the same estimate and interval, with
    people_corrected still counting the passes."""
    rates = {"a@1": DecisionRates(counts=LEANS_MALE)}
    double, half = Cells(), Cells()
    double.add("a@1", 120, True, 2, *(2 * v for v in decided(120, 0.35, LEANS_MALE)))
    double.add("a@1", 9, False, 6, 0, 0, 0)  # six hours of 9 whose splits were withheld
    half.add("a@1", 120, True, 1, *decided(120, 0.35, LEANS_MALE))
    half.add("a@1", 9, False, 3, 0, 0, 0)
    [widened] = estimate_rows(1, [0, 0], double.rows, rates, 5, passes_per_person=2.0)
    alone = estimate(half, rates, 5)
    plain = estimate(double, rates, 5)
    assert (widened.share, widened.low, widened.high) == pytest.approx((alone.share, alone.low, alone.high), abs=1e-9)
    assert widened.people == plain.people == 2 * alone.people and widened.passes_per_person == 2.0
    assert (widened.high - widened.low) > (plain.high - plain.low) * 1.2  # ~√2 on the sampling part
