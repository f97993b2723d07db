"""Mistaken numbers on the command line and in a bundle's manifest get a clear refusal, not a hang or a crash
(adversarial review of the CLI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from footfall.core.bundle import THREADS_ENV, session_options, threads_from_environment
from footfall.core.manifest import DetectorContract
from pydantic import ValidationError
from typer.testing import CliRunner

from footfall.cli import app

SAMPLE_CLIP = Path(__file__).resolve().parents[2] / "edge" / "samples" / "mall-walkby.mp4"


@pytest.mark.parametrize("seconds", ["inf", "1e308", "nan", "-5"])
def test_a_drain_that_never_ends_or_makes_no_sense_is_refused(seconds: str) -> None:
    # Before: inf and 1e308 kept a finished agent waiting (14 minutes, ignoring SIGTERM) and -5 or nan were taken
    # as 0 without a word.
    result = CliRunner().invoke(app, ["agent", "-c", "unused.yaml", "--drain-seconds", seconds])
    assert result.exit_code == 2 and "--drain-seconds" in result.output


@pytest.mark.parametrize("stride", [0, -32, 100_000])
def test_a_detector_stride_that_would_crash_the_frame_padding_is_refused(stride: int) -> None:
    # Before: stride 0 passed verify-bundle and died in `process` with ZeroDivisionError; -32 and 100000 in OpenCV.
    with pytest.raises(ValidationError, match="stride"):
        DetectorContract(stride=stride)


@pytest.mark.parametrize("threads", ["abc", "100000", "-3", "1.5"])
def test_a_thread_count_in_the_environment_that_makes_no_sense_is_one_line(threads: str) -> None:
    # Before: 'abc' and '1.5' were an int() traceback; 100000 asked onnxruntime for 100,000 threads.
    result = CliRunner().invoke(app, ["process", str(SAMPLE_CLIP)], env={THREADS_ENV: threads}, catch_exceptions=False)
    assert result.exit_code == 2
    assert f"{THREADS_ENV}={threads!r}: give a whole number of threads, 1 to 64" in result.output
    assert "Traceback" not in result.output and "bundle" not in result.output  # no bundle is at fault


def test_a_thread_count_in_the_environment_is_what_the_sessions_get(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_ENV, " 3 ")
    assert session_options().intra_op_num_threads == 3
    assert session_options(threads=2).intra_op_num_threads == 2  # the config's detection.threads comes first
    monkeypatch.setenv(THREADS_ENV, "")
    assert threads_from_environment() is None
    # 0: onnxruntime's "choose for me", and what footfall's own default was; refused for a while (found in review).
    monkeypatch.setenv(THREADS_ENV, "0")
    assert threads_from_environment() is None
    assert session_options().intra_op_num_threads == min(4, os.cpu_count() or 1)
