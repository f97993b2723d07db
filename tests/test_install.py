"""Packaging: a camera box installs the edge extra only, and still gets a working `footfall agent`."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_edge_extra_installs_without_torch_or_server_stack(tmp_path: Path) -> None:
    env_dir = tmp_path / "edge-venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", f"{REPO}[edge]"],
        capture_output=True,
        text=True,
        env=env,
        timeout=840,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    installed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, env=env, check=True
    ).stdout.lower()
    names = {line.split("==")[0] for line in installed.splitlines()}
    assert {"onnxruntime", "opencv-python-headless", "paho-mqtt"} <= names
    for heavy in ("torch", "fastapi", "uvicorn", "sqlalchemy"):
        assert heavy not in names, f"{heavy} must not be installed on a camera box"

    footfall = env_dir / "bin" / "footfall"
    agent_help = subprocess.run([str(footfall), "agent", "--help"], capture_output=True, text=True, env=env)
    assert agent_help.returncode == 0, agent_help.stderr
    assert "--config" in agent_help.stdout

    # A command from a part that is not installed says which extra to install, in one line.
    server = subprocess.run([str(footfall), "server"], capture_output=True, text=True, env=env)
    assert server.returncode != 0
    assert "footfall[server]" in server.stderr and "Traceback" not in server.stderr


def test_every_command_teaches_with_an_example() -> None:
    from typer.main import get_command

    from footfall.cli import app

    group = get_command(app)
    for name, command in group.commands.items():
        text = command.help or ""
        assert "xample" in text or "footfall" in text, f"`footfall {name} --help` gives no example"


def test_cli_runs_as_a_module() -> None:
    result = subprocess.run([sys.executable, "-m", "footfall", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("footfall ")
