"""The age bands that ``footfall process`` reports beside its gender counts, when the gender bundle has an age
head: people per gender decision and age band (footfall.core.ages; edge/band_allotment.py) for the camera's
distinct visitors and for each zone's and line's passes, summed over the run's aggregates as the server would
sum them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from footfall.core.ages import AGE_DECISIONS
from footfall.core.wire import GENDER_DECISIONS, AggregateMessage


def _empty() -> dict[str, dict[str, int]]:
    return {gender: dict.fromkeys(AGE_DECISIONS, 0) for gender in GENDER_DECISIONS}


def _add(total: dict[str, dict[str, int]], message: AggregateMessage) -> None:
    for gender, row in message.age_counts().items():
        for band, people in row.items():
            total[gender][band] += people


def age_band_section(messages: Iterable[AggregateMessage], estimated: bool) -> dict[str, Any] | None:
    """The ``age_bands`` part of the process summary: ``camera_visitors`` and ``zones`` (by zone id), each
    gender decision → age decision → people; None when no age was estimated (a bundle without an age head)."""
    if not estimated:
        return None
    visitors = _empty()
    zones: dict[str, dict[str, dict[str, int]]] = {}
    for message in messages:
        if message.measure == "camera":
            _add(visitors, message)
        elif message.measure == "passes":
            _add(zones.setdefault(message.zone_id, _empty()), message)
    return {"camera_visitors": visitors, "zones": zones}


def band_totals(table: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """People per age decision, all genders together."""
    return {band: sum(row.get(band, 0) for row in table.values()) for band in AGE_DECISIONS}


def format_age_table(summary: Mapping[str, Any]) -> str:
    """People per age band of each crowd of the summary (the same rows as the gender table), and the women and
    men among them; or a line saying the bundle estimates no age."""
    section = summary.get("age_bands")
    if not section:
        return "age bands: the gender bundle has no age head, so no age was estimated"
    rows = [("camera " + str(summary["camera_id"]) + " visitors", section["camera_visitors"])]
    rows += [(f"zone/line {zone_id} passes", table) for zone_id, table in section["zones"].items()]
    # The age decision 'unknown' is headed 'age?', apart from the gender decision 'unknown' of the rows below it.
    header = ("crowd (people per age band)", *("age?" if band == "unknown" else band for band in AGE_DECISIONS))
    lines = [header]
    for name, table in rows:
        totals = band_totals(table)
        lines.append((name, *(str(totals[band]) for band in AGE_DECISIONS)))
        # Every gender decision, so that each column adds up to the crowd's row.
        for gender, label in (("female", "female"), ("male", "male"), ("unknown", "gender unknown")):
            lines.append((f"  of them {label}", *(str(table[gender][band]) for band in AGE_DECISIONS)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(line))
        for line in lines
    ]
    text.append(
        "age bands: each band's count follows the sum of the people's band probabilities, read from the same best "
        "crops as their gender (an estimate of how many of each band passed, not any one person's age; not "
        "corrected for the model's mistakes); age?: no age was estimated for them"
    )
    return "\n".join(text)
