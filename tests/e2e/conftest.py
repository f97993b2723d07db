"""End-to-end fixtures: a live test camera playing generated walk-by clips, and the product's processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from footfall.edge import walkby
from footfall.edge.config import AgentConfig, CameraConfig
from footfall.edge.pipeline import CameraPipeline, load_models

from footfall.broker import MosquittoBroker, free_port, wait_for_port
from tests.e2e.live_camera import read_frames

SITE, AGENT, CAMERA, ZONE = "e2e-mall", "e2e-box", "corridor", "frame"
BUCKET_SECONDS = 10
# Long enough for the last person's bucket to close and be sent (bucket + grace + track loss), and for the
# broker and server faults to span the first clip's end; short enough for the suite.
PAUSE_SECONDS = 20.0

# The fault runs are compared with an uninterrupted run, and a live camera never hands two runs the same
# frames: a busy agent keeps only the newest frame, and even an idle one stamps frames with jittered capture
# times, which moves its 0.2 s crop spacing by a frame. Which crops a person is classified from, and so the
# track-averaged probability, differs run to run. A face whose average sits near a per-track threshold is
# then decided differently each run: seed 12 had two (male 0.62 and 0.68 against 0.605 at 10 fps, 0.45 to
# 0.59 for one of them at 5 fps), so "male" came out 6 in one run and 4 in another (issue #13). That is the
# classifier's doubt, not something a fault did; clips whose people are all decided clearly keep the
# comparison's tolerance what it claims to be, the one track a live camera may split or merge. Seed 11 (used till
# the tracker confirmed faces after three detections at 5 fps and below) came down to a margin of 0.076 there.
SEEDS = (28, 13)
# Distance of each person's track-averaged probability from the thresholds that decide it. Between the frame
# schedules below a clearly decided face moves by a few hundredths; a doubtful one by up to 0.2.
MIN_MARGIN = 0.1
# (first frame, step): what an idle agent processes (every frame), and what a busy one might (every other).
SCHEDULES = {"every frame": (0, 1), "even frames": (0, 2), "odd frames": (1, 2)}


def decisions(clip: Path) -> dict[str, list[tuple[str, float]]]:
    """Per frame schedule, each person's final label and the margin by which it was decided (negative: the
    other side of a threshold is that close), on the frames as the live camera serves them (JPEG)."""
    config = AgentConfig(
        agent_id=AGENT,
        site_id=SITE,
        bucket_seconds=BUCKET_SECONDS,
        cameras=[CameraConfig(id=CAMERA, source="http://127.0.0.1/stream.mjpg", fps=30)],
    )
    models = load_models(config)
    classifier = models.classifier
    assert classifier is not None
    contract = classifier.contract
    thresholds = contract.track_thresholds or dict.fromkeys(classifier.labels, contract.abstain_threshold)
    jpegs, fps = read_frames(clip)
    frames = [cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) for jpeg in jpegs]
    result: dict[str, list[tuple[str, float]]] = {}
    for name, (first, step) in SCHEDULES.items():
        finished: list[tuple[str, float]] = []

        def done(_track: int, label: str, mean: np.ndarray | None, finished: list = finished) -> None:
            if mean is None:  # never classified: unknown on any schedule
                finished.append((label, 1.0))
                return
            # Each label's probability less its threshold: the decided label is above its own by the margin;
            # for unknown, the closest label is below its own by the margin.
            gaps = [float(p) - thresholds[each] for each, p in zip(classifier.labels, mean, strict=True)]
            finished.append((label, max(gaps) if label in thresholds else -max(gaps)))

        pipeline = CameraPipeline(config, config.cameras[0], models, lambda *_: None)
        pipeline.on_person_finished = done
        for index in range(first, len(frames), step):
            pipeline.process(frames[index], index / fps)
        pipeline.finish()
        result[name] = finished
    return result


@pytest.fixture(scope="session")
def walkby_playlist(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path | float], int]:
    """Two short walk-by clips with an empty corridor between them (generated in a temp folder only),
    and the true number of people they show."""
    folder = tmp_path_factory.mktemp("e2e-clips")
    clips = []
    people = 0
    for seed in SEEDS:
        spec = walkby.WalkbySpec(
            people=5,
            seed=seed,
            width=640,
            height=360,
            fps=10.0,
            min_face=60,
            max_face=110,
            spacing_seconds=1.6,
            cross_seconds=(3.0, 4.0),
            pillar=True,
        )
        clip, truth = walkby.make_walkby(data_dir, folder, spec, name=f"walkby-{seed}")
        last_seen = max(person["last_seen"][0] for person in truth["persons"])
        assert last_seen < truth["frames"] - 1, "the clip must end on an empty corridor"
        # The premise of comparing live runs (see SEEDS): another model or tracker may doubt other faces (other seeds).
        schedules = decisions(clip)
        labels = {name: sorted(label for label, _ in people) for name, people in schedules.items()}
        margin = min(m for people in schedules.values() for _, m in people)
        assert len({tuple(v) for v in labels.values()}) == 1 and margin >= MIN_MARGIN, (
            f"seed {seed}: a person's gender depends on which frames the agent keeps "
            f"(labels {labels}, smallest margin {margin:.3f} < {MIN_MARGIN}); choose another seed"
        )
        clips.append(clip)
        people += truth["people"]
    return [clips[0], PAUSE_SECONDS, clips[1], 3.0], people


def run(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "footfall", *args], capture_output=True, text=True, env={**os.environ, **env}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


class Product:
    """Broker, server replicas and the agent as separate processes, each of which a test may kill."""

    def __init__(self, workdir: Path, database_url: str, camera_url: str, broker: MosquittoBroker) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.camera_url = camera_url
        self.broker = broker
        self.servers: dict[str, tuple[int, subprocess.Popen[bytes] | None]] = {}
        self.agent: subprocess.Popen[bytes] | None = None
        # k = 1 and the hour in progress released: these tests count deliveries, not privacy.
        self.env = {
            "DATABASE_URL": database_url,
            "FOOTFALL_K_ANON": "1",
            "FOOTFALL_RELEASE_OPEN_HOUR": "1",
            "FOOTFALL_LOG_LEVEL": "info",
        }
        run("server", "migrate", env=self.env)
        self.viewer_key = run("keys", "create", "--role", "viewer", "--name", "e2e", env=self.env)
        self.outbox = workdir / "outbox.sqlite"
        self.config = workdir / "agent.yaml"
        self.config.write_text(
            f"""\
