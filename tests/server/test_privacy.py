"""k-anonymity: small counts are hidden, and no hidden count can be recovered from a total minus its parts."""

from __future__ import annotations

import numpy as np
from footfall.server.privacy import suppress_table
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.server.conftest import BASE, Server, aggregate, minutes

K = 5


def _lines(parts: np.ndarray, mask) -> list[list[bool]]:  # type: ignore[no-untyped-def]
    """Every 'total = sum of parts' relation in a table as the list of its cells' hidden flags."""
    lines = [[*mask.parts[r], mask.row_totals[r]] for r in range(parts.shape[0])]
    lines += [[*mask.parts[:, c], mask.column_totals[c]] for c in range(parts.shape[1])]
    lines.append([*mask.row_totals, mask.grand_total])
    lines.append([*mask.column_totals, mask.grand_total])
    return lines


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda rows: st.lists(st.lists(st.integers(0, 40), min_size=3, max_size=3), min_size=rows, max_size=rows)
    )
)
def test_no_line_of_the_table_has_exactly_one_hidden_cell(rows: list[list[int]]) -> None:
    parts = np.array(rows)
    mask = suppress_table(parts, K)
    small = (parts >= 1) & (parts < K)
    assert mask.parts[small].all(), "every count from 1 to k-1 is hidden"
    totals = parts.sum(axis=1)
    assert mask.row_totals[(totals >= 1) & (totals < K)].all()
    for line in _lines(parts, mask):
        assert sum(line) != 1, f"one hidden cell in a line can be derived by subtraction: {rows}"


def test_complementary_cell_is_the_smallest_other_part() -> None:
    mask = suppress_table([[3, 40, 12]], K)
    assert mask.parts.tolist() == [[True, False, True]]  # 3 is small; 12 hides it from 55 − 40
    assert not mask.row_totals[0]


def test_zeros_are_shown_and_large_counts_untouched() -> None:
    mask = suppress_table([[0, 0, 0], [50, 60, 7]], K)
    assert not mask.parts.any() and not mask.row_totals.any()


def test_the_api_never_lets_a_small_gender_count_be_derived(server: Server) -> None:
    # Hour 1: 3 women (below k) among 40 people; hour 2: plenty of everyone.
    server.ingest(
        aggregate(start=BASE, female=3, male=30, unknown=7),
        aggregate(start=BASE + minutes(60), female=25, male=20, unknown=9),
    )
    body = server.get(
        "/api/v1/sites/mall/traffic/series", start="2026-11-16T00:00:00Z", end="2026-11-16T03:00:00Z"
    ).json()
    first, second = body["points"]
    assert first["female"] is None and first["suppressed"] is True
    # people − male − unknown would give female back unless another part of the hour is hidden too.
    visible = [first[c] for c in ("people", "male", "unknown")]
    assert visible.count(None) >= 1
    # Across hours, the range total of women minus the other hour must not give it back either.
    assert body["totals"]["female"] is None or second["female"] is None
    assert first["female_share"] is None  # a share would give the count back as well
    for path in ("compare", "heatmap", "peak-hours", "totals"):
        text = server.get(
            f"/api/v1/sites/mall/traffic/{path}", start="2026-11-16T00:00:00Z", end="2026-11-16T01:00:00Z"
        ).text
        assert '"female":3' not in text.replace(" ", ""), path
    csv = server.get(
        "/api/v1/sites/mall/traffic/export.csv", start="2026-11-16T00:00:00Z", end="2026-11-16T03:00:00Z"
    ).text.splitlines()
    assert csv[1].split(",")[8] == "" and csv[1].endswith(",true")


def test_k_is_configurable(sqlite_url: str) -> None:
    from tests.server.conftest import make_server

    for s in make_server(sqlite_url, k_anonymity=2):
        s.ingest(aggregate(female=3, male=30, unknown=7))
        point = s.get(
            "/api/v1/sites/mall/traffic/series", start="2026-11-16T00:00:00Z", end="2026-11-16T01:00:00Z"
        ).json()["points"][0]
        assert point["female"] == 3 and point["suppressed"] is False
