"""Visit clips with ground truth: people come in through a door, stay a while, and leave the way they came.

Built on edge/walkby.py (its faces, scene and drawing): a camera looks along a corridor whose door is on the
left. A visitor walks in from the left edge, crosses the door line (x = DOOR_X of the width) walking right,
stops somewhere inside for a few seconds, turns round and walks back out through the door, all in one track.
Some people (``passer_share``) come from inside the mall on the right, look around and go back right without
ever reaching the door: the camera sees them, the door does not. The truth lists, per person, whether and
when (seconds from the clip's start) they crossed the door inwards and outwards, so a benchmark can rebuild
in, out and occupancy per bucket.

Clips contain dataset faces (TEST split only): they go to a temporary folder that the caller deletes, never
under the repository. The agent never imports this module.

Example:
    .venv/bin/python -m footfall.edge.visitclips --people 40 --out /tmp/visits
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
from footfall.edge.walkby import (
    VISIBLE,
    Colour,
    Face,
    Sprite,
    Walker,
    draw_walker,
    load_faces,
    make_background,
    visible_fraction,
)

DOOR_X = 0.2  # the door line, as a share of the frame width from the left
DOOR: dict[str, Any] = {
    "id": "door",
    "points": [[DOOR_X, 0.0], [DOOR_X, 1.0]],
    "direction": "right",  # the way in
    "entrance": True,
}


@dataclass
class VisitSpec:
    people: int = 40
    width: int = 960
    height: int = 540
    fps: float = 12.0
    seed: int = 0
    min_face: int = 50  # px at 960 wide; scaled with the width
    max_face: int = 90
    spacing_seconds: float = 2.5  # mean gap between people arriving
    walk_seconds: tuple[float, float] = (2.5, 4.0)  # time to walk from the edge to where they stop
    stay_seconds: tuple[float, float] = (1.5, 5.0)  # standing inside, facing the camera
    passer_share: float = 0.15  # people who come from inside the mall and never reach the door
    sources: tuple[str, ...] = ("utkface", "wiki")
    split: str = "test"  # faces from the test split measure (see walkby.WalkbySpec.split)


@dataclass
class Visitor(Walker):
    """A walker who stops at ``turn_at`` for ``stay`` seconds (walkby's turn-round pause is 0.4 s)."""

    stay: float = 0.0
    hidden_frames: list[int] = field(default_factory=list)  # in view, with the face behind someone else

    @property
    def arrives(self) -> float:
        """When (seconds) the visitor reaches the spot where they stand (walkby's cruise and brake to turn_at)."""
        assert self.turn_at is not None
        leg = abs(self.turn_at - self.x_start)
        return self.start + (leg + min(0.3 * self.speed, leg / 2)) / self.speed

    def position(self, t: float) -> tuple[float, float] | None:
        arrive = self.arrives - self.start
        if t - self.start > arrive:
            # Standing: the walk resumes (and turns round, in walkby's manner) once the stay is over.
            t = max(self.start + arrive, t - self.stay)
        return super().position(t)


def door_crossings(visitor: Visitor, width: int, fps: float, frames: int) -> tuple[float | None, float | None]:
    """When (seconds) the face centre crosses the door line inwards and outwards, if it does in the clip."""
    door = DOOR_X * width
    way_in = way_out = None
    previous = None
    for index in range(frames):
        position = visitor.position(index / fps)
        if position is None:
            continue
        x = position[0]
        if previous is not None:
            if previous < door <= x and way_in is None:
                way_in = index / fps
            elif previous >= door > x and way_out is None:
                way_out = index / fps
        previous = x
    return way_in, way_out


def plan(spec: VisitSpec, faces: list[Face], rng: np.random.Generator) -> list[Visitor]:
    scale = spec.width / 960
    visitors: list[Visitor] = []
    t = 0.3
    for i, face in enumerate(faces):
        size = int(rng.uniform(spec.min_face, spec.max_face) * scale)
        passer = rng.random() < spec.passer_share
        # Visitors stop between 40 % and 85 % of the width; passers come from the right and turn back at 55–80 %.
        stop = rng.uniform(0.4, 0.85) if not passer else rng.uniform(0.55, 0.8)
        x_start = -0.6 * size if not passer else spec.width + 0.6 * size
        turn_at = stop * spec.width
        speed = abs(turn_at - x_start) / rng.uniform(*spec.walk_seconds)
        visitors.append(
            Visitor(
                id=i,
                face=face,
                size=size,
                direction=-1 if passer else 1,
                speed=speed,
                start=t,
                x_start=x_start,
                # Nearer people (bigger faces) walk lower in the frame, as under a camera above head height.
                y=(
                    0.2
                    + 0.45 * (size / scale - spec.min_face) / (spec.max_face - spec.min_face)
                    + rng.uniform(-0.05, 0.05)
                )
                * spec.height,
                drift=0.0,
                turn_at=turn_at,
                gain=rng.uniform(0.7, 1.2),
                body_colour=cast(Colour, tuple(int(c) for c in rng.uniform(30, 220, 3))),
                stay=float(rng.uniform(*spec.stay_seconds)),
            )
        )
        t += rng.uniform(0.5, 1.5) * spec.spacing_seconds
    return visitors


def make_visits(data_dir: Path, out_dir: Path, spec: VisitSpec, name: str = "visits") -> tuple[Path, dict[str, Any]]:
    """Writes ``<out_dir>/<name>.mp4`` and ``<name>.json`` (ground truth); returns the clip and the truth."""
    rng = np.random.default_rng(spec.seed)
    faces = load_faces(data_dir, spec.people, spec.seed, spec.sources, spec.split)
    visitors = plan(spec, faces, rng)
    sprites = {v.id: Sprite(v, "ellipse") for v in visitors}  # walkby's default: no second face at a photo's edge
    background = make_background(spec.width, spec.height, rng)
    end_time = 0.0
    for v in visitors:
        assert v.turn_at is not None
        walk = 2 * abs(v.turn_at - v.x_start) + 1.2 * v.size
        end_time = max(end_time, v.start + walk / v.speed + v.stay + 1.0)
    frames = math.ceil((end_time + 1.0) * spec.fps)
    out_dir.mkdir(parents=True, exist_ok=True)
    clip = out_dir / f"{name}.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"mp4v"), spec.fps, (spec.width, spec.height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {clip}")
    noise = [rng.integers(0, 6, background.shape, dtype=np.uint8) for _ in range(3)]
    try:
        for index in range(frames):
            t = index / spec.fps
            frame = background.copy()
            placed = []
            for v in visitors:
                position = v.position(t)
                if position is None or not -2 * v.size < position[0] < spec.width + 2 * v.size:
                    continue
                half = sprites[v.id].image.shape[1] / 2
                x, y = position
                placed.append((v, x, y, (x - half, y - v.size / 2, x + half, y + v.size / 2)))
            placed.sort(key=lambda p: p[0].size)  # nearer (bigger) people in front
            for depth, (v, x, y, box) in enumerate(placed):
                draw_walker(frame, v, sprites[v.id], x, y)
                occluders = [p[3] for p in placed[depth + 1 :]]
                if visible_fraction(box, occluders, spec.width, spec.height) >= VISIBLE:
                    v.seen_frames.append((index, x / spec.width, y / spec.height))
                elif box[0] >= 0 and box[2] <= spec.width:
                    v.hidden_frames.append(index)
            writer.write(cv2.add(frame, noise[index % 3]))
    finally:
        writer.release()
    truth = visit_truth(visitors, spec, frames, clip)
    (out_dir / f"{name}.json").write_text(json.dumps(truth, indent=2))
    return clip, truth


