"""Zone geometry in frame pixels: polygon membership and directed line crossings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from footfall.edge.config import DIRECTIONS, CameraConfig, LineConfig, ZoneConfig


@dataclass(frozen=True)
class PolygonZone:
    id: str
    polygon: np.ndarray  # (N, 2) in pixels

    def contains(self, x: float, y: float) -> bool:
        """Ray casting; points on the frame border count as inside a whole-frame zone."""
        poly = self.polygon
        inside = False
        j = len(poly) - 1
        for i in range(len(poly)):
            xi, yi = poly[i]
            xj, yj = poly[j]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                inside = not inside
            j = i
        if not inside:
            # Ray casting leaves the max-x/max-y border out; a point on an edge belongs to the zone.
            return bool(_on_boundary(poly, x, y))
        return True


def _on_boundary(poly: np.ndarray, x: float, y: float, tolerance: float = 0.5) -> bool:
    for a, b in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        ab = b - a
        t = np.clip(np.dot((x, y) - a, ab) / max(float(np.dot(ab, ab)), 1e-9), 0, 1)
        if np.hypot(*((a + t * ab) - (x, y))) <= tolerance:
            return True
    return False


@dataclass(frozen=True)
class CountingLine:
    id: str
    a: np.ndarray
    b: np.ndarray
    direction: tuple[float, float] | None  # None: either way

    def crossed(self, start: tuple[float, float], end: tuple[float, float]) -> bool:
        """Whether moving from ``start`` to ``end`` crosses the segment in the counted direction."""
        p, q = np.asarray(start, float), np.asarray(end, float)
        # A point exactly on the line belongs to the non-negative side, so touching it never counts twice.
        if (_side(self.a, self.b, p) >= 0) == (_side(self.a, self.b, q) >= 0):
            return False
        if _side(p, q, self.a) * _side(p, q, self.b) > 0:
            return False  # the path passes beside the segment, not through it
        if self.direction is None:
            return True
        return float(np.dot(q - p, self.direction)) > 0


def _side(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> float:
    return float((b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]))


def polygon_zone(zone: ZoneConfig, width: int, height: int) -> PolygonZone:
    scale = np.array([width, height], dtype=float)
    return PolygonZone(zone.id, np.asarray(zone.polygon, dtype=float) * scale)


def counting_line(line: LineConfig, width: int, height: int) -> CountingLine:
    scale = np.array([width, height], dtype=float)
    a, b = (np.asarray(p, dtype=float) * scale for p in line.points)
    direction = None if line.direction == "any" else DIRECTIONS[line.direction]
    return CountingLine(line.id, a, b, direction)


@dataclass(frozen=True)
class SceneGeometry:
    zones: list[PolygonZone]
    lines: list[CountingLine]

    @classmethod
    def for_camera(cls, camera: CameraConfig, width: int, height: int) -> SceneGeometry:
        return cls(
            [polygon_zone(z, width, height) for z in camera.counting_zones()],
            [counting_line(line, width, height) for line in camera.lines],
        )

    @property
    def ids(self) -> list[str]:
        return [z.id for z in self.zones] + [line.id for line in self.lines]
