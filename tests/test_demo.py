"""`footfall demo` (README's first command, after set-up): broker, server, agent and dashboard come up,
counts from the sample clip reach the API, and Ctrl-C stops every process it started."""

from __future__ import annotations

import contextlib
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
from tests.conftest import _require
from tests.waiting import eventually


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


def check_overview_in_chromium(dashboard: str, visitors_url: str, key: str, shots: Path) -> None:
    """The issue's check, on the running demo: the overview's visitor figure is the entrance's distinct in-count
    (what /visitors says), not the sum of the zones; the occupancy curve is drawn; the labels say what each
    number counts."""
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        _require("Debian's chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require("playwright is not installed (pip install playwright; no browser download is needed)")
    before = get_json(visitors_url, key)
    deadline = time.monotonic() + 90
    while not (before and before["totals"]["visitors"] and before["totals"]["visitors"]["people"]):
        # An hour's in-count below k is withheld: the next loop of the clip brings it to k.
        assert time.monotonic() < deadline, f"no released site visitors from the demo's entrance: {before}"
        time.sleep(3)
        before = get_json(visitors_url, key)
    assert before["entrances"] == ["west-entrance"], before
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(dashboard)
        page.wait_for_selector("body[data-ready='true']", state="attached", timeout=30_000)
        page.screenshot(path=str(shots / "demo-overview.png"), full_page=True)
        if os.environ.get("FOOTFALL_SCREENSHOTS"):  # kept where the test run wants them, as the dashboard tests do
            Path(os.environ["FOOTFALL_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(os.environ["FOOTFALL_SCREENSHOTS"]) / "demo-overview.png"), full_page=True)

        def value(selector: str) -> int | None:
            node = page.locator(selector).first
            raw = node.get_attribute("data-value")
            return None if node.get_attribute("data-suppressed") == "true" or raw is None else int(raw)

        shown = value("#kpi-visitors .value [data-value], #kpi-visitors .value [data-suppressed]")
        passes = value("#kpi-people .value [data-value]")
        labels = {
            name: page.locator(f"#kpi-{name}").text_content() or "" for name in ("visitors", "people", "occupancy")
        }
        curves = page.locator("article[data-site='demo-mall'] svg.occupancy-chart path.occupancy-line").count()
        browser.close()
    after = get_json(visitors_url, key)
    assert after is not None
    low, high = before["totals"]["visitors"]["people"], after["totals"]["visitors"]["people"]
    assert shown is not None and low <= shown <= high, (low, shown, high)  # counts grow between the reads
    assert passes is not None and shown < passes, "the visitor figure must not be the sum of the zones"
    assert curves == 1, "the occupancy curve is not drawn"
    assert "Site visitors today" in labels["visitors"] and "entrance" in labels["visitors"]
    assert "Zone passes today" in labels["people"] and "counts twice" in labels["people"]
    assert "Occupancy now" in labels["occupancy"] and "in − out" in labels["occupancy"]
    assert not errors, errors


def children_of(pid: int) -> list[int]:
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(line) for line in result.stdout.split()]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_counts_the_sample_clip_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "footfall", "demo", "--port", str(port), "--bucket-seconds", "10"]
    command += ["--workdir", str(tmp_path / "demo")]
    demo = subprocess.Popen(
        # Started as a script's `footfall demo &` starts it, with SIGINT ignored (`trap '' INT` survives the exec,
        # which keeps the PID): Ctrl-C (SIGINT) must stop it all the same.
        ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *command],
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
        lines = list(iter(demo.stdout.readline, "\n"))  # the rest of the banner, up to its blank line
        banner = " ".join(lines)
        # The dashboard's share is read against the clip's truth: the banner says why an interval can miss it.
        assert "the same faces pass again" in banner and "5 women, 4 men" in banner, banner
        base = f"http://127.0.0.1:{port}"
        # The README's examples that change a site need an admin key: the banner's command makes one, run as printed
        # from another folder, and README's PATCH takes it.
        admin_line = next((line for line in lines if line.strip().startswith("admin key")), None)
        assert admin_line is not None and "--database-url" in admin_line, banner
        made = subprocess.run(
            ["sh", "-c", admin_line.strip().removeprefix("admin key").strip()],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        )
        assert made.returncode == 0 and made.stdout.startswith("ffk_"), made
        patch = urllib.request.Request(
            f"{base}/api/v1/sites/demo-mall",
            data=json.dumps({"closing_time": "22:00"}).encode(),
            headers={"X-API-Key": made.stdout.strip(), "Content-Type": "application/json"},
            method="PATCH",
        )
        with urllib.request.urlopen(patch, timeout=10) as answer:
            assert answer.status == 200 and json.loads(answer.read())["closing_time"] == "22:00"
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
        # A whole loop of the clip is several 10 s buckets: the overview must show them for what they are.
        check_overview_in_chromium(dashboard, f"{base}/api/v1/sites/demo-mall/visitors", key, tmp_path)
        agents = get_json(f"{base}/api/v1/agents", key) or []
        assert any(agent["agent_id"] == "demo-box" and agent["online"] for agent in agents)

        started = children_of(demo.pid)
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0
        gone = eventually(lambda: not any(Path(f"/proc/{pid}").exists() for pid in started), timeout=10)
        assert gone, f"processes left running after Ctrl-C: {[p for p in started if Path(f'/proc/{p}').exists()]}"
        # The agent stops first, while the broker and the server still run: its last aggregates are confirmed.
        agent_log = (tmp_path / "demo" / "agent.log").read_text()
        assert "not confirmed" not in agent_log, agent_log[-1500:]
        assert "agent stopped; outbox empty" in agent_log, agent_log[-1500:]
    finally:
        if demo.poll() is None:  # a failed assertion above: stop the demo the way a user would
            left = children_of(demo.pid)
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.kill()
                # Its children run in sessions of their own: a killed demo leaves them running.
                for pid in left:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


def test_the_printed_admin_key_command_makes_an_admin_key_in_the_demos_database(tmp_path: Path) -> None:
    """The demo printed a viewer key only, and `footfall keys create --role admin` run elsewhere refused (its default
    database is a file in the current folder): the command the demo prints names the demo's database, quoted for a
    shell, and runs from any folder."""
    from sqlalchemy import create_engine, text

    from footfall import demo as demo_module

    folder = tmp_path / "demo data"  # a space: the URL must reach the command whole
    folder.mkdir()
    url = f"sqlite:///{folder / 'footfall.db'}"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    migrate = [sys.executable, "-m", "footfall", "server", "migrate", "--database-url", url]
    subprocess.run(migrate, check=True, capture_output=True, env=env, timeout=60)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    command = demo_module.admin_key_command(url)
    assert "keys create --role admin" in command and "--database-url" in command, command
    made = subprocess.run(["sh", "-c", command], cwd=elsewhere, capture_output=True, text=True, env=env, timeout=60)
    assert made.returncode == 0 and made.stdout.startswith("ffk_"), made
    assert not (elsewhere / "footfall.db").exists()
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT role FROM api_keys")).scalars().all() == ["admin"]
    finally:
        engine.dispose()


def test_a_second_demo_refuses_a_taken_port_or_data_folder_and_leaves_the_first_alone(tmp_path: Path) -> None:
    """A second `footfall demo` used to wipe the running demo's data folder (its database, outbox and logs), print
    "footfall demo is running" with a dashboard URL that led to the first demo's server (where its key does not
    exist), and only then fail with "the server stopped unexpectedly". It must refuse at once, say why, and touch
    nothing of the first."""
    import fcntl
    import socket

    from footfall import demo as demo_module

    workdir = tmp_path / "demo"
    workdir.mkdir()
    (workdir / "footfall.db").write_bytes(b"the first demo's data")
    # The first demo holds its data folder's lock for as long as it runs.
    with (workdir / demo_module.LOCK_NAME).open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RuntimeError, match=r"another footfall demo is running.*--workdir"):
            demo_module.run_demo(free_port(), workdir, 1, 60, keep=False)
    assert (workdir / "footfall.db").read_bytes() == b"the first demo's data"

    # Its HTTP port taken (by another demo with its own folder, or anything else): refused before anything starts.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match=rf"port {port} is already in use.*--port"):
            demo_module.run_demo(port, workdir, 1, 60, keep=False)
    assert (workdir / "footfall.db").read_bytes() == b"the first demo's data"

    # Through the CLI: a one-line error and exit status 1, no "footfall demo is running".
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "footfall", "demo", "--port", str(port), "--workdir", str(workdir)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1, result
    assert f"port {port} is already in use" in result.stderr and "is running" not in result.stdout, result
    assert (workdir / "footfall.db").read_bytes() == b"the first demo's data"


