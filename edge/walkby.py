"""Walk-by test clips with ground truth: labelled test-split faces crossing a synthetic scene.

People (a drawn body with a real face from the TEST split of UTKFace / wiki as its head) walk across a
shop-front scene at varying size, speed, direction and lighting; some pairs cross each other (their faces
overlap), everyone passing the pillar is hidden behind it for a moment, and some turn back before the
middle. The ground truth lists the unique people per gender, per zone (left and right half of the frame)
and per counting line (the vertical middle line, walking right), and the agent config matching it.

Clips contain dataset faces: they are written to a temporary folder (``--out``, default a new temp dir),
never under the repository, and must never be committed. The agent never imports this module: the tests
and the benchmarks in ``bench/`` do (``from footfall.edge import walkby``).

Examples:
    .venv/bin/python -m footfall.edge.walkby --people 20                       # 1280×720, 25 fps
    .venv/bin/python -m footfall.edge.walkby --people 8 --width 640 --height 360 --fps 12 --out /tmp/walkby
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np

DATASETS = {"utkface": "utkface-112", "wiki": "wiki-144"}
ZONES = {
    "left": [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]],
    "right": [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]],
}
LINE: dict[str, Any] = {"id": "crossing", "points": [[0.5, 0.0], [0.5, 1.0]], "direction": "right"}
WIKI_CROP_SCALE = 1.4
TURN_PAUSE = 0.4  # seconds a walker who turns round stands still
VISIBLE = 0.5  # a face counts as seen in a frame when at least this much of it is in view


Colour = tuple[int, int, int]  # BGR


@dataclass(frozen=True)
class Face:
    image: np.ndarray  # BGR
    gender: str
    source: str
    age: float | None = None  # years, where the dataset gives it


@dataclass
class WalkbySpec:
    people: int = 12
    width: int = 1280
    height: int = 720
    fps: float = 25.0
    seed: int = 0
    min_face: int = 40  # px at 1280 wide; scaled with the width
    max_face: int = 110
    spacing_seconds: float = 1.3  # mean gap between people entering
    cross_seconds: tuple[float, float] = (3.0, 6.0)  # time to cross the frame
    pair_share: float = 0.25  # people who cross someone walking the other way
    turn_back_share: float = 0.15  # people who turn round before the middle
    pillar: bool = True
    pillar_width: float = 0.05  # share of the frame width; people behind it are hidden for a moment
    # "rect": the whole face photo with a soft border, so a crop around the face holds what the classifier
    # was trained on; "ellipse": an oval cut-out with drawn hair (harder, unlike any training chip).
    face_mask: str = "ellipse"
    sources: tuple[str, ...] = ("utkface", "wiki")
    # Faces from the test split measure; the val split is for choices made on clips (never test).
    split: str = "test"
    # People who turn their head away mid-walk (the back of the head shows, the body walks on at the same
    # speed) for a while drawn from ``turn_away_seconds``. 0 keeps the default clips exactly as they were.
    turn_away_share: float = 0.0
    turn_away_seconds: tuple[float, float] = (1.5, 3.0)


@dataclass
class Walker:
    id: int
    face: Face
    size: int  # face height in pixels
    direction: int  # +1 walks right, -1 walks left
    speed: float  # px/s
    start: float  # s, when the face centre is at x_start
    x_start: float
    y: float
    drift: float  # px/s vertical
    turn_at: float | None = None  # x where the walker turns round
    gain: float = 1.0
    body_colour: Colour = (90, 90, 90)
    seen_frames: list[tuple[int, float, float]] = field(default_factory=list)  # (frame, x, y) when visible
    hidden_runs: list[int] = field(default_factory=list)
    turn_away: tuple[float, float] | None = None  # (from, to) s: the face is turned away, the body walks on
    turned_frames: list[int] = field(default_factory=list)  # frames in view with the face turned away

    def turned(self, t: float) -> bool:
        return self.turn_away is not None and self.turn_away[0] <= t < self.turn_away[1]

    def position(self, t: float) -> tuple[float, float] | None:
        dt = t - self.start
        if dt < 0:
            return None
        v = self.speed
        if self.turn_at is None:
            x = self.x_start + self.direction * v * dt
        else:
            # Slow down, stop for a moment, walk back: people do not reverse instantly.
            leg = abs(self.turn_at - self.x_start)
            brake = min(0.3 * v, leg / 2)
            t_cruise, t_brake = (leg - brake) / v, 2 * brake / v
            if dt < t_cruise:
                x = self.x_start + self.direction * v * dt
            elif dt < t_cruise + t_brake:
                u = dt - t_cruise
                x = self.x_start + self.direction * (leg - brake + v * u - v * u * u / (2 * t_brake))
            elif dt < t_cruise + t_brake + TURN_PAUSE:
                x = self.turn_at
            else:
                u = dt - t_cruise - t_brake - TURN_PAUSE
                back = v * u * u / (2 * t_brake) if u < t_brake else brake + v * (u - t_brake)
                x = self.turn_at - self.direction * back
        bob = 0.03 * self.size * math.sin(2 * math.pi * 1.8 * dt)
        return x, self.y + self.drift * dt + bob


# -- faces ------------------------------------------------------------------------------------------------


def load_faces(
    data_dir: Path, count: int, seed: int, sources: tuple[str, ...] = ("utkface", "wiki"), split: str = "test"
) -> list[Face]:
    """``count`` random faces from one split (TEST unless told) of the given datasets, decoded in memory."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, str, str, str | None]] = []
    for source in sources:
        stem = DATASETS[source]
        with (data_dir / f"{stem}.csv").open(newline="") as handle:
            rows += [
                (source, r["path"], r["gender"], r.get("age") or None)
                for r in csv.DictReader(handle)
                if r["split"] == split
            ]
    picks = rng.choice(len(rows), size=min(count, len(rows)), replace=False)
    faces: list[Face] = []
    archives: dict[str, zipfile.ZipFile] = {}
    try:
        for index in picks:
            source, member, gender, age = rows[int(index)]
            archive = archives.setdefault(source, zipfile.ZipFile(data_dir / f"{DATASETS[source]}.zip"))
            data = np.frombuffer(archive.read(member), np.uint8)
            image = cv2.imdecode(data, cv2.IMREAD_COLOR)
            if image is not None:
                faces.append(Face(image, gender, source, float(age) if age else None))
    finally:
        for archive in archives.values():
            archive.close()
    return faces


