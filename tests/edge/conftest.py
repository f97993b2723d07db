"""Edge fixtures: model bundles, generated walk-by clips (in temp folders only) and agent configs.

Nothing here imports OpenCV or ONNX Runtime when the test files are collected: the clip generator
(footfall.edge.walkby) and the models are imported by the fixtures that need them, so the pure tests
(config, zones, aggregation, counting) run where those packages are missing.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE

from tests.edge.standin import gender_bundle_for_tests

if TYPE_CHECKING:
    from footfall.edge.agent import Agent
    from footfall.edge.outbox import Outbox

IN_CI = os.environ.get("CI", "").lower() == "true"

# Small clips keep the suite fast on two cores: 640×360 at 10 fps, faces 28-55 px.
SMALL = dict(width=640, height=360, fps=10.0, min_face=56, max_face=110)


@pytest.fixture(scope="session")
def detector_bundle() -> Path:
    if not (DEFAULT_DETECTOR_BUNDLE / "manifest.json").is_file():
        message = f"face detector bundle missing at {DEFAULT_DETECTOR_BUNDLE}"
        if IN_CI:
            pytest.fail(f"CI must not skip: {message}")
        pytest.skip(message)
    return DEFAULT_DETECTOR_BUNDLE


@pytest.fixture(scope="session")
def gender_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gender_bundle_for_tests(tmp_path_factory.mktemp("bundles"))


@pytest.fixture(scope="session")
def models(detector_bundle: Path, gender_bundle: Path):
    from footfall.edge.config import AgentConfig, BundlesConfig, CameraConfig
    from footfall.edge.pipeline import load_models

    config = AgentConfig(
        agent_id="t",
        site_id="t",
        cameras=[CameraConfig(id="c", source="x.mp4")],
        bundles=BundlesConfig(detector=detector_bundle, gender=gender_bundle),
    )
    return load_models(config)


@pytest.fixture(scope="session")
def walkby_clip(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Ten people: crossings both ways, a pair that meets, pillar occlusions, turners."""
    return make_walkby_clip(data_dir, tmp_path_factory.mktemp("walkby"), people=10, seed=7)


def make_walkby_clip(data_dir: Path, folder: Path, **spec: Any) -> tuple[Path, dict]:
    """A small walk-by clip (:data:`SMALL` unless ``spec`` says otherwise) and its ground truth."""
    from footfall.edge import walkby  # OpenCV: only for the tests that render clips

    return walkby.make_walkby(data_dir, folder, walkby.WalkbySpec(**{**SMALL, **spec}))


def camera_yaml(clip: Path | str, camera: dict, *, fps: float = 30, realtime: bool = False) -> str:
    zones = "".join(f"      - {{id: {z['id']}, polygon: {z['polygon']}}}\n" for z in camera.get("zones", []))
    lines = "".join(
        f"      - {{id: {line['id']}, points: {line['points']}, direction: {line['direction']}}}\n"
        for line in camera.get("lines", [])
    )
    text = f"  - id: cam1\n    source: {clip}\n    realtime: {str(realtime).lower()}\n    fps: {fps}\n"
    if zones:
        text += "    zones:\n" + zones
    if lines:
        text += "    lines:\n" + lines
    return text


def agent_yaml(
    clip: Path | str,
    camera: dict,
    *,
    outbox: Path,
    port: int,
    detector: Path,
    gender: Path,
    bucket_seconds: int = 10,
    heartbeat: float = 1.0,
) -> str:
    return (
        "agent_id: box-test\nsite_id: lab\n"
        f"bucket_seconds: {bucket_seconds}\n"
        "cameras:\n"
        + camera_yaml(clip, camera)
        + f"mqtt: {{host: 127.0.0.1, port: {port}, heartbeat_seconds: {heartbeat}}}\n"
        f"outbox: {{path: {outbox}}}\n"
        f"bundles: {{detector: {detector}, gender: {gender}}}\n"
    )


@dataclass
class SilentStream:
    """An RTSP address on loopback whose server takes every connection and never says a word (a camera that hangs
    after the TCP handshake); ``held`` are the connections it took."""

    url: str
    held: list[socket.socket] = field(default_factory=list)


@pytest.fixture()
def silent_stream() -> Iterator[SilentStream]:
    server = socket.create_server(("127.0.0.1", 0))
    stream = SilentStream(f"rtsp://127.0.0.1:{server.getsockname()[1]}/stream")

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                stream.held.append(server.accept()[0])  # kept open, never answered

    threading.Thread(target=accept, daemon=True).start()
    yield stream
    server.close()
    for connection in stream.held:
        connection.close()


def one_camera_agent(outbox: Outbox) -> Agent:
    """An agent of one camera ('cam1', site 'lab') that is never started, writing to ``outbox``: what the tests of
    its emitter, shutdown and pruning need. Imported when called, as this file imports nothing heavy."""
    from footfall.edge.agent import Agent
    from footfall.edge.config import AgentConfig, CameraConfig, MqttConfig

    config = AgentConfig(
        agent_id="box-test",
        site_id="lab",
        cameras=[CameraConfig(id="cam1", source="x.mp4")],
        mqtt=MqttConfig(host="127.0.0.1", port=1),
    )
    agent = Agent(config)
    agent.outbox = outbox
    return agent


def damage_frames(clip: Path, frames: tuple[int, ...]) -> None:
    """Zeroes the JPEG of each of ``frames`` in an MJPG AVI (the container keeps its place), so that OpenCV fails to
    decode those frames and decodes the others: a damaged packet mid-file."""
    data = bytearray(clip.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    for frame in frames:
        end = starts[frame + 1] - 16  # short of the next frame's chunk header
        data[starts[frame] : end] = bytes(end - starts[frame])
    clip.write_bytes(bytes(data))
