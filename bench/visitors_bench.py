"""Visitors benchmark: a camera's distinct visitors, an entrance's in and out, and occupancy, against the truth.

Runs the agent's pipeline offline (``footfall process``: edge/offline.py ``process_video``) on
1. a visit clip (edge/visitclips.py): people made from TEST-split faces walk in through a door on the left,
   stay a while, and walk out again; a few come from inside the mall and never reach the door;
2. the bundled sample clip edge/samples/mall-walkby.mp4 with the demo's camera (footfall/demo.py), whose
   entrance line is near the left edge: walking right through it is the way in.

For each it reports camera visitors vs the truth (target: within 5 %), the in- and out-count vs the truth,
and occupancy per bucket: cumulative in − out, never below 0 (a drop below is drift and is cut off, as the
server does), measured and true, and its value at the end. On the visit clip everyone has left by the end,
so the target there is 0. The zones' passes are listed beside them to show why they are not visitors.
On the visit clip, each confirmed track is matched to the true person it followed: people counted twice
(and in which phase of the visit the extra track began: walking in, standing, walking out), tracks that
followed two people (merges), people never counted.

Clips contain dataset faces: they go to a temp folder that is deleted afterwards (``--keep`` keeps it).
Output: a progress bar on stderr, then one JSON object on stdout (``--json`` also writes it to a file).

Example:
    .venv/bin/python bench/visitors_bench.py                       # 40 visitors, seed 0, and the sample clip
    .venv/bin/python bench/visitors_bench.py --people 20 --seed 3 --skip-sample --json visitors.json
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE, DEFAULT_GENDER_BUNDLE, data_dir
from footfall.core.wire import AggregateMessage
from footfall.edge.config import AgentConfig, BundlesConfig, CameraConfig, LineConfig, ZoneConfig, parse_config
from footfall.edge.offline import process_video
from footfall.edge.pipeline import Models, load_models
from footfall.edge.tracking import TrackerEvents

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli import (
    CLASSIFIER_TASK,
    DETECTOR_TASK,
    HelpFormatter,
    positive_int,
    require_bundle,
    require_datasets,
    require_writable_file,
    user_errors,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "edge" / "samples" / "mall-walkby.mp4"
HALVES = {
    "left": [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)],
    "right": [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)],
}
VISITORS_TOLERANCE = 0.05


def occupancy(ins: list[int], outs: list[int]) -> list[int]:
    """People inside at the end of each bucket: in − out added up, never below 0 (more out than in is drift)."""
    level, levels = 0, []
    for came, left in zip(ins, outs, strict=True):
        level = max(0, level + came - left)
        levels.append(level)
    return levels


def per_bucket(times: list[float], buckets: int, bucket_seconds: int) -> list[int]:
    counts = [0] * buckets
    for t in times:
        counts[min(int(t // bucket_seconds), buckets - 1)] += 1
    return counts


def measured_buckets(
    messages: list[AggregateMessage], start: float, buckets: int, bucket_seconds: int
) -> dict[str, list[int]]:
    series = {measure: [0] * buckets for measure in ("camera", "in", "out")}
    for message in messages:
        if message.measure in series:
            index = min(int((message.bucket_start.timestamp() - start) // bucket_seconds), buckets - 1)
            series[message.measure][index] += message.people
    return series


def compare(
    name: str,
    summary: dict[str, Any],
    messages: list[AggregateMessage],
    truth: dict[str, Any],
    start: float,
    bucket_seconds: int,
    final_target: int | None,
) -> dict[str, Any]:
    """``truth``: people, in_s and out_s (seconds from the start of each crossing), video seconds."""
    buckets = max(1, math.ceil(truth["seconds"] / bucket_seconds))
    series = measured_buckets(messages, start, buckets, bucket_seconds)
    true_in = per_bucket(truth["in_s"], buckets, bucket_seconds)
    true_out = per_bucket(truth["out_s"], buckets, bucket_seconds)
    measured_occupancy = occupancy(series["in"], series["out"])
    true_occupancy = occupancy(true_in, true_out)
    visitors = sum(series["camera"])
    error = (visitors - truth["people"]) / max(truth["people"], 1)
    result: dict[str, Any] = {
        "clip": name,
        "video_seconds": summary["video_seconds"],
        "fps": summary["fps"],
        "bucket_seconds": bucket_seconds,
        "camera_visitors": {"measured": visitors, "truth": truth["people"], "error": round(error, 4)},
        "in": {"measured": sum(series["in"]), "truth": len(truth["in_s"])},
        "out": {"measured": sum(series["out"]), "truth": len(truth["out_s"])},
        "occupancy": {
            "measured": measured_occupancy,
            "truth": true_occupancy,
            "largest_difference": max(abs(a - b) for a, b in zip(measured_occupancy, true_occupancy, strict=True)),
            "final_measured": measured_occupancy[-1],
            "final_truth": true_occupancy[-1],
        },
        "per_bucket": {"in": series["in"], "in_truth": true_in, "out": series["out"], "out_truth": true_out},
        "zone_passes": {zone: counts["people"] for zone, counts in summary["zones"].items()},
        "targets": {"camera_visitors_within_5_percent": abs(error) <= VISITORS_TOLERANCE},
    }
    if final_target is not None:
        result["targets"]["occupancy_final_is_0"] = measured_occupancy[-1] == final_target
    return result


class TrackPaths:
    """Tracker observer: each confirmed track's face centres (seconds from the clip's start, pixels)."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.confirmed: set[int] = set()
        self.points: dict[int, list[tuple[float, float, float]]] = {}

    def __call__(self, t: float, events: TrackerEvents) -> None:
        self.confirmed.update(track.id for track in events.confirmed)
        for track in events.visible:
            _, x, y = track.path[-1]
            self.points.setdefault(track.id, []).append((t - self.start, x, y))


