"""Builds the bundled demo clip ``edge/samples/mall-walkby.mp4`` and its ground truth.

A drawn mall corridor (floor, shop fronts, a pillar) seen by a camera at eye level, with passers-by walking
across it one or two at a time, some in each direction. Each passer-by is a drawn body with a real face
photograph as its head. The photographs are the public-domain / CC0 sample images that ship inside the
scikit-image and matplotlib wheels (see ``edge/samples/PROVENANCE.md``); nothing is downloaded and no
research-dataset image is used. The build is deterministic: the same seed and package versions give the
same frames.

matplotlib and scikit-image are needed only here (not at run time): ``pip install matplotlib scikit-image``.

Examples:
    .venv/bin/python bench/make_sample_clip.py
    .venv/bin/python bench/make_sample_clip.py --verify models/bundles/face-detector-centerface
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "edge" / "samples"
CLIP_NAME = "mall-walkby"

WIDTH, HEIGHT, FPS = 960, 540, 10
EYE_LEVEL_Y = 205  # the camera hangs at eye height, so every head sits near this line whatever its distance
WALL_BASE_Y = 330  # where the shop fronts meet the floor
LEAD_FRAMES = 8  # empty corridor at the start and the end, so a looping player never joins two visits
FACE_GAP = 1.5  # faces on screen together stay this many face widths apart, so no tracker confuses them


@dataclass(frozen=True)
class FaceSource:
    """One public-domain photograph: the outline of its head and where a face detector puts the face."""

    key: str
    gender: str
    package: str
    member: str  # path of the image file inside the installed package
    outline: tuple[tuple[int, int], ...]  # polygon around hair, face and chin (hat included), source pixels
    face_box: tuple[int, int, int, int]  # the face as CenterFace boxes it, source pixels: sets the scale
    sha256: str  # of the file: another package release with other pixels must not slip in unnoticed

    @property
    def head_box(self) -> tuple[int, int, int, int]:
        xs, ys = zip(*self.outline, strict=True)
        return min(xs), min(ys), max(xs) + 1, max(ys) + 1


SOURCES = {
    "collins": FaceSource(
        "collins",
        "female",
        "scikit-image",
        "skimage/data/astronaut.png",
        (
            (225, 16),
            (260, 20),
            (286, 38),
            (300, 66),
            (302, 100),
            (296, 128),
            (278, 146),
            (258, 168),
            (240, 182),
            (222, 186),
            (204, 180),
            (188, 164),
            (168, 146),
            (156, 124),
            (151, 96),
            (154, 64),
            (166, 40),
            (192, 22),
        ),
        (182, 58, 270, 178),
        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    ),
    "hopper": FaceSource(
        "hopper",
        "female",
        "matplotlib",
        "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
        (
            (258, 24),
            (312, 32),
            (352, 62),
            (366, 120),
            (364, 200),
            (352, 262),
            (326, 306),
            (292, 330),
            (258, 336),
            (222, 328),
            (190, 302),
            (170, 262),
            (160, 200),
            (150, 124),
            (160, 66),
            (200, 32),
        ),
        (174, 128, 358, 334),
        "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
    ),
    "cameraman": FaceSource(
        "cameraman",
        "male",
        "scikit-image",
        "skimage/data/camera.png",
        (
            (206, 64),
            (238, 70),
            (258, 90),
            (263, 120),
            (256, 146),
            (253, 170),
            (246, 190),
            (228, 201),
            (204, 197),
            (188, 176),
            (176, 150),
            (163, 120),
            (160, 96),
            (170, 76),
            (186, 67),
        ),
        (202, 119, 258, 197),
        "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
    ),
}


@dataclass(frozen=True)
class Walker:
    """One passer-by: which face, how it is varied, where and when it walks."""

    face: str
    direction: str  # "left_to_right" or "right_to_left"
    face_width: int  # rendered width of the face (as the detector boxes it), pixels
    mirror: bool
    gain: float  # overall brightness of the face
    tint: tuple[float, float, float]  # per-channel (B, G, R) colour cast: lighting of the spot
    top: tuple[int, int, int]  # clothing colours, BGR
    trousers: tuple[int, int, int]
    height_offset: int  # taller or shorter than eye level, pixels


CAST = (
    Walker("collins", "left_to_right", 84, False, 1.00, (1.0, 1.0, 1.0), (40, 90, 200), (60, 50, 40), 0),
    Walker("cameraman", "left_to_right", 66, False, 1.05, (0.80, 0.92, 1.12), (120, 70, 30), (50, 50, 50), 12),
    Walker("hopper", "right_to_left", 98, True, 0.92, (1.0, 1.0, 1.0), (90, 40, 20), (30, 30, 30), 4),
    Walker("cameraman", "right_to_left", 104, True, 0.9, (0.78, 0.9, 1.1), (60, 130, 60), (90, 80, 70), -10),
    Walker("collins", "right_to_left", 62, True, 1.12, (1.05, 1.0, 0.95), (150, 150, 150), (40, 40, 90), 10),
    Walker("cameraman", "left_to_right", 88, False, 0.85, (0.85, 0.95, 1.05), (30, 30, 140), (40, 40, 40), -6),
    Walker("hopper", "left_to_right", 72, False, 1.08, (0.95, 1.0, 1.06), (140, 100, 160), (70, 60, 50), 6),
    Walker("collins", "right_to_left", 96, False, 0.90, (1.08, 1.0, 0.94), (20, 160, 220), (50, 40, 30), -4),
    Walker("cameraman", "right_to_left", 58, True, 1.1, (0.82, 0.9, 1.15), (100, 100, 40), (30, 30, 60), 14),
)


@dataclass
class Timing:
    start_frame: int
    end_frame: int  # last frame on screen
    speed: float  # pixels per frame
    x0: float  # body centre x at start_frame


@dataclass
class Figure:
    """A walker made ready to draw: head image, alpha and body dimensions in pixels."""

    walker: Walker
    head: np.ndarray  # float32 BGR, 0-1
    alpha: np.ndarray  # float32 (h, w, 1)
    unit: float  # head height, the unit of the body's proportions
    skin: tuple[int, int, int]
    timing: Timing
    face_offset: tuple[float, float, float, float]  # face box relative to (body centre x, head top y)


def load_source(source: FaceSource) -> np.ndarray:
    """BGR pixels of the sample photograph, read from the installed package (no download)."""
    try:
        if source.package == "matplotlib":
            import matplotlib.cbook

            path = Path(str(matplotlib.cbook.get_sample_data(Path(source.member).name, asfileobj=False)))
        else:
            import skimage

            path = Path(skimage.__file__).resolve().parent / Path(source.member).relative_to("skimage")
    except ImportError:
        sys.exit(f"error: {source.package} is needed to build the clip: pip install scikit-image matplotlib")
    if not path.is_file():
        sys.exit(f"error: {path} is missing; install {source.package} (pip install {source.package})")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != source.sha256:
        sys.exit(f"error: {path} has sha256 {digest}, not the reviewed one (see edge/samples/PROVENANCE.md)")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        sys.exit(f"error: OpenCV cannot decode {path}")
    return image


def draw_background(rng: np.random.Generator) -> np.ndarray:
    """A mall corridor: ceiling lights, shop fronts with signs, a tiled floor in perspective, a pillar."""
    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    # Ceiling and back wall.
    frame[:48] = (205, 212, 218)
    for x in range(60, WIDTH, 180):
        cv2.ellipse(frame, (x, 24), (40, 9), 0, 0, 360, (235, 248, 255), -1, cv2.LINE_AA)
    frame[48:WALL_BASE_Y] = (176, 186, 196)
    cv2.line(frame, (0, 48), (WIDTH, 48), (120, 128, 136), 3, cv2.LINE_AA)
    shops = (
        ("COFFEE", (40, 70, 120), (0, 220)),
        ("BOOKS", (110, 60, 40), (240, 470)),
        ("SHOES", (60, 60, 150), (490, 720)),
        ("PHARMACY", (60, 120, 40), (740, WIDTH)),
    )
    for name, colour, (x1, x2) in shops:
        cv2.rectangle(frame, (x1 + 6, 62), (x2 - 6, 100), colour, -1, cv2.LINE_AA)
        size = cv2.getTextSize(name, cv2.FONT_HERSHEY_DUPLEX, 0.9, 2)[0]
        cv2.putText(
            frame,
            name,
            ((x1 + x2 - size[0]) // 2, 92),
            cv2.FONT_HERSHEY_DUPLEX,
            0.9,
            (245, 245, 245),
            2,
            cv2.LINE_AA,
        )
        # Shop window: a cool glass gradient with a door in the middle.
        glass = np.linspace(0.0, 1.0, WALL_BASE_Y - 116)[:, None, None]
        window = (1 - glass) * np.array([200, 190, 170]) + glass * np.array([150, 140, 125])
        frame[112 : WALL_BASE_Y - 4, x1 + 12 : x2 - 12] = window.astype(np.uint8)
        door = (x1 + x2) // 2
        cv2.rectangle(frame, (door - 28, 150), (door + 28, WALL_BASE_Y - 4), (120, 110, 100), 2, cv2.LINE_AA)
        for shelf_y in (170, 215, 260):  # shelves with goods behind the glass
            cv2.line(frame, (x1 + 16, shelf_y), (door - 36, shelf_y), (110, 110, 110), 2)
            cv2.line(frame, (door + 36, shelf_y), (x2 - 16, shelf_y), (110, 110, 110), 2)
            for gx in range(x1 + 20, x2 - 20, 16):
                if abs(gx - door) > 40:
                    shade = tuple(int(c) for c in rng.integers(60, 200, 3))
                    cv2.rectangle(frame, (gx, shelf_y - int(rng.integers(10, 24))), (gx + 10, shelf_y - 1), shade, -1)
    # Floor: tiles in perspective towards a vanishing point on the eye-level line.
    floor = np.linspace(0.0, 1.0, HEIGHT - WALL_BASE_Y)[:, None, None]
    frame[WALL_BASE_Y:] = ((1 - floor) * np.array([190, 196, 200]) + floor * np.array([150, 158, 165])).astype(np.uint8)
    vanish = (WIDTH // 2, EYE_LEVEL_Y)
    for x in range(-2400, WIDTH + 2400, 160):
        t = (WALL_BASE_Y - vanish[1]) / (HEIGHT - vanish[1])
        top = (int(vanish[0] + (x - vanish[0]) * t), WALL_BASE_Y)
        cv2.line(frame, top, (x, HEIGHT), (135, 140, 146), 1, cv2.LINE_AA)
    depth = 1.0
    y = float(WALL_BASE_Y)
    while y < HEIGHT:
        cv2.line(frame, (0, int(y)), (WIDTH, int(y)), (135, 140, 146), 1, cv2.LINE_AA)
        depth *= 1.35
        y = WALL_BASE_Y + 14 * (depth - 1) / 0.35
    # A pillar standing between the shop fronts.
    shade = np.clip(np.sin(np.linspace(0.2, 2.9, 64)), 0, 1)[None, :, None]
    pillar = (120 + 110 * shade * np.array([1.0, 1.0, 1.0])).astype(np.uint8)
    frame[48 : HEIGHT - 60, 700:764] = np.broadcast_to(pillar, (HEIGHT - 108, 64, 3))
    cv2.ellipse(frame, (732, HEIGHT - 60), (32, 6), 0, 0, 180, (110, 112, 115), -1, cv2.LINE_AA)
    return frame


def make_figure(walker: Walker, photos: dict[str, np.ndarray], timing: Timing) -> Figure:
    source = SOURCES[walker.face]
    x1, y1, x2, y2 = source.head_box
    crop = photos[walker.face][y1:y2, x1:x2]
    scale = walker.face_width / (source.face_box[2] - source.face_box[0])
    size = (max(8, round(crop.shape[1] * scale)), max(8, round(crop.shape[0] * scale)))
    mask = np.zeros(crop.shape[:2], np.float32)
    cv2.fillPoly(mask, [np.array(source.outline, np.int32) - (x1, y1)], 1.0, cv2.LINE_AA)
    head = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
    if walker.mirror:
        head, alpha = head[:, ::-1], alpha[:, ::-1]
    head = head.astype(np.float32) / 255.0
    head = np.clip(head * walker.gain * np.array(walker.tint, np.float32), 0, 1)
    h, w = head.shape[:2]
    feather = max(3, (min(w, h) // 16) | 1)  # a soft edge, so the pasted head does not look cut out
    alpha = cv2.GaussianBlur(np.ascontiguousarray(alpha), (feather, feather), 0)[:, :, None]
    fx1, fy1, fx2, fy2 = source.face_box
    cheek = photos[walker.face][
        fy1 + (fy2 - fy1) // 2 : fy2 - (fy2 - fy1) // 4, fx1 + (fx2 - fx1) // 4 : fx2 - (fx2 - fx1) // 4
    ]
    skin_bgr = np.median(cheek.reshape(-1, 3), axis=0) * walker.gain * np.array(walker.tint)
    skin = tuple(int(c) for c in np.clip(skin_bgr, 0, 255))
    # Where the face lies inside the pasted head (mirroring flips it), relative to the head's top centre.
    left, right = (fx1 - x1) * scale, (fx2 - x1) * scale
    if walker.mirror:
        left, right = w - right, w - left
    offset = (left - w / 2, right - w / 2, (fy1 - y1) * scale, (fy2 - y1) * scale)
    return Figure(walker, head, alpha, float(h), skin, timing, offset)


def _limb(frame: np.ndarray, root: tuple[float, float], angle: float, length: float, width: float, colour) -> tuple:
    """A limb as a quadrilateral hanging from ``root``, swung by ``angle`` radians; returns its far end."""
    dx, dy = math.sin(angle), math.cos(angle)
    end = (root[0] + dx * length, root[1] + dy * length)
    nx, ny = dy * width / 2, -dx * width / 2
    points = np.array(
        [
            (root[0] + nx, root[1] + ny),
            (root[0] - nx, root[1] - ny),
            (end[0] - nx, end[1] - ny),
            (end[0] + nx, end[1] + ny),
        ],
        np.int32,
    )
    cv2.fillConvexPoly(frame, points, colour, cv2.LINE_AA)
    cv2.polylines(frame, [points], True, tuple(int(c * 0.6) for c in colour), 1, cv2.LINE_AA)
    return end


def draw_figure(frame: np.ndarray, figure: Figure, frame_index: int) -> tuple[float, float, float, float] | None:
    """Draws one walker on ``frame``; returns its face box in frame pixels, or None when off screen."""
    walker, timing = figure.walker, figure.timing
    if not timing.start_frame <= frame_index <= timing.end_frame:
        return None
    sign = 1 if walker.direction == "left_to_right" else -1
    travelled = (frame_index - timing.start_frame) * timing.speed
    cx = timing.x0 + sign * travelled
    u = figure.unit
    phase = travelled / (1.1 * u) * math.pi  # one stride per 1.1 head heights walked
    bob = abs(math.sin(phase)) * 0.04 * u
    head_h, head_w = figure.head.shape[:2]
    head_top = EYE_LEVEL_Y - 0.5 * head_h + walker.height_offset - bob
    chin = head_top + head_h * 0.92
    shoulder_y = chin + 0.3 * u
    hip_y = shoulder_y + 2.4 * u
    swing = 0.38 * math.sin(phase)
    dark = tuple(int(c * 0.75) for c in walker.top)
    # Far-side limbs first, then the torso, then near-side limbs, neck and head.
    _limb(
        frame,
        (cx - 0.1 * u * sign, hip_y),
        -swing,
        3.2 * u,
        0.5 * u,
        tuple(int(c * 0.8) for c in walker.trousers),
    )
    hand = _limb(frame, (cx - 0.55 * u * sign, shoulder_y + 0.15 * u), swing * 0.8, 2.4 * u, 0.34 * u, dark)
    cv2.circle(frame, (int(hand[0]), int(hand[1])), int(0.16 * u), figure.skin, -1, cv2.LINE_AA)
    _limb(frame, (cx + 0.1 * u * sign, hip_y), swing, 3.2 * u, 0.52 * u, walker.trousers)
    torso = np.array(
        [
            (cx - 0.75 * u, shoulder_y),
            (cx + 0.75 * u, shoulder_y),
            (cx + 0.55 * u, hip_y + 0.2 * u),
            (cx - 0.55 * u, hip_y + 0.2 * u),
        ],
        np.int32,
    )
    cv2.fillConvexPoly(frame, torso, walker.top, cv2.LINE_AA)
    cv2.ellipse(
        frame,
        (int(cx), int(shoulder_y + 0.12 * u)),
        (int(0.75 * u), int(0.16 * u)),
        0,
        180,
        360,
        walker.top,
        -1,
        cv2.LINE_AA,
    )
    neck = np.array(
        [
            (cx - 0.17 * u, chin - 0.2 * u),
            (cx + 0.17 * u, chin - 0.2 * u),
            (cx + 0.2 * u, shoulder_y + 0.05 * u),
            (cx - 0.2 * u, shoulder_y + 0.05 * u),
        ],
        np.int32,
    )
    cv2.fillConvexPoly(frame, neck, figure.skin, cv2.LINE_AA)
    hand = _limb(frame, (cx + 0.55 * u * sign, shoulder_y + 0.15 * u), -swing * 0.8, 2.4 * u, 0.36 * u, walker.top)
    cv2.circle(frame, (int(hand[0]), int(hand[1])), int(0.17 * u), figure.skin, -1, cv2.LINE_AA)
    # Paste the head with its feathered elliptical alpha, clipped to the frame.
    x0, y0 = round(cx - head_w / 2), round(head_top)
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + head_w, WIDTH), min(y0 + head_h, HEIGHT)
    if fx1 > fx0 and fy1 > fy0:
        # Lighting along the corridor: a soft brighter patch under each ceiling light.
        light = 1.0 + 0.08 * math.cos(2 * math.pi * cx / 180.0)
        head = figure.head[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0] * light
        alpha = figure.alpha[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
        region = frame[fy0:fy1, fx0:fx1].astype(np.float32) / 255.0
        frame[fy0:fy1, fx0:fx1] = (np.clip(alpha * head + (1 - alpha) * region, 0, 1) * 255).round().astype(np.uint8)
    left, right, top, bottom = figure.face_offset
    return (cx + left, head_top + top, cx + right, head_top + bottom)


def face_span(figure: Figure, frame_index: int) -> tuple[float, float] | None:
    """Left and right edge of the walker's face at ``frame_index`` (frame pixels), None when off screen."""
    timing = figure.timing
    if not timing.start_frame <= frame_index <= timing.end_frame:
        return None
    sign = 1 if figure.walker.direction == "left_to_right" else -1
    cx = timing.x0 + sign * (frame_index - timing.start_frame) * timing.speed
    return cx + figure.face_offset[0], cx + figure.face_offset[1]


