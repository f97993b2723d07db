"""Zone geometry in frame pixels: polygon membership and directed line crossings."""

from __future__ import annotations

import numpy as np
from footfall.edge.config import LineConfig, ZoneConfig
from footfall.edge.zones import counting_line, cross, polygon_zone, segments_cross


def test_zone_membership_and_directed_line() -> None:
    zone = polygon_zone(ZoneConfig(id="z", polygon=[(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]), 1000, 500)
    assert zone.contains(100, 100) and not zone.contains(700, 100)
    line = counting_line(LineConfig(id="l", points=((0.5, 0.0), (0.5, 1.0)), direction="right"), 1000, 500)
    assert line.crossed((400, 250), (600, 250))
    assert not line.crossed((600, 250), (400, 250))  # the other way
    assert not line.crossed((400, 250), (480, 250))  # not reached
    # Touching the line and going on counts once, not twice.
    assert [line.crossed(*step) for step in [((490, 10), (500, 10)), ((500, 10), (510, 10))]].count(True) == 1
    either = counting_line(LineConfig(id="l", points=((0.0, 0.5), (1.0, 0.5))), 1000, 500)
    assert either.crossed((10, 100), (10, 400)) and either.crossed((10, 400), (10, 100))


def test_segments_cross_only_where_each_cuts_the_other() -> None:
    assert segments_cross((0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (1.0, 0.0))
    assert not segments_cross((0.0, 0.0), (1.0, 0.0), (0.5, 0.0), (0.5, 1.0))  # one ends on the other
    assert not segments_cross((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0))  # parallel
    assert not segments_cross((0.0, 0.0), (1.0, 0.0), (2.0, -1.0), (2.0, 1.0))  # the lines meet beyond one end
    # Pixels as arrays (zones) or normalised tuples (the config): the same sign convention, y down.
    assert cross((0.0, 0.0), (1.0, 0.0), (0.0, 1.0)) == 1.0
    assert cross(np.zeros(2), np.array([10.0, 0.0]), np.array([0.0, 5.0])) == 50.0
