"""Shared fixtures: the research datasets, a real mosquitto broker, a real PostgreSQL server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from footfall.broker import MosquittoBroker

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"

# Property tests check what is true of every example, not how fast one runs: a loaded CI machine (or another
# make test beside this one) must not fail them on Hypothesis's 200 ms per-example deadline.
settings.register_profile("footfall", deadline=None)
settings.load_profile("footfall")


def _require(reason: str) -> None:
    """Skips on a user's machine; in CI a missing prerequisite is a failure, never a silent skip."""
    if IN_CI:
        pytest.fail(f"CI must not skip: {reason}")
    pytest.skip(reason)


def shared_data_dir() -> Path | None:
    candidates = [os.environ.get("FOOTFALL_DATA"), REPO.parent / "shared" / "data", REPO / "shared" / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "utkface-112.csv").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The research datasets (UTKFace, wiki): FOOTFALL_DATA or ../shared/data."""
    found = shared_data_dir()
    if found is None:
        _require("face datasets not found: set FOOTFALL_DATA or put them in ../shared/data")
    return found


@pytest.fixture()
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A real mosquitto on a free loopback port; the test may stop() and start() it again."""
    if not shutil.which("mosquitto") and not Path("/usr/sbin/mosquitto").exists():
        _require("mosquitto is not installed (apt-get install mosquitto)")
    broker = MosquittoBroker(workdir=tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for the session (a fresh cluster on a free port)."""
    from tests.services import PostgresServer

    try:
        server = PostgresServer().start()
    except (FileNotFoundError, OSError) as exc:
        _require(f"PostgreSQL is not available: {exc}")
    yield server.url
    server.stop()
