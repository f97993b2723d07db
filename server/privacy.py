"""k-anonymity for every number the API reports: small counts are suppressed, and so are their complements.

A table of counts has parts (rows × columns: e.g. time buckets × female/male/unknown), row totals (people per
bucket), column totals (people per gender over the range) and a grand total. A count from 1 to k-1 is a
*primary* suppression. Any line "total = sum of parts" with exactly one hidden cell would give that cell away
by subtraction, so a second cell of the line (the smallest visible one, preferring non-zero parts) is hidden
too, repeated until every line hides none or at least two of its cells.

Zero is shown: it identifies nobody. Limitation: this protects each response; comparing answers to
different queries (a range and a range one hour shorter) is not audited across requests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_ZERO_COST = 1e15  # zeros are hidden last: hiding them protects little
_TOTAL_COST = 0.5  # on ties a part is hidden before the total


@dataclass(frozen=True)
class SuppressedTable:
    """Boolean masks, True where the cell must be reported as suppressed."""

    parts: np.ndarray  # (rows, columns)
    row_totals: np.ndarray  # (rows,)
    column_totals: np.ndarray  # (columns,)
    grand_total: bool


def _primary(values: np.ndarray, k: int) -> np.ndarray:
    return (values >= 1) & (values < k)


def _fix_lines(parts: np.ndarray, totals: np.ndarray, hidden_parts: np.ndarray, hidden_totals: np.ndarray) -> bool:
    """Lines are the rows of ``parts`` with their ``totals``. Hides one more cell in each line with exactly
    one hidden cell; returns whether anything changed. Arrays are updated in place."""
    if parts.size == 0:
        return False
    count = hidden_parts.sum(axis=1) + hidden_totals
    lines = np.flatnonzero(count == 1)
    if lines.size == 0:
        return False
    part_cost = np.where(parts[lines] > 0, parts[lines].astype(float), _ZERO_COST)
    part_cost[hidden_parts[lines]] = np.inf
    total_cost = np.where(totals[lines] > 0, totals[lines].astype(float) + _TOTAL_COST, _ZERO_COST + _TOTAL_COST)
    total_cost[hidden_totals[lines]] = np.inf
    best_part = part_cost.argmin(axis=1)
    best_part_cost = part_cost[np.arange(lines.size), best_part]
    use_total = total_cost < best_part_cost
    hidden_totals[lines[use_total]] = True
    hidden_parts[lines[~use_total], best_part[~use_total]] = True
    return True


def suppress_table(parts: np.ndarray | list[list[int]], k: int, *, column_totals: bool = True) -> SuppressedTable:
    """Masks for a table whose reported totals are the row, column and grand sums of ``parts``.

    ``column_totals=False`` when a response reports rows only (each row with its own total), so only the
    row relations can be used to subtract."""
    values = np.asarray(parts, dtype=np.int64)
    if values.ndim != 2:
        values = values.reshape(len(values), -1) if values.size else np.zeros((0, 0), np.int64)
    row_totals = values.sum(axis=1)
    column_sums = values.sum(axis=0)
    grand = np.array([values.sum()])
    hidden = _primary(values, k)
    hidden_rows = _primary(row_totals, k)
    hidden_columns = _primary(column_sums, k)
    hidden_grand = _primary(grand, k)
    changed = True
    while changed:
        changed = _fix_lines(values, row_totals, hidden, hidden_rows)
        if not column_totals:
            continue
        changed |= _fix_lines(values.T, column_sums, hidden.T, hidden_columns)
        # The margins form lines too: grand = sum of row totals = sum of column totals.
        changed |= _fix_lines(row_totals[None, :], grand, hidden_rows[None, :], hidden_grand)
        changed |= _fix_lines(column_sums[None, :], grand, hidden_columns[None, :], hidden_grand)
    return SuppressedTable(hidden, hidden_rows, hidden_columns, bool(hidden_grand[0]))


def shown(value: int, hidden: bool) -> int | None:
    """What the API reports for a count: the number, or None (with a ``suppressed`` flag) when hidden."""
    return None if hidden else int(value)
