"""Edge commands: ``footfall agent`` and ``footfall process``; imports only typer and stdlib at import."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import typer


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)


def _load(config_path: Path):
    from footfall.edge.config import ConfigError, load_config

    try:
        return load_config(config_path)
    except ConfigError as exc:
        _fail(str(exc))


def register(app: typer.Typer) -> None:
    @app.command("agent")
    def agent(
        config: Path = typer.Option(..., "--config", "-c", help="Agent config (YAML); see edge/config.example.yaml."),
        check_config: bool = typer.Option(
            False, "--check-config", help="Only validate the config and the model bundles, then exit."
        ),
        drain_seconds: float = typer.Option(
            30.0,
            "--drain-seconds",
            help="When every camera is a video file: how long to wait for delivery at the end.",
        ),
    ) -> None:
        """Run the camera agent: count people per zone, classify them, publish aggregates over MQTT.

        Aggregates wait in a local SQLite outbox until the broker acknowledges them.
        A broker outage or a restart loses nothing; frames stay in memory, only counts leave the box.
        Stop it with Ctrl-C or SIGTERM.

        Example: footfall agent --config /etc/footfall/agent.yaml

        Example: footfall agent --config agent.yaml --check-config
        """
        from footfall.cli import require

        require("edge", "cv2", "onnxruntime", "paho")
        settings = _load(config)
        from footfall.core.bundle import BundleError, load_bundle
        from footfall.edge.outbox import OutboxError

        if check_config:
            try:
                load_bundle(settings.bundles.detector)
                load_bundle(settings.bundles.gender)
            except BundleError as exc:
                _fail(str(exc))
            cameras = ", ".join(
                f"{c.id} ({len(c.counting_zones())} zones, {len(c.lines)} lines)" for c in settings.cameras
            )
            typer.echo(f"{config}: OK — agent {settings.agent_id} at {settings.site_id}; cameras: {cameras}")
            return
        from footfall.edge.agent import Agent

        try:
            code = Agent(settings).run(drain_seconds=drain_seconds)
        except (BundleError, OutboxError) as exc:
            _fail(str(exc))
        raise typer.Exit(code)

    @app.command("process")
    def process(
        video: Path = typer.Argument(..., help="Video file (mp4, avi, mkv, ...)."),
        config: Path | None = typer.Option(
            None,
            "--config",
            "-c",
            help="Agent config for zones, lines and models; default: the whole frame is one zone.",
        ),
        camera: str | None = typer.Option(None, "--camera", help="Which camera of the config (default: the first)."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Write the aggregate messages here (JSON lines)."),
        start: datetime | None = typer.Option(
            None,
            "--start",
            help="Wall-clock time of the first frame (ISO 8601, UTC if no offset); default: today 00:00 UTC.",
        ),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr."),
    ) -> None:
        """Count people in a video file with the agent's pipeline, as fast as possible, without a broker.

        Progress goes to stderr; the last line of stdout is one JSON object.
        It holds people, female, male, unknown, frames, fps and a per-zone breakdown.
        Nothing is written but --out.

        Example: footfall process clip.mp4

        Example: footfall process entrance.mp4 --config agent.yaml --out events.jsonl
        """
        from footfall.cli import require

        require("edge", "cv2", "onnxruntime")
        settings = _load(config) if config is not None else None
        from footfall.core.bundle import BundleError
        from footfall.edge.capture import VideoError
        from footfall.edge.config import ConfigError
        from footfall.edge.offline import process_video

        start_time = None
        if start is not None:
            from datetime import UTC

            start_time = (start if start.tzinfo else start.replace(tzinfo=UTC)).timestamp()
        try:
            summary = process_video(
                video, settings, camera_id=camera, start_time=start_time, out=out, progress=progress
            )
        except (VideoError, BundleError, ConfigError) as exc:
            _fail(str(exc))
        except OSError as exc:
            _fail(f"{out or video}: {exc.strerror or exc}")
        sys.stdout.write(json.dumps(summary) + "\n")