def attribute(tracks: TrackPaths, truth: dict[str, Any]) -> dict[str, Any]:
    """Which true person each confirmed track followed (its face centre within half a face of theirs on at
    least 3 frames): people counted twice, with the phase of their visit in which the extra track began
    (walking in, standing, walking out), tracks that followed two people (merges), and people never counted."""
    spec = truth["spec"]
    width, height, fps = spec["width"], spec["height"], spec["fps"]
    at_frame: dict[int, list[tuple[dict[str, Any], float, float]]] = {}
    for person in truth["persons"]:
        for frame, x, y in person["path"]:
            at_frame.setdefault(frame, []).append((person, x * width, y * height))
    followed: dict[int, list[int]] = {}  # person id -> tracks, in order of their start
    merges = 0
    for track_id in sorted(tracks.confirmed):
        hits: dict[int, int] = {}
        for t, x, y in tracks.points.get(track_id, []):
            for person, px, py in at_frame.get(round(t * fps), []):
                if math.hypot(px - x, py - y) <= 0.5 * person["face_px"]:
                    hits[person["id"]] = hits.get(person["id"], 0) + 1
        owners = [person_id for person_id, n in hits.items() if n >= 3]
        merges += len(owners) > 1
        for person_id in owners:
            followed.setdefault(person_id, []).append(track_id)
    persons = {p["id"]: p for p in truth["persons"]}
    extra: dict[str, int] = {"walking in": 0, "standing": 0, "walking out": 0}
    for person_id, track_ids in followed.items():
        standing_from, standing_to = persons[person_id]["standing_s"]
        for track_id in track_ids[1:]:
            began = tracks.points[track_id][0][0]
            phase = "walking in" if began < standing_from else "standing" if began <= standing_to else "walking out"
            extra[phase] += 1
    return {
        "counted_twice_or_more": sum(1 for ids in followed.values() if len(ids) > 1),
        "extra_tracks_began": extra,
        "tracks_following_two_people": merges,
        "never_counted": sum(1 for person_id in persons if person_id not in followed),
    }


