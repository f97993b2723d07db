"""``footfall demo``: broker, server and one agent on the bundled sample clip, on this machine.

Everything runs with embedded defaults: SQLite in a demo folder, mosquitto when it is installed (else an
embedded Python broker), the server on 127.0.0.1:8000 and an agent that plays the sample clip in a loop as
if it were a camera. The demo prints the dashboard URL with a viewer key, and the command that makes an admin key
for its database; Ctrl-C stops everything.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

import typer

from footfall.core.logs import log_event
from footfall.core.wire import MAX_BUCKET_SECONDS, MIN_BUCKET_SECONDS, bucket_seconds_problem

log = logging.getLogger("footfall.demo")

SITE_ID = "demo-mall"
AGENT_ID = "demo-box"
# Held (flock) by a running demo in its data folder: a second demo with the same folder must not wipe it.
LOCK_NAME = "demo.lock"


def sample_clip() -> Path:
    """The clip shipped as package data of footfall.edge (edge/samples/ in a checkout)."""
    import footfall.edge

    return Path(footfall.edge.__file__).resolve().parent / "samples" / "mall-walkby.mp4"


def agent_config(clip: Path, broker_port: int, workdir: Path, bucket_seconds: int) -> str:
    """The demo agent: the sample clip as a looping camera, two zones, a counting line, and an entrance near
    the corridor's west (left) end, where walking west through it is coming in: the clip's loop has 5 people
    walking west and 4 east, so the site has visitors, in and out, and an occupancy that grows by one a loop
    (with the door the other way it stayed at 0, its floor, beside more out than in)."""
    return f"""\
agent_id: {AGENT_ID}
site_id: {SITE_ID}
bucket_seconds: {bucket_seconds}
cameras:
  - id: corridor
    source: {clip}
    loop: true
    fps: 10
    zones:
      - id: west-shops
        polygon: [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]
      - id: east-shops
        polygon: [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]
    lines:
      - id: mid-corridor
        points: [[0.5, 0.0], [0.5, 1.0]]
        direction: any
      - id: west-entrance
        points: [[0.2, 0.0], [0.2, 1.0]]
        direction: left
        entrance: true
mqtt:
  host: 127.0.0.1
  port: {broker_port}
  heartbeat_seconds: 10
outbox:
  path: {workdir / "outbox.sqlite"}
"""


class Services:
    """Child processes of the demo, stopped in reverse order of start."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        logfile = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, *args],
            stdout=logfile,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # Ctrl-C reaches the demo only; it stops the children in order
        )
        self.children.append((name, process))
        return process

    def check(self) -> str | None:
        """Name of a child that exited on its own, if any."""
        for name, process in self.children:
            if process.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        for name, process in reversed(self.children):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                log_event(log, logging.INFO, "stopped", service=name)


def footfall_command() -> str:
    """How a shell runs this footfall: ``footfall`` where that is the one on PATH, else the script beside this
    Python (``make demo`` runs .venv/bin/footfall, and .venv/bin is seldom on PATH), else ``python -m footfall``."""
    script = Path(sys.executable).parent / "footfall"
    on_path = shutil.which("footfall")
    if script.is_file():
        if on_path and os.path.samefile(on_path, script):
            return "footfall"
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m footfall"


def admin_key_command(database_url: str) -> str:
    """The command that makes an admin key for the demo's database: the demo prints only a viewer key, and README's
    examples that change a site (PATCH /sites/{site}) need an admin one. The key command refuses to guess the
    database (its default is a file in the current folder), so the URL is in the command."""
    return f"{footfall_command()} keys create --role admin --name me --database-url {shlex.quote(database_url)}"


def wait_http(url: str, timeout: float, services: Services) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (dead := services.check()) is not None:
            raise RuntimeError(f"the {dead} stopped during start-up; see {services.workdir / dead}.log")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def check_port_free(port: int) -> None:
    """Refuses a taken HTTP port before anything starts: else the demo would print its dashboard URL, which leads to
    whatever holds the port (often an earlier demo, which does not know this demo's key), and fail only later."""
    with socket.socket() as probe:
        # As uvicorn binds it: a just-closed socket in TIME_WAIT is no conflict, a listening one is.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise RuntimeError(
                f"port {port} is already in use (another footfall demo or server?): stop it, or choose another "
                "port with --port"
            ) from None


