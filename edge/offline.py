"""``footfall process VIDEO``: the agent's pipeline on a video file, as fast as it goes, without a broker.

The result is one JSON object: people (the camera's distinct visitors) and their gender split, frames, fps,
each entrance line's people in and out, and each zone's and line's passes (one person passes through
several zones, so passes of different zones never add up to people); ``--out`` also writes the aggregate
messages the agent would have sent (wire schema, one per line). ``female_share`` holds the female share
corrected for the gender bundle's decision rates, with its 95 % interval, of the camera's visitors and of each
zone and line (edge/female_share.py); :func:`footfall.edge.female_share.format_table` prints it for people.
With a gender bundle that has an age head, ``age_bands`` holds the same crowds by gender and age band
(edge/age_bands.py); null otherwise.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from footfall.core.classifier import AgeEstimate
from footfall.core.wire import AggregateMessage, DemographicsMode, aggregate_topic
from footfall.edge.age_bands import age_band_section
from footfall.edge.aggregation import BucketCounts
from footfall.edge.capture import VideoFile
from footfall.edge.config import AgentConfig, CameraConfig, ConfigError, offline_camera
from footfall.edge.demographics import classifies, estimates_age, within_mode
from footfall.edge.female_share import female_share_section
from footfall.edge.messages import CameraMessages, classifier_ref
from footfall.edge.pipeline import CameraPipeline, FrameGate, Models, load_models
from footfall.edge.tracking import TrackerEvents

OFFLINE_IDS = {"agent_id": "offline", "site_id": "offline"}
# The range a video's --start may take: epoch seconds, and room for any video after it before datetime's year 9999
# (a start near that end decoded the whole video, then failed: 'year 10000 is out of range').
EARLIEST_START = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_START = datetime(9000, 1, 1, tzinfo=UTC)


def start_time_problem(start_time: float) -> str | None:
    """Why ``start_time`` (epoch seconds) cannot be a video's first frame, naming it as ``--start``; or None."""
    if EARLIEST_START.timestamp() <= start_time < LATEST_START.timestamp():
        return None
    try:
        shown = datetime.fromtimestamp(start_time, UTC).isoformat()
    except (OverflowError, OSError, ValueError):  # past what a datetime holds
        shown = f"{start_time:g} s after 1970"
    return f"--start {shown}: must be between {EARLIEST_START.date()} and {LATEST_START.date()} (UTC)"


class AggregatesNotWritten(RuntimeError):
    """``--out`` could not be written once the video was processed; ``summary`` is the run's, so it is not lost."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass
class MessageCollector:
    """Keeps the latest message per bucket, as the server would."""

    camera: CameraMessages
    classifier: str | None = None  # the gender bundle the messages name (classifier_ref)
    mode: DemographicsMode = "full"  # what the messages may carry, as the agent's would (the config's floor)
    messages: dict[tuple[str, int], AggregateMessage] = field(default_factory=dict)
    seq: int = 0

    def __call__(self, zone_id: str, bucket_start: int, counts: BucketCounts) -> None:
        self.seq += 1
        message = self.camera.message(zone_id, bucket_start, counts, self.seq, classifier=self.classifier)
        self.messages[(zone_id, bucket_start)] = within_mode(message, self.mode)


def offline_config(video: Path, config: AgentConfig | None, camera_id: str | None) -> tuple[AgentConfig, CameraConfig]:
    if config is None:
        if camera_id is not None:
            raise ConfigError(f"--camera {camera_id}: cameras are named in a config; give it with --config")
        camera = offline_camera(str(video)).model_copy(update={"fps": 120.0})
        return AgentConfig(cameras=[camera], **OFFLINE_IDS), camera
    if camera_id is None:
        return config, config.cameras[0]
    for camera in config.cameras:
        if camera.id == camera_id:
            return config, camera
    raise ConfigError(f"--camera {camera_id}: no such camera in the config ({', '.join(c.id for c in config.cameras)})")


def peak_rss_mb() -> float:
    """Peak resident memory of this process. /proc's VmHWM belongs to this program image; ru_maxrss is
    inherited across exec, so a child started from a big parent would report the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def zone_summary(messages: list[AggregateMessage]) -> dict[str, dict[str, Any]]:
    """Passes per zone and counting line (messages of other measures are left out)."""
    zones: dict[str, dict[str, Any]] = {}
    for message in messages:
        if message.measure != "passes":
            continue
        zone = zones.setdefault(
            message.zone_id,
            {"people": 0, "female": 0, "male": 0, "unknown": 0, "_dwell_n": 0, "_dwell_sum": 0.0},
        )
        zone["people"] += message.people
        zone["female"] += message.gender_counts.female
        zone["male"] += message.gender_counts.male
        zone["unknown"] += message.gender_counts.unknown
        if message.dwell:
            zone["_dwell_n"] += message.dwell.samples
            zone["_dwell_sum"] += message.dwell.samples * message.dwell.mean_seconds
    for zone in zones.values():
        n, total = zone.pop("_dwell_n"), zone.pop("_dwell_sum")
        zone["mean_dwell_seconds"] = round(total / n, 2) if n else None
    return zones


