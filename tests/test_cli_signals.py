"""SIGTERM stops a batch command (export, evaluate, train) as Ctrl-C does: its scratch and staging folders are
removed on the way out, and the process still ends by the signal, as a service manager expects."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# A command of the real CLI's app, run through footfall.cli.main as the installed `footfall` runs it: it holds
# a scratch folder (as export holds its graphs and staging bundle) and works until it is stopped.
SLOW_COMMAND = """
import tempfile, time
from footfall.cli import app, main

@app.command("slow-work")
def slow_work() -> None:
    with tempfile.TemporaryDirectory(prefix="footfall-export-") as scratch:
        try:
            # Inside the try: a SIGTERM sent once the line is read may land before print returns (a CI run found
            # the command ended without "cleaning" once), and must still run the finally.
            print(scratch, flush=True)
            while True:
                time.sleep(0.05)
        finally:
            print("cleaning", flush=True)
            time.sleep(0.5)
            print("cleaned", flush=True)

main()
"""


@contextmanager
def slow_command(temp: Path) -> Iterator[subprocess.Popen[str]]:
    """SLOW_COMMAND running with ``temp`` as its TMPDIR; killed on the way out if it is still running."""
    command = subprocess.Popen(
        [sys.executable, "-c", SLOW_COMMAND, "slow-work"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    try:
        assert command.stdout is not None
        yield command
    finally:
        if command.poll() is None:
            command.kill()


def test_sigterm_removes_a_commands_scratch_folder_and_ends_the_process_by_the_signal(tmp_path: Path) -> None:
    """Before: Python's default SIGTERM ended the process at once, and a stopped export left its scratch graphs
    in /tmp and its half-written bundle, hidden, beside the real one."""
    with slow_command(tmp_path) as command:
        scratch = Path(command.stdout.readline().strip())  # printed once it exists
        assert scratch.is_dir(), scratch
        command.send_signal(signal.SIGTERM)
        _out, err = command.communicate(timeout=30)
    assert command.returncode == -signal.SIGTERM, err  # a clean stop to systemd, as before
    assert not list(tmp_path.iterdir()), "the scratch folder is removed"
    assert "stopped" in err and "SIGTERM" in err and "Traceback" not in err, err


def test_a_second_sigterm_during_the_cleanup_does_not_cut_it_short(tmp_path: Path) -> None:
    """Found in review: docker stop and then a supervisor's own SIGTERM, 0.3 s apart, ended the process in the
    middle of its cleanup."""
    with slow_command(tmp_path) as command:
        command.stdout.readline()  # the scratch folder exists
        command.send_signal(signal.SIGTERM)
        assert command.stdout.readline().strip() == "cleaning"
        command.send_signal(signal.SIGTERM)
        out, err = command.communicate(timeout=30)
    assert out.strip() == "cleaned" and not list(tmp_path.iterdir()), (out, err)
    assert command.returncode == -signal.SIGTERM, err
