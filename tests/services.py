"""Real services for the integration tests: a PostgreSQL server on loopback, started from Debian's binaries."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from footfall.broker import free_port, wait_for_port


def _postgres_bin(name: str) -> str:
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found (Debian: apt-get install postgresql)")
    return found


class PostgresServer:
    """A throw-away PostgreSQL cluster in a temp folder, on a free loopback port.

    PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` user.
    """

    def __init__(self, *, durable: bool = False) -> None:
        """``durable``: commits survive a crash (PostgreSQL's defaults); otherwise fsync, synchronous_commit and
        full_page_writes are off, for speed, and a crash (:meth:`halt`) loses the last commits, as it would in
        production so set."""
        self.durable = durable
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="footfall-pg-"))
        self.datadir = self.root / "data"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, cwd=self.root)

    def start(self) -> PostgresServer:
        self._run(_postgres_bin("initdb"), "-D", str(self.datadir), "-U", "footfall", "--auth=trust", "-E", "UTF8")
        self.resume()
        self._run(_postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "footfall", "footfall")
        return self

    def halt(self) -> None:
        """Stops the server as a crash would (immediate: no checkpoint, every connection cut); keeps its data."""
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop")

    def resume(self) -> None:
        """Starts the server on its data folder (after :meth:`halt`, it recovers from its log first)."""
        self._run(
            _postgres_bin("pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.root / "log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self.root} -h 127.0.0.1"
            + ("" if self.durable else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"),
            "start",
        )
        wait_for_port(self.port)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://footfall@127.0.0.1:{self.port}/footfall"

    def stop(self) -> None:
        subprocess.run(
            [*self._as_user, _postgres_bin("pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"],
            capture_output=True,
            cwd=self.root,
        )
        time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)
