"""Turns sums of released values into the API's JSON counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from fastapi.responses import Response

# The counts of every answer, in the order the CSV export writes them (shares and flags follow in JSON).
COUNT_COLUMNS = ("people", "female", "male", "unknown", "unsplit", "withheld_cells", "people_lower_bound")


class FastJSONResponse(Response):
    """JSON encoded by orjson, for long responses built as plain dicts (a 90-day hourly series is 2,160
    points, ~360 KB): the standard library's encoder took 8 ms of such a request, orjson takes 0.5 ms."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def counts_table(
    people: np.ndarray,
    parts: np.ndarray,
    withheld: np.ndarray,
    starts: list[str] | None = None,
    labels: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The API's counts for every row of sums of released values (footfall.server.queries.Rows), at once
    (numpy: a 90-day hourly series is 2,160 rows); with ``starts`` and ``labels``, each row begins with its
    "start" and "label".

    A count is ``null`` only when nothing behind it was released: ``people`` when every cell with people was
    withheld, the split when no cell with people released one; ``female`` and ``male`` (like their shares) also
    when no person of the released split was classified: a counts-only site's people are all unknown, which is no
    gender figure at all, not zero women and zero men (an hour with nobody in it has 0 of each).
    ``people_lower_bound`` says that withheld cells are left out of ``people``; ``unsplit`` are people of cells
    whose split was withheld."""
    n = len(people)
    if n == 0:
        return []
    people = np.asarray(people, np.int64)
    parts = np.asarray(parts, np.int64).reshape(n, 3)
    withheld = np.asarray(withheld, np.int64)
    female, male, unknown = (parts[:, i] for i in range(3))
    split = parts.sum(axis=1)
    unsplit = people - split
    people_hidden = (people == 0) & (withheld > 0)
    split_hidden = people_hidden | ((split == 0) & (people > 0))
    classified = female + male
    # People none of whom was classified (a counts-only site) have no gender figure; an hour of nobody has 0 of each.
    unclassified = (classified == 0) & (people > 0)
    share_visible = ~split_hidden & (classified > 0)
    safe = np.where(classified > 0, classified, 1)
    female_share = np.where(share_visible, np.round(female / safe, 4), np.nan)
    male_share = np.where(share_visible, np.round(male / safe, 4), np.nan)

    def column(values: np.ndarray, hidden: np.ndarray) -> list[Any]:
        out = values.astype(object)
        out[hidden] = None
        listed: list[Any] = out.tolist()
        return listed

    def shares(values: np.ndarray) -> list[Any]:
        out = values.astype(object)
        out[np.isnan(values)] = None
        listed: list[Any] = out.tolist()
        return listed

    names: tuple[str, ...] = (*COUNT_COLUMNS, "suppressed", "female_share", "male_share")
    columns = [
        column(people, people_hidden),
        column(female, split_hidden | unclassified),
        column(male, split_hidden | unclassified),
        column(unknown, split_hidden),
        unsplit.tolist(),
        withheld.tolist(),
        (withheld > 0).tolist(),
        ((withheld > 0) | (unsplit > 0)).tolist(),
        shares(female_share),
        shares(male_share),
    ]
    if starts is not None and labels is not None:
        names, columns = ("start", "label", *names), [starts, labels, *columns]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def counts(people: int, parts: Sequence[int] | np.ndarray, withheld: int) -> dict[str, Any]:
    """:func:`counts_table` of one row."""
    return counts_table(np.array([people]), np.array([parts]), np.array([withheld]))[0]
