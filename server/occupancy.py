"""Occupancy from entrance counts: the running sum of people in minus people out since the site's closing time.

A counter's in and out drift apart over a day (a missed face, a group counted as fewer), so the sum starts again
from 0 at each closing time, and it never goes below 0: a step that would (more people counted out than in)
stops at 0, since nobody can be inside fewer than no one. Inputs are released hour cells, so an hour cell belongs
to the closing-time day its start falls in, and a reset takes effect from the first hour starting at or after the
closing time.

The sum is only as good as the cells behind it. A withheld entrance cell (1 to k-1 people) is left out, so the
figure is then not a bound either way, and said so with the count of such cells; while nothing released since the
closing time counted anyone, there is no figure at all (None), not a 0 that looks counted. An entrance hour no
agent reported (its camera or agent down: the agent sends quiet hours as 0) leaves out people in and out of any
number, so from it to the next closing time the figure is None. An entrance hour a camera watched only part of
(footfall.server.rollups.observed) leaves out whoever went in or out while it was down: the figure stands, as with a
withheld cell not a bound either way, and says how many such hours since the closing time it took in.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache

from footfall.server.localtime import zone

CLOSING_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
MIDNIGHT = "00:00"


def check_closing_time(text: str) -> str:
    """``text`` if it is a local 24-hour time like '22:00'; raises ValueError saying what is wrong otherwise."""
    if not CLOSING_TIME.fullmatch(text):
        raise ValueError(f"{text!r} is not a local time like '22:00' or '02:30' (HH:MM, 24-hour clock)")
    return text


@lru_cache(maxsize=20_000)  # ~4 MB when full
def reset_before(instant: int, tz: str, closing: str) -> int:
    """The latest closing time (UTC epoch) at or before ``instant``, in the site's time zone."""
    hour, minute = int(closing[:2]), int(closing[3:])
    place = zone(tz)
    day = datetime.fromtimestamp(instant, place).date()
    for back in range(3):  # today's closing time, or yesterday's (or the day before, across a DST jump)
        candidate = int(datetime.combine(day - timedelta(days=back), time(hour, minute), place).timestamp())
        if candidate <= instant:
            return candidate
    raise AssertionError("unreachable: a closing time lies within any 48 hours")


@dataclass(frozen=True)
class Step:
    hour_start: int
    people: int | None  # occupancy after this hour; None: unknown (see the module's docstring)
    withheld_cells: int  # entrance cells withheld since the last reset, this hour included
    unobserved_cells: int  # entrance zone-hours no agent reported since the last reset, this hour included
    hours_partly_observed: int  # entrance zone-hours a camera watched only part of since the last reset, this one too


@dataclass(frozen=True)
class EntranceHour:
    """One hour of a site's entrance lines, added up: released people in and out, withheld cells, the entrance
    zone-hours that have no cell although the site was reporting then (not observed), and those a camera watched
    only part of."""

    hour_start: int
    entered: int
    left: int
    withheld_cells: int
    unobserved_cells: int = 0
    partly_observed: int = 0


class OccupancyCurve:
    """Occupancy after each hour that has entrance cells (or should have had), and at any instant in between."""

    def __init__(self, hours: list[EntranceHour], tz: str, closing: str):
        """``hours``: oldest first, starting at or before a reset: a curve starts at 0."""
        self.tz, self.closing = tz, closing
        self.steps: list[Step] = []
        people = withheld = unobserved = partly = 0
        counted = False  # whether a released cell since the reset held anyone
        period: int | None = None
        for hour in hours:
            started = reset_before(hour.hour_start, tz, closing)
            if started != period:
                period, people, withheld, unobserved, partly, counted = started, 0, 0, 0, 0, False
            people = max(0, people + hour.entered - hour.left)
            withheld += hour.withheld_cells
            unobserved += hour.unobserved_cells
            partly += hour.partly_observed
            counted = counted or hour.entered > 0 or hour.left > 0
            # Only released figures and cell counts decide None, so it says nothing about a withheld cell.
            known = unobserved == 0 and (counted or withheld == 0)
            self.steps.append(Step(hour.hour_start, people if known else None, withheld, unobserved, partly))
        self._starts = [step.hour_start for step in self.steps]

    def at(self, instant: int) -> Step:
        """Occupancy just before ``instant``: after the last hour that started before it (an hour still in
        progress, where the operator releases it, counts with what it holds so far), or a known 0 when a closing
        time came between (or nothing was counted since)."""
        index = bisect.bisect_left(self._starts, instant) - 1
        if index < 0:
            return Step(instant, 0, 0, 0, 0)
        step = self.steps[index]
        if reset_before(step.hour_start, self.tz, self.closing) != reset_before(instant - 1, self.tz, self.closing):
            return Step(instant, 0, 0, 0, 0)
        return step
