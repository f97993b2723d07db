"""The bench scripts (bench/*.py) on bad input: one line naming the problem and exit 2 (argparse's own error),
never a traceback, and never a run that reports figures for nonsense (zero people, weeks or threads).

Each case fails while the arguments are checked, before any clip, evaluation or timing: seconds, no datasets.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DETECTOR = "models/bundles/face-detector-centerface"
GENDER = REPO / "models" / "bundles" / "audience-v7"
MISSING_DATA = ("--data /nonexist", "no such folder", "utkface-112.csv", "wiki-144.zip")
A_DETECTOR = ("face-detection bundle", "not a gender-classification bundle")


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, f"bench/{script}", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def assert_refused(result: subprocess.CompletedProcess[str], prog: str, says: tuple[str, ...]) -> None:
    """Exit 2, nothing on stdout, and on stderr argparse's usage then exactly one error line that says ``says``."""
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert result.stdout == "", result.stdout[-2000:]
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith(f"{prog}: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    # Before the error line, only argparse's usage (its first line, and the indented lines it wraps onto).
    assert all(line.startswith(("usage: ", " ")) for line in lines[:-1]), result.stderr
    for words in says:
        assert words in errors[0], (words, errors[0])


CASES = [
    # Tracebacks on bad input.
    ("calibrate_tracks.py", ["--data", "/nonexist", "--clips", "1", "--gender", "{gender_copy}"], MISSING_DATA),
    ("calibrate_tracks.py", ["--gender", DETECTOR], ("--gender", *A_DETECTOR)),
    ("gender_model.py", ["--bundle", DETECTOR], ("--bundle", *A_DETECTOR)),
    ("gender_model.py", ["--data", "/nonexist"], MISSING_DATA),
    ("export_bench.py", ["--gender", DETECTOR], ("--gender", *A_DETECTOR)),
    ("export_bench.py", ["--detector", "models/bundles/audience-v7"], ("--detector", "not a face-detection bundle")),
    ("edge_bench.py", ["--data", "/nonexist", "--clips", "1", "--skip-throughput"], MISSING_DATA),
    ("edge_bench.py", ["--gender", DETECTOR, "--clips", "1", "--skip-throughput"], ("--gender", *A_DETECTOR)),
    ("edge_bench.py", ["--width", "0", "--clips", "1", "--skip-throughput"], ("--width", "0 is less than 1")),
    ("edge_bench.py", ["--height", "-2", "--clips", "1", "--skip-throughput"], ("--height", "-2 is less than 1")),
    ("visitors_bench.py", ["--data", "/nonexist", "--skip-sample"], MISSING_DATA),
    ("age_anchor.py", ["--recipe", "/nonexist.yaml"], ("/nonexist.yaml", "cannot read")),
    # Nonsense that used to run and report with exit 0.
    ("visitors_bench.py", ["--people", "0", "--skip-sample"], ("--people", "0 is less than 1")),
    ("withheld_splits.py", ["--weeks", "0"], ("--weeks", "0 is less than 1")),
    ("withheld_splits.py", ["--weeks", "-5"], ("--weeks", "-5 is less than 1")),
    ("withheld_splits.py", ["--late", "2"], ("--late", "not a share from 0 to 1")),
    ("withheld_splits.py", ["--late", "-1"], ("--late", "not a share from 0 to 1")),
    ("export_bench.py", ["--threads", "0"], ("--threads", "0 is less than 1")),
    ("export_bench.py", ["--threads", "-3"], ("--threads", "-3 is less than 1")),
    ("export_bench.py", ["--threads", "65"], ("--threads", "65 is more than 64")),
    # An output path that cannot be written, found out before the run rather than at its end.
    ("age_anchor.py", ["--json", "{tmp}"], ("--json", "is a folder")),
]


@pytest.mark.parametrize(("script", "args", "says"), CASES, ids=[f"{c[0]} {' '.join(c[1])}" for c in CASES])
def test_bench_refuses_bad_input_in_one_line(
    script: str, args: list[str], says: tuple[str, ...], tmp_path: Path
) -> None:
    if "{gender_copy}" in args:  # a copy, so that nothing could ever change the shipped bundle
        shutil.copytree(GENDER, tmp_path / "gender")
    args = [arg.format(tmp=tmp_path, gender_copy=tmp_path / "gender") for arg in args]
    assert_refused(run_bench(script, *args), script, says)


DATA_USERS = [
    ("edge_bench.py", ["--clips", "1", "--skip-throughput"]),
    ("calibrate_tracks.py", ["--clips", "1", "--gender", "{gender_copy}"]),
    ("visitors_bench.py", ["--skip-sample"]),
    ("gender_model.py", []),
    ("metrics_cost.py", []),
    ("int8_agreement.py", []),
]


@pytest.mark.parametrize(("script", "args"), DATA_USERS, ids=[c[0] for c in DATA_USERS])
def test_bench_scripts_look_for_the_datasets_where_footfall_data_says(
    script: str, args: list[str], tmp_path: Path
) -> None:
    # Five of them looked in ../shared/data whatever FOOTFALL_DATA said, unlike the tests, `footfall train` and export.
    if "{gender_copy}" in args:
        shutil.copytree(GENDER, tmp_path / "gender")
    args = [arg.format(gender_copy=tmp_path / "gender") for arg in args]
    elsewhere = tmp_path / "datasets-elsewhere"
    result = subprocess.run(
        [sys.executable, f"bench/{script}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FOOTFALL_DATA": str(elsewhere)},
    )
    assert_refused(result, script, (str(elsewhere),))


def test_share_runs_run_directly_says_it_is_a_module() -> None:
    for args in ([], ["--help"]):
        result = run_bench("share_runs.py", *args)
        assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "not a command" in lines[0] and "bench/edge_bench.py" in lines[0], result.stderr


def test_bench_help_states_defaults() -> None:
    edge = run_bench("edge_bench.py", "--help")
    assert edge.returncode == 0, edge.stderr
    assert "(default: 4)" in edge.stdout and "(default: 20)" in edge.stdout  # --clips, --people
    calibrate = run_bench("calibrate_tracks.py", "--help")
    assert calibrate.returncode == 0, calibrate.stderr
    text = " ".join(calibrate.stdout.split())  # argparse wraps lines
    assert "(default: 96)" in text and f"(default: {GENDER})" in text
    assert "into the --gender bundle's manifest: by default the shipped bundle's" in text
    visitors = run_bench("visitors_bench.py", "--help")
    assert "(default: 40)" in " ".join(visitors.stdout.split())