def visit_truth(visitors: list[Visitor], spec: VisitSpec, frames: int, clip: Path) -> dict[str, Any]:
    """Who the camera can count (seen for at least 0.4 s, as walkby's truth), and their door crossings."""
    min_frames = max(3, int(0.4 * spec.fps))
    persons: list[dict[str, Any]] = []
    for v in visitors:
        if len(v.seen_frames) < min_frames:
            continue
        way_in, way_out = door_crossings(v, spec.width, spec.fps, frames)
        persons.append(
            {
                "id": v.id,
                "gender": v.face.gender,
                "face_px": v.size,
                "passer": v.direction < 0,
                "in_s": None if way_in is None else round(way_in, 3),
                "out_s": None if way_out is None else round(way_out, 3),
                "stay_s": round(v.stay, 2),
                # Standing from .. to (seconds); then the walk back begins, with walkby's turn-round pause.
                "standing_s": [round(v.arrives, 3), round(v.arrives + v.stay, 3)],
                "hidden_s": round(len(v.hidden_frames) / spec.fps, 2),  # behind someone else, in total
                "seen_frames": len(v.seen_frames),
                "path": [[f, round(x, 4), round(y, 4)] for f, x, y in v.seen_frames],  # face centre, 0..1
            }
        )
    return {
        "clip": str(clip),
        "spec": asdict(spec),
        "frames": frames,
        "seconds": round(frames / spec.fps, 2),
        "people": len(persons),
        "in": sum(1 for p in persons if p["in_s"] is not None),
        "out": sum(1 for p in persons if p["out_s"] is not None),
        "hidden": sum(1 for p in persons if p["hidden_s"] > 0),
        "persons": persons,
        "camera": {"lines": [DOOR]},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--out", type=Path, default=None, help="Folder for the clip (default: a new temp dir).")
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="footfall-visits-"))
    _clip, truth = make_visits(args.data, out, VisitSpec(people=args.people, seed=args.seed))
    json.dump({k: truth[k] for k in ("clip", "frames", "seconds", "people", "in", "out")}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