def keeps_apart(new: Figure, other: Figure) -> bool:
    """True when the two faces never come closer than FACE_GAP face widths while both are on screen."""
    gap = FACE_GAP * max(new.walker.face_width, other.walker.face_width)
    first = max(new.timing.start_frame, other.timing.start_frame)
    last = min(new.timing.end_frame, other.timing.end_frame)
    for index in range(first, last + 1):
        a, b = face_span(new, index), face_span(other, index)
        if a is not None and b is not None and max(a[0] - b[1], b[0] - a[1]) < gap:
            return False
    return True


def schedule(cast: tuple[Walker, ...], photos: dict[str, np.ndarray]) -> tuple[list[Figure], int]:
    """Starts each walker, in cast order, as early as it can walk without coming near another one's face.

    Someone walking the same way follows a few steps behind; someone walking the other way waits until
    the way is clear, because two faces passing each other would hide one of them.
    """
    figures: list[Figure] = []
    start = LEAD_FRAMES
    for walker in cast:
        speed = 0.36 * walker.face_width  # nearer walkers move more pixels per frame
        probe = make_figure(walker, photos, Timing(0, 0, speed, 0.0))
        half_width = 1.0 * probe.unit  # half the widest extent of body and swinging arms
        x0 = -half_width if walker.direction == "left_to_right" else WIDTH + half_width
        steps = math.ceil((WIDTH + 2 * half_width) / speed)
        while True:
            probe.timing = Timing(start, start + steps, speed, x0)
            if all(keeps_apart(probe, other) for other in figures):
                break
            start += 1
        figures.append(probe)
        start += 1
    return figures, max(figure.timing.end_frame for figure in figures) + 1 + LEAD_FRAMES


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def render(out: Path, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    photos = {key: load_source(source) for key, source in SOURCES.items()}
    background = draw_background(rng)
    figures, frames = schedule(CAST, photos)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        sys.exit(f"error: OpenCV cannot write mp4v video to {out}")
    boxes: list[list[tuple[float, float, float, float] | None]] = [[] for _ in figures]
    for index in range(frames):
        frame = background.copy()
        # Nearer (bigger) walkers are drawn last so they pass in front of farther ones.
        for number, figure in sorted(enumerate(figures), key=lambda item: item[1].walker.face_width):
            box = draw_figure(frame, figure, index)
            visible = box is not None and box[0] >= 0 and box[2] <= WIDTH
            boxes[number].append(box if visible else None)
        writer.write(frame)
    writer.release()
    for index in range(frames):  # a face hidden behind another one would make the ground truth a lie
        on_screen = [row[index] for row in boxes if row[index] is not None]
        for i, a in enumerate(on_screen):
            for b in on_screen[i + 1 :]:
                if iou(a, b) > 0:
                    sys.exit(f"error: faces overlap at frame {index}; adjust the schedule")
    people = []
    for number, (figure, row) in enumerate(zip(figures, boxes, strict=True)):
        walker, source = figure.walker, SOURCES[figure.walker.face]
        seen = [i for i, box in enumerate(row) if box is not None]
        people.append(
            {
                "id": number + 1,
                "gender": source.gender,
                "direction": walker.direction,
                "face_source": walker.face,
                "mirrored": walker.mirror,
                "face_width_px": walker.face_width,
                "enter_frame": figure.timing.start_frame,
                "exit_frame": figure.timing.end_frame,
                "face_fully_visible_frames": [seen[0], seen[-1]],
            }
        )
    totals: dict[str, dict[str, int]] = {}
    for person in people:
        by_gender = totals.setdefault(person["direction"], {"female": 0, "male": 0})
        by_gender[person["gender"]] += 1
    return {
        "file": out.name,
        "width": WIDTH,
        "height": HEIGHT,
        "fps": FPS,
        "frames": frames,
        "duration_s": round(frames / FPS, 3),
        "codec": "mp4v",
        "seed": seed,
        "people": len(people),
        "by_gender": {g: sum(1 for p in people if p["gender"] == g) for g in ("female", "male")},
        "by_direction": totals,
        "walkers": people,
        "sources": {
            key: {
                "package": f"{source.package}=={importlib.metadata.version(source.package)}",
                "file": source.member,
                "sha256": source.sha256,
                "gender": source.gender,
            }
            for key, source in SOURCES.items()
        },
        "notes": "Synthetic scene; face photographs are public domain / CC0 (see PROVENANCE.md). "
        "Frames are 0-based. Ground-truth face boxes are recomputed by bench/make_sample_clip.py.",
    }


def verify(clip: Path, truth: dict, detector, every: int, classifier=None) -> bool:
    """Runs a face detector (``footfall.core.detector.FaceDetector``) over the clip and reports, per walker,
    in how many of the frames that show its whole face the detector finds it (IoU ≥ 0.3). With a
    ``GenderClassifier``, also the walker's decision from its probabilities averaged over its frames."""
    capture = cv2.VideoCapture(str(clip))
    hits = {p["id"]: [0, 0] for p in truth["walkers"]}
    widths: dict[int, list[float]] = {p["id"]: [] for p in truth["walkers"]}
    probabilities: dict[int, list[np.ndarray]] = {p["id"]: [] for p in truth["walkers"]}
    false_positives = 0
    index = 0
    photos = {key: load_source(source) for key, source in SOURCES.items()}
    figures, _ = schedule(CAST, photos)
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % every == 0:
            detections = detector(frame)
            expected, partial = {}, []
            for number, figure in enumerate(figures):
                box = draw_figure(np.zeros_like(frame), figure, index)
                if box is not None and box[0] >= 0 and box[2] <= WIDTH:
                    expected[number + 1] = box
                elif box is not None:  # a face half out of the frame: finding it is fine, not required
                    partial.append((max(box[0], 0.0), box[1], min(box[2], float(WIDTH)), box[3]))
            matched = set()
            for person, box in expected.items():
                hits[person][1] += 1
                best = max(detections, key=lambda d: iou(d.box, box), default=None)
                if best is not None and iou(best.box, box) >= 0.3:
                    hits[person][0] += 1
                    widths[person].append(best.width)
                    matched.add(id(best))
                    if classifier is not None:
                        chip = classifier.crop(frame, best.box, best.landmarks)
                        probabilities[person].append(classifier.probabilities([chip])[0])
            matched |= {id(d) for d in detections for box in partial if iou(d.box, box) >= 0.3}
            strays = [d for d in detections if id(d) not in matched]
            false_positives += len(strays)
            for stray in strays:
                print(
                    f"frame {index}: detection matching no walker at {[round(v) for v in stray.box]}, "
                    f"score {stray.score:.2f}"
                )
        index += 1
    capture.release()
    if index != truth["frames"]:
        print(f"error: clip has {index} frames, ground truth says {truth['frames']}")
        return False
    ok = True
    for person in truth["walkers"]:
        found, total = hits[person["id"]]
        rate = found / max(total, 1)
        mean_width = float(np.mean(widths[person["id"]])) if widths[person["id"]] else 0.0
        line = (
            f"walker {person['id']:2d} {person['gender']:6s} {person['direction']:13s} "
            f"face {person['face_width_px']:3d}px: "
            f"detected in {found:3d}/{total:3d} frames ({rate:.0%}), mean detected width {mean_width:.0f}px"
        )
        if classifier is not None and probabilities[person["id"]]:
            mean = np.mean(probabilities[person["id"]], axis=0)
            decision = classifier.decide(mean, per_track=True)[0]
            line += (
                f", classified {decision.label} ("
                + ", ".join(f"{name} {value:.2f}" for name, value in decision.probabilities.items())
                + ")"
            )
        print(line)
        ok &= rate >= 0.8
    print(f"detections matching no walker: {false_positives}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=SAMPLES / f"{CLIP_NAME}.mp4", help="Where to write the clip.")
    parser.add_argument("--seed", type=int, default=7, help="Seed of the goods drawn on the shop shelves.")
    parser.add_argument("--verify", type=Path, metavar="BUNDLE", help="Check faces with this detector bundle.")
    parser.add_argument("--gender", type=Path, metavar="BUNDLE", help="With --verify, also classify faces.")
    parser.add_argument("--every", type=int, default=1, help="With --verify, check every Nth frame.")
    parser.add_argument("--skip-render", action="store_true", help="With --verify, check the existing clip only.")
    args = parser.parse_args()
    if args.skip_render and args.verify is None:
        parser.error("--skip-render only makes sense with --verify BUNDLE")
    truth_path = args.out.with_suffix(".json")
    if args.skip_render:
        if not truth_path.is_file():
            sys.exit(f"error: {truth_path} does not exist; build the clip first")
        truth = json.loads(truth_path.read_text())
    else:
        truth = render(args.out, args.seed)
        truth_path.write_text(json.dumps(truth, indent=2) + "\n")
        capture = cv2.VideoCapture(str(args.out))
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, _ = capture.read()
        capture.release()
        if not ok or count != truth["frames"]:
            sys.exit(f"error: OpenCV cannot read back {args.out} ({count} frames, expected {truth['frames']})")
        size_mb = args.out.stat().st_size / 1e6
        print(
            f"wrote {args.out} ({size_mb:.2f} MB, {truth['frames']} frames, "
            f"{truth['duration_s']} s at {FPS} fps, "
            f"{truth['people']} people: {truth['by_gender']}, by direction {truth['by_direction']})"
        )
    if args.verify is None:
        return
    from footfall.core.bundle import BundleError
    from footfall.core.classifier import GenderClassifier
    from footfall.core.detector import FaceDetector

    try:
        classifier = GenderClassifier(args.gender, threads=2) if args.gender else None
        detector = FaceDetector(args.verify, threads=2)
    except BundleError as exc:
        sys.exit(f"error: {exc}")
    if not verify(args.out, truth, detector, args.every, classifier):
        sys.exit("error: some walkers' faces are detected in fewer than 80% of their frames")


if __name__ == "__main__":
    main()
