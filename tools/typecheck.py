"""Type-checks footfall.core, footfall.edge and footfall.server with mypy (strict; settings in mypy.ini).

Then counts the ``# type: ignore`` comments left in those parts, and fails on any that does not name its error
code and give its reason (``# type: ignore[code]  # why``).

The parts live in folders (core/, edge/ ...) that setup.py maps onto ``footfall.*``; an editable install resolves
that mapping with an import hook, which a type checker cannot follow. So this first builds the ``footfall``
package as a tree of links under build/typecheck (mypy.ini's ``mypy_path``), and reports mypy's paths as the
real files. After that first run a plain ``mypy`` in the repository root works too.

Usage: python tools/typecheck.py [more mypy arguments]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck" / "footfall"
# The folders setup.py maps onto footfall.<name>; footfall/ itself holds the CLI shell.
PARTS = ("core", "edge", "server", "models", "exporter")
STRICT = ("core", "edge", "server")
IGNORE = re.compile(r"#\s*type:\s*ignore\b(?P<codes>\[[^\]]*\])?(?P<rest>.*)")
REASON = re.compile(r"\s*#\s*\S")


def link_tree() -> None:
    """build/typecheck/footfall: links to footfall/'s entries and to each part folder, made or mended as needed."""
    TREE.mkdir(parents=True, exist_ok=True)
    wanted = {entry.name: entry for entry in (ROOT / "footfall").iterdir() if entry.name != "__pycache__"}
    wanted.update({part: ROOT / part for part in PARTS})
    for name, target in wanted.items():
        link = TREE / name
        relative = os.path.relpath(target, TREE)
        if link.is_symlink() and os.readlink(link) == relative:
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(relative, target_is_directory=target.is_dir())
    for link in TREE.iterdir():
        if link.name not in wanted:
            link.unlink()


def real_path(line: str) -> str:
    """A mypy line with the linked path (build/typecheck/footfall/core/x.py) rewritten to the file (core/x.py)."""
    for prefix in (f"{TREE}{os.sep}", f"{TREE.relative_to(ROOT)}{os.sep}"):
        if line.startswith(prefix):
            rest = line[len(prefix) :]
            head = rest.split(os.sep, 1)[0]
            return rest if head in PARTS else f"footfall{os.sep}{rest}"
    return line


def ignores() -> tuple[dict[str, int], list[str]]:
    """Each strict part's count of ``# type: ignore`` comments, and those that lack an error code or a reason."""
    counts: dict[str, int] = {}
    bad: list[str] = []
    for part in STRICT:
        counts[part] = 0
        for path in sorted((ROOT / part).rglob("*.py")):
            with tokenize.open(path) as source:
                tokens = list(tokenize.generate_tokens(source.readline))
            for token in tokens:
                match = IGNORE.search(token.string) if token.type == tokenize.COMMENT else None
                if match is None:
                    continue
                counts[part] += 1
                if not match["codes"] or not REASON.match(match["rest"]):
                    bad.append(f"{path.relative_to(ROOT)}:{token.start[0]}: {token.string}")
    return counts, bad


def main(argv: list[str]) -> int:
    link_tree()
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "mypy.ini"), *argv]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    for line in (result.stdout + result.stderr).splitlines():
        print(real_path(line))
    counts, bad = ignores()
    summary = ", ".join(f"{part} {count}" for part, count in counts.items())
    print(f"typecheck: {sum(counts.values())} `# type: ignore` left in the strict parts ({summary})")
    for line in bad:
        print(f"{line}  <- an ignore names its error code and gives its reason: `# type: ignore[code]  # why`")
    if bad:
        return 1
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
