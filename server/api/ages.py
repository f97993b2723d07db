"""Age bands in answers: parsing a band audience, refusing audiences under 18, and turning sums of released age
cells (footfall.server.queries.AgeRows) into the API's per-bucket gender × band tables."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from fastapi import HTTPException
from footfall.core.ages import AGE_BANDS, AGE_DECISIONS, AGE_UNKNOWN, BAND_LOWER_EDGES, MINOR_BANDS, AgeBand, parse_band
from footfall.server.queries import GENDERS, AgeRows

MINORS_REFUSED = (
    "age: audiences under 18 are refused: footfall ranks no placement for minors (bands 0-12 and 13-17, or a range "
    "that includes them), so no ad can be targeted at children; their people are still counted in the traffic and "
    "visitor figures"
)


def parse_age(text: str) -> list[AgeBand]:
    """The bands a query's ``age`` names: one band ('25-34', '65+'), several ('18-24,25-34'), or a range whose
    ends are band edges ('18-34', '35+'). A 422 names the bands for anything else."""
    bands: list[AgeBand] = []
    for part in text.split(","):
        try:
            bands.append(parse_band(part))
            continue
        except ValueError as exc:
            error = str(exc)
        match = re.fullmatch(r"\s*([0-9]{1,3})\s*(?:-\s*([0-9]{1,3})|\+)\s*", part)
        if match is None:
            raise HTTPException(422, f"age: {error}; or a range whose ends are band edges, e.g. '18-34'")
        lower = int(match[1])
        upper = int(match[2]) + 1 if match[2] is not None else None  # '18-34' runs up to 35
        edges = (*BAND_LOWER_EDGES[1:], None)
        if lower not in BAND_LOWER_EDGES or (upper is not None and upper not in edges) or (upper or 999) <= lower:
            raise HTTPException(
                422,
                f"age: {part.strip()!r} does not start and end on band edges; bands are {', '.join(AGE_BANDS)}",
            )
        bands.extend(
            band
            for band, low, high in zip(AGE_BANDS, BAND_LOWER_EDGES, edges, strict=True)
            if low >= lower and (upper is None or (high is not None and high <= upper))
        )
    return sorted(set(bands), key=AGE_BANDS.index)


def audience_bands(text: str) -> list[AgeBand]:
    """The bands of an ad audience: as :func:`parse_age`, refusing any that is under 18 (a 422 that says why)."""
    bands = parse_age(text)
    if MINOR_BANDS.intersection(bands):
        raise HTTPException(422, MINORS_REFUSED)
    return bands


def age_points(
    rows: AgeRows, genders: Sequence[str] | None = None, bands: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Each bucket's released gender × band table (``bands``: a band of a gender is null when none of that
    gender's bands was released in the bucket and it has people whose bands, gender or hour were withheld: shown
    as suppressed, never as 0), the people of a released gender whose bands were withheld (``bands_withheld``), the
    people whose gender split was withheld (``unsplit``) and withheld cells; with ``genders`` and ``bands``, the
    released people of that audience (null where the bands of each of its genders are) and whether people of it may
    be left out (``audience_lower_bound``)."""
    banded = rows.bands.sum(axis=2)
    bands_withheld = rows.genders - banded
    unsplit = rows.people - rows.genders.sum(axis=1)
    points = []
    for i in range(len(rows.keys)):
        table: dict[str, dict[str, int | None]] = {}
        hidden: list[bool] = []
        for g, gender in enumerate(GENDERS):
            # A withheld hour's people may be of any gender and band: with nothing of the gender released
            # around it, its bands read as suppressed, not as 0.
            hidden.append(banded[i, g] == 0 and (bands_withheld[i, g] > 0 or unsplit[i] > 0 or rows.withheld[i] > 0))
            table[gender] = {
                band: None if hidden[g] else int(rows.bands[i, g, b]) for b, band in enumerate(AGE_DECISIONS)
            }
        people = int(rows.people[i])
        point: dict[str, Any] = {
            # As the traffic series: null when every cell with people was withheld (not 0 people).
            "people": None if people == 0 and rows.withheld[i] > 0 else people,
            "people_lower_bound": bool(rows.withheld[i] > 0),
            "withheld_cells": int(rows.withheld[i]),
            "bands": table,
            "bands_withheld": {gender: int(bands_withheld[i, g]) for g, gender in enumerate(GENDERS)},
            "unsplit": int(unsplit[i]),
        }
        if genders is not None and bands is not None:
            g_index = [GENDERS.index(g) for g in genders]
            b_index = [AGE_DECISIONS.index(b) for b in bands]
            # Suppressed, not 0, where every gender of the audience has its bands suppressed: a 0 there read as
            # "nobody of the audience" beside bands shown as null.
            released = int(rows.bands[i][np.ix_(g_index, b_index)].sum())
            point["audience_people"] = None if all(hidden[g] for g in g_index) else released
            # People of its gender(s) whose age is unknown (not estimated, or undecided) may be of it too.
            point["audience_lower_bound"] = bool(
                rows.withheld[i] > 0
                or unsplit[i] > 0
                or bands_withheld[i, g_index].sum() > 0
                or rows.bands[i, g_index, AGE_DECISIONS.index(AGE_UNKNOWN)].sum() > 0
            )
        points.append(point)
    return points


def summed(rows: AgeRows) -> AgeRows:
    """The rows added up into one (the totals over a range)."""
    return AgeRows(
        ["total"],
        rows.people.sum(keepdims=True),
        rows.genders.sum(axis=0, keepdims=True),
        rows.bands.sum(axis=0, keepdims=True),
        rows.withheld.sum(keepdims=True),
    )
