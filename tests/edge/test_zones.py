"""Zone geometry in frame pixels: polygon membership and directed line crossings."""

from __future__ import annotations

from footfall.edge.config import LineConfig, ZoneConfig
from footfall.edge.zones import counting_line, polygon_zone


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
