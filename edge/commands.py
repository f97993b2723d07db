"""Edge commands: ``footfall agent`` and ``footfall process``; imports only typer and stdlib at import."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from footfall.core.wire import ModelServing
    from footfall.edge.config import AgentConfig


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)


def _load(config_path: Path) -> AgentConfig:
    from footfall.edge.config import ConfigError, load_config

    try:
        return load_config(config_path)
    except ConfigError as exc:
        _fail(str(exc))


def _served_as(serving: ModelServing) -> tuple[str, str | None]:
    """The precision a bundle is served in, as ``--check-config`` prints it, and why."""
    if serving.parity == "passed":
        return "INT8", f"parity probe error {serving.probe_error:.4f} within tolerance {serving.tolerance:.4f}"
    if serving.parity == "failed":
        return "FP32 fallback", serving.reason
    return serving.precision.upper(), f"parity not checked: {serving.reason}"


def register(app: typer.Typer) -> None:
    @app.command("agent")
    def agent(
        config: Path = typer.Option(..., "--config", "-c", help="Agent config (YAML); see edge/config.example.yaml."),
        check_config: bool = typer.Option(
            False,
            "--check-config",
            help="Validate the config, then load each model bundle as the agent does at start (onnxruntime "
            "session, parity probe on this CPU) and report the precision it would serve, for every mode the config's "
            "demographics floor lets the box serve (also the gender-only graphs, which a site can be told to use "
            "at any time; an FP32 reference is opened where its INT8 graph fails the probe, and `footfall "
            "verify-bundle` opens them all); exit 2 on the first problem, without starting.",
        ),
        drain_seconds: float = typer.Option(
            30.0,
            "--drain-seconds",
            min=0.0,
            max=3600.0,
            metavar="<seconds>",
            help="When every camera is a video file: how long to wait for delivery at the end (0-3600 s).",
        ),
    ) -> None:
        """Run the camera agent: count people per zone, classify them, publish aggregates over MQTT.

        Aggregates wait in a local SQLite outbox until the server's receipt says they were stored.
        A broker outage or a restart loses nothing; frames stay in memory, only counts leave the box.
        The site's demographics mode, set on the server, applies at once: gender-only runs no age head
        (the classifier pruned to its gender output; aggregates carry no age bands), counts-only loads no
        classifier (no gender), off reads no camera; `demographics: counts-only` in the config is a floor the
        server cannot loosen.
        Stop it with Ctrl-C or SIGTERM.

        Example: footfall agent --config /etc/footfall/agent.yaml

        Example: footfall agent --config agent.yaml --check-config
        """
        from footfall.core.extras import require

        require("edge", "cv2", "onnxruntime", "paho")
        settings = _load(config)
        from footfall.core.bundle import BundleError
        from footfall.edge.config import ConfigError
        from footfall.edge.outbox import OutboxError

        if check_config:
            from footfall.edge.doctor import startup_problems

            # What the agent needs besides the models, each failing the check with one line as it would the agent.
            problems, outbox = startup_problems(settings)
            if problems:
                _fail(problems[0])
            from footfall.edge.capture import VideoError, cannot_open_reason, check_video_file

            missing = [c for c in settings.cameras if c.is_file and not Path(str(c.source)).is_file()]
            if missing:  # not found, a folder, a device: said as the agent would say it
                _fail(f"camera {missing[0].id}: {cannot_open_reason(missing[0].source, 0.0)}: {missing[0].source}")

            for camera in (c for c in settings.cameras if c.is_file):
                try:  # a file that is there but no video (a text file) had the agent retry it for ever
                    check_video_file(str(camera.source))
                except VideoError as exc:
                    _fail(f"camera {camera.id}: {exc}")
            from footfall.edge.demographics import classifies, estimates_age
            from footfall.edge.pipeline import load_classifier, load_models

            floor = settings.demographics
            try:
                # The agent's own loading: each graph opened in onnxruntime and its parity probe run on this
                # CPU, an INT8 graph that strays replaced by the bundle's FP32 reference. Every graph the
                # config's floor lets the box serve: a site may be told 'gender-only' at any time, and then
                # serves the classifier's graphs pruned to the gender output.
                models = load_models(settings, with_classifier=classifies(floor), estimate_age=estimates_age(floor))
                served = [("detector", models.detector.serving)]
                if models.classifier is not None:
                    served.append(("gender", models.classifier.serving))
                    if not models.classifier.fits(age=False):
                        served.append(("gender-only", load_classifier(settings, estimate_age=False).serving))
            except BundleError as exc:
                _fail(str(exc))
            for role, serving in served:
                precision, why = _served_as(serving)
                typer.echo(
                    f"{role:<11} {serving.bundle} {serving.version} ({serving.task}): serves {precision} ({why}) — OK"
                )
            from footfall.core.text import plural

            cameras = ", ".join(
                f"{c.id} ({plural(len(c.counting_zones()), 'zone')}, {plural(len(c.lines), 'line')})"
                for c in settings.cameras
            )
            names = ", ".join(
                f"{serving.bundle} {_served_as(serving)[0]}"
                + (" (its gender-only graph)" if role == "gender-only" else "")
                for role, serving in served
            )
            typer.echo(f"outbox      {outbox} — OK")
            if any(not c.is_file for c in settings.cameras):
                typer.echo(f"cameras     streams and USB cameras are not opened here: `footfall doctor -c {config}`")
            typer.echo(
                f"{config}: OK — agent {settings.agent_id} at {settings.site_id}; cameras: {cameras}; models: {names}"
            )
            return
        from footfall.edge.agent import Agent

        try:
            code = Agent(settings).run(drain_seconds=drain_seconds)
        except (BundleError, ConfigError, OutboxError) as exc:
            _fail(str(exc))
        raise typer.Exit(code)

    @app.command("doctor")
    def doctor(
        config: Path | None = typer.Option(
            None, "--config", "-c", help="Agent config: its bundles are checked and its cameras tried."
        ),
        detector: Path | None = typer.Option(None, "--detector", help="Detector bundle (default: shipped)."),
        gender: Path | None = typer.Option(None, "--gender", help="Gender bundle (default: shipped)."),
        threads: int | None = typer.Option(
            None,
            "--threads",
            min=1,
            max=64,
            help="onnxruntime threads, 1-64 (default: the config's detection.threads, FOOTFALL_ORT_THREADS, or "
            "the cores, at most 4).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
    ) -> None:
        """Check what this box will really run: CPU and its int8 flags, onnxruntime, each bundle's parity
        probe on this CPU and the precision it would serve, detector and classifier latency, cameras.

        An INT8 graph that strays from its FP32 reference on this CPU (the probe shipped in the bundle)
        is replaced by the FP32 graph when the agent runs; doctor says so here, before it happens.
        The text report is printed section by section as each check ends (a camera that does not answer takes
        up to 10 s); --json prints one object once everything is checked.
        Exits 0 when every bundle serves as shipped and every camera answers, 1 otherwise, 2 on a config
        that cannot be used or a bundle that cannot be served at all (its section says why; the rest is
        still checked).

        Example: footfall doctor

        Example: footfall doctor --config /etc/footfall/agent.yaml --json
        """
        from footfall.core.extras import require

        require("edge", "cv2", "onnxruntime")
        from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE, DEFAULT_GENDER_BUNDLE
        from footfall.edge.doctor import BundleFailure, check_config, diagnose, format_verdict

        # A config the agent would refuse is a section of the report, not the end of it: the platform and the
        # bundles (the config's where it could be read, else the shipped ones) are checked all the same.
        settings, config_check = check_config(config) if config is not None else (None, None)
        detector_path = detector or (settings.bundles.detector if settings else DEFAULT_DETECTOR_BUNDLE)
        gender_path = gender or (settings.bundles.gender if settings else DEFAULT_GENDER_BUNDLE)
        # Text goes out section by section as each check ends (cameras that do not answer take seconds each); JSON
        # is one object, printed once everything is known.
        show = None if as_json else typer.echo
        diagnosis = diagnose(
            detector_path, gender_path, config=settings, config_check=config_check, threads=threads, show=show
        )
        typer.echo(json.dumps(diagnosis.as_dict()) if as_json else format_verdict(diagnosis))
        errors = [b.error for b in diagnosis.bundles if isinstance(b, BundleFailure)]
        errors += config_check.problems if config_check is not None else []
        for error in errors:  # the report above has it in its section; scripts read stderr
            typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(2 if errors else 0 if diagnosis.healthy else 1)

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
            help="Wall-clock time of the first frame (ISO 8601, UTC if no offset; 1970-01-01 to 9000-01-01); default: "
            "today 00:00 UTC.",
        ),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr."),
    ) -> None:
        """Count people in a video file with the agent's pipeline, as fast as possible, without a broker.

        Progress goes to stderr; the last line of stdout is one JSON object.
        It holds people (the camera's distinct visitors, each once) with their gender split, frames, fps,
        entrances (people in and out per entrance line) and zones (passes per zone and line: one person
        passes through several, so they never add up to people).
        female_share holds the female share corrected for the gender bundle's decision rates (its known
        mistakes, measured on validation clips), with a 95 % interval over sampling and the rates'
        uncertainty, for the camera's visitors (overall) and each zone and line; raw is female / (female +
        male). A table of both goes to stderr at the end. With a gender bundle that has an age head,
        age_bands holds the same crowds by gender and age band (0-12 ... 65+, unknown), also tabled on stderr.
        Nothing is written but --out; if it cannot be written at the end (a full disk), the summary is still
        printed, the half-written file removed, and the exit status is 1. The config's `demographics` floor
        applies as on the box: gender-only estimates and writes no age, counts-only no gender, off is refused.

        Example: footfall process clip.mp4

        Example: footfall process entrance.mp4 --config agent.yaml --out events.jsonl
        """
        from footfall.core.extras import require

        require("edge", "cv2", "onnxruntime")
        settings = _load(config) if config is not None else None
        from footfall.core.bundle import BundleError
        from footfall.edge.age_bands import format_age_table
        from footfall.edge.capture import VideoError
        from footfall.edge.config import ConfigError
        from footfall.edge.female_share import format_table
        from footfall.edge.offline import AggregatesNotWritten, process_video, start_time_problem

        start_time = None
        if start is not None:
            from datetime import UTC

            start_time = (start if start.tzinfo else start.replace(tzinfo=UTC)).timestamp()
            if problem := start_time_problem(start_time):  # before the models load and the video is decoded
                _fail(problem)
        if out is not None:  # before the video is read: an --out that cannot be written would throw the run away
            from footfall.core.outpaths import OutputPathError, writable_file

            try:
                writable_file(out, inputs=[video, *([config] if config else [])])
            except OutputPathError as exc:
                _fail(f"cannot write --out: {exc}")

        def show(summary: dict[str, Any]) -> None:
            typer.echo(format_table(summary), err=True)
            if summary["age_bands"] is not None:
                typer.echo(format_age_table(summary), err=True)
            sys.stdout.write(json.dumps(summary) + "\n")

        try:
            summary = process_video(
                video, settings, camera_id=camera, start_time=start_time, out=out, progress=progress
            )
        except (VideoError, BundleError, ConfigError) as exc:
            _fail(str(exc))
        except AggregatesNotWritten as exc:  # the whole video was read: its summary is still shown
            show(exc.summary)
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(1) from None
        except OSError as exc:
            _fail(f"{video}: {exc.strerror or exc}")
        show(summary)
