"""The dashboard's words for counts: "1 zone", "2 zones", made by one helper (format.js) everywhere."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[2] / "server" / "static" / "js"


def test_plural_helpers() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = f"""
import {{ plural, pluralNoun, fmtAgo }} from {json.dumps((JS / "format.js").as_uri())};
console.log(JSON.stringify([
  plural(1, "zone"), plural(0, "zone"), plural(2, "zone"), plural(1, "slot was", "slots were"),
  plural(3, "slot was", "slots were"), pluralNoun(1, "agent"), pluralNoun(5, "agent"), fmtAgo(3 * 86400),
]));
"""
    result = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(result.stdout) == [
        "1 zone",
        "0 zones",
        "2 zones",
        "1 slot was",
        "3 slots were",
        "agent",
        "agents",
        "3 days ago",
    ]


def test_pages_make_no_plural_of_their_own() -> None:
    """A count next to a fixed plural ("${n} zones"), a "(s)" or a hand-made `n === 1 ? "" : "s"` reads
    "1 zones" or "1 week(s)" somewhere; format.js's plural() and pluralNoun() say it right."""
    nouns = "zones|cameras|agents|sites|days|hours|weeks|slots|buckets|ranks|keys|rows|lines"
    bad = re.compile(rf"\$\{{[^}}]+\}} ?({nouns})\b|[a-z]\(s\)|=== 1 \? \"\" : \"s\"|=== 1 \? \" ")
    found = [
        f"{path.relative_to(JS)}:{number}: {line.strip()}"
        for path in sorted(JS.rglob("*.js"))
        if path.name != "format.js"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if bad.search(line)
    ]
    assert found == []
