"""Latency measurement shared by the export reports, `footfall doctor` and `bench/export_bench.py`.

Candidates are timed interleaved (A, B, A, B, ...) so that a busy machine slows them alike and the
comparison stays fair; the median is reported.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable


def interleaved_median_ms(
    runs: dict[str, Callable[[], object]], *, warmup: int = 2, min_rounds: int = 7, min_seconds: float = 1.5
) -> dict[str, float]:
    """Median wall time in milliseconds of each callable, measured in alternating rounds."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    started = time.perf_counter()
    rounds = 0
    while rounds < min_rounds or (time.perf_counter() - started < min_seconds and rounds < 1000):
        for name, run in runs.items():
            begin = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - begin) * 1000.0)
        rounds += 1
    return {name: round(sorted(values)[len(values) // 2], 3) for name, values in times.items()}


def median_ms(run: Callable[[], object], *, warmup: int = 2, min_rounds: int = 7, min_seconds: float = 1.5) -> float:
    """Median wall time of one callable in milliseconds."""
    return interleaved_median_ms({"run": run}, warmup=warmup, min_rounds=min_rounds, min_seconds=min_seconds)["run"]


def load_average() -> float | None:
    """1-minute load average when the latency was measured: figures taken on a busy box read high."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None
