"""``footfall doctor``: what a camera box will really run, and how fast, before it counts anyone.

It reports the CPU and the instruction-set flags that decide onnxruntime's integer kernels, the onnxruntime
version, each model bundle's parity probe on this CPU and the precision the agent would serve, what the
classifier estimates (gender, and age bands where it has an age head), the detector's and the classifier's
latency here, and (given a config) what the agent would refuse in it at start and whether each camera answers. A
config that cannot be used, or a bundle that cannot be served at all, is said so in its own section, and
everything else is still checked. The text report is shown section by section as each
check ends (a dead camera takes up to CAMERA_TIMEOUT_S to give up): doctor is never silent for long.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from footfall.core.ages import AGE_BANDS
from footfall.core.bundle import Bundle, BundleError, default_threads, load_bundle
from footfall.core.cpu import cpu_info, has_int32_dot_product
from footfall.core.latency import median_ms
from footfall.core.text import plural
from footfall.core.wire import ModelServing
from footfall.edge.config import AgentConfig, CameraConfig

DETECTOR_SIZES = ((640, 360), (1280, 720))
CLASSIFIER_BATCH = 16
CAMERA_TIMEOUT_S = 10.0


@dataclass
class BundleCheck:
    path: Path
    serving: ModelServing
    latency_ms: dict[str, float]
    # What the bundle's outputs are read as (a classifier's labels and whether it has an age head); None for
    # the detector.
    estimates: dict[str, Any] | None = None
    # What a 'gender-only' site would serve: the graphs pruned to the gender output have a parity probe run of
    # their own (None: the bundle has no such graphs).
    gender_only_serving: ModelServing | None = None

    @property
    def servings(self) -> list[ModelServing]:
        return [self.serving] + ([self.gender_only_serving] if self.gender_only_serving else [])


@dataclass
class BundleFailure:
    """A bundle that cannot be served at all here (no graph of it loads, or it fails its checks): the agent would
    not start with it."""

    path: Path
    task: str  # what the bundle was given as
    error: str  # one line, naming the file or field at fault


@dataclass
class ConfigCheck:
    """The agent config doctor was given: what the agent would refuse at start (the same checks as
    ``footfall agent --check-config``), each problem one line; none: usable."""

    path: Path
    problems: list[str]
    outbox: str | None = None  # what the outbox file holds, where the config could be read

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "usable": not self.problems, "problems": self.problems, "outbox": self.outbox}


def startup_problems(config: AgentConfig) -> tuple[list[str], str | None]:
    """What the agent would refuse at start besides the models and cameras: an MQTT password variable that is not
    set, an outbox it cannot use; and what the outbox holds (None where it cannot be used)."""
    from footfall.edge.config import ConfigError
    from footfall.edge.outbox import OutboxError, check_outbox

    problems, outbox = [], None
    try:
        config.mqtt.resolved_password()
    except ConfigError as exc:
        problems.append(str(exc))
    try:
        outbox = check_outbox(config.outbox.path, config.site_id, config.agent_id)
    except OutboxError as exc:
        problems.append(str(exc))
    return problems, outbox


def check_config(path: Path) -> tuple[AgentConfig | None, ConfigCheck]:
    """The config read as the agent reads it (None where it cannot be), and its check."""
    from footfall.edge.config import ConfigError, load_config

    try:
        config = load_config(path)
    except ConfigError as exc:
        return None, ConfigCheck(path, [str(exc)])
    problems, outbox = startup_problems(config)
    return config, ConfigCheck(path, problems, outbox)


@dataclass
class CameraCheck:
    camera_id: str
    source: str
    reachable: bool
    detail: str


@dataclass
class Diagnosis:
    cpu: dict[str, Any]
    onnxruntime: str
    threads: int
    bundles: list[BundleCheck | BundleFailure] = field(default_factory=list)
    cameras: list[CameraCheck] = field(default_factory=list)
    config: ConfigCheck | None = None

    @property
    def servable(self) -> bool:
        """Every bundle can be served (in FP32 at least) and the config given is usable: the agent would start."""
        usable = self.config is None or not self.config.problems
        return usable and not any(isinstance(b, BundleFailure) for b in self.bundles)

    @property
    def healthy(self) -> bool:
        """Every bundle serves the precision it ships in and every camera answers."""
        checks = [b for b in self.bundles if isinstance(b, BundleCheck)]
        return (
            self.servable
            and all(s.parity != "failed" for b in checks for s in b.servings)
            and all(c.reachable for c in self.cameras)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "cpu": self.cpu,
            "onnxruntime": self.onnxruntime,
            "threads": self.threads,
            "bundles": [_bundle_dict(b) for b in self.bundles],
            "cameras": [c.__dict__ for c in self.cameras],
            "config": self.config.as_dict() if self.config is not None else None,
            "healthy": self.healthy,
        }


def _bundle_dict(check: BundleCheck | BundleFailure) -> dict[str, Any]:
    if isinstance(check, BundleFailure):
        return {"path": str(check.path), "task": check.task, "error": check.error}
    return (
        {"path": str(check.path), **check.serving.model_dump(), "latency_ms": check.latency_ms}
        | ({} if check.estimates is None else {"estimates": check.estimates})
        | ({} if check.gender_only_serving is None else {"gender_only": check.gender_only_serving.model_dump()})
    )


def _detector_check(bundle: Bundle, threads: int) -> BundleCheck:
    from footfall.core.detector import FaceDetector

    detector = FaceDetector(bundle, threads=threads, self_check=True)
    frame = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    latency = {}
    for width, height in DETECTOR_SIZES:
        image = np.ascontiguousarray(frame[:height, :width])
        latency[f"frame_{width}x{height}"] = round(median_ms(partial(detector, image), min_seconds=1.0), 2)
    return BundleCheck(bundle.path, detector.serving, latency)


def _classifier_check(bundle: Bundle, threads: int) -> BundleCheck:
    from footfall.core.classifier import GenderClassifier

    classifier = GenderClassifier(bundle, threads=threads, self_check=True)
    size = classifier.spec.size
    chips = np.random.default_rng(0).integers(0, 255, (CLASSIFIER_BATCH, size, size, 3), dtype=np.uint8)
    batch_ms = median_ms(lambda: classifier.infer(chips), min_seconds=1.0)  # gender and age: one pass
    age = classifier.contract.age
    estimates: dict[str, Any] = {
        "gender": list(classifier.labels),
        "age": None
        if age is None
        else {
            "years": [age.ages[0], age.ages[-1]],
            "bands": list(AGE_BANDS),
            # Abstention of the per-person band decision only: band counts are allotted, never abstain.
            "person_band_threshold": age.band_threshold,
            # What a 'gender-only' site runs: the graph pruned to the gender output, or (a bundle exported
            # before those) the whole graph, its age output unread.
            "gender_only_graph": bundle.has_gender_only_graphs,
        },
    }
    latency = {f"face_batch{CLASSIFIER_BATCH}": round(batch_ms / CLASSIFIER_BATCH, 3)}
    if not bundle.has_gender_only_graphs:
        return BundleCheck(bundle.path, classifier.serving, latency, estimates)
    gender_only = GenderClassifier(bundle, threads=threads, self_check=True, age=False)
    pruned_ms = median_ms(lambda: gender_only.infer(chips), min_seconds=1.0)
    latency[f"face_batch{CLASSIFIER_BATCH}_gender_only"] = round(pruned_ms / CLASSIFIER_BATCH, 3)
    return BundleCheck(bundle.path, classifier.serving, latency, estimates, gender_only.serving)


def check_camera(camera: CameraConfig, timeout_s: float = CAMERA_TIMEOUT_S) -> CameraCheck:
    """Opens the camera's source and reads one frame, as the agent's capture thread would, in about ``timeout_s``
    at most: half for the open, half for the frame. FFmpeg times both out itself; a thread left waiting inside
    OpenCV instead aborted the process at exit (SIGABRT). A network stream is probed first, as the agent does
    (footfall.edge.capture.probe_stream, within the open's half): its reason names what failed (a refused port, a
    name no server resolves, a server that takes the connection and says nothing) where OpenCV only fails."""
    import threading

    from footfall.edge.capture import cannot_open_reason, describe_source, open_capture, probe_stream

    source, where = camera.source, describe_source(camera.source)
    half_ms = int(timeout_s * 500)
    started = time.monotonic()
    if isinstance(source, str) and not camera.is_file:
        reason = probe_stream(source, half_ms / 1000, threading.Event())
        if reason is not None:
            return CameraCheck(camera.id, where, False, reason)
    # What the probe took comes off the open's half: a camera's check stays within timeout_s.
    opening = time.monotonic()
    open_ms = max(1, half_ms - int((opening - started) * 1000))
    capture = open_capture(source, open_timeout_ms=open_ms, read_timeout_ms=half_ms)
    if capture is None:
        return CameraCheck(camera.id, where, False, cannot_open_reason(source, time.monotonic() - opening, open_ms))
    try:
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok or frame is None:
        return CameraCheck(camera.id, where, False, "opened, but no frame could be read")
    took = time.monotonic() - started
    return CameraCheck(camera.id, where, True, f"{frame.shape[1]}×{frame.shape[0]} frame in {took:.1f} s")


def diagnose(
    detector: Path,
    gender: Path | None,
    *,
    config: AgentConfig | None = None,
    config_check: ConfigCheck | None = None,
    threads: int | None = None,
    show: Callable[[str], None] | None = None,
) -> Diagnosis:
    """Runs every check. A bundle that cannot be served is a :class:`BundleFailure` in the report (the error in
    one line, naming the file), and the other checks still run: doctor is for the box that does not work.

    ``show`` is given each section's text as soon as it is known: the CPU and onnxruntime, each bundle, a line
    before the cameras are tried and each camera as its check ends. A box with four dead cameras was silent for half
    a minute before. The verdict, :func:`format_verdict`, is the caller's to show at the end."""
    import onnxruntime

    def shown(text: str) -> None:
        if show is not None:
            show(text)

    name, arch, flags = cpu_info()
    threads = threads or (config.detection.threads if config is not None else None) or default_threads()
    diagnosis = Diagnosis(
        cpu={
            "model": name,
            "arch": arch,
            "flags": list(flags),
            "int32_dot_product": has_int32_dot_product(flags),
        },
        onnxruntime=onnxruntime.__version__,
        threads=threads,
        config=config_check,
    )
    shown(format_platform(diagnosis))
    if config_check is not None:
        shown(format_config(config_check))
    checks = [("face-detection", detector, _detector_check)]
    if gender is not None:
        checks.append(("gender-classification", gender, _classifier_check))
    for task, path, check in checks:
        result: BundleCheck | BundleFailure
        try:
            result = check(load_bundle(path), threads)
        except BundleError as exc:
            result = BundleFailure(path, task, str(exc))
        diagnosis.bundles.append(result)
        shown(format_bundle(result))
    if config is not None and config.cameras:
        shown(f"checking     {plural(len(config.cameras), 'camera')}, up to {CAMERA_TIMEOUT_S:g} s each …")
        for camera in config.cameras:
            diagnosis.cameras.append(check_camera(camera))
            shown(format_camera(diagnosis.cameras[-1]))
    return diagnosis


