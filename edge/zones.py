"""Zone geometry in frame pixels: polygon membership and directed line crossings.

The plane geometry here (:func:`cross`, :func:`segments_cross`, :data:`DIRECTIONS`) is also what the
config validates zones and lines with, so this module imports the config for its types only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from footfall.edge.config import CameraConfig, LineConfig, ZoneConfig

XY = tuple[float, float] | np.ndarray  # a point or a vector (x right, y down)

# A counting line's direction names, as vectors in image coordinates (y grows downwards).
DIRECTIONS: dict[str, tuple[float, float]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}


def cross(o: XY, a: XY, b: XY) -> float:
    """The z part of (a − o) × (b − o): on which side of the line o→a the point b lies (0: on the line)."""
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def segments_cross(p1: XY, p2: XY, q1: XY, q2: XY) -> bool:
    """Whether the segments p1–p2 and q1–q2 cross at a point inside both (touching or overlapping is not)."""
    return cross(q1, q2, p1) * cross(q1, q2, p2) < 0 and cross(p1, p2, q1) * cross(p1, p2, q2) < 0


def segments_overlap(p1: XY, p2: XY, q1: XY, q2: XY, eps: float = 1e-9) -> bool:
    """Whether the segments p1–p2 and q1–q2 lie on one line and share a stretch of it (more than a point)."""
    if abs(cross(p1, p2, q1)) > eps or abs(cross(p1, p2, q2)) > eps:
        return False
    axis = 0 if abs(p2[0] - p1[0]) >= abs(p2[1] - p1[1]) else 1
    low = max(min(p1[axis], p2[axis]), min(q1[axis], q2[axis]))
    high = min(max(p1[axis], p2[axis]), max(q1[axis], q2[axis]))
    return high - low > eps


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


def entrance_ids(line_id: str) -> tuple[str, str]:
    """The aggregate ids of an entrance line's two counts: people crossing it inwards, and outwards."""
    return f"{line_id}.in", f"{line_id}.out"


@dataclass(frozen=True)
class CountingLine:
    id: str
    a: np.ndarray
    b: np.ndarray
    direction: tuple[float, float] | None  # None: either way; on an entrance, the way in
    entrance: bool = False  # counts people going in and out (edge/entrances.py) instead of passes

    def inward_distance(self, x: float, y: float) -> float:
        """Signed distance in pixels from the line through a and b: positive on the side ``direction`` points
        to (inside, for an entrance), negative on the other (the config refuses a direction along the line)."""
        assert self.direction is not None
        length = max(float(np.hypot(*(self.b - self.a))), 1e-9)
        inward = 1.0 if cross(self.a, self.b, self.a + np.asarray(self.direction)) > 0 else -1.0
        return inward * cross(self.a, self.b, (x, y)) / length

    def passes_through(self, start: XY, end: XY) -> bool:
        """Whether the straight move from ``start`` to ``end`` goes through the segment, not beside it."""
        return cross(start, end, self.a) * cross(start, end, self.b) <= 0

    def crossed(self, start: tuple[float, float], end: tuple[float, float]) -> bool:
        """Whether moving from ``start`` to ``end`` crosses the segment in the counted direction."""
        p, q = np.asarray(start, float), np.asarray(end, float)
        # A point exactly on the line belongs to the non-negative side, so touching it never counts twice.
        if (cross(self.a, self.b, p) >= 0) == (cross(self.a, self.b, q) >= 0):
            return False
        if cross(p, q, self.a) * cross(p, q, self.b) > 0:
            return False  # the path passes beside the segment, not through it
        if self.direction is None:
            return True
        return float(np.dot(q - p, self.direction)) > 0


def polygon_zone(zone: ZoneConfig, width: int, height: int) -> PolygonZone:
    scale = np.array([width, height], dtype=float)
    return PolygonZone(zone.id, np.asarray(zone.polygon, dtype=float) * scale)


def counting_line(line: LineConfig, width: int, height: int) -> CountingLine:
    scale = np.array([width, height], dtype=float)
    a, b = (np.asarray(p, dtype=float) * scale for p in line.points)
    direction = None if line.direction == "any" else DIRECTIONS[line.direction]
    return CountingLine(line.id, a, b, direction, line.entrance)


@dataclass(frozen=True)
class SceneGeometry:
    zones: list[PolygonZone]
    lines: list[CountingLine]
    # The camera's distinct visitors are counted under its id (core.wire "camera" measure); None: not counted.
    camera_id: str | None = None

    @classmethod
    def for_camera(cls, camera: CameraConfig, width: int, height: int) -> SceneGeometry:
        return cls(
            [polygon_zone(z, width, height) for z in camera.counting_zones()],
            [counting_line(line, width, height) for line in camera.lines],
            camera.id,
        )

    @property
    def ids(self) -> list[str]:
        """Every id this camera's aggregates carry: zones, lines, entrances' in and out, the camera itself."""
        ids = [z.id for z in self.zones]
        for line in self.lines:
            ids.extend(entrance_ids(line.id) if line.entrance else [line.id])
        return ids + ([self.camera_id] if self.camera_id is not None else [])
