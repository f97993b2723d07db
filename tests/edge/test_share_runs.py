"""bench/share_runs.py: the edge bench's female-share figures (issue #14) on synthetic clips whose decisions follow
known rates: pooled, per run and per clip, raw vs corrected, errors against the truth and interval coverage."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from footfall.core.quantify import DecisionRates

BENCH = Path(__file__).resolve().parents[2] / "bench"

# Women are read as men twice as often as men as women, and go unknown more often: counting leans male.
LEANS_MALE = DecisionRates(
    counts={"female": {"female": 400, "male": 50, "unknown": 50}, "male": {"female": 25, "male": 450, "unknown": 25}},
    source="synthetic",
)


def _share_runs():
    spec = importlib.util.spec_from_file_location("share_runs", BENCH / "share_runs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["share_runs"] = module
    spec.loader.exec_module(module)
    return module


def clip(women: int, men: int) -> dict[str, int]:
    """A clip whose decisions are what LEANS_MALE gives its crowd on average (whole numbers for 20 and 20)."""
    rates = LEANS_MALE.rates()
    female = round(women * rates[0, 0] + men * rates[1, 0])
    male = round(women * rates[0, 1] + men * rates[1, 1])
    return {
        "female": female,
        "male": male,
        "unknown": women + men - female - male,
        "truth_people": women + men,
        "truth_female": women,
    }


def test_pooled_runs_and_clips_compare_raw_and_corrected_with_the_truth() -> None:
    share_runs = _share_runs()
    clips = [clip(20, 20)] * 33  # a 33rd clip makes no fifth run: runs are whole
    report = share_runs.share_report(clips, LEANS_MALE, run_size=8)
    pooled = report["pooled"]
    assert pooled["true_pct"] == 50.0 and pooled["people"] == pooled["truth_people"] == 1320
    assert pooled["corrected_error_points"] < 1.0 < 3.0 < pooled["raw_error_points"]
    assert pooled["contains_truth"] and report["pooled_within_target"]
    assert len(report["runs"]) == 4 and report["runs_covering"] == 4 and report["run_coverage_meets_target"]
    assert len(report["per_clip"]) == 33 and report["clips_covering"] == 33
    text = "\n".join(share_runs.format_report(report))
    assert "pooled over 33 clips" in text and "4 of 4 8-clip runs' intervals contain the truth" in text


def test_a_run_whose_interval_misses_the_truth_is_counted_as_missed() -> None:
    share_runs = _share_runs()
    clips = [clip(20, 20)] * 8 + [{**clip(20, 20), "truth_female": 4}] * 8  # the second run's truth: 10 %
    report = share_runs.share_report(clips, LEANS_MALE, run_size=8)
    assert [run["contains_truth"] for run in report["runs"]] == [True, False]
    assert not report["run_coverage_meets_target"] and not report["pooled_within_target"]
    assert "1 of 2 8-clip runs' intervals contain the truth (target ≥ 90%: MISSED)" in "\n".join(
        share_runs.format_report(report)
    )
