"""What the docs say of the server stays true: server/API.md's /healthz answer, and the README's API examples,
run as written (bash, GNU date) against an in-process server holding a demo's first minutes of counts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from footfall.core.paths import DEFAULT_GENDER_BUNDLE
from footfall.server.migrate import head_revision

from footfall import __version__
from tests.server.conftest import Server, aggregate, make_server

REPO = Path(__file__).resolve().parents[2]
DEMO_SITE = "demo-mall"  # footfall.demo's site, zones and counting line
DEMO_ZONES = ("west-shops", "east-shops", "mid-corridor")


def test_api_md_quotes_the_current_schema_revision_and_version() -> None:
    text = (REPO / "server" / "API.md").read_text()
    healthz = re.search(r"GET /healthz` \(public\) → `(\{[^`]*\})`", text)
    assert healthz is not None, "server/API.md no longer shows the /healthz answer"
    quoted = healthz.group(1)
    assert f'"schema_revision": "{head_revision()}"' in quoted, quoted
    assert f'"version": "{__version__}"' in quoted, quoted
    assert set(re.findall(r'"schema_revision": "([^"]*)"', text)) == {head_revision()}


def readme_block(heading: str) -> str:
    """The first ```bash block under ``heading`` in README.md."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(f"\n{heading}\n") :]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None, f"no bash block under {heading}"
    return block.group(1)


def readme_urls() -> list[str]:
    """The URLs the README's query examples ask, after bash expanded them (curl only prints them here)."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    if subprocess.run(["date", "-u", "-d", "-1 day", "+%Y"], capture_output=True).returncode != 0:
        pytest.skip("the README's examples use GNU date")
    block = readme_block("## Querying the API")
    fake_curl = 'curl() { for arg in "$@"; do case "$arg" in http*) printf "%s\\n" "$arg";; esac; done; }\n'
    result = subprocess.run(
        [bash, "-euo", "pipefail", "-c", fake_curl + block], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    urls = result.stdout.splitlines()
    assert len(urls) == len(re.findall(r"^curl ", block, re.MULTILINE)) >= 5, result.stdout
    return urls


@pytest.fixture()
def demo_server(sqlite_url: str) -> Iterator[Server]:
    """Served as `footfall demo` serves (the hour in progress released), with its last few minutes' counts."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    for server in make_server(sqlite_url, release_open_hour=True):
        messages = [
            aggregate(
                agent="demo-box",
                site=DEMO_SITE,
                camera="corridor",
                zone=zone,
                start=now - timedelta(minutes=minutes),
                seq=10 * i + minutes,
                female=6,
                male=6,
            )
            for i, zone in enumerate(DEMO_ZONES)
            for minutes in range(1, 6)
        ]
        assert server.ingest(*messages).json()["accepted"] == len(messages)
        yield server


def test_readme_quotes_the_shipped_bundles_decision_rates() -> None:
    """The README says how the default bundle errs on camera tracks (why the share is corrected): its figures are
    the decision rates in that bundle's manifest, so a new bundle cannot leave them behind."""
    counts = json.loads((DEFAULT_GENDER_BUNDLE / "manifest.json").read_text())["classifier"]["decision_rates"]["counts"]

    def percent(truth: str, decision: str) -> str:
        return f"{100 * counts[truth][decision] / sum(counts[truth].values()):.1f} %"

    quoted = (
        f"reads {percent('female', 'male')} of women as men and {percent('male', 'female')} of men as women, and "
        f"leaves {percent('female', 'unknown')} of women and {percent('male', 'unknown')} of men undecided"
    )
    assert quoted in " ".join((REPO / "README.md").read_text().split()), quoted


def test_readme_api_examples_answer_with_counts_from_a_fresh_demo(demo_server: Server) -> None:
    spec = demo_server.client.get("/api/v1/openapi.json").json()
    operations = {
        re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"): operation["get"]
        for path, operation in spec["paths"].items()
        if "get" in operation
    }
    answered = set()
    for url in readme_urls():
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("http", "127.0.0.1:8000"), url
        matches = [operation for pattern, operation in operations.items() if pattern.match(parts.path)]
        assert len(matches) == 1, f"no API operation answers {parts.path}"
        known = {p["name"] for p in matches[0].get("parameters", []) if p["in"] == "query"}
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        assert {name for name, _ in query} <= known, f"{url}: unknown parameters"
        for name, value in query:
            if name in ("start", "end"):
                datetime.fromisoformat(value)  # a computed date, not an empty variable

        response = demo_server.client.get(f"{parts.path}?{parts.query}", headers=demo_server.headers("viewer"))
        assert response.status_code == 200, f"{url}: {response.text}"
        answer = response.text if parts.path.endswith(".csv") else response.json()
        endpoint = parts.path.rsplit("/", 1)[-1]
        answered.add(endpoint)
        if endpoint == "sites":
            assert DEMO_SITE in {site["site_id"] for site in answer}
        elif endpoint == "zones":
            assert set(DEMO_ZONES) <= {zone["zone_id"] for zone in answer}
        elif endpoint == "series":
            assert any(point["people"] for point in answer["points"]), f"{url}: no counts"
        elif endpoint == "totals":
            assert answer["totals"]["people"], f"{url}: no counts"
        elif endpoint == "heatmap":
            assert any(cell["people"] for cell in answer["cells"]), f"{url}: no counts"
        elif endpoint == "ad-placement":
            assert answer["slots"], f"{url}: no slot"
        elif endpoint == "export.csv":
            assert len(answer.splitlines()) > 1, f"{url}: only a header"
    assert {"series", "totals"} <= answered
