"""Edge benchmark: counting accuracy on generated walk-by clips; throughput and memory of footfall process.

1. Accuracy: walk-by clips (1280×720, 25 fps) made from TEST-split faces (see edge/walkby.py); people
   counted vs the truth (target: within 5 %), female share vs the truth (target: within 3 points, with the
   real gender bundle), per zone and line, and per person: everyone tracked as exactly one person (no
   double count after an occlusion or a crossing), matched by position against the generator's paths.
   Each double count says why its extra track began: after the person turned their face away
   (``--turn-away``), after the person was hidden (an occlusion), while the face was in view (missed by the
   detector), or alongside the first track (a switch). Merges, as tracker issue #16 defines them: two people
   counted as one, i.e. a person with no count of their own whose face a track counted for someone else
   followed; target ≤ 1 % of the people. Reported beside them, the stricter figure: tracks that followed a
   second person for a while (``MERGE_MIN_SHARE`` of the path), which also counts switches after which both
   people were still counted once each.
   Age bands (issue #17), when the gender bundle has an age head: per person (matched to the truth as for
   gender), the band decided against the band of the face's true age (right, within one band, abstained), and
   over all clips each band's share among the camera visitors counted in a band (allotted from the band
   probabilities: edge/band_allotment.py) against its share among the true people
   (target: within 3 points). Whatever the bundle, the gender decisions of children (true 0-12), teenagers and
   adults: whether children need a gender threshold of their own.
2. Throughput and memory: ``footfall process`` on a 1280×720 clip with up to 5 faces at once, as a
   separate process: frames per second end to end (decode, detect, track, classify, count) and peak RSS.
   Targets: ≥ 25 frames/s, ≤ 300 MB on a 2-core machine.

With ``--fps N`` the accuracy clips are processed at most N frames a second (they have 25), as on a box that falls
behind: the same clips, frames dropped, every figure measured the same way.

Clips contain dataset faces: they go to a temp folder that is deleted afterwards (``--keep`` keeps it).

Example:
    .venv/bin/python bench/edge_bench.py                 # 4 clips × 20 people, default bundles
    .venv/bin/python bench/edge_bench.py --clips 2 --people 12 --gender cache/gender-standin
    .venv/bin/python bench/edge_bench.py --clips 16 --people 12 --turn-away 0.5 --skip-throughput
    .venv/bin/python bench/edge_bench.py --clips 16 --skip-throughput --fps 3   # a box that falls behind
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
from footfall.core.ages import AGE_BANDS as BANDS
from footfall.core.ages import CHILD_BAND, band_index, band_of
from footfall.core.bundle import load_bundle
from footfall.core.classifier import AgeEstimate
from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE, DEFAULT_GENDER_BUNDLE, data_dir
from footfall.edge import walkby
from footfall.edge.age_bands import band_totals
from footfall.edge.config import AgentConfig, BundlesConfig, CameraConfig, TrackingConfig
from footfall.edge.offline import process_video
from footfall.edge.pipeline import load_models

sys.path.insert(0, str(Path(__file__).resolve().parent))
import share_runs  # bench/ is not a package: a sibling module
from cli import (  # positive_int: also edge_bench.positive_int, as other scripts knew it
    CLASSIFIER_TASK,
    DETECTOR_TASK,
    HelpFormatter,
    fraction,
    positive_int,
    require_bundle,
    require_datasets,
    user_errors,
)

CAUSES = ("turn_away", "after_occlusion", "lost_in_view", "overlapping_tracks")  # why a person's extra track began
MERGE_MIN_SHARE = 0.15  # a track following a second person for this share of its path (and ≥ 5 frames)
MERGE_MIN_FRAMES = 5  # frames a track must follow a person to have taken them over
DECISIONS = ("female", "male", "unknown")


def frame_rate(text: str) -> float:
    """argparse type: frames a second to process, above 0 and at most 120 (the camera config's limits)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 120:
        raise argparse.ArgumentTypeError(f"{value:g} frames a second: give more than 0 and at most 120")
    return value


def identity_check(
    truth: dict,
    tracks: dict[int, list[tuple[float, float, float]]],
    fps: float,
    labels: dict[int, str] | None = None,
    probabilities: dict[int, np.ndarray] | None = None,
    ages: dict[int, AgeEstimate] | None = None,
) -> dict:
    """Matches each confirmed track to the walker whose true path it follows; counts misses and doubles, and
    says why each double happened (see :func:`why_counted_again`). With the tracks' final ``labels``, also
    what each true gender was decided as (which shows where a female-share error comes from), and with their
    ``ages`` (where age was estimated) the band decided for each matched person and its band probabilities
    (what `bench/calibrate_tracks.py --people-json` keeps for analysing band counts)."""
    width, height = truth["spec"]["width"], truth["spec"]["height"]
    paths = {p["id"]: {f: (x * width, y * height) for f, x, y in p["path"]} for p in truth["persons"]}
    owner: dict[int, int | None] = {}
    for track_id, path in tracks.items():
        best, best_distance = None, float("inf")
        for person_id, truth_path in paths.items():
            distances = [
                np.hypot(x - truth_path[f][0], y - truth_path[f][1])
                for t, x, y in path
                if (f := round(t * fps)) in truth_path
            ]
            if len(distances) >= max(2, len(path) // 3) and np.median(distances) < best_distance:
                best, best_distance = person_id, float(np.median(distances))
        owner[track_id] = best if best_distance < 60 else None
    per_person = {pid: sum(1 for o in owner.values() if o == pid) for pid in paths}
    twice = [pid for pid, n in per_person.items() if n > 1]
    causes = dict.fromkeys(CAUSES, 0)
    persons = {p["id"]: p for p in truth["persons"]}
    for pid in twice:
        spans = sorted(
            (round(path[0][0] * fps), round(path[-1][0] * fps)) for tid, path in tracks.items() if owner[tid] == pid
        )
        for cause in why_counted_again(spans, set(paths[pid]), persons[pid].get("turn_away")):
            causes[cause] += 1
    followed = frames_on(truth, tracks, fps)
    merged = merged_tracks(tracks, owner, followed)
    merged_in = merged_people(per_person, owner, followed)
    decisions: dict[str, dict[str, int]] = {}
    decided_people: list[dict] = []
    for track_id, person_id in owner.items():
        if labels is not None and person_id is not None and track_id in labels:
            label = labels[track_id] if labels[track_id] in DECISIONS else "unknown"
            person = persons[person_id]
            decisions.setdefault(person["gender"], dict.fromkeys(DECISIONS, 0))[label] += 1
            mean = (probabilities or {}).get(track_id)
            estimate = (ages or {}).get(track_id)
            decided_people.append(
                {
                    "gender": person["gender"],
                    "age": person.get("age"),
                    "face_px": person["face_px"],
                    "label": label,
                    "band": None if estimate is None else estimate.band,
                    "band_probabilities": None if estimate is None else estimate.band_probabilities,
                    "probabilities": None if mean is None else [round(float(p), 5) for p in mean],
                }
            )
    return {
        "missed": [pid for pid, n in per_person.items() if n == 0],
        "counted_twice": twice,
        "decisions": decisions,
        "decided_people": decided_people,
        "counted_again": causes,
        "merged_tracks": merged,
        "merged_people": merged_in,
        "turned_away_people": sum(1 for p in truth["persons"] if p.get("turn_away")),
        "turned_away_counted_once": sum(1 for p in truth["persons"] if p.get("turn_away") and per_person[p["id"]] == 1),
        "false_tracks": sum(1 for o in owner.values() if o is None),
        "hidden_people_counted_once": sum(
            1 for p in truth["persons"] if p["longest_hidden_s"] > 0 and per_person[p["id"]] == 1
        ),
        "hidden_people": sum(1 for p in truth["persons"] if p["longest_hidden_s"] > 0),
    }


def frames_on(
    truth: dict, tracks: dict[int, list[tuple[float, float, float]]], fps: float
) -> dict[int, dict[int, int]]:
    """Per track, how many of its detections were on each person (the nearest true face, within half its
    size)."""
    width, height = truth["spec"]["width"], truth["spec"]["height"]
    paths = {p["id"]: {f: (x * width, y * height) for f, x, y in p["path"]} for p in truth["persons"]}
    sizes = {p["id"]: p["face_px"] for p in truth["persons"]}
    followed: dict[int, dict[int, int]] = {}
    for track_id, path in tracks.items():
        on = followed[track_id] = {}
        for t, x, y in path:
            f = round(t * fps)
            near = [(np.hypot(x - p[f][0], y - p[f][1]), pid) for pid, p in paths.items() if f in p]
            if near:
                distance, pid = min(near)
                if distance < 0.5 * sizes[pid]:
                    on[pid] = on.get(pid, 0) + 1
    return followed


def merged_tracks(
    tracks: dict[int, list[tuple[float, float, float]]],
    owner: dict[int, int | None],
    followed: dict[int, dict[int, int]],
) -> list[tuple[int, int]]:
    """The stricter figure: tracks that followed two people, (owner, other person) for each track whose
    detections were, for at least ``MERGE_MIN_SHARE`` of its path and ``MERGE_MIN_FRAMES`` frames, on someone
    other than its owner. It includes a switch after which both people were still counted once each (two
    tracks swapping people as they cross), so it is not the merge the target is about."""
    merged = []
    for track_id, path in tracks.items():
        others = [(n, pid) for pid, n in followed[track_id].items() if pid != owner.get(track_id)]
        if others:
            n, pid = max(others)
            if n >= max(MERGE_MIN_FRAMES, MERGE_MIN_SHARE * len(path)) and owner.get(track_id) is not None:
                merged.append((int(owner[track_id] or 0), pid))
    return merged


def merged_people(
    per_person: dict[int, int], owner: dict[int, int | None], followed: dict[int, dict[int, int]]
) -> list[tuple[int, int | None]]:
    """Merges as the tracker issue defines them, two people counted as one: (person, owner of the track that
    took them) for each person no track was counted for whom a track counted for someone else (or for
    nobody) followed for at least ``MERGE_MIN_FRAMES`` frames. A person no track came near is a plain miss
    (the detector's), not a merge."""
    merged = []
    for pid, count in per_person.items():
        if count:
            continue
        takers = [(on.get(pid, 0), track_id) for track_id, on in followed.items()]
        frames, track_id = max(takers, default=(0, -1))
        if frames >= MERGE_MIN_FRAMES:
            merged.append((pid, owner[track_id]))
    return merged


def why_counted_again(
    spans: list[tuple[int, int]], seen_frames: set[int], turn_away: list[int] | None = None
) -> list[str]:
    """For one person's tracks (first and last frame, in order), why each further track began:
    ``turn_away`` when the gap between the two tracks falls in the time the person's face was turned away
    (frames ``turn_away`` = [first, last]), ``after_occlusion`` when the person was hidden for most of the
    gap between the two tracks (behind the pillar or another person), ``lost_in_view`` when the face was in
    view but went undetected or unmatched, ``overlapping_tracks`` when the two tracks ran at the same time
    (a switch with someone nearby)."""
    causes = []
    for (_, end), (start, _) in pairwise(spans):
        gap = range(end + 1, start)
        if start <= end:
            causes.append("overlapping_tracks")
        elif turn_away is not None and turn_away[0] - 2 <= start and end <= turn_away[1] + 2:
            causes.append("turn_away")
        elif 2 * sum(1 for f in gap if f not in seen_frames) >= len(gap):
            causes.append("after_occlusion")
        else:
            causes.append("lost_in_view")
    return causes


def accuracy(args: argparse.Namespace, folder: Path) -> dict:
    from tqdm import tqdm

    totals = {"truth_people": 0, "people": 0, "truth_female": 0, "female": 0, "male": 0, "unknown": 0}
    zones: dict[str, list[int]] = {}
    identity = {
        "missed": 0,
        "counted_twice": 0,
        "false_tracks": 0,
        "hidden_people": 0,
        "hidden_people_counted_once": 0,
        "counted_again": dict.fromkeys(CAUSES, 0),
        "merged_people": 0,
        "merged_tracks": 0,
        "turned_away_people": 0,
        "turned_away_counted_once": 0,
    }
    decisions: dict[str, dict[str, int]] = {}  # true gender -> decided as
    decided_people: list[dict] = []
    share_clips: list[dict[str, int]] = []  # per clip: the camera's visitors by decision, and the truth
    counted_bands = dict.fromkeys((*BANDS, "unknown"), 0)  # the camera's visitors by band decision, all clips
    true_bands = dict.fromkeys(BANDS, 0)  # the clips' people by the band of their true age
    age_estimated = False  # the gender bundle has an age head (footfall process reported bands)
    models = None
    for index in tqdm(range(args.clips), desc="accuracy clips", file=sys.stderr):
        spec = walkby.WalkbySpec(
            people=args.people,
            seed=args.seed + index,
            split=args.split,
            # Other scripts (calibrate_tracks.py) call this with their own arguments: these have defaults.
            width=getattr(args, "width", 1280),
            height=getattr(args, "height", 720),
            turn_away_share=getattr(args, "turn_away", 0.0),
            spacing_seconds=getattr(args, "spacing", None) or walkby.WalkbySpec.spacing_seconds,
        )
        clip, truth = walkby.make_walkby(args.data, folder, spec, name=f"walkby-{index}")
        camera = CameraConfig(
            id="cam1", source=str(clip), realtime=False, fps=getattr(args, "fps", None) or 120, **truth["camera"]
        )
        config = AgentConfig(
            agent_id="bench",
            site_id="bench",
            cameras=[camera],
            bundles=BundlesConfig(detector=args.detector, gender=args.gender),
            tracking=TrackingConfig(max_lost_seconds=max_lost)
            if (max_lost := getattr(args, "max_lost", None))
            else TrackingConfig(),
        )
        models = models or load_models(config)
        tracks: dict[int, list] = {}
        labels: dict[int, str] = {}
        probabilities: dict[int, np.ndarray] = {}
        ages: dict[int, AgeEstimate] = {}

        def observe(t: float, events, tracks=tracks) -> None:
            for track in events.confirmed:
                tracks[track.id] = list(track.path)
            for track in events.visible:
                if track.id in tracks and tracks[track.id][-1][0] != track.path[-1][0]:
                    tracks[track.id].append(track.path[-1])

        summary = process_video(
            clip,
            config,
            progress=False,
            models=models,
            observer=observe,
            start_time=0.0,
            person_labels=labels,
            person_probabilities=probabilities,
            person_ages=ages,
        )
        checked = identity_check(truth, tracks, spec.fps, labels, probabilities, ages)
        if summary["age_bands"] is not None:
            age_estimated = True
            for band, people in band_totals(summary["age_bands"]["camera_visitors"]).items():
                counted_bands[band] += people
        for person in truth["persons"]:
            if person.get("age") is not None:
                true_bands[band_of(person["age"])] += 1
        share_clips.append(share_runs.clip_counts(summary, truth))
        for key in ("missed", "counted_twice"):
            identity[key] += len(checked[key])
        for cause, count in checked["counted_again"].items():
            identity["counted_again"][cause] += count
        for gender, row in checked["decisions"].items():
            for label, count in row.items():
                decisions.setdefault(gender, dict.fromkeys(DECISIONS, 0))[label] += count
        decided_people += checked["decided_people"]
        for key in (
            "false_tracks",
            "hidden_people",
            "hidden_people_counted_once",
            "turned_away_people",
            "turned_away_counted_once",
        ):
            identity[key] += checked[key]
        identity["merged_people"] += len(checked["merged_people"])
        identity["merged_tracks"] += len(checked["merged_tracks"])
        totals["truth_people"] += truth["people"]
        totals["truth_female"] += truth["female"]
        for key in ("people", "female", "male", "unknown"):
            totals[key] += summary[key]
        for zone, expected in truth["zones"].items():
            got = summary["zones"].get(zone, {}).get("people", 0)
            zones.setdefault(zone, [0, 0])
            zones[zone][0] += got
            zones[zone][1] += expected["people"]
        print(
            f"clip {index}: people {summary['people']}/{truth['people']}, female {summary['female']} "
            f"male {summary['male']} unknown {summary['unknown']} (truth female {truth['female']}), "
            f"missed {checked['missed']}, counted twice {checked['counted_twice']} {checked['counted_again']}, "
            f"merged (person, taken by whose track) {checked['merged_people']}, "
            f"tracks that followed a second person (owner, other) {checked['merged_tracks']}",
            file=sys.stderr,
        )
    decided = totals["female"] + totals["male"]
    return {
        **totals,
        "people_error_pct": round(100 * (totals["people"] - totals["truth_people"]) / totals["truth_people"], 2),
        "female_share_truth_pct": round(100 * totals["truth_female"] / totals["truth_people"], 1),
        "female_share_pct": round(100 * totals["female"] / decided, 1) if decided else None,
        "unknown_pct": round(100 * totals["unknown"] / max(totals["people"], 1), 1),
        "zones": {z: {"counted": v[0], "truth": v[1]} for z, v in zones.items()},
        "identity": identity,
        "merged_people_pct": round(100 * identity["merged_people"] / max(totals["truth_people"], 1), 2),
        "merged_tracks_pct": round(100 * identity["merged_tracks"] / max(totals["truth_people"], 1), 2),
        "clips": args.clips,
        "decisions_by_true_gender": decisions,
        "decisions_by_group": decisions_by_group(decided_people),
        "decided_people": decided_people,
        "share_clips": share_clips,
        "age_estimated": age_estimated,
        "age_bands": band_report(decided_people, counted_bands, true_bands),
        "gender_by_true_band": gender_by_true_band(decided_people),
    }


BAND_SHARE_TARGET_POINTS = 3.0  # issue #17: each band's share among decided people within 3 points of the truth


def band_report(people: list[dict], counted: dict[str, int], truth: dict[str, int]) -> dict:
    """Age bands against the truth. Per person (each track matched to a true person, as for gender; people
    whose true age is unknown are left out): of those whose band was decided, how many are right and how many
    within one band, and how many abstained. Over all clips: each band's share among the camera's visitors
    counted in a band (what the product reports: bands allotted from the band probabilities, no abstention)
    against its share among the true people, in points."""
    aged = [p for p in people if p["band"] is not None and p["age"] is not None]
    decided = [p for p in aged if p["band"] != "unknown"]
    right = sum(1 for p in decided if p["band"] == band_of(p["age"]))
    within_one = sum(1 for p in decided if abs(BANDS.index(p["band"]) - band_index(p["age"])) <= 1)
    banded_total = sum(counted[band] for band in BANDS)
    truth_total = sum(truth.values())
    shares = {}
    for band in BANDS:
        share = 100 * counted[band] / banded_total if banded_total else None
        true_share = 100 * truth[band] / truth_total if truth_total else None
        difference = None if share is None or true_share is None else abs(share - true_share)
        shares[band] = {
            "counted": counted[band],
            "share_pct": None if share is None else round(share, 1),
            "truth": truth[band],
            "truth_share_pct": None if true_share is None else round(true_share, 1),
            "abs_difference_points": None if difference is None else round(difference, 1),
        }
    differences = [row["abs_difference_points"] for row in shares.values() if row["abs_difference_points"] is not None]
    return {
        "people": len(aged),
        "decided": len(decided),
        "band_accuracy_pct": round(100 * right / len(decided), 1) if decided else None,
        "within_one_band_pct": round(100 * within_one / len(decided), 1) if decided else None,
        "abstained_pct": round(100 * (len(aged) - len(decided)) / len(aged), 1) if aged else None,
        "counted_unknown": counted["unknown"],
        "shares": shares,
        "max_share_difference_points": max(differences) if differences else None,
        "shares_within_target": bool(differences) and max(differences) <= BAND_SHARE_TARGET_POINTS,
    }


def gender_by_true_band(people: list[dict]) -> dict[str, dict[str, int]]:
    """Gender decisions of children (true band 0-12), teenagers (13-17) and adults (18 and over): decided
    right, wrong, or unknown. Shows whether children need a gender threshold of their own (they do if their
    gender is decided wrong, or left unknown, far more often than adults')."""
    groups: dict[str, dict[str, int]] = {}
    for person in people:
        if person["age"] is None:
            continue
        band = band_of(person["age"])
        group = CHILD_BAND if band == CHILD_BAND else "13-17" if band == "13-17" else "18+"
        row = groups.setdefault(group, {"right": 0, "wrong": 0, "unknown": 0})
        outcome = (
            "unknown" if person["label"] == "unknown" else "right" if person["label"] == person["gender"] else "wrong"
        )
        row[outcome] += 1
    return {group: groups[group] for group in (CHILD_BAND, "13-17", "18+") if group in groups}


AGE_BANDS = ((0, 12, "0-12"), (13, 19, "13-19"), (20, 59, "20-59"), (60, 200, "60+"))
FACE_BANDS = ((0, 59, "face <60 px"), (60, 84, "face 60-84 px"), (85, 10_000, "face ≥85 px"))


def decisions_by_group(people: list[dict]) -> dict[str, dict[str, dict[str, int]]]:
    """What each true gender was decided as, per age band and per face size: says whether a female-share
    error comes from children, old people or small faces."""

    def band(value: float | None, bands: tuple) -> str:
        if value is None or not np.isfinite(value):  # no age on record, or a face never measured
            return "unknown"
        # Bands of whole pixels and years, each from its low edge to the next band's: a fractional face width
        # (59.5 px) or one off the ends still has a band, and a 96-clip run never stops at its summary.
        return next((name for _, high, name in bands if value < high + 1), bands[-1][2])

    groups: dict[str, dict[str, dict[str, int]]] = {}
    for person in people:
        for group in (band(person["age"], AGE_BANDS), band(person["face_px"], FACE_BANDS)):
            row = groups.setdefault(group, {}).setdefault(person["gender"], dict.fromkeys(DECISIONS, 0))
            row[person["label"]] += 1
    return groups


def throughput(args: argparse.Namespace, folder: Path) -> dict:
    # Spaced so that about five faces are in view at the busiest moment (the target is "up to 5 faces").
    spec = walkby.WalkbySpec(people=args.people, seed=args.seed + 1000, spacing_seconds=2.0)
    clip, truth = walkby.make_walkby(args.data, folder, spec, name="throughput")
    config = folder / "throughput.yaml"
    config.write_text(
        "agent_id: bench\nsite_id: bench\ncameras:\n  - id: cam1\n    source: unused.mp4\n    fps: 120\n"
        f"bundles: {{detector: {args.detector}, gender: {args.gender}}}\n"
    )
    command = [
        sys.executable,
        "-m",
        "footfall",
        "process",
        str(clip),
        "--config",
        str(config),
        "--no-progress",
    ]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"footfall process failed: {result.stderr.strip()[-500:]}")
    wall = time.perf_counter() - started
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return {
        "command": "footfall process <clip> --config <throughput.yaml> --no-progress",
        "resolution": summary["resolution"],
        "frames": summary["frames"],
        "max_faces_in_frame": truth["max_faces_in_frame"],
        "fps": summary["fps"],
        "process_wall_seconds_incl_start": round(wall, 1),
        "peak_rss_mb": summary["peak_rss_mb"],
        "people": summary["people"],
        "truth_people": truth["people"],
        "load_average_before": round(load_before, 2),
        "cpu_count": os.cpu_count(),
    }


def broker_outage(args: argparse.Namespace, folder: Path) -> dict:
    """The agent on a clip played in real time with a real mosquitto that is stopped for ``--outage``
    seconds mid-run; what a subscriber keeping the highest seq per bucket ends up with (as the server
    does) is compared with an uninterrupted ``footfall process`` of the same clip."""
    import sqlite3
    import threading

    import paho.mqtt.client as mqtt
    from footfall.core.wire import parse_message
    from footfall.edge.config import load_config

    from footfall.broker import MosquittoBroker

    seconds = args.outage * 2 + 40
    spec = walkby.WalkbySpec(people=max(8, int(seconds / 2.5)), seed=args.seed + 2000, width=640, height=360, fps=10.0)
    spec.spacing_seconds = seconds / spec.people
    clip, truth = walkby.make_walkby(args.data, folder, spec, name="outage")
    broker = MosquittoBroker(workdir=folder / "mosquitto").start()
    config = folder / "outage.yaml"
    zones = "".join(f"      - {{id: {z['id']}, polygon: {z['polygon']}}}\n" for z in truth["camera"]["zones"])
    config.write_text(
        "agent_id: bench\nsite_id: bench\nbucket_seconds: 10\ncameras:\n  - id: cam1\n"
        f"    source: {clip}\n    realtime: true\n    fps: 10\n    zones:\n{zones}"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, heartbeat_seconds: 5}}\n"
        f"outbox: {{path: {folder / 'outbox.sqlite'}}}\n"
        f"bundles: {{detector: {args.detector}, gender: {args.gender}}}\n"
    )
    latest: dict = {}
    lock = threading.Lock()

    def on_message(client, userdata, message) -> None:
        parsed = parse_message(message.payload)
        if parsed.kind == "aggregate":
            with lock:
                if parsed.key not in latest or latest[parsed.key].seq < parsed.seq:
                    latest[parsed.key] = parsed

    receiver = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-receiver", clean_session=False)
    receiver.on_connect = lambda c, u, f, r, p: c.subscribe("footfall/v1/#", qos=1)
    receiver.on_message = on_message
    receiver.reconnect_delay_set(1, 2)
    receiver.connect("127.0.0.1", broker.port)
    receiver.loop_start()
    agent = subprocess.Popen(
        [sys.executable, "-m", "footfall", "agent", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(max(5.0, (truth["seconds"] - args.outage) / 2))
        broker.stop()
        stopped_at = time.monotonic()
        time.sleep(args.outage)
        with sqlite3.connect(f"file:{folder / 'outbox.sqlite'}?mode=ro", uri=True) as db:
            piled_up = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        broker.start()
        outage = time.monotonic() - stopped_at
        _, stderr = agent.communicate(timeout=truth["seconds"] + 120)
        time.sleep(3)
    finally:
        if agent.poll() is None:
            agent.kill()
        receiver.loop_stop()
        broker.stop()
    delivered: dict[str, int] = {}
    for message in latest.values():
        delivered[message.zone_id] = delivered.get(message.zone_id, 0) + message.people
    reference = process_video(clip, load_config(config), progress=False)
    expected = {zone: counts["people"] for zone, counts in reference["zones"].items()}
    return {
        "clip_seconds": truth["seconds"],
        "broker_down_seconds": round(outage, 1),
        "aggregates_waiting_in_outbox_during_outage": piled_up,
        "agent_exit_code": agent.returncode,
        "traceback_in_agent_log": "Traceback" in stderr,
        "delivered_totals": delivered,
        "uninterrupted_totals": expected,
        "equal": delivered == expected,
        "truth": {zone: counts["people"] for zone, counts in truth["zones"].items()},
    }


def format_age_report(acc: dict, bundle: str) -> list[str]:
    """The age lines of the report: bands per person and band shares (only when the bundle has an age head),
    and the gender decisions by true band (always)."""
    lines = []
    bands = acc["age_bands"]
    if not acc["age_estimated"]:
        lines.append(f"age bands: the gender bundle {bundle} has no age head, so no band was decided")
    else:
        lines.append(
            f"age bands per person: {bands['band_accuracy_pct']} % of the {bands['decided']} decided people in the "
            f"right band, {bands['within_one_band_pct']} % within one band; {bands['abstained_pct']} % of "
            f"{bands['people']} people abstained (unknown)"
        )
        lines.append(
            f"band shares among camera visitors counted in a band vs truth (target within {BAND_SHARE_TARGET_POINTS:g} "
            f"points; largest difference {bands['max_share_difference_points']}):"
        )
        for band, row in bands["shares"].items():
            lines.append(
                f"  {band:>5}: {row['share_pct']} % ({row['counted']}) vs {row['truth_share_pct']} % true "
                f"({row['truth']}), |difference| {row['abs_difference_points']} points"
            )
    lines.append("gender decisions by true age band (children's own gender threshold?):")
    for group, row in acc["gender_by_true_band"].items():
        total = sum(row.values())
        lines.append(
            f"  true {group:>5}: {row['right']} right, {row['wrong']} wrong, {row['unknown']} unknown of {total}"
            + (
                f" ({100 * row['wrong'] / total:.1f} % wrong, {100 * row['unknown'] / total:.1f} % unknown)"
                if total
                else ""
            )
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument(
        "--data",
        type=Path,
        default=data_dir(),
        help="face datasets the clips' people come from (default: FOOTFALL_DATA, else ../shared/data; now %(default)s)",
    )
    parser.add_argument("--clips", type=positive_int, default=4, help="accuracy clips")
    parser.add_argument("--people", type=positive_int, default=20, help="people per clip")
    parser.add_argument("--seed", type=int, default=100, help="seed of the first clip (the next ones count up)")
    parser.add_argument(
        "--split",
        default="test",
        choices=("test", "val"),
        help="faces of this split walk the clips: test measures; val is for choices made on clips",
    )
    parser.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR_BUNDLE, help="face-detector bundle")
    parser.add_argument("--gender", type=Path, default=DEFAULT_GENDER_BUNDLE, help="gender bundle")
    parser.add_argument(
        "--width", type=positive_int, default=1280, help="accuracy clips' width in pixels (smaller: quicker)"
    )
    parser.add_argument("--height", type=positive_int, default=720, help="accuracy clips' height in pixels")
    parser.add_argument(
        "--turn-away",
        type=fraction,
        default=0.0,
        help="share of the accuracy clips' people who turn their face away for 1.5-3 s mid-walk",
    )
    parser.add_argument(
        "--spacing",
        type=float,
        default=None,
        help=f"mean seconds between people walking in (default {walkby.WalkbySpec.spacing_seconds}; 0.2: a crowd, "
        "some 15-25 faces in view at once)",
    )
    parser.add_argument(
        "--fps",
        type=frame_rate,
        default=None,
        help="accuracy clips: process at most this many frames a second (the clips have 25), as a box whose CPU "
        "falls behind does; default: every frame",
    )
    parser.add_argument("--max-lost", type=float, default=None, help="tracking.max_lost_seconds (default: config)")
    parser.add_argument(
        "--run-clips",
        type=positive_int,
        default=8,
        help="clips per run for the female share's per-run figures and interval coverage (issue #14 asks for 8)",
    )
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--outage",
        type=float,
        default=0,
        help="Also run the agent with the broker stopped this many seconds.",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the generated clips (a temp folder).")
    args = parser.parse_args(argv)
    if args.outage < 0:
        parser.error(f"--outage {args.outage:g}: give seconds, 0 or more")
    args.detector, args.gender = args.detector.resolve(), args.gender.resolve()
    # Before the clips are made (minutes): a wrong --data or bundle stops the run in one line.
    require_bundle(parser, args.gender, CLASSIFIER_TASK, "--gender")
    require_bundle(parser, args.detector, DETECTOR_TASK, "--detector")
    if not (args.skip_accuracy and args.skip_throughput and not args.outage):
        require_datasets(parser, args.data)
    folder = Path(tempfile.mkdtemp(prefix="footfall-edge-bench-"))
    with user_errors(parser):  # what the checks above cannot foresee (a graph this onnxruntime will not build)
        try:
            report = {"gender_bundle": str(args.gender)}
            if not args.skip_accuracy:
                measured = accuracy(args, folder)
                measured.pop("decided_people")  # one row per person: for calibrate_tracks.py, too long to print
                report["accuracy"] = measured
                rates = load_bundle(args.gender).manifest.classifier
                if rates is not None and rates.decision_rates is not None:
                    report["female_share"] = share_runs.share_report(
                        measured.pop("share_clips"), rates.decision_rates, args.run_clips
                    )
            if not args.skip_throughput:
                report["throughput"] = throughput(args, folder)
            if args.outage:
                report["outage"] = broker_outage(args, folder)
                print(f"broker outage: {json.dumps(report['outage'])}")
        finally:
            if args.keep:
                print(f"clips kept in {folder}", file=sys.stderr)
            else:
                shutil.rmtree(folder, ignore_errors=True)
    acc = report.get("accuracy")
    if acc:
        print(
            f"people: {acc['people']} counted / {acc['truth_people']} true "
            f"({acc['people_error_pct']:+.2f} %; target within 5 %)"
        )
        print(
            f"female share: {acc['female_share_pct']} % of decided vs {acc['female_share_truth_pct']} % true "
            f"(target within 3 points); unknown {acc['unknown_pct']} %"
        )
        identity = acc["identity"]
        print(
            f"identity: {identity['counted_twice']} people counted twice "
            f"(why the extra count began: {identity['counted_again']}), {identity['missed']} missed; "
            f"{identity['hidden_people_counted_once']} of {identity['hidden_people']} people hidden for a moment "
            "counted exactly once"
        )
        print(
            f"turn-aways: {identity['turned_away_counted_once']} of {identity['turned_away_people']} people who "
            f"turned their face away counted exactly once; double counts by cause {identity['counted_again']}"
        )
        print(
            f"merges (two people counted as one: no count of their own, followed by another's track): "
            f"{identity['merged_people']} people ({acc['merged_people_pct']} % of {acc['truth_people']}; target "
            f"≤ 1 %); stricter, incl. switches where both were still counted once: {identity['merged_tracks']} "
            f"tracks followed a second person for ≥ {MERGE_MIN_SHARE:.0%} of their path "
            f"({acc['merged_tracks_pct']} %); over {acc['clips']} clips"
        )
        for gender, row in sorted(acc["decisions_by_true_gender"].items()):
            print(f"  true {gender}, decided as: {row}")
        for group, rows in acc["decisions_by_group"].items():
            print(f"    {group}: " + "; ".join(f"true {g} {row}" for g, row in sorted(rows.items())))
        for zone, counts in acc["zones"].items():
            print(f"  zone {zone}: {counts['counted']} counted / {counts['truth']} true")
        print("\n".join(format_age_report(acc, str(args.gender))))
        if "female_share" in report:
            print("\n".join(share_runs.format_report(report["female_share"])))
        else:
            print("female share: the gender bundle has no decision rates, so no corrected share")
    tp = report.get("throughput")
    if tp:
        print(
            f"throughput: {tp['fps']} frames/s at {tp['resolution'][0]}×{tp['resolution'][1]}, up to "
            f"{tp['max_faces_in_frame']} faces per frame (target ≥ 25); "
            f"peak RSS {tp['peak_rss_mb']} MB (target ≤ 300); "
            f"load average before {tp['load_average_before']} on {tp['cpu_count']} cores"
        )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
