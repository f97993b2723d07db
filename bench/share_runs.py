"""The female share of walk-by clips, counted and corrected, against the truth: pooled, per run of clips and
per clip (issue #14).

Each clip's crowd is the camera's distinct visitors (what ``footfall process`` reports as people): its
decisions (female, male, unknown) give the raw share (classify and count, female / (female + male)) and the
share corrected for the gender bundle's decision rates with its 95 % interval (footfall.core.quantify). The
truth is the clip's own women / people. Pooled over all clips, per run of ``run_size`` consecutive clips
(the decisions of the run added up: one crowd), and per clip; with how often the interval contains the truth.
Targets: pooled corrected share within 1.5 points of the truth; ≥ 90 % of 8-clip runs' intervals contain it.

The rates come from validation-face clips (bench/calibrate_tracks.py); run this on TEST faces only, and never
choose anything from what it says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from footfall.core.quantify import DecisionCounts, DecisionRates, corrected_share

POOLED_TARGET_POINTS = 1.5
RUN_COVERAGE_TARGET = 0.90


def clip_counts(summary: dict[str, Any], truth: dict[str, Any]) -> dict[str, int]:
    """What the share report needs of one clip: the camera's visitors by decision, and the truth."""
    visitors = summary["camera_visitors"]
    return {
        "female": int(visitors["female"]),
        "male": int(visitors["male"]),
        "unknown": int(visitors["unknown"]),
        "truth_people": int(truth["people"]),
        "truth_female": int(truth["female"]),
    }


def crowd_share(clips: Sequence[dict[str, int]], rates: DecisionRates) -> dict[str, Any]:
    """Raw and corrected share of the clips' crowds added up, against their true share (shares in %)."""
    decisions = DecisionCounts(
        sum(c["female"] for c in clips), sum(c["male"] for c in clips), sum(c["unknown"] for c in clips)
    )
    truth = sum(c["truth_female"] for c in clips) / max(sum(c["truth_people"] for c in clips), 1)
    estimate = corrected_share([(decisions, rates)])

    def pct(value: float | None) -> float | None:
        return None if value is None else round(100 * value, 2)

    return {
        "people": decisions.people,
        "truth_people": sum(c["truth_people"] for c in clips),
        "true_pct": pct(truth),
        "raw_pct": pct(estimate.raw),
        "corrected_pct": pct(estimate.share),
        "low_pct": pct(estimate.low),
        "high_pct": pct(estimate.high),
        "raw_error_points": None if estimate.raw is None else round(100 * abs(estimate.raw - truth), 2),
        "corrected_error_points": None if estimate.share is None else round(100 * abs(estimate.share - truth), 2),
        "contains_truth": estimate.contains(truth),
        # How far this crowd's own estimate may stray by chance: an error of this size is no evidence of bias.
        "half_interval_points": None
        if estimate.low is None or estimate.high is None
        else round(50 * (estimate.high - estimate.low), 2),
        "fits": estimate.fits,
    }


def share_report(clips: Sequence[dict[str, int]], rates: DecisionRates, run_size: int = 8) -> dict[str, Any]:
    """Pooled, per run of ``run_size`` consecutive clips (a last, shorter run is left out) and per clip."""
    runs = [crowd_share(clips[i : i + run_size], rates) for i in range(0, len(clips) - run_size + 1, run_size)]
    per_clip = [crowd_share([clip], rates) for clip in clips]
    pooled = crowd_share(clips, rates)

    def mean(rows: list[dict[str, Any]], key: str) -> float | None:
        values = [row[key] for row in rows if row[key] is not None]
        return round(sum(values) / len(values), 2) if values else None

    return {
        "rates_source": rates.source,
        "recall": {label: round(value, 4) for label, value in rates.recall().items()},
        "pooled": pooled,
        "run_size": run_size,
        "runs": runs,
        "runs_covering": sum(run["contains_truth"] for run in runs),
        "clips_covering": sum(clip["contains_truth"] for clip in per_clip),
        "per_clip": per_clip,
        "mean_run_error_points": {
            "raw": mean(runs, "raw_error_points"),
            "corrected": mean(runs, "corrected_error_points"),
        },
        "mean_clip_error_points": {
            "raw": mean(per_clip, "raw_error_points"),
            "corrected": mean(per_clip, "corrected_error_points"),
        },
        "pooled_within_target": pooled["corrected_error_points"] is not None
        and pooled["corrected_error_points"] <= POOLED_TARGET_POINTS,
        "run_coverage_meets_target": bool(runs)
        and sum(r["contains_truth"] for r in runs) >= RUN_COVERAGE_TARGET * len(runs),
    }


def format_report(report: dict[str, Any]) -> list[str]:
    """The share report as lines for people."""

    def row(name: str, share: dict[str, Any]) -> str:
        interval = (
            f"[{share['low_pct']:.2f}, {share['high_pct']:.2f}]"
            if share["low_pct"] is not None
            else "(none: rates unfit)"
        )
        return (
            f"  {name}: true {share['true_pct']:.2f} %, raw {share['raw_pct']} % (error {share['raw_error_points']}), "
            f"corrected {share['corrected_pct']} % {interval} (error {share['corrected_error_points']}), "
            f"covers the truth: {'yes' if share['contains_truth'] else 'NO'}; {share['people']} people counted of "
            f"{share['truth_people']}"
        )

    pooled, runs = report["pooled"], report["runs"]
    lines = [
        f"female share, raw (classify and count) vs corrected for the bundle's decision rates "
        f"(recall {report['recall']}; {report['rates_source']}); errors in points:",
        row(f"pooled over {len(report['per_clip'])} clips", pooled),
    ]
    lines += [row(f"run {i + 1} ({report['run_size']} clips)", run) for i, run in enumerate(runs)]
    lines.append(
        f"  pooled corrected error {pooled['corrected_error_points']} points (target ≤ {POOLED_TARGET_POINTS}: "
        f"{'met' if report['pooled_within_target'] else 'MISSED'}; at {pooled['people']} people chance alone keeps "
        f"it within ±{pooled['half_interval_points']} only 19 times in 20: the 95 % interval's half-width); "
        f"{report['runs_covering']} of {len(runs)} "
        f"{report['run_size']}-clip runs' intervals contain the truth (target ≥ {RUN_COVERAGE_TARGET:.0%}: "
        f"{'met' if report['run_coverage_meets_target'] else 'MISSED'}); per clip {report['clips_covering']} of "
        f"{len(report['per_clip'])}; mean error per run {report['mean_run_error_points']}, per clip "
        f"{report['mean_clip_error_points']}"
    )
    return lines


if __name__ == "__main__":  # run by mistake: say what it is, as the other scripts say what is wrong (exit 2)
    import sys

    print(
        "bench/share_runs.py is a module that bench/edge_bench.py imports (its female-share figures), not a command: "
        "run bench/edge_bench.py",
        file=sys.stderr,
    )
    sys.exit(2)