# -- scene ------------------------------------------------------------------------------------------------


def make_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A shop-front corridor: wall gradient, shop windows, floor, a little texture."""
    ramp = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    top, bottom = rng.uniform(150, 210, 3), rng.uniform(70, 120, 3)
    image = (top[None, None, :] * (1 - ramp[..., None]) + bottom[None, None, :] * ramp[..., None]).repeat(width, 1)
    floor_y = int(height * 0.78)
    image[floor_y:] = rng.uniform(60, 110, 3)
    x = 0
    while x < width:  # shop windows
        w = int(rng.uniform(0.12, 0.25) * width)
        colour = rng.uniform(40, 230, 3)
        cv2.rectangle(image, (x + 8, int(height * 0.12)), (x + w - 8, int(height * 0.7)), colour.tolist(), -1)
        cv2.rectangle(image, (x + 8, int(height * 0.12)), (x + w - 8, int(height * 0.7)), (40, 40, 40), 3)
        x += w
    image += rng.normal(0, 6, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def ellipse_mask(width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    d = ((xx - width / 2 + 0.5) / (width * 0.47)) ** 2 + ((yy - height / 2 + 0.5) / (height * 0.5)) ** 2
    mask: np.ndarray = np.clip((1.0 - d) * 6.0, 0.0, 1.0)[..., None]
    return mask


def rect_mask(width: int, height: int, border: float = 0.06) -> np.ndarray:
    ramp_x = np.clip(np.minimum(np.arange(width), np.arange(width)[::-1]) / max(border * width, 1.0), 0, 1)
    ramp_y = np.clip(np.minimum(np.arange(height), np.arange(height)[::-1]) / max(border * height, 1.0), 0, 1)
    return np.minimum(ramp_y[:, None], ramp_x[None, :]).astype(np.float32)[..., None]


def blend(frame: np.ndarray, image: np.ndarray, alpha: np.ndarray, x0: int, y0: int) -> None:
    h, w = image.shape[:2]
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + w, frame.shape[1]), min(y0 + h, frame.shape[0])
    if fx1 <= fx0 or fy1 <= fy0:
        return
    src = image[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0].astype(np.float32)
    a = alpha[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    dst = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    frame[fy0:fy1, fx0:fx1] = (src * a + dst * (1 - a)).astype(np.uint8)


class Sprite:
    """A walker's face at its size and lighting, with its blending mask (made once per walker)."""

    def __init__(self, walker: Walker, face_mask: str = "rect"):
        face = walker.face.image
        # Wiki portraits are loose crops (the face fills about 70 % of them), UTKFace crops are tight:
        # scale so that the face itself is about ``walker.size`` pixels high either way.
        height = round(walker.size * (WIKI_CROP_SCALE if walker.face.source == "wiki" else 1.0))
        width = max(8, round(height * face.shape[1] / face.shape[0]))
        scaled = cv2.resize(face, (width, height), interpolation=cv2.INTER_AREA)
        self.image = np.clip(scaled.astype(np.float32) * walker.gain, 0, 255).astype(np.uint8)
        self.oval = face_mask == "ellipse"
        self.alpha = ellipse_mask(width, height) if self.oval else rect_mask(width, height)
        body = np.array(walker.body_colour, np.float32) * walker.gain
        self.body_colour = tuple(int(c) for c in np.clip(body, 0, 255))
        hair = np.array([30, 35, 45], np.float32) * walker.gain
        self.hair_colour = tuple(int(c) for c in hair)


