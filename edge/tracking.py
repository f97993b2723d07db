"""Multi-face tracking in the ByteTrack manner: a Kalman filter per face, two-stage association.

Confident detections are matched first to every live track: lost ones too (a face that passed behind a
pillar or another person picks its old track back up), and new, tentative ones at a small handicap. Then
weak detections keep already-tracked faces alive through blur or partial occlusion. The assignment is
solved optimally with ``lap`` (Jonker-Volgenant). Time is in seconds, so the filter copes with a variable
frame rate (a live camera drops frames).

At the frame edges people walk out and others walk in, often at the same spot moments apart: a face that walked
in is nobody's lost face, and a track that carries on with it after its own face walked out there is split (the
reversal it would take, nobody makes at walking pace). Else the newcomer goes uncounted: two people as one.
Likewise a lost track that takes back a face which then heads off the other way, as another lost track was
heading, gives it to that track (two people crossing where one of them turned away).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import lap
import numpy as np
from footfall.core.detector import Detection

NO_MATCH = 1e6
YOUNG_SPEED = 14.0
LOST_MIN_SIMILARITY = 0.25
TENTATIVE_HANDICAP = 0.1
SEEN_SPREAD = 3.0  # face sizes per second: half a walking pace
# The gate around the predicted position, in face sizes: GATE_BASE plus GATE_GROWTH per second unseen, up to
# GATE_MAX (a walker's speed is known to about a face size per second after a few frames).
GATE_BASE = 0.8
GATE_GROWTH = 0.8
GATE_MAX = 3.2
# Out of sight this long, a face is re-joined (someone who turned their head away and back) only when it is
# no nearer to another live track, about the same size, and (where known) looks like itself.
LONG_GONE_SECONDS = 1.5  # up to here, the pillar-and-crossing rules above are enough
LONG_GONE_RATIO = 1.35
LONG_GONE_SIMILARITY = 0.5
# Nobody reverses at walking pace in a moment: slowing down, stopping and setting off the other way takes the
# better part of a second. A track whose face was heading out of the frame and, within REVERSAL_SECONDS, moves
# back in the other way has been handed over from someone who walked out there to someone who walked in (who
# would go uncounted); see also FaceTracker._verify_rejoin. Headings are fitted over REVERSAL_BEFORE s before
# and REVERSAL_AFTER s (at least four detections) after.
REVERSAL_BEFORE = 0.4
REVERSAL_AFTER = 0.2
REVERSAL_SECONDS = 0.5
REVERSAL_SPEED = 1.5  # face sizes per second, both ways: a slow shuffle is too noisy to tell
# Someone sitting or standing near the frame edge (a food-court table at the bottom of the picture) is not walking
# in or out there: a face that has barely moved of late is still (see _still), and a detection where its lost track
# was last seen (IoU at least STILL_IOU) is that face again. Without this, each missed detection of such a face
# started a new person: 100 to 500 counts of one sitter in 10 minutes (1280x720, 10 fps, 5-20 % missed).
STILL_SECONDS = 0.5
STILL_MIN_SECONDS = 0.2
STILL_DRIFT = 0.25
STILL_SPEED = 0.5
STILL_IOU = 0.5
HISTORY = 32  # snapshots a track keeps (Track.history)
# A new face counts after `confirm_hits` detections, which the detector's flickers never reach at 10 fps and up. A
# box that falls behind (several cameras, a slow CPU) processes fewer frames. While its frames come at most LOW_FPS a
# second (the median of the last FRAME_INTERVALS intervals, so one stall does not count), a face seen
# CONFIRM_LOW_HITS times over as long as `confirm_hits` frames take at CONFIRM_FPS is a person too, and a new face
# survives one missed detection (at 25 fps the patience is six frames, at 3 fps it would be none). On 16 validation
# walk-by clips processed at 3 fps (bench/edge_bench.py --fps 3; edge/README.md), detections alone counted 11.6 % of
# the people too few (37 missed); two detections over that span counted 2.8 % too many (12 people twice), three
# 0.9 % too few (7 missed, 4 twice).
CONFIRM_FPS = 10.0
CONFIRM_LOW_HITS = 3
LOW_FPS = 8.0
FRAME_INTERVALS = 9


class TrackState(Enum):
    TENTATIVE = "tentative"
    TRACKED = "tracked"
    LOST = "lost"
    REMOVED = "removed"


class KalmanBox:
    """Constant-velocity Kalman filter over ``(cx, cy, w, h)`` and their rates (pixels, seconds)."""

    def __init__(self, box: Sequence[float]):
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        self.mean = np.array([(x1 + x2) / 2, (y1 + y2) / 2, w, h, 0, 0, 0, 0], dtype=float)
        size = max(w, h)
        self.cov = np.diag([0.1 * size, 0.1 * size, 0.1 * size, 0.1 * size, 4 * size, 4 * size, size, size]) ** 2

    def predict(self, dt: float) -> None:
        if dt <= 0:
            return
        transition = np.eye(8)
        transition[:4, 4:] = np.eye(4) * dt
        size = max(self.mean[2], self.mean[3], 1.0)
        # Walking people change speed slowly: acceleration noise in sizes per second squared.
        accel = np.array([1.5, 1.5, 0.3, 0.3]) * size
        noise = np.zeros((8, 8))
        noise[:4, :4] = np.diag((accel * dt**2 / 2) ** 2)
        noise[4:, 4:] = np.diag((accel * dt) ** 2)
        noise[:4, 4:] = noise[4:, :4] = np.diag((accel**2) * dt**3 / 2)
        self.mean = transition @ self.mean
        self.cov = transition @ self.cov @ transition.T + noise
        self.mean[2:4] = np.maximum(self.mean[2:4], 2.0)

    def update(self, box: Sequence[float], score: float) -> None:
        x1, y1, x2, y2 = box
        measured = np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])
        size = max(measured[2], measured[3])
        # A weak detection is a less certain measurement.
        sigma = (0.05 + 0.1 * (1 - score)) * size
        observation = np.hstack([np.eye(4), np.zeros((4, 4))])
        innovation_cov = observation @ self.cov @ observation.T + np.eye(4) * sigma**2
        gain = self.cov @ observation.T @ np.linalg.inv(innovation_cov)
        self.mean = self.mean + gain @ (measured - observation @ self.mean)
        self.cov = (np.eye(8) - gain @ observation) @ self.cov

    def hold_size(self) -> None:
        """Stops the box growing or shrinking: for a face out of sight (see FaceTracker.update)."""
        self.mean[6:8] = 0.0

    @property
    def box(self) -> tuple[float, float, float, float]:
        cx, cy, w, h = self.mean[:4]
        return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


_ids = itertools.count(1)


@dataclass
class Snapshot:
    """A track as it was at ``at``, just before it took a face: what it goes back to when that face turns out to
    be someone else's (see FaceTracker._verify_rejoin and FaceTracker._swap_back)."""

    at: float
    mean: np.ndarray
    cov: np.ndarray
    detection: Detection
    last_seen: float
    hits: int
    appearance: np.ndarray | None


