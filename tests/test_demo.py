"""`footfall demo` (README's first command, after set-up): broker, server, agent and dashboard come up,
counts from the sample clip reach the API, and Ctrl-C stops every process it started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from footfall.broker import free_port


def get_json(url: str, key: str) -> dict | None:
    """The JSON answer, or None while the site does not exist yet (it appears with its first aggregate)."""
    request = urllib.request.Request(url, headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def children_of(pid: int) -> list[int]:
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(line) for line in result.stdout.split()]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_counts_the_sample_clip_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "footfall",
            "demo",
            "--port",
            str(port),
            "--bucket-seconds",
            "10",
            "--workdir",
            str(tmp_path / "demo"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        key = None
        deadline = time.monotonic() + 120
        assert demo.stdout is not None
        for line in demo.stdout:
            if match := re.search(r"dashboard\s+(http://\S+/dashboard/\?key=(\S+))", line):
                dashboard, key = match.group(1), match.group(2)
                break
            assert time.monotonic() < deadline, "demo did not print its dashboard URL"
        assert key, f"demo exited early: {demo.stderr.read() if demo.stderr else ''}"
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(dashboard, timeout=5) as page:
            assert page.status == 200 and b"footfall" in page.read()

        people = 0
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and people < 9:
            time.sleep(3)
            totals = get_json(f"{base}/api/v1/sites/demo-mall/traffic/totals?zone=west-shops", key)
            people = (totals["totals"]["people"] or 0) if totals else 0
        # The clip shows 9 passers-by, each crossing the whole corridor (edge/samples/mall-walkby.json).
        assert people >= 9, f"the demo counted {people} people in west-shops after one loop of the clip"
        agents = get_json(f"{base}/api/v1/agents", key) or []
        assert any(agent["agent_id"] == "demo-box" and agent["online"] for agent in agents)

        started = children_of(demo.pid)
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0
        time.sleep(0.5)
        alive = [pid for pid in started if Path(f"/proc/{pid}").exists()]
        assert not alive, f"processes left running after Ctrl-C: {alive}"
        # The agent stops first, while the broker and the server still run: its last aggregates are confirmed.
        agent_log = (tmp_path / "demo" / "agent.log").read_text()
        assert "not confirmed" not in agent_log, agent_log[-1500:]
        assert "agent stopped; outbox empty" in agent_log, agent_log[-1500:]
    finally:
        if demo.poll() is None:  # a failed assertion above: stop the demo the way a user would
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.kill()