agent_id: {AGENT}
site_id: {SITE}
bucket_seconds: {BUCKET_SECONDS}
cameras:
  - id: {CAMERA}
    source: {camera_url}
    fps: 30  # above the camera's 10 fps: the agent processes every frame it receives
mqtt:
  host: 127.0.0.1
  port: {broker.port}
  heartbeat_seconds: 5
outbox:
  path: {self.outbox}
"""
        )

    def _log(self, name: str):  # type: ignore[no-untyped-def]
        return (self.workdir / f"{name}.log").open("ab")

    def start_server(self, name: str = "server-1") -> None:
        port = self.servers[name][0] if name in self.servers else free_port()
        # At lower priority than the agent: on a site the server runs on another machine than the camera box,
        # while here they share two cores, and a server starting again (imports, migrations) took the agent's CPU
        # for seconds, so the busy agent dropped frames and split tracks (12 people against 10, server-killed).
        process = subprocess.Popen(
            [
                "nice",
                "-n",
                "10",
                sys.executable,
                "-m",
                "footfall",
                "server",
                "--port",
                str(port),
                "--mqtt",
                self.broker.url,
            ],
            stdout=self._log(name),
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env, "FOOTFALL_MQTT_CLIENT_ID": f"e2e-{name}"},
        )
        self.servers[name] = (port, process)
        wait_for_port(port, timeout=60)
        self.wait_until(lambda: self.get("/healthz", port) is not None, 30, f"{name} health")
        time.sleep(1.0)  # the MQTT subscription follows the HTTP start by a moment

    def kill_server(self, name: str = "server-1") -> None:
        port, process = self.servers[name]
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.servers[name] = (port, None)

    def start_agent(self) -> None:
        self.agent = subprocess.Popen(
            [sys.executable, "-m", "footfall", "agent", "--config", str(self.config), "--drain-seconds", "20"],
            stdout=self._log("agent"),
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
        )

    def kill_agent(self) -> None:
        assert self.agent is not None
        self.agent.send_signal(signal.SIGKILL)
        self.agent.wait()

    def stop_agent(self) -> int:
        assert self.agent is not None
        self.agent.send_signal(signal.SIGTERM)
        return self.agent.wait(timeout=60)

    def stop(self) -> None:
        if self.agent is not None and self.agent.poll() is None:
            self.agent.kill()
        for _, process in self.servers.values():
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=20)

    def get(self, path: str, port: int | None = None) -> dict | None:
        port = port or next(p for p, proc in self.servers.values() if proc is not None)
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"X-API-Key": self.viewer_key})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            return None

    def server_totals(self) -> dict[str, int]:
        totals = self.get(f"/api/v1/sites/{SITE}/traffic/totals")
        if totals is None:
            return {}
        counts = totals["totals"]
        return {key: counts[key] or 0 for key in ("people", "female", "male", "unknown")}

    def agent_log_count(self, text: str) -> int:
        """How often the agent's log (all its runs) says ``text``."""
        log = self.workdir / "agent.log"
        return log.read_text(errors="replace").count(text) if log.exists() else 0

    def agent_stored(self, epoch: float) -> bool:
        """Whether the agent has stored the bucket holding ``epoch``, and so every earlier one: buckets are
        queued in time order once their time plus grace has passed."""
        start = int(epoch // BUCKET_SECONDS * BUCKET_SECONDS)
        with sqlite3.connect(self.outbox) as db:
            row = db.execute(
                "SELECT 1 FROM bucket_state WHERE bucket_key = ?", (f"{CAMERA}/{ZONE}/{start}",)
            ).fetchone()
        return row is not None

    def agent_totals(self) -> dict[str, int]:
        """What the agent itself counted into its zone (the passes the server's totals add up; the camera's
        visitors are kept under the camera's own id): its per-bucket state, kept in the outbox across restarts."""
        with sqlite3.connect(self.outbox) as db:
            row = db.execute(
                "SELECT SUM(people), SUM(female), SUM(male), SUM(unknown) FROM bucket_state WHERE bucket_key LIKE ?",
                (f"{CAMERA}/{ZONE}/%",),
            ).fetchone()
        return dict(zip(("people", "female", "male", "unknown"), (value or 0 for value in row), strict=True))

    @staticmethod
    def wait_until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