@dataclass
class Track:
    detection: Detection
    first_seen: float
    kalman: KalmanBox = field(init=False)
    id: int = field(default_factory=lambda: next(_ids))
    state: TrackState = TrackState.TENTATIVE
    hits: int = 1
    last_seen: float = 0.0
    last_predicted: float = 0.0
    updated_now: bool = True
    path: list[tuple[float, float, float]] = field(default_factory=list)  # (t, x, y) of the face centre
    appearance: np.ndarray | None = None
    rejoin: Snapshot | None = None  # see FaceTracker._verify_rejoin
    # Before each of its recent detections: enough to take back the last REVERSAL_AFTER s at any frame rate.
    history: deque[Snapshot] = field(default_factory=lambda: deque(maxlen=HISTORY))
    turn: Reversal | None = None  # its path's turn this frame, if any (FaceTracker._update)

    def __post_init__(self) -> None:
        self.kalman = KalmanBox(self.detection.box)
        self.last_seen = self.last_predicted = self.first_seen
        self._record(self.first_seen)

    def _record(self, t: float) -> None:
        x1, y1, x2, y2 = self.detection.box
        self.path.append((t, (x1 + x2) / 2, (y1 + y2) / 2))
        if len(self.path) > 256:  # only the recent path is needed (line crossings, dwell keeps its own sums)
            del self.path[:128]

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.kalman.box

    @property
    def size(self) -> float:
        return float(max(self.kalman.mean[2], self.kalman.mean[3]))

    def predict(self, t: float) -> None:
        self.kalman.predict(t - self.last_predicted)
        self.last_predicted = t
        self.updated_now = False
        self.turn = None

    def remember_look(self, descriptor: np.ndarray | None, weight: float = 0.3) -> None:
        if descriptor is None:
            return
        if self.appearance is None:
            self.appearance = descriptor
        else:
            mixed = (1 - weight) * self.appearance + weight * descriptor
            self.appearance = mixed / max(float(np.linalg.norm(mixed)), 1e-6)

    def snapshot(self, t: float) -> Snapshot:
        kalman = self.kalman
        return Snapshot(
            t, kalman.mean.copy(), kalman.cov.copy(), self.detection, self.last_seen, self.hits, self.appearance
        )

    def restore(self, snapshot: Snapshot, t: float) -> None:
        """Back to ``snapshot`` (predicted on to ``t``), lost: the faces it took since were someone else's."""
        while self.history and self.history[-1].at >= snapshot.at - 1e-9:
            self.history.pop()
        self.kalman.mean, self.kalman.cov = snapshot.mean, snapshot.cov
        self.kalman.predict(t - snapshot.at)
        self.detection, self.last_seen, self.hits = snapshot.detection, snapshot.last_seen, snapshot.hits
        self.appearance, self.state, self.updated_now = snapshot.appearance, TrackState.LOST, False
        self.rejoin = None

    def update(self, detection: Detection, t: float) -> None:
        self.history.append(self.snapshot(t))
        self.detection = detection
        self.kalman.update(detection.box, detection.score)
        self.hits += 1
        self.last_seen = t
        self.updated_now = True
        self._record(t)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    overlap: np.ndarray = inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)
    return overlap