def camera_visitors(messages: list[AggregateMessage]) -> dict[str, int]:
    """The camera's distinct visitors over the run, from its 'camera' aggregates, with their gender split."""
    visitors = {"people": 0, "female": 0, "male": 0, "unknown": 0}
    for message in messages:
        if message.measure == "camera":
            visitors["people"] += message.people
            visitors["female"] += message.gender_counts.female
            visitors["male"] += message.gender_counts.male
            visitors["unknown"] += message.gender_counts.unknown
    return visitors


def entrance_summary(messages: list[AggregateMessage]) -> dict[str, dict[str, int]]:
    """People in and out per entrance line (by the line's id), from its 'in' and 'out' aggregates."""
    entrances: dict[str, dict[str, int]] = {}
    for message in messages:
        if message.measure in ("in", "out"):
            line_id = message.zone_id.removesuffix(f".{message.measure}")
            entrances.setdefault(line_id, {"in": 0, "out": 0})[message.measure] += message.people
    return entrances


def process_video(
    video: str | Path,
    config: AgentConfig | None = None,
    *,
    camera_id: str | None = None,
    start_time: float | None = None,
    out: Path | None = None,
    progress: bool = True,
    models: Models | None = None,
    observer: Callable[[float, TrackerEvents], None] | None = None,
    person_labels: dict[int, str] | None = None,
    person_probabilities: dict[int, Any] | None = None,
    person_ages: dict[int, AgeEstimate] | None = None,
    aggregates: list[AggregateMessage] | None = None,
) -> dict[str, Any]:
    """Runs the pipeline on every frame (up to the camera's fps cap) and returns the summary.
    ``observer`` sees the tracker's events, ``person_labels`` receives each person's final label,
    ``person_probabilities`` the class probabilities averaged over the track, ``person_ages`` the band decision
    over the track of each person whose age was estimated, by track id, and ``aggregates`` the last message of
    every bucket: benchmarks compare them with the truth."""
    from tqdm import tqdm

    video = Path(video)
    if start_time is not None and (problem := start_time_problem(start_time)):
        raise ConfigError(problem)
    config, camera = offline_config(video, config, camera_id)
    if models is None:
        # The config's demographics floor binds here too: what `--out` writes is what the box would send.
        mode = config.demographics
        if mode == "off":
            raise ConfigError("demographics: the config's floor is 'off': this box reads no camera, nothing to process")
        models = load_models(config, with_classifier=classifies(mode), estimate_age=estimates_age(mode))
    if start_time is None:
        # Buckets aligned to the bucket length from a round start, so reruns give the same keys.
        start_time = float(int(time.time()) // 86_400 * 86_400)
    source = VideoFile(video, start_time=start_time)
    collector = MessageCollector(
        CameraMessages.for_camera(config, camera.id), classifier_ref(models.classifier), config.demographics
    )
    pipeline = CameraPipeline(config, camera, models, collector)
    pipeline.observer = observer
    finished: dict[int, tuple[str, Any]] = {}  # track id -> (final label, track-averaged probabilities)
    pipeline.on_person_finished = lambda track_id, label, mean: finished.__setitem__(track_id, (label, mean))
    aged: dict[int, AgeEstimate] = {}
    pipeline.on_person_aged = aged.__setitem__
    gate = FrameGate(camera.fps)
    frames = 0
    started = time.perf_counter()
    try:
        with tqdm(total=source.frame_count, unit="frame", disable=not progress, desc=video.name, leave=False) as bar:
            for frame in source.frames():
                bar.update(1)
                if not gate.admit(frame.t):
                    continue
                pipeline.process(frame.image, frame.t)
                frames += 1
    finally:
        source.close()
    pipeline.finish()
    elapsed = time.perf_counter() - started
    messages = sorted(collector.messages.values(), key=lambda m: (m.bucket_start, m.zone_id))
    if person_labels is not None:
        person_labels.update({track_id: label for track_id, (label, _) in finished.items()})
    if person_probabilities is not None:
        person_probabilities.update({track_id: mean for track_id, (_, mean) in finished.items() if mean is not None})
    if person_ages is not None:
        person_ages.update(aged)
    if aggregates is not None:
        aggregates.extend(messages)
    labels = [label for label, _ in finished.values()]
    visitors, zones = camera_visitors(messages), zone_summary(messages)
    rates = models.classifier.contract.decision_rates if models.classifier is not None else None
    age_estimated = models.classifier is not None and models.classifier.has_age and models.estimate_age
    summary = {
        "video": str(video),
        "camera_id": camera.id,
        "people": pipeline.people,
        "female": labels.count("female"),
        "male": labels.count("male"),
        "unknown": sum(1 for label in labels if label not in ("female", "male")),
        "frames": frames,
        "frames_skipped": gate.skipped,
        "seconds": round(elapsed, 2),
        "fps": round(frames / elapsed, 2) if elapsed > 0 else 0.0,
        "video_seconds": round((frames + gate.skipped + source.skipped) / source.fps, 2),
        # A damaged file ends early, or has frames that do not decode (skipped, the others keep their times): a
        # script reading this summary must see it, not only the log.
        "truncated": source.ended_early,
        "frames_undecodable": source.skipped,
        "frames_expected": source.frame_count,
        "resolution": [source.width, source.height],
        "peak_rss_mb": peak_rss_mb(),
        "camera_visitors": visitors,
        "entrances": entrance_summary(messages),
        "zones": zones,
        "female_share": female_share_section(visitors, zones, collector.classifier, rates),
        "age_bands": age_band_section(messages, age_estimated),
        "messages": len(messages),
    }
    if out is not None:
        topic = aggregate_topic(config.site_id, config.agent_id, config.mqtt.topic_prefix)
        try:
            write_aggregates(Path(out), topic, messages)
        except OSError as exc:
            raise AggregatesNotWritten(
                f"{out}: cannot write the aggregates ({exc.strerror or exc}); nothing of them was kept", summary
            ) from None
    return summary


def write_aggregates(out: Path, topic: str, messages: list[AggregateMessage]) -> None:
    """The messages as the agent would send them, one JSON object per line. A file left half written (a full disk)
    is removed: a reader would take its first lines for the whole run."""
    try:
        with out.open("w", encoding="utf-8") as handle:
            for message in messages:
                handle.write(json.dumps({"topic": topic, "message": message.model_dump(mode="json")}) + "\n")
    except OSError:
        if out.is_file():
            out.unlink(missing_ok=True)
        raise
