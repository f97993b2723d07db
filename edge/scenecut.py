"""Abrupt scene change (a shot cut in edited footage, a PTZ camera jumping to a preset): no face track may
cross it, or one track runs on through several shots and several people.

Each frame is shrunk to a small grey thumbnail with its mean brightness removed (a lighting or exposure
change moves every pixel alike and is not a cut); a cut is when most of the thumbnail changed a lot since
the previous frame. A person walking past, even close to the lens, changes only part of it. The thumbnail
lives in memory until the next frame only.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMBNAIL = (32, 18)  # width, height


def thumbnail(frame_bgr: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(cv2.resize(frame_bgr, THUMBNAIL, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    small = grey.astype(np.float32)
    centred: np.ndarray = small - float(small.mean())
    return centred


class SceneCutDetector:
    """``detector(frame)`` is True when the frame starts a new shot (never on the first frame)."""

    def __init__(self, *, pixel_change: float = 30.0, changed_share: float = 0.55):
        self.pixel_change = pixel_change  # grey levels (0-255) a thumbnail pixel must change by
        self.changed_share = changed_share  # share of the thumbnail that must change that much
        self.previous: np.ndarray | None = None
        self.cuts = 0

    def __call__(self, frame_bgr: np.ndarray) -> bool:
        current = thumbnail(frame_bgr)
        previous, self.previous = self.previous, current
        if previous is None or previous.shape != current.shape:
            return False
        changed = float(np.mean(np.abs(current - previous) > self.pixel_change))
        cut = changed >= self.changed_share
        self.cuts += int(cut)
        return cut

    def reset(self) -> None:
        self.previous = None