def appearance_descriptor(frame_bgr: np.ndarray, box: Sequence[float]) -> np.ndarray | None:
    """A tiny colour layout of the face (8×8, zero mean, unit length) that tells two people apart when
    their boxes overlap. It lives in memory with the track only."""
    import cv2

    height, width = frame_bgr.shape[:2]
    x1, y1 = max(int(box[0]), 0), max(int(box[1]), 0)
    x2, y2 = min(int(box[2]) + 1, width), min(int(box[3]) + 1, height)
    if x2 - x1 < 4 or y2 - y1 < 4:
        return None
    small = cv2.resize(frame_bgr[y1:y2, x1:x2], (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    small -= small.mean()
    norm = float(np.linalg.norm(small))
    return small / norm if norm > 1e-3 else None


def association_cost(
    tracks: Sequence[Track],
    detections: Sequence[Detection],
    t: float,
    max_lost: float,
    appearance: dict[int, np.ndarray] | None = None,
    previous_t: float | None = None,
) -> np.ndarray:
    """IoU with the predicted box, blended with centre distance in face sizes so fast faces still match.

    A pair is out of the question when the centres are further apart than the gate (which widens the
    longer a face has been unseen) or the sizes differ by more than ×1.6.
    """
    if not tracks or not detections:
        return np.zeros((len(tracks), len(detections)))
    track_boxes = np.array([tr.box for tr in tracks])
    det_boxes = np.array([d.box for d in detections])
    # Overlap with the last detected box too: a face that stopped is where it was, not where it was heading.
    last_boxes = np.array([tr.detection.box for tr in tracks])
    iou = np.maximum(iou_matrix(track_boxes, det_boxes), iou_matrix(last_boxes, det_boxes))
    tc = (track_boxes[:, :2] + track_boxes[:, 2:]) / 2
    dc = (det_boxes[:, :2] + det_boxes[:, 2:]) / 2
    # Where the face was last seen, too: someone who stopped or turned round behind a pillar reappears
    # there, not where constant velocity would have carried them.
    seen = np.array([tr.path[-1][1:] for tr in tracks])
    t_size = np.maximum(track_boxes[:, 2] - track_boxes[:, 0], track_boxes[:, 3] - track_boxes[:, 1])
    d_size = np.maximum(det_boxes[:, 2] - det_boxes[:, 0], det_boxes[:, 3] - det_boxes[:, 1])
    mean_size = (t_size[:, None] + d_size[None, :]) / 2
    to_predicted = np.linalg.norm(tc[:, None, :] - dc[None, :, :], axis=2) / np.maximum(mean_size, 1.0)
    to_seen = np.linalg.norm(seen[:, None, :] - dc[None, :, :], axis=2) / np.maximum(mean_size, 1.0)
    since = np.array([t - tr.last_seen for tr in tracks])
    # The predicted position may drift further the longer a face is hidden (in seconds, not frames: a face
    # turned away for 3 s is gated the same at 10 or 25 fps); where it was last seen does not move, so that
    # gate stays tight and widens only slowly (else a stranger walking past the same spot would inherit it).
    gate = np.minimum(GATE_BASE + GATE_GROWTH * since, GATE_MAX)
    # A young track does not know its velocity yet: allow a brisk walk (faces per second) since last seen.
    young = np.array([tr.hits <= 2 for tr in tracks])
    gate = np.where(young, np.maximum(gate, YOUNG_SPEED * since), gate)
    # Around where it was last seen, the gate widens slowly with the time unseen: someone who stopped or
    # turned round behind another person is back near that spot, a little way off. Only for a face out of sight
    # (not seen in the previous frame): a face in view goes where its track predicts, and one that stops is
    # followed there frame by frame. Else, in a crowd, each frame a track whose face was hidden by someone
    # passing the other way took that person's face, always next to where it last saw one (24 validation walk-by
    # clips with 3 to 10 faces in view: 34 people counted twice instead of 42, 26 missed instead of 27).
    seen_gate = 0.6 + SEEN_SPREAD * since
    lost = np.array([previous_t is not None and tr.last_seen < previous_t - 1e-9 for tr in tracks])
    predicted_reach = to_predicted / gate[:, None]
    reach = np.where(lost[:, None], np.minimum(predicted_reach, to_seen / seen_gate[:, None]), predicted_reach)
    ratio = np.maximum(t_size[:, None], d_size[None, :]) / np.maximum(np.minimum(t_size[:, None], d_size[None, :]), 1)
    # Appearance tells two faces apart when they pass each other, or when someone steps in where another
    # just left: 0 = same look (cosine 0.95 and up), 1 = a different face (cosine 0.35 and below).
    looks = np.full((len(tracks), len(detections)), 0.3)
    similarity = np.full((len(tracks), len(detections)), np.nan)
    if appearance:
        seen_looks = [(r, track.appearance) for r, track in enumerate(tracks) if track.appearance is not None]
        cols = [c for c, detection in enumerate(detections) if id(detection) in appearance]
        if seen_looks and cols:  # one matrix product: a crowd of 80 faces is 6,400 pairs a frame
            rows = [r for r, _ in seen_looks]
            track_looks = np.stack([look for _, look in seen_looks])
            detection_looks = np.stack([appearance[id(detections[c])] for c in cols])
            similarity[np.ix_(rows, cols)] = track_looks @ detection_looks.T
        known = ~np.isnan(similarity)
        looks[known] = np.clip((0.95 - similarity[known]) / 0.6, 0.0, 1.0)
    cost: np.ndarray = 0.4 * (1 - iou) + 0.3 * np.minimum(reach, 1.0) + 0.3 * looks
    cost[(reach > 1.0) | (ratio > 1.6)] = NO_MATCH
    # A face that was out of sight comes back looking like itself; a clearly different face is someone else.
    # (out of sight = not seen in the previous frame)
    known_look = np.nan_to_num(similarity, nan=1.0)
    cost[lost[:, None] & (known_look < LOST_MIN_SIMILARITY)] = NO_MATCH
    # Long gone (a head turned away, a long occlusion): the guard against merging two people is stricter.
    # The face must be about the same size, look like itself where that is known, and be no nearer to a face
    # tracked in the previous frame than to where this one was heading (else it is that person's, or someone
    # walking next to them).
    long_gone = lost & (since > LONG_GONE_SECONDS)
    if long_gone.any():
        strict = (ratio > LONG_GONE_RATIO) | (known_look < LONG_GONE_SIMILARITY)
        live = ~lost & np.array([tr.state == TrackState.TRACKED for tr in tracks])
        if live.any():
            strict |= to_predicted > to_predicted[live].min(axis=0)[None, :]
        cost[long_gone[:, None] & strict] = NO_MATCH
    return cost


def _heading(points: Sequence[tuple[float, float, float]]) -> np.ndarray:
    """Velocity (pixels per second) of the least-squares line through ``(t, x, y)`` points. (Plain Python: a few
    points, for every track every frame, where numpy's overhead would be most of the cost.)"""
    n = len(points)
    mean_t = sum(p[0] for p in points) / n
    mean_x = sum(p[1] for p in points) / n
    mean_y = sum(p[2] for p in points) / n
    spread = max(sum((p[0] - mean_t) ** 2 for p in points), 1e-9)
    along_x = sum((p[0] - mean_t) * (p[1] - mean_x) for p in points)
    along_y = sum((p[0] - mean_t) * (p[2] - mean_y) for p in points)
    return np.array([along_x / spread, along_y / spread])


@dataclass(frozen=True)
class Reversal:
    """A path that turned back faster than anyone walks: from ``path[start]`` on it is another face's."""

    start: int
    was: np.ndarray  # heading before (pixels per second)
    going: np.ndarray  # heading since


def reversal(path: Sequence[tuple[float, float, float]], size: float) -> Reversal | None:
    """Whether the last REVERSAL_AFTER s of ``path`` (at least four detections) head back the way it came, at
    walking pace both ways, within REVERSAL_SECONDS of the heading before: a turn nobody makes at walking pace,
    so two faces. None when the path reads as one person's."""
    if len(path) < 8:
        return None
    now = path[-1][0]
    start = len(path) - 4  # at least four points for the heading after, at a low frame rate too
    while start > 0 and path[start - 1][0] >= now - REVERSAL_AFTER - 1e-9:
        start -= 1
    if start <= 0:
        return None
    before_end = path[start - 1][0]
    gap = path[start][0] - before_end
    if gap > REVERSAL_SECONDS:
        return None
    before = [point for point in path[:start] if point[0] >= before_end - REVERSAL_BEFORE - 1e-9]
    if len(before) < 4:
        return None
    was, now_going = _heading(before), _heading(path[start:])
    fast = REVERSAL_SPEED * size
    speeds = float(np.linalg.norm(was)), float(np.linalg.norm(now_going))
    if min(speeds) < fast or float(was @ now_going) > -0.5 * speeds[0] * speeds[1]:
        return None
    return Reversal(start, was, now_going)


def handed_over_at(
    turn: Reversal, path: Sequence[tuple[float, float, float]], size: float, frame_size: tuple[int, int]
) -> int | None:
    """Where in ``path`` (an index) another face took the track over: the track was heading out of the frame
    and now moves back in (``turn``, see :func:`reversal`). None when the turn was not at the frame edge."""
    # Only where the first face was walking out (walking on, it would be at the frame edge by now): a reversal
    # in mid-frame (two people crossing) goes to the track of whoever was heading that way, if any
    # (FaceTracker._swap_back).
    start, was, fast = turn.start, turn.was, REVERSAL_SPEED * size
    before_end, now = path[start - 1][0], path[-1][0]
    x, y = np.array(path[start - 1][1:]) + was * (now - before_end)
    for along, position, extent in ((was[0], x, frame_size[0]), (was[1], y, frame_size[1])):
        if abs(along) >= fast / 2 and (extent - position if along > 0 else position) <= size:
            return start
    return None


def _touches_edge(box: Sequence[float], frame_size: tuple[int, int], margin: float = 2.0) -> bool:
    x1, y1, x2, y2 = box
    return x1 <= margin or y1 <= margin or x2 >= frame_size[0] - margin or y2 >= frame_size[1] - margin


def _still(track: Track) -> bool:
    """Over its last STILL_SECONDS, and its last three detections at least (spanning STILL_MIN_SECONDS or more), the
    face stayed within STILL_DRIFT face sizes of where it was last seen, and no farther than STILL_SPEED face sizes
    a second would take it: a walker covers a face size a second or more."""
    path = track.path
    end, x_end, y_end = path[-1]
    window = path[-3:]
    for point in reversed(path[-64:-3]):
        if end - window[0][0] >= STILL_SECONDS - 1e-9:
            break
        window.insert(0, point)
    span = end - window[0][0]
    if len(window) < 3 or span < STILL_MIN_SECONDS - 1e-9:
        return False
    reach = min(STILL_DRIFT, STILL_SPEED * span) * track.size
    return all((x - x_end) ** 2 + (y - y_end) ** 2 <= reach**2 for _, x, y in window)


def assign(cost: np.ndarray, limit: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Optimal matching below ``limit``; returns matches, unmatched rows, unmatched columns."""
    rows, cols = cost.shape
    if rows == 0 or cols == 0:
        return [], list(range(rows)), list(range(cols))
    _, row_to_col, col_to_row = lap.lapjv(cost, extend_cost=True, cost_limit=limit)
    matches = [(r, int(c)) for r, c in enumerate(row_to_col) if c >= 0]
    return (
        matches,
        [r for r, c in enumerate(row_to_col) if c < 0],
        [c for c, r in enumerate(col_to_row) if r < 0],
    )


@dataclass
class TrackerEvents:
    confirmed: list[Track] = field(default_factory=list)  # became a person this frame
    ended: list[Track] = field(default_factory=list)  # confirmed tracks gone for good
    visible: list[Track] = field(default_factory=list)  # tracks matched to a detection this frame


class FaceTracker:
    """Turns per-frame detections into persistent face tracks and reports when one starts and ends."""

    def __init__(
        self,
        *,
        high_score: float = 0.5,
        low_score: float = 0.3,
        confirm_hits: int = 3,
        max_lost_seconds: float = 3.5,
        tentative_patience_seconds: float = 0.25,
        match_limit: float = 0.85,
        exit_patience_seconds: float = 0.0,
    ):
        self.high_score = high_score
        self.low_score = low_score
        self.confirm_hits = confirm_hits
        self.max_lost = max_lost_seconds
        self.tentative_patience = tentative_patience_seconds
        self.match_limit = match_limit
        self.exit_patience = exit_patience_seconds
        self.tracks: list[Track] = []
        self._looks: dict[int, np.ndarray] = {}
        self._previous_t: float | None = None
        self._frame_size: tuple[int, int] | None = None
        # Faces walking in at the frame edge, not yet on a track: (t, x, y, size), from the previous frame.
        self._entrants: list[tuple[float, float, float, float]] = []
        self._intervals: deque[float] = deque(maxlen=FRAME_INTERVALS)  # between the last frames, seconds
        self._low_rate = False  # frames come at most LOW_FPS a second (see CONFIRM_LOW_HITS)

    def update(
        self,
        detections: Sequence[Detection],
        t: float,
        frame_size: tuple[int, int] | None = None,
        appearances: Sequence[np.ndarray | None] | None = None,
    ) -> TrackerEvents:
        """Advances to time ``t`` with this frame's detections. With ``frame_size``, a face cut by the frame
        edge can continue a track but does not start one (it is entering or leaving, half seen)."""
        events = TrackerEvents()
        self._frame_size = frame_size
        if self._previous_t is not None and t > self._previous_t:
            self._intervals.append(t - self._previous_t)
        # The median (the lower of the middle two while the window fills): one stall does not make the box slow.
        interval = sorted(self._intervals)[(len(self._intervals) - 1) // 2] if self._intervals else 0.0
        self._low_rate = interval >= 1 / LOW_FPS - 1e-9
        walked_in = {id(d) for d in detections if self._walked_in(d, t)}
        self._looks = {id(d): a for d, a in zip(detections, appearances or [], strict=False) if a is not None}
        looks = self._looks
        for track in self.tracks:
            track.predict(t)
        high = [d for d in detections if d.score >= self.high_score]
        low = [d for d in detections if self.low_score <= d.score < self.high_score]

        # 1. Confident detections against every track, lost ones included (a face that passed behind a pillar
        # picks its old track back up). Tentative tracks take part at a small handicap: an established track
        # wins a close call, but cannot take a face that clearly continues a new track's path (two people
        # crossing, one of them just arrived).
        candidates = [tr for tr in self.tracks if tr.state != TrackState.REMOVED]
        cost = association_cost(candidates, high, t, self.max_lost, looks, self._previous_t)
        cost[[tr.state == TrackState.TENTATIVE for tr in candidates]] += TENTATIVE_HANDICAP
        if frame_size is not None and candidates and high:
            # A face cut by the frame edge is someone walking in or out: it may go on with a face seen in the
            # previous frame, but not pick up a face out of sight (that one left; this one is coming in). Nor
            # may it once it is clear of the edge: it is still the face that walked in (see _walked_in).
            was_lost = [self._previous_t is not None and tr.last_seen < self._previous_t - 1e-9 for tr in candidates]
            margin = 0.02 * max(frame_size)
            near_edge = [_touches_edge(d.box, frame_size, margin=margin) for d in high]
            entering = [id(d) in walked_in or near for d, near in zip(high, near_edge, strict=True)]
            barred = np.outer(was_lost, entering)
            # Except a still face seen again where it sat: near the edge, but neither followed in from it nor going
            # on with a face seen in the previous frame (someone walking in through the spot where it sat).
            still = [lost and _still(tr) for lost, tr in zip(was_lost, candidates, strict=True)]
            if any(still):
                seen_again = iou_matrix(
                    np.array([tr.detection.box for tr in candidates]), np.array([d.box for d in high])
                )
                followed = (cost[~np.array(was_lost)] < self.match_limit).any(axis=0)
                fresh = [id(d) not in walked_in and not went_on for d, went_on in zip(high, followed, strict=True)]
                barred &= ~(np.outer(still, fresh) & (seen_again >= STILL_IOU))
            cost[barred] = NO_MATCH
            # Nor does a face out of sight that is now predicted at the edge come back: it walked out.
            gone = [lost and self._left_frame(tr, frame_size) for lost, tr in zip(was_lost, candidates, strict=True)]
            cost[gone] = NO_MATCH
        matches, left_tracks, unmatched_high = assign(cost, self.match_limit)
        for r, c in matches:
            self._update(candidates[r], high[c], t, events)
        # 2. Weak detections keep faces that were tracked a moment ago (motion blur, half hidden) alive.
        remaining = [candidates[r] for r in left_tracks if candidates[r].state == TrackState.TRACKED]
        matches, _, _ = assign(
            association_cost(remaining, low, t, self.max_lost, looks, self._previous_t), self.match_limit
        )
        for r, c in matches:
            self._update(remaining[r], low[c], t, events)
        for track in list(self.tracks):
            rejoin = track.rejoin
            if not track.updated_now or track.state != TrackState.TRACKED:
                continue
            if rejoin is None:
                self._swap_back(track, t, events)
            elif t - rejoin.at > REVERSAL_AFTER - 1e-6 and self._verify_rejoin(track, rejoin, t, events):
                track.rejoin = None
        # 3. A confident detection still unmatched starts a new tentative track. One that walked in at the
        # frame edge starts its own as soon as it is clear of the edge: it is not a missing face reappearing.
        entrants: list[tuple[float, float, float, float]] = []
        for detection in (high[c] for c in unmatched_high):
            if frame_size is not None and _touches_edge(detection.box, frame_size):
                x1, y1, x2, y2 = detection.box
                entrants.append((t, (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1)))
                continue
            if id(detection) not in walked_in and self._near_unmatched_track(detection, t):
                continue
            track = Track(detection, t)
            track.remember_look(looks.get(id(detection)))
            self.tracks.append(track)
            events.visible.append(track)
            if self.confirm_hits <= 1:
                self._confirm(track, events)

        for track in self.tracks:
            if track.updated_now:
                continue
            unseen = t - track.last_seen
            # A new face survives one missed detection at a low frame rate too (see CONFIRM_LOW_HITS).
            if track.state == TrackState.TENTATIVE and unseen > max(self.tentative_patience, 1.5 * interval):
                track.state = TrackState.REMOVED
            elif track.state == TrackState.TRACKED:
                track.state = TrackState.LOST
                # A face sliding behind someone shrinks (only part of it is found) just before it is lost;
                # the person does not go on shrinking while out of sight, or the face that comes back
                # whole would look too big to be theirs.
                track.kalman.hold_size()
            if track.state == TrackState.LOST and (
                unseen > self.max_lost or (unseen > self.exit_patience and self._left_frame(track, frame_size))
            ):
                track.state = TrackState.REMOVED
                events.ended.append(track)
        self.tracks = [tr for tr in self.tracks if tr.state != TrackState.REMOVED]
        self._entrants = entrants
        self._previous_t = t
        return events

    @staticmethod
    def _left_frame(track: Track, frame_size: tuple[int, int] | None) -> bool:
        """Last seen cut by the frame edge: the person walked out. Keeping the track would let the next
        person who walks in at that edge inherit it (and go uncounted)."""
        if frame_size is None or _still(track):  # someone sitting at the edge walks out of nothing
            return False
        # Predicted to reach the edge (its face now cut by it, or gone): walking out, not hidden.
        predicted_out = _touches_edge(track.box, frame_size)
        return predicted_out or _touches_edge(track.detection.box, frame_size, margin=0.01 * max(frame_size))

    def _walked_in(self, detection: Detection, t: float) -> bool:
        """The face is one that walked in at the frame edge, no track took, and has now come clear of the edge:
        where such a face was in the previous frame (followed frame to frame, at up to a brisk walk)."""
        x1, y1, x2, y2 = detection.box
        cx, cy, size = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1)
        for seen, x, y, seen_size in self._entrants:
            reach = (0.5 + YOUNG_SPEED * (t - seen)) * max(size, seen_size)
            if (x - cx) ** 2 + (y - cy) ** 2 <= reach**2:
                return True
        return False

    def _near_unmatched_track(self, detection: Detection, t: float) -> bool:
        """A face half out from behind something, next to where a known face is missing, is that face
        reappearing (its box still too small to match), not a new person: wait for it to show fully."""
        x1, y1, x2, y2 = detection.box
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        for track in self.tracks:
            if track.updated_now or track.state not in (TrackState.TRACKED, TrackState.LOST):
                continue
            px1, py1, px2, py2 = track.box
            predicted = ((px1 + px2) / 2, (py1 + py2) / 2)
            radius = track.size * (1.0 + min((t - track.last_seen) / 1.5, 1.0))
            for x, y in (predicted, track.path[-1][1:]):
                if (x - cx) ** 2 + (y - cy) ** 2 <= radius**2:
                    return True
        return False

    def _update(self, track: Track, detection: Detection, t: float, events: TrackerEvents) -> None:
        if track.state == TrackState.LOST:
            track.rejoin = track.snapshot(t)
        track.update(detection, t)
        if track.state != TrackState.TENTATIVE:
            track.turn = reversal(track.path, track.size)
            start = None
            if track.turn is not None and self._frame_size is not None:
                start = handed_over_at(track.turn, track.path, track.size, self._frame_size)
            if start is not None:
                self._hand_over(track, start, events)
                return
        if detection.score >= self.high_score:
            track.remember_look(self._looks.get(id(detection)))
        events.visible.append(track)
        if track.state == TrackState.LOST:
            track.state = TrackState.TRACKED
        elif track.state == TrackState.TENTATIVE and self._enough_seen(track):
            self._confirm(track, events)

    def _enough_seen(self, track: Track) -> bool:
        """A tentative track is a person after ``confirm_hits`` detections, or, while frames come at most LOW_FPS a
        second, after CONFIRM_LOW_HITS spanning as long as ``confirm_hits`` take at CONFIRM_FPS."""
        if track.hits >= self.confirm_hits:
            return True
        span = (self.confirm_hits - 1) / CONFIRM_FPS
        return self._low_rate and track.hits >= CONFIRM_LOW_HITS and track.last_seen - track.first_seen >= span - 1e-9

    def _verify_rejoin(self, track: Track, rejoin: Snapshot, t: float, events: TrackerEvents) -> bool:
        """A lost track takes back a face near where it was last seen (someone who stopped, or turned round
        behind a pillar). Where two people cross there, one of them turned away or hidden, that face may be the
        other's: it then heads off the other way, as the other's lost track was heading. Such a face goes to
        that track, and this one is lost again as it was (its own face, turned away, is still to come back).
        Only faces move between tracks here: nobody is counted anew. False while the heading is not known yet
        (fewer than four detections since)."""
        start = next((i for i, point in enumerate(track.path) if point[0] >= rejoin.at - 1e-9), len(track.path))
        taken = track.path[start:]
        before = [point for point in track.path[:start] if point[0] >= rejoin.last_seen - REVERSAL_BEFORE]
        if len(taken) < 4:
            return t - rejoin.at > REVERSAL_SECONDS  # too few detections since: give up
        if len(before) < 4:
            return True
        was, going = _heading(before), _heading(taken)
        fast = REVERSAL_SPEED * track.size
        speeds = float(np.linalg.norm(was)), float(np.linalg.norm(going))
        if min(speeds) < fast or float(was @ going) > -0.5 * speeds[0] * speeds[1]:
            return True
        other = self._lost_heading(track, going, t)
        if other is not None:
            self._give_faces(track, rejoin, start, other, t, events)
        return True

    def _swap_back(self, track: Track, t: float, events: TrackerEvents) -> None:
        """Two people crossing, one hiding the other: the hidden one's track may take the other's face and turn
        back with it, faster than anyone turns (see :func:`reversal`). Those faces go to the lost track of whoever
        was heading that way there, and this one is lost again as it was before, its own face still hidden.
        Only faces move between tracks here: nobody is counted anew."""
        turn = track.turn
        if turn is None:
            return
        took_at = track.path[turn.start][0]
        before = next((snap for snap in track.history if abs(snap.at - took_at) < 1e-9), None)
        other = self._lost_heading(track, turn.going, t) if before is not None else None
        if before is not None and other is not None:
            self._give_faces(track, before, turn.start, other, t, events)

    def _lost_heading(self, track: Track, going: np.ndarray, t: float) -> Track | None:
        """The lost track heading the way ``going`` (pixels per second) whose face ``track``'s face is nearest to,
        within its gate; None if none."""
        x1, y1, x2, y2 = track.detection.box
        here = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
        speed = float(np.linalg.norm(going))
        best, best_reach = None, 1.0
        for other in self.tracks:
            if other is track or other.updated_now or other.state != TrackState.LOST:
                continue
            velocity = other.kalman.mean[4:6]
            if float(velocity @ going) <= 0.5 * float(np.linalg.norm(velocity)) * speed:
                continue  # not heading the way the face goes
            gate = min(GATE_BASE + GATE_GROWTH * (t - other.last_seen), GATE_MAX) * other.size
            reach = float(np.linalg.norm(other.kalman.mean[:2] - here)) / gate
            if reach < best_reach:
                best, best_reach = other, reach
        return best

    def _give_faces(
        self, track: Track, before: Snapshot, start: int, other: Track, t: float, events: TrackerEvents
    ) -> None:
        """Moves ``track``'s detections from ``path[start]`` on to ``other``; ``track`` goes back to ``before``."""
        taken, detection = track.path[start:], track.detection
        del track.path[start:]
        track.restore(before, t)
        events.visible.remove(track)
        other.path.extend(taken[:-1])
        other.hits += len(taken) - 1
        other.update(detection, t)  # the last one
        other.state, other.turn = TrackState.TRACKED, None
        events.visible.append(other)

    def _hand_over(self, track: Track, start: int, events: TrackerEvents) -> None:
        """Ends ``track`` where its face walked out; the face that walked in goes on as a track of its own,
        with the detections it has had since (a person once it has enough, like any new track)."""
        taken = track.path[start:]
        del track.path[start:]
        track.state = TrackState.REMOVED
        events.ended.append(track)
        successor = Track(track.detection, taken[0][0])
        successor.path = list(taken)
        successor.hits = len(taken)
        successor.last_seen = successor.last_predicted = taken[-1][0]
        successor.kalman.mean[4:6] = _heading(taken)
        successor.remember_look(self._looks.get(id(track.detection)))
        self.tracks.append(successor)
        events.visible.append(successor)
        if self._enough_seen(successor):
            self._confirm(successor, events)

    def _confirm(self, track: Track, events: TrackerEvents) -> None:
        track.state = TrackState.TRACKED
        events.confirmed.append(track)

    def finish(self) -> list[Track]:
        """Ends every confirmed track (end of a video, shutdown); returns them."""
        ended = [tr for tr in self.tracks if tr.state in (TrackState.TRACKED, TrackState.LOST)]
        self.tracks = []
        # The pipeline ends every track at a jump of the frame clock or a cut: what came before is no frame interval,
        # nor a face walking in.
        self._intervals.clear()
        self._previous_t = None
        self._entrants = []
        return ended
