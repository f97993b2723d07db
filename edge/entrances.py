"""Entrance lines: which way a person crossed, steady against a face that stands on the line.

A face centre jitters by a few pixels from frame to frame, so a person waiting on the line would cross it
back and forth. A side therefore counts only once the centre is clearly on it (a quarter of a face size
beyond the line), and a crossing is a move from one clear side to the other through the line's segment.
Each person counts at most once in and once out per track: in and out again is one of each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from footfall.edge.zones import CountingLine

Way = Literal["in", "out"]

# How far beyond the line, in face sizes, a face centre must be before its side counts: well above the
# detector's centre jitter (a few percent of a face), well below a walker's step between two frames.
CLEAR_OF_LINE = 0.25


@dataclass
class EntranceCrossings:
    """One person's crossings of one entrance line."""

    last_clear: tuple[float, float] | None = None  # the latest face centre clearly on one side
    inside: bool = False  # which side that was
    counted: set[Way] = field(default_factory=set)

    def step(self, line: CountingLine, x: float, y: float, face_size: float) -> Way | None:
        """Takes the next face centre; returns the way to count now, if any (each way once per track)."""
        distance = line.inward_distance(x, y)
        if abs(distance) < CLEAR_OF_LINE * face_size:
            return None  # on the line: neither side yet
        inside = distance > 0
        previous, was_inside = self.last_clear, self.inside
        self.last_clear, self.inside = (x, y), inside
        if previous is None or inside == was_inside or not line.passes_through(previous, (x, y)):
            return None
        way: Way = "in" if inside else "out"
        if way in self.counted:
            return None
        self.counted.add(way)
        return way