def lock_workdir(workdir: Path, keep: bool) -> TextIO:
    """Wipes the data folder of an earlier demo (unless ``keep``) and locks it for this one; refuses a folder that a
    running demo holds, whose database, outbox and logs a wipe would pull from under it. Returns the open lock file,
    held until it is closed."""
    lock = workdir / LOCK_NAME
    if lock.exists():
        with lock.open("a") as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise RuntimeError(
                    f"another footfall demo is running with the data folder {workdir}: stop it first (Ctrl-C), or "
                    "give this one a folder of its own with --workdir (and a port of its own with --port)"
                ) from None
    if workdir.exists() and not keep:
        # Emptied only where a demo made it (its lock file, or an older demo's database) or it is empty: a folder of
        # the user's own given as --workdir was deleted whole.
        if not workdir.is_dir() or (
            any(workdir.iterdir()) and not (lock.exists() or (workdir / "footfall.db").exists())
        ):
            raise RuntimeError(
                f"--workdir {workdir} holds files that are not a footfall demo's, and the demo empties its data "
                "folder at start: give it a new or empty folder with --workdir"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    handle = lock.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise RuntimeError(f"another footfall demo started with the data folder {workdir} at the same time") from None
    return handle


def run_demo(
    port: int, workdir: Path | None, duration: float | None, bucket_seconds: int, keep: bool, broker: str = "auto"
) -> int:
    from footfall.broker import MosquittoBroker, free_port, wait_for_port

    clip = sample_clip()
    if not clip.is_file():
        raise RuntimeError(f"sample clip {clip} is missing; rebuild it with: python bench/make_sample_clip.py")
    # Absolute: the database URL is printed for commands run from any folder.
    workdir = (workdir or Path(tempfile.gettempdir()) / "footfall-demo").absolute()
    check_port_free(port)
    database_url = f"sqlite:///{workdir / 'footfall.db'}"
    services = Services(workdir)

    # Shutdown order (ExitStack unwinds last-in first-out): the agent first, while the server and the broker
    # still run, so that it delivers its last aggregates and gets their receipts; then the server; the broker last.
    with ExitStack() as stack:
        stack.callback(lock_workdir(workdir, keep).close)  # released last, once every service has stopped
        broker_port = free_port()
        has_mosquitto = bool(shutil.which("mosquitto")) or Path("/usr/sbin/mosquitto").exists()
        use_mosquitto = broker == "mosquitto" or (broker == "auto" and has_mosquitto)
        if use_mosquitto:
            mosquitto = MosquittoBroker(port=broker_port, workdir=workdir / "mosquitto").start()
            stack.callback(log_event, log, logging.INFO, "stopped", service="broker")
            stack.callback(mosquitto.stop)
        stack.callback(services.stop)  # agent, server, embedded broker: the reverse of their start
        if use_mosquitto:
            broker_name = "mosquitto"
        else:
            services.start("broker", "-m", "footfall.embedded_broker", "--port", str(broker_port))
            wait_for_port(broker_port, timeout=20)
            broker_name = "embedded amqtt broker"
        log_event(log, logging.INFO, "broker ready", broker=broker_name, port=broker_port)

        env = {"DATABASE_URL": database_url}
        subprocess.run(
            [sys.executable, "-m", "footfall", "server", "migrate"],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
            text=True,  # a failure's last line of stderr is the error the demo prints
        )
        viewer_key = subprocess.run(
            [sys.executable, "-m", "footfall", "keys", "create", "--role", "viewer", "--name", "demo viewer"],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        services.start(
            "server",
            "-m",
            "footfall",
            "server",
            "--port",
            str(port),
            "--mqtt",
            f"mqtt://127.0.0.1:{broker_port}",
            env={
                **env,
                "FOOTFALL_MQTT_GROUP": "" if broker_name != "mosquitto" else "footfall-demo",
                # Live counts within minutes, not at the end of the hour; a real site keeps the default.
                "FOOTFALL_RELEASE_OPEN_HOUR": "1",
            },
        )
        wait_http(f"http://127.0.0.1:{port}/healthz", 60, services)

        config_file = workdir / "agent.yaml"
        config_file.write_text(agent_config(clip, broker_port, workdir, bucket_seconds))
        services.start("agent", "-m", "footfall", "agent", "--config", str(config_file))

        url = f"http://127.0.0.1:{port}/dashboard/?key={viewer_key}"
        typer.secho("\nfootfall demo is running", bold=True)
        typer.echo(f"  dashboard   {url}")
        typer.echo(f"  viewer key  {viewer_key}")
        typer.echo(f"  admin key   {admin_key_command(database_url)}")
        typer.echo("              (run it for a key that may change sites and keys: PATCH /api/v1/sites/…)")
        typer.echo(f"  API docs    http://127.0.0.1:{port}/api/docs")
        typer.echo(f"  logs        {workdir}/*.log")
        typer.echo("  Counts appear after the first bucket closes: the demo shows the hour in progress, which a")
        typer.echo("  real server withholds until the hour ends (FOOTFALL_RELEASE_OPEN_HOUR).")
        # Its figures are read against the clip's truth: say what they cannot show.
        typer.echo("  The camera loops one short clip of 9 people (5 women, 4 men): the same faces pass again and")
        typer.echo("  again, so the female share's interval narrows as if they were new people, around what the")
        typer.echo("  model reads on these 9 (some of the women as men; models/MODEL_CARD.md). Ctrl-C stops.\n")

        deadline = time.monotonic() + duration if duration else None
        while deadline is None or time.monotonic() < deadline:
            if (dead := services.check()) is not None:
                raise RuntimeError(f"the {dead} stopped unexpectedly; see {workdir / dead}.log")
            time.sleep(0.5)
    return 0


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        port: int = typer.Option(8000, "--port", min=1, max=65535, help="HTTP port of the server and dashboard."),
        workdir: Path | None = typer.Option(
            None,
            "--workdir",
            help="Demo data folder (default: footfall-demo in the system's temp folder, the same each run): new, "
            "empty or an earlier demo's, emptied at start unless --keep.",
        ),
        duration: float | None = typer.Option(
            None, "--duration", min=1.0, help="Stop after this many seconds (default: on Ctrl-C)."
        ),
        bucket_seconds: int = typer.Option(
            60,
            "--bucket-seconds",
            min=MIN_BUCKET_SECONDS,
            max=MAX_BUCKET_SECONDS,
            help="Aggregation bucket of the demo agent: 10 to 3600 s, dividing an hour.",
        ),
        keep: bool = typer.Option(False, "--keep", help="Keep the data of an earlier demo run."),
        broker: str = typer.Option(
            "auto", "--broker", help="auto (mosquitto if installed), mosquitto, or embedded (Python, MQTT 3.1.1)."
        ),
    ) -> None:
        """Run the whole product on this machine: broker, server, dashboard and an agent on a sample clip.

        The agent plays the bundled sample clip (public-domain faces, see edge/samples/PROVENANCE.md) as a
        camera; counts flow over MQTT to the server; open the printed dashboard URL to watch them.

        Example: footfall demo            (then open http://127.0.0.1:8000/dashboard/?key=...)

        Example: footfall demo --port 8080 --duration 300
        """
        from footfall.core.extras import require

        require("demo", "cv2", "onnxruntime", "paho", "fastapi", "uvicorn", "sqlalchemy")
        signal.signal(signal.SIGTERM, _stop_on_sigterm)  # `kill`, systemd and docker stop: shut down as on Ctrl-C
        # A process started in the background by a non-interactive shell (a script's `footfall demo &`, nohup, CI)
        # inherits SIGINT ignored, and Python then leaves it ignored: Ctrl-C or `kill -INT` would not stop the
        # demo. It asks for SIGINT itself, as the agent and uvicorn do.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            if broker not in ("auto", "mosquitto", "embedded"):
                raise typer.BadParameter("choose auto, mosquitto or embedded", param_hint="--broker")
            if problem := bucket_seconds_problem(bucket_seconds):  # the agent would refuse it after the demo started
                raise typer.BadParameter(problem, param_hint="--bucket-seconds")
            code = run_demo(port, workdir, duration, bucket_seconds, keep, broker)
        except (RuntimeError, subprocess.CalledProcessError, TimeoutError, FileNotFoundError) as exc:
            detail = str(exc)
            if isinstance(exc, subprocess.CalledProcessError) and exc.stderr:
                detail = exc.stderr.strip().splitlines()[-1]
            typer.secho(f"error: {detail}", fg="red", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("\nstopping the demo …", err=True)
            code = 0
        raise typer.Exit(code)
