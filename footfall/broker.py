"""Running a local mosquitto broker: used by ``footfall demo`` and by the integration tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing is listening on {host}:{port} after {timeout:.0f} s")


class MosquittoBroker:
    """A mosquitto process on loopback with persistence, so it can be stopped and restarted mid-run.

    ``stop()`` kills it (as a crash would), ``start()`` brings it back on the same port with the same
    persistence file: QoS 1 messages queued for persistent sessions survive the restart.
    """

    def __init__(
        self,
        port: int | None = None,
        workdir: Path | None = None,
        executable: str | None = None,
        *,
        acl_file: Path | None = None,
    ):
        """``acl_file``: a mosquitto ACL applied to every client (rules before any ``user`` line bind anonymous
        ones); None lets every client publish and read anything."""
        self.executable = executable or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(self.executable).exists():
            raise FileNotFoundError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.port = port or free_port()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="footfall-mosquitto-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = self.workdir / "mosquitto.conf"
        self.config.write_text(
            "\n".join(
                [
                    f"listener {self.port} 127.0.0.1",
                    "allow_anonymous true",
                    "persistence true",
                    f"persistence_location {self.workdir}/",
                    "autosave_interval 1",
                    "max_queued_messages 100000",
                    *([f"acl_file {acl_file}"] if acl_file is not None else []),
                    # As root, mosquitto drops to the 'mosquitto' user, which cannot write the persistence
                    # file into a root-owned temp folder: queued messages would not survive a restart.
                    *(["user root"] if os.geteuid() == 0 else []),
                    "log_type error",
                    "log_type warning",
                    f"log_dest file {self.workdir / 'mosquitto.log'}",
                    "",
                ]
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> MosquittoBroker:
        if self.process and self.process.poll() is None:
            return self
        self.process = subprocess.Popen(
            [self.executable, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, timeout=timeout)
        return self

    def stop(self, graceful: bool = True) -> None:
        if not self.process or self.process.poll() is not None:
            return
        if graceful:
            self.process.terminate()  # mosquitto saves its persistence file on SIGTERM
        else:
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