def test_a_data_folder_that_is_not_a_demos_is_never_deleted(tmp_path: Path) -> None:
    """`footfall demo --workdir X` deleted X whole at start (without --keep), whatever it held: a folder of the
    user's own was gone. Only a folder a demo made (or an empty one) is emptied; any other is refused, untouched."""
    from footfall import demo as demo_module

    mine = tmp_path / "projects"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(RuntimeError, match=r"holds files that are not a footfall demo's.*--workdir"):
        demo_module.run_demo(free_port(), mine, 1, 60, keep=False)
    assert (mine / "thesis.tex").read_text() == "years of work"

    earlier = tmp_path / "earlier-demo"  # what a demo leaves behind: wiped at the next start, as before
    earlier.mkdir()
    (earlier / demo_module.LOCK_NAME).touch()
    (earlier / "footfall.db").write_bytes(b"old")
    handle = demo_module.lock_workdir(earlier, keep=False)
    handle.close()
    assert not (earlier / "footfall.db").exists()


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--port", "99999"], "--port"),  # was OverflowError from bind(), a traceback
        (["--bucket-seconds", "0"], "--bucket-seconds"),  # the demo said it was running, then its agent refused it
        (["--bucket-seconds", "70"], "does not divide an hour"),
        (["--duration", "-5"], "--duration"),  # started and stopped at once, exit 0
        (["--duration", "nan"], "--duration"),
    ],
)
def test_the_demo_refuses_settings_its_parts_would_refuse_before_starting_anything(
    tmp_path: Path, arguments: list[str], words: str
) -> None:
    from typer.testing import CliRunner

    from footfall.cli import app

    result = CliRunner().invoke(app, ["demo", "--workdir", str(tmp_path / "demo"), *arguments])
    assert result.exit_code == 2 and "Traceback" not in result.output and words in result.output, result.output
    assert not (tmp_path / "demo").exists(), "nothing was started"
