"""Packaging: a camera box installs the edge extra only, and still gets a working `footfall agent`; the package
builds without setuptools warnings and ships its data files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PARTS = ("footfall", "core", "edge", "server", "models", "exporter")  # the folders setup.py maps onto footfall.*
# Data folders whose every file the wheel must carry (repo folder → place in the installed package).
DATA = {
    "edge/samples": "footfall/edge/samples",
    "server/static": "footfall/server/static",
    "server/migrations": "footfall/server/migrations",
    "models/bundles": "footfall/models/bundles",
    "footfall/templates": "footfall/templates",
}
# A Python warning as printed: "…/setuptools/…py:82: BuildBackendWarning: …", "SetuptoolsDeprecationWarning: …".
# Not the notice every setuptools editable install prints ("InformationOnly: Editable installation."; pip shows
# it as a BuildBackendWarning): it says nothing about this project's packaging.
WARNING_LINE = re.compile(r"\b\w*Warning\b")


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
        # An "Example:" that runs the command itself (after a set-up step, for export-detector).
        example = re.search(rf"Example:[^\n]*\n?[^\n]*\bfootfall {re.escape(name)}\b", text)
        assert example, f"`footfall {name} --help` shows no example of `footfall {name}`"
        assert len(text.split("Example:")[0].split()) >= 5, f"`footfall {name} --help` does not say what it does"


def test_cli_runs_as_a_module() -> None:
    result = subprocess.run([sys.executable, "-m", "footfall", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("footfall ")


def _build(source: Path, out: Path, *hooks: str) -> str:
    """Runs setuptools' PEP 517 hooks, as pip and `python -m build` do, in a fresh interpreter with the default
    warning filters (what a user sees); returns everything it printed."""
    code = "import sys, setuptools.build_meta as b\n" + "".join(f"b.{hook}(sys.argv[1])\n" for hook in hooks)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONWARNINGS", "PYTHONPATH")}
    result = subprocess.run(
        [sys.executable, "-c", code, str(out)], cwd=source, capture_output=True, text=True, env=env, timeout=240
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return output


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_packaging_builds_without_setuptools_warnings_and_ships_the_data_files(tmp_path: Path) -> None:
    """sdist → wheel (the `python -m build` path) and the editable wheel of `make demo` build without a setuptools
    warning, and the wheel (what the server image installs) holds every sample clip, dashboard, migration and model
    bundle file, however deep its folder."""
    # A copy, so that a stale build/ folder in the checkout cannot hide a file the package data misses.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for folder in PARTS:
        shutil.copytree(REPO / folder, source / folder, ignore=ignore)
    out = tmp_path / "dist"
    out.mkdir()

    printed = _build(source, out, "build_sdist", "build_editable")
    (sdist,) = out.glob("footfall-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    printed += _build(unpacked, out, "build_wheel")

    warnings = [line for line in printed.splitlines() if WARNING_LINE.search(line)]
    assert not warnings, "setuptools warns about the packaging:\n" + "\n".join(warnings)

    (wheel,) = out.glob("footfall-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read("footfall-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata
    for folder, packaged in DATA.items():
        files = [p for p in (REPO / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        assert files, folder
        missing = [
            str(p.relative_to(REPO))
            for p in files
            if f"{packaged}/{p.relative_to(REPO / folder).as_posix()}" not in names
        ]
        assert not missing, f"the wheel lacks {missing}"
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