def _estimates_text(estimates: dict[str, Any]) -> str:
    gender = f"gender ({', '.join(estimates['gender'])})"
    age = estimates["age"]
    if age is None:
        return f"{gender}; no age head: aggregates carry no age bands"
    low, high = age["years"]
    gender_only = (
        "a 'gender-only' site runs the graph pruned to its gender output"
        if age.get("gender_only_graph")
        else "a 'gender-only' site computes the age head unread: no gender-only graph, `footfall export-gender-only`"
    )
    return (
        f"{gender}; age {low:g}-{high:g}+ years in bands {age['bands'][0]} … {age['bands'][-1]} "
        f"(estimated only where the site's mode is 'full'; {gender_only})"
    )


def _parity_text(serving: ModelServing) -> str:
    """The parity probe's verdict on this CPU and the precision served after it."""
    if serving.parity == "not-checked":
        return f"not checked: {serving.reason}; serves {serving.precision.upper()}"
    verdict = "passed" if serving.parity == "passed" else "FAILED"
    if serving.probe_error is None:  # the probe did not run at all (unreadable, or the graph failed on it)
        return f"{verdict}: the probe could not run ({serving.reason}); serves {serving.precision.upper()}"
    return (
        f"{verdict}: probe error {serving.probe_error:.4f} vs tolerance {serving.tolerance:.4f}; serves "
        f"{serving.precision.upper()}" + ("" if serving.parity == "passed" else f" ({serving.reason})")
    )


