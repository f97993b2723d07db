"""Synthetic face detections for the tracker and the counter: boxes and timings only, no image, no model."""

from __future__ import annotations

import numpy as np
from footfall.core.detector import Detection

FPS = 15.0
FRAME = (1280, 720)


def face(cx: float, cy: float, size: float = 60, score: float = 0.9) -> Detection:
    box = (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)
    return Detection(box, score, np.zeros((5, 2), np.float32))


def walk(x0: float, speed: float, y: float, frames: int, hidden: range = range(0)) -> list[list[Detection]]:
    """One face moving sideways at ``speed`` px/s from ``x0``, one frame per 1/FPS s, absent in ``hidden``."""
    return [[] if i in hidden else [face(x0 + speed * i / FPS, y)] for i in range(frames)]


def together(*walks: list[list[Detection]]) -> list[list[Detection]]:
    """Several walkers in the same frames (the shorter walks end early)."""
    length = max(len(w) for w in walks)
    return [[d for w in walks if i < len(w) for d in w[i]] for i in range(length)]