def draw_walker(frame: np.ndarray, walker: Walker, sprite: Sprite, x: float, y: float, *, turned: bool = False) -> None:
    s = walker.size
    cx, cy = round(x), round(y)
    # Body and neck first, then hair, then the face on top.
    cv2.rectangle(
        frame,
        (cx - int(0.8 * s), cy + int(0.75 * s)),
        (cx + int(0.8 * s), cy + int(3.2 * s)),
        sprite.body_colour,
        -1,
    )
    cv2.ellipse(frame, (cx, cy + int(0.8 * s)), (int(0.8 * s), int(0.3 * s)), 0, 180, 360, sprite.body_colour, -1)
    cv2.rectangle(
        frame,
        (cx - int(0.18 * s), cy + int(0.4 * s)),
        (cx + int(0.18 * s), cy + int(0.8 * s)),
        (120, 140, 170),
        -1,
    )
    if sprite.oval:
        # Short hair: a cap over the top of the head only (hair framing the face would read as long hair).
        cv2.ellipse(frame, (cx, cy - int(0.1 * s)), (int(0.52 * s), int(0.5 * s)), 0, 180, 360, sprite.hair_colour, -1)
    if turned:
        # Turned away: the back of the head (hair) where the face was.
        cv2.ellipse(frame, (cx, cy), (int(0.45 * s), int(0.55 * s)), 0, 0, 360, sprite.hair_colour, -1)
        return
    h, w = sprite.image.shape[:2]
    blend(frame, sprite.image, sprite.alpha, cx - w // 2, cy - h // 2)


# -- schedule ---------------------------------------------------------------------------------------------


def schedule(spec: WalkbySpec, faces: list[Face], rng: np.random.Generator) -> list[Walker]:
    scale = spec.width / 1280
    walkers: list[Walker] = []
    t = 0.3
    i = 0
    while i < len(faces):
        size = int(rng.uniform(spec.min_face, spec.max_face) * scale)
        direction = int(rng.choice([-1, 1]))
        speed = (spec.width + 2 * size) / rng.uniform(*spec.cross_seconds)
        y = rng.uniform(0.3, 0.5) * spec.height
        x_start = -0.6 * size if direction > 0 else spec.width + 0.6 * size
        walker = Walker(
            id=i,
            face=faces[i],
            size=size,
            direction=direction,
            speed=speed,
            start=t,
            x_start=x_start,
            y=y,
            drift=rng.uniform(-0.03, 0.03) * spec.height / 3,
            gain=rng.uniform(0.6, 1.3),
            body_colour=cast(Colour, tuple(int(c) for c in rng.uniform(30, 220, 3))),
        )
        if rng.random() < spec.turn_back_share:
            # Turn round well before the middle, so the person is only ever in the first half.
            walker.turn_at = spec.width * (0.3 if direction > 0 else 0.82) + rng.uniform(-0.05, 0.05) * spec.width
        walkers.append(walker)
        i += 1
        if i < len(faces) and walker.turn_at is None and rng.random() < spec.pair_share:
            # Someone walking the other way who meets this walker in the middle: their faces overlap.
            other_size = int(np.clip(size * rng.uniform(0.7, 0.95), spec.min_face * scale, None))
            other_speed = (spec.width + 2 * other_size) / rng.uniform(*spec.cross_seconds)
            meet_x = spec.width * rng.uniform(0.35, 0.65)
            meet_t = t + abs(meet_x - x_start) / speed
            other_x_start = spec.width + 0.6 * other_size if direction > 0 else -0.6 * other_size
            walkers.append(
                Walker(
                    id=i,
                    face=faces[i],
                    size=other_size,
                    direction=-direction,
                    speed=other_speed,
                    start=meet_t - abs(meet_x - other_x_start) / other_speed,
                    x_start=other_x_start,
                    y=y + rng.uniform(-0.25, 0.25) * size,
                    drift=0.0,
                    gain=rng.uniform(0.6, 1.3),
                    body_colour=cast(Colour, tuple(int(c) for c in rng.uniform(30, 220, 3))),
                )
            )
            i += 1
        t += rng.uniform(0.5, 1.5) * spec.spacing_seconds
    if spec.turn_away_share > 0:
        add_turn_aways(spec, walkers)
    return walkers


def add_turn_aways(spec: WalkbySpec, walkers: list[Walker], lead: float = 0.7, tail: float = 0.7) -> None:
    """Some walkers who cross the whole frame turn their face away for a while mid-walk: seen for ``lead`` s
    first and ``tail`` s after. A walker too quick for that is slowed down. Its own random stream, so the
    rest of the clip is the same as without turn-aways."""
    rng = np.random.default_rng([spec.seed, 7919])
    for walker in walkers:
        if walker.turn_at is not None or rng.random() >= spec.turn_away_share:
            continue
        seconds = float(rng.uniform(*spec.turn_away_seconds))
        inside = spec.width - 1.6 * walker.size  # distance walked with the whole face in view
        if inside / walker.speed < seconds + lead + tail:
            walker.speed = inside / (seconds + lead + tail + float(rng.uniform(0.0, 0.8)))
        enters = walker.start + 1.4 * walker.size / walker.speed
        slack = inside / walker.speed - seconds - lead - tail
        begins = enters + lead + float(rng.uniform(0.0, max(slack, 0.0)))
        walker.turn_away = (begins, begins + seconds)


def visible_fraction(
    box: tuple[float, float, float, float],
    occluders: list[tuple[float, float, float, float]],
    width: int,
    height: int,
) -> float:
    x1, y1, x2, y2 = box
    area = (x2 - x1) * (y2 - y1)
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
    if cx2 <= cx1 or cy2 <= cy1:
        return 0.0
    inside = (cx2 - cx1) * (cy2 - cy1)
    hidden = 0.0
    for ox1, oy1, ox2, oy2 in occluders:
        iw = min(cx2, ox2) - max(cx1, ox1)
        ih = min(cy2, oy2) - max(cy1, oy1)
        if iw > 0 and ih > 0:
            hidden += iw * ih
    return max(0.0, inside - hidden) / area


# -- clip -------------------------------------------------------------------------------------------------


def make_walkby(data_dir: Path, out_dir: Path, spec: WalkbySpec, name: str = "walkby") -> tuple[Path, dict[str, Any]]:
    """Writes ``<out_dir>/<name>.mp4`` and ``<name>.json`` (ground truth); returns the clip and the truth."""
    rng = np.random.default_rng(spec.seed)
    faces = load_faces(data_dir, spec.people, spec.seed, spec.sources, spec.split)
    walkers = schedule(spec, faces, rng)
    sprites = {w.id: Sprite(w, spec.face_mask) for w in walkers}
    background = make_background(spec.width, spec.height, rng)
    pillar = None
    if spec.pillar:
        pw = int(spec.pillar_width * spec.width)
        px = int(0.68 * spec.width)
        pillar = (px, 0, px + pw, spec.height)
    end_time = 0.0
    for w in walkers:
        travel = spec.width + 1.2 * w.size if w.turn_at is None else 2 * abs(w.turn_at - w.x_start) + 0.6 * w.speed
        end_time = max(end_time, w.start + travel / w.speed + (TURN_PAUSE if w.turn_at is not None else 0))
    frames = math.ceil((end_time + 0.6) * spec.fps)
    noise = [rng.integers(0, 8, background.shape, dtype=np.uint8) for _ in range(3)]
    out_dir.mkdir(parents=True, exist_ok=True)
    clip = out_dir / f"{name}.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"mp4v"), spec.fps, (spec.width, spec.height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {clip}")
    hidden_now: dict[int, int] = {w.id: 0 for w in walkers}
    max_faces = 0
    try:
        for index in range(frames):
            t = index / spec.fps
            frame = background.copy()
            placed = []
            for w in walkers:
                pos = w.position(t)
                if pos is None:
                    continue
                x, y = pos
                half_w = sprites[w.id].image.shape[1] / 2
                if x < -2 * w.size or x > spec.width + 2 * w.size:
                    continue
                placed.append((w, x, y, (x - half_w, y - w.size / 2, x + half_w, y + w.size / 2)))
            placed.sort(key=lambda p: p[0].size)  # nearer (bigger) people are drawn last, in front
            max_faces = max(max_faces, sum(1 for p in placed if 0 <= p[1] < spec.width))
            for depth, (w, x, y, box) in enumerate(placed):
                turned = w.turned(t)
                draw_walker(frame, w, sprites[w.id], x, y, turned=turned)
                occluders = [p[3] for p in placed[depth + 1 :]]
                if pillar is not None:
                    occluders.append(pillar)
                fraction = visible_fraction(box, occluders, spec.width, spec.height)
                in_frame = box[0] >= 0 and box[2] <= spec.width
                if turned:
                    if in_frame:
                        w.turned_frames.append(index)
                elif fraction >= VISIBLE:
                    w.seen_frames.append((index, x / spec.width, y / spec.height))
                    if hidden_now[w.id]:
                        w.hidden_runs.append(hidden_now[w.id])
                    hidden_now[w.id] = 0
                elif in_frame and w.seen_frames:
                    hidden_now[w.id] += 1
            if pillar is not None:
                cv2.rectangle(frame, pillar[:2], pillar[2:], (175, 170, 160), -1)
                cv2.rectangle(frame, (pillar[0] + 6, 0), (pillar[0] + 12, spec.height), (200, 198, 190), -1)
            # Slow global lighting change plus sensor noise.
            light = 1.0 + 0.12 * math.sin(2 * math.pi * t / 9.0)
            frame = cv2.convertScaleAbs(frame, alpha=light, beta=-4)
            frame = cv2.add(frame, noise[index % 3])
            writer.write(frame)
    finally:
        writer.release()
    truth = ground_truth(walkers, spec, frames, clip)
    truth["max_faces_in_frame"] = max_faces
    (out_dir / f"{name}.json").write_text(json.dumps(truth, indent=2))
    return clip, truth