def visit_clip(args: argparse.Namespace, folder: Path, models: Models, bundles: BundlesConfig) -> dict[str, Any]:
    from footfall.edge import visitclips

    spec = visitclips.VisitSpec(people=args.people, seed=args.seed)
    clip, truth = visitclips.make_visits(args.data, folder, spec)
    camera = CameraConfig(
        id="cam1",
        source=str(clip),
        realtime=False,
        fps=spec.fps,
        zones=[ZoneConfig(id=zone_id, polygon=polygon) for zone_id, polygon in HALVES.items()],
        lines=[
            LineConfig(id="mid", points=((0.5, 0.0), (0.5, 1.0))),
            LineConfig.model_validate(visitclips.DOOR),
        ],
    )
    config = AgentConfig(
        agent_id="bench", site_id="bench", cameras=[camera], bucket_seconds=args.bucket_seconds, bundles=bundles
    )
    start = float(int(time.time()) // 86_400 * 86_400)
    messages: list[AggregateMessage] = []
    tracks = TrackPaths(start)
    summary = process_video(
        clip, config, start_time=start, models=models, aggregates=messages, progress=True, observer=tracks
    )
    persons = truth["persons"]
    facts = {
        "people": truth["people"],
        "in_s": [p["in_s"] for p in persons if p["in_s"] is not None],
        "out_s": [p["out_s"] for p in persons if p["out_s"] is not None],
        "seconds": truth["seconds"],
    }
    result = compare(
        f"visits ({args.people} people, seed {args.seed})",
        summary,
        messages,
        facts,
        start,
        args.bucket_seconds,
        final_target=0,
    )
    result["truth_passers"] = sum(1 for p in persons if p["passer"])  # seen by the camera, never at the door
    result["per_person"] = attribute(tracks, truth)
    # Faces hidden behind someone else for a while: a track that cannot re-join counts its person twice.
    result["truth_hidden"] = {
        "people": truth["hidden"],
        "over_1_5_s": sum(1 for p in persons if p["hidden_s"] > 1.5),
        "longest_s": max((p["hidden_s"] for p in persons), default=0.0),
    }
    return result


def sample_clip(args: argparse.Namespace, models: Models, bundles: BundlesConfig) -> dict[str, Any]:
    """The demo's camera on the bundled clip; the truth's walkers cross the whole corridor, so each walking
    right goes in through the demo's entrance and each walking left goes out."""
    from footfall.demo import agent_config

    demo = parse_config(agent_config(SAMPLE, 1883, Path(tempfile.gettempdir()), args.bucket_seconds))
    camera = demo.cameras[0].model_copy(update={"loop": False, "realtime": False})
    config = demo.model_copy(update={"cameras": [camera], "bundles": bundles})
    entrance = next(line for line in camera.lines if line.entrance)
    door_x = entrance.points[0][0]
    truth = json.loads(SAMPLE.with_suffix(".json").read_text())
    fps = truth["fps"]

    def crossing(walker: dict[str, Any], share: float) -> float:
        # Walkers move at a steady pace from entering to leaving the frame.
        return (walker["enter_frame"] + share * (walker["exit_frame"] - walker["enter_frame"])) / fps

    way_in = entrance.direction  # "right": walking left to right goes in
    ins = [w for w in truth["walkers"] if w["direction"] == ("left_to_right" if way_in == "right" else "right_to_left")]
    outs = [w for w in truth["walkers"] if w not in ins]
    share_in = door_x if way_in == "right" else 1 - door_x
    facts = {
        "people": truth["people"],
        "in_s": [crossing(w, share_in) for w in ins],
        "out_s": [crossing(w, 1 - share_in) for w in outs],
        "seconds": truth["duration_s"],
    }
    start = float(int(time.time()) // 86_400 * 86_400)
    messages: list[AggregateMessage] = []
    summary = process_video(SAMPLE, config, start_time=start, models=models, aggregates=messages, progress=True)
    # The clip is a corridor, not a visit: more walk out than in, so occupancy is cut off at 0, not a target.
    return compare(
        "edge/samples/mall-walkby.mp4 (demo camera)",
        summary,
        messages,
        facts,
        start,
        args.bucket_seconds,
        final_target=None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument(
        "--data",
        type=Path,
        default=data_dir(),
        help="Face datasets (default: FOOTFALL_DATA, else ../shared/data; now %(default)s).",
    )
    parser.add_argument("--people", type=positive_int, default=40, help="People in the visit clip.")
    parser.add_argument("--seed", type=int, default=0, help="Visit clip seed (faces, timings, positions).")
    parser.add_argument("--bucket-seconds", type=positive_int, default=10, help="Aggregation bucket (divides a day).")
    parser.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR_BUNDLE, help="Face-detector bundle.")
    parser.add_argument("--gender", type=Path, default=DEFAULT_GENDER_BUNDLE, help="Gender bundle.")
    parser.add_argument("--skip-sample", action="store_true", help="Only the visit clip.")
    parser.add_argument("--keep", action="store_true", help="Keep the clip folder (it holds dataset faces).")
    parser.add_argument("--json", type=Path, default=None, help="Also write the result here.")
    args = parser.parse_args(argv)
    if 86_400 % args.bucket_seconds or args.bucket_seconds < 10:
        parser.error("--bucket-seconds must be at least 10 and divide a day (86400)")
    # Before the clips are made and run (minutes): bad input stops the bench in one line.
    require_bundle(parser, args.gender, CLASSIFIER_TASK, "--gender")
    require_bundle(parser, args.detector, DETECTOR_TASK, "--detector")
    require_datasets(parser, args.data)
    require_writable_file(parser, args.json, "--json")  # written at the end
    from tqdm import tqdm

    bundles = BundlesConfig(detector=args.detector, gender=args.gender)
    steps = ["models", "visit clip"] + ([] if args.skip_sample else ["sample clip"])
    folder = Path(tempfile.mkdtemp(prefix="footfall-visitors-bench-"))
    results: list[dict[str, Any]] = []
    with user_errors(parser):  # what the checks above cannot foresee (a graph this onnxruntime will not build)
        try:
            with tqdm(total=len(steps), desc="visitors bench", unit="step", file=sys.stderr) as bar:
                bar.set_postfix_str(steps[0])
                models = load_models(
                    AgentConfig(
                        agent_id="bench",
                        site_id="bench",
                        cameras=[CameraConfig(id="cam1", source="unused.mp4")],
                        bundles=bundles,
                    )
                )
                bar.update(1)
                bar.set_postfix_str(steps[1])
                results.append(visit_clip(args, folder, models, bundles))
                bar.update(1)
                if not args.skip_sample:
                    bar.set_postfix_str(steps[2])
                    results.append(sample_clip(args, models, bundles))
                    bar.update(1)
        finally:
            if args.keep:
                print(f"clips kept in {folder} (dataset faces: never commit them)", file=sys.stderr)
            else:
                shutil.rmtree(folder, ignore_errors=True)
    report = {"results": results, "all_targets_met": all(all(r["targets"].values()) for r in results)}
    text = json.dumps(report)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