def format_platform(diagnosis: Diagnosis) -> str:
    """The text report's first section: the CPU, its flags and onnxruntime."""
    cpu = diagnosis.cpu
    dot = (
        "int8 products accumulate in int32 (VNNI, AMX or ARM dot product)"
        if cpu["int32_dot_product"]
        else "no int32 int8 dot product: uint8×int8 pairs sum in int16 (7-bit weights needed)"
    )
    return "\n".join(
        [
            f"cpu          {cpu['model']} ({cpu['arch']})",
            f"  flags      {' '.join(cpu['flags']) or 'none of the relevant ones'}; {dot}",
            f"onnxruntime  {diagnosis.onnxruntime} (CPUExecutionProvider, {plural(diagnosis.threads, 'thread')})",
        ]
    )


def format_bundle(check: BundleCheck | BundleFailure) -> str:
    """A bundle's section of the text report."""
    if isinstance(check, BundleFailure):
        return f"bundle       {check.task} at {check.path}\n  ERROR      cannot be served: {check.error}"
    serving = check.serving
    lines = [
        f"bundle       {serving.bundle} {serving.version} ({serving.task}) at {check.path}",
        f"  parity     {_parity_text(serving)}",
    ]
    if check.gender_only_serving is not None:
        lines.append(f"  parity     gender-only graph {_parity_text(check.gender_only_serving)}")
    latency = ", ".join(
        f"{value:.2f} ms per {key.replace('_', ' ').replace('batch', 'at batch ')}"
        for key, value in check.latency_ms.items()
    )
    if check.estimates is not None:
        lines.append(f"  estimates  {_estimates_text(check.estimates)}")
    lines.append(f"  latency    {latency}")
    return "\n".join(lines)


def format_config(check: ConfigCheck) -> str:
    """The config's section of the text report."""
    if not check.problems:
        return f"config       {check.path}: usable\n  outbox     {check.outbox}"
    return "\n".join([f"config       {check.path}", *(f"  ERROR      {problem}" for problem in check.problems)])


def format_camera(camera: CameraCheck) -> str:
    state = "reachable" if camera.reachable else "UNREACHABLE"
    return f"camera       {camera.camera_id} ({camera.source}): {state}, {camera.detail}"


def format_verdict(diagnosis: Diagnosis) -> str:
    """The text report's last line: all is well, or where to look."""
    if not diagnosis.healthy:
        return "attention: see the lines in capitals above"
    return "ok: every bundle serves as shipped" + (" and every camera answers" if diagnosis.cameras else "")