def ground_truth(walkers: list[Walker], spec: WalkbySpec, frames: int, clip: Path) -> dict[str, Any]:
    """Who can be counted (seen for at least 0.4 s), per gender, per zone and for the line."""
    min_frames = max(3, int(0.4 * spec.fps))
    people: list[dict[str, Any]] = []
    for w in walkers:
        if len(w.seen_frames) < min_frames:
            continue
        zones = [z for z in ZONES if sum(1 for _, x, _ in w.seen_frames if (x < 0.5) == (z == "left")) >= 3]
        xs = [x for _, x, _ in w.seen_frames]
        crossed = w.direction > 0 and w.turn_at is None and min(xs) < 0.45 and max(xs) > 0.55
        people.append(
            {
                "id": w.id,
                "gender": w.face.gender,
                "source": w.face.source,
                "age": w.face.age,
                "direction": "right" if w.direction > 0 else "left",
                "face_px": w.size,
                "speed_px_s": round(w.speed, 1),
                "turns_back": w.turn_at is not None,
                "zones": zones,
                "crosses_line": crossed,
                "seen_frames": len(w.seen_frames),
                "path": [[f, round(x, 4), round(y, 4)] for f, x, y in w.seen_frames],
                "first_seen": [w.seen_frames[0][0], round(w.seen_frames[0][1], 3)],
                "last_seen": [w.seen_frames[-1][0], round(w.seen_frames[-1][1], 3)],
                "longest_hidden_s": round(max(w.hidden_runs, default=0) / spec.fps, 2),
                # Frames (first, last) in view with the face turned away, and for how long: null if never.
                "turn_away": [w.turned_frames[0], w.turned_frames[-1]] if w.turned_frames else None,
                "turn_away_s": round(len(w.turned_frames) / spec.fps, 2),
            }
        )

    def tally(selected: list[dict[str, Any]]) -> dict[str, int]:
        return {
            "people": len(selected),
            "female": sum(1 for p in selected if p["gender"] == "female"),
            "male": sum(1 for p in selected if p["gender"] == "male"),
        }

    per_zone = {z: tally([p for p in people if z in p["zones"]]) for z in ZONES}
    per_zone[LINE["id"]] = tally([p for p in people if p["crosses_line"]])
    return {
        "clip": str(clip),
        "spec": {k: v for k, v in asdict(spec).items()},
        "frames": frames,
        "seconds": round(frames / spec.fps, 2),
        **tally(people),
        "zones": per_zone,
        "hidden_briefly": sum(1 for p in people if p["longest_hidden_s"] > 0),
        "turned_away": sum(1 for p in people if p["turn_away"] is not None),
        "persons": people,
        "camera": {"zones": [{"id": k, "polygon": v} for k, v in ZONES.items()], "lines": [LINE]},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--out", type=Path, default=None, help="Folder for the clip (default: a new temp dir).")
    parser.add_argument("--name", default="walkby")
    parser.add_argument("--people", type=int, default=12)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--turn-away", type=float, default=0.0, help="Share of people who turn their face away.")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="footfall-walkby-"))
    spec = WalkbySpec(
        people=args.people,
        width=args.width,
        height=args.height,
        fps=args.fps,
        seed=args.seed,
        turn_away_share=args.turn_away,
    )
    _clip, truth = make_walkby(args.data, out, spec, args.name)
    keys = (
        "clip",
        "frames",
        "seconds",
        "people",
        "female",
        "male",
        "zones",
        "hidden_briefly",
        "turned_away",
        "max_faces_in_frame",
    )
    summary = {k: truth[k] for k in keys}
    json.dump(summary, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
