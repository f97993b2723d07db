"""Confidence intervals for the numbers the ad-placement ranking is built on."""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion: well-behaved for small counts and shares near 0 or 1."""
    if trials <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= trials:
        raise ValueError(f"successes={successes} must lie in [0, trials={trials}]")
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return (low, high)


def poisson_mean_interval(total: int, occurrences: int, z: float = Z95) -> tuple[float, float]:
    """Approximate interval for a mean count per occurrence, treating the total as Poisson."""
    if occurrences <= 0:
        return (0.0, 0.0)
    half = z * math.sqrt(max(total, 1)) / occurrences
    mean = total / occurrences
    return (max(0.0, mean - half), mean + half)
