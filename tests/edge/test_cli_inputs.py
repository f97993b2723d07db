"""Mistaken numbers on the command line and in a bundle's manifest get a clear refusal, not a hang or a crash
(adversarial review of the CLI)."""

from __future__ import annotations

import pytest
from footfall.core.manifest import DetectorContract
from pydantic import ValidationError
from typer.testing import CliRunner

from footfall.cli import app


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
