"""Output paths are checked before a long run, on the real filesystem, so a run is never thrown away at its end."""

from __future__ import annotations

from pathlib import Path

import pytest
from footfall.core.outpaths import OutputPathError, writable_file, writable_folder


def test_a_file_output_may_be_new_existing_or_under_folders_still_to_make(tmp_path: Path) -> None:
    writable_file(tmp_path / "report.json")
    existing = tmp_path / "old.json"
    existing.write_text("kept")
    writable_file(existing)
    assert existing.read_text() == "kept"  # checked, not truncated
    writable_file(tmp_path / "runs" / "eval" / "report.json")
    assert (tmp_path / "runs" / "eval").is_dir()
    assert not [p for p in tmp_path.rglob(".footfall-write-check-*")]


def test_a_file_output_that_is_a_folder_or_lies_under_a_file_is_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(OutputPathError, match="is a folder"):
        writable_file(tmp_path)
    with pytest.raises(OutputPathError, match="cannot write here"):
        writable_file(a_file / "report.json")
    with pytest.raises(OutputPathError, match="cannot write here"):
        writable_file(Path("/proc/footfall-nowhere/report.json"))  # os.access says yes to root here


def test_a_folder_output_is_made_and_a_file_in_its_place_refused(tmp_path: Path) -> None:
    writable_folder(tmp_path / "plots" / "wiki")
    assert (tmp_path / "plots" / "wiki").is_dir()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(OutputPathError, match="exists and is not a folder"):
        writable_folder(a_file)


def test_an_output_that_is_an_input_of_the_run_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    # Attack (review): `footfall process victim.mp4 --out victim.mp4` replaced the video with JSON lines, and
    # `footfall evaluate --csv labels.csv --json labels.csv` the labels with the report, both exiting 0.
    video = tmp_path / "victim.mp4"
    video.write_bytes(b"video")
    (tmp_path / "link.mp4").symlink_to(video)
    for same in (video, tmp_path / "." / "victim.mp4", tmp_path / "link.mp4"):
        with pytest.raises(OutputPathError, match="is an input of this run"):
            writable_file(same, inputs=[video])
    assert video.read_bytes() == b"video"
    writable_file(tmp_path / "out.jsonl", inputs=[video])


def test_a_command_writing_onto_its_own_video_fails_with_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from footfall.cli import app

    video = tmp_path / "victim.mp4"
    video.write_bytes(b"not decoded: the output is checked first")
    result = CliRunner().invoke(app, ["process", str(video), "--out", str(video), "--no-progress"])
    assert result.exit_code != 0 and "is an input of this run" in result.output
    assert video.read_bytes() == b"not decoded: the output is checked first"


def test_a_path_under_a_file_names_the_file(tmp_path: Path) -> None:
    """Review: ``--json scores.csv/x.json`` said 'cannot write here (File exists)', naming nothing."""
    blocker = tmp_path / "scores.csv"
    blocker.write_text("keep")
    for check, path in ((writable_file, blocker / "x.json"), (writable_folder, blocker / "plots" / "deeper")):
        with pytest.raises(OutputPathError, match=f"cannot write here \\({blocker} is a file, not a folder\\)"):
            check(path)
    assert blocker.read_text() == "keep"
