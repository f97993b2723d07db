"""The corrected female share of a quiet zone, where the server withholds most hours' gender split: estimated
from the shown splits alone (as before schema revision 0014) and with the withheld ones (footfall.core.
withheld_splits), against the truth.

Each trial is a week of hourly cells (168), each of Poisson(people per hour) people, each a woman with the given
share, decided by the default bundle's decision rates (its manifest); released as the server does at k = 5:
cells of 1 to 4 people not at all, a split only where each of female, male and unknown is 0 or at least k. Per
setting: how many trials got a share, the mean absolute error in points, and how often the 95 % interval
contains the week's true share.

    .venv/bin/python bench/withheld_splits.py              # 20 weeks per setting
    .venv/bin/python bench/withheld_splits.py --weeks 100  # steadier figures
"""

from __future__ import annotations

import argparse

import numpy as np
from footfall.core.bundle import read_manifest
from footfall.core.paths import DEFAULT_GENDER_BUNDLE
from footfall.core.quantify import DecisionRates, ShareEstimate, estimate_many
from footfall.core.withheld_splits import SplitCells

K = 5


def _rates() -> DecisionRates:
    classifier = read_manifest(DEFAULT_GENDER_BUNDLE).classifier
    if classifier is None or classifier.decision_rates is None:
        raise SystemExit(f"{DEFAULT_GENDER_BUNDLE} carries no decision rates")
    return classifier.decision_rates


def week(
    rng: np.random.Generator, rates: np.ndarray, per_hour: float, share: float, k: int = K
) -> tuple[np.ndarray, SplitCells, float]:
    """One week of hourly cells released at ``k`` as the server does: the shown decisions, the cells by size, the
    true share of the released people (``rates``: P(decision | woman), P(decision | man)). Also the simulation
    behind tests/core/test_withheld_splits.py."""
    people = rng.poisson(per_hour, 24 * 7)
    people = people[people >= k]  # cells of 1 to k-1 are withheld whole: they say nothing
    women = rng.binomial(people, share)
    decided = np.array(
        [rng.multinomial(w, rates[0]) + rng.multinomial(n - w, rates[1]) for w, n in zip(women, people, strict=True)]
    ).reshape(-1, 3)
    shown = np.all((decided == 0) | (decided >= k), axis=1)
    sizes: dict[int, list[int]] = {}
    for n, is_shown in zip(people, shown, strict=True):
        sizes.setdefault(int(n), [0, 0])[0 if is_shown else 1] += 1
    cells = SplitCells.of([(0, 0, n, a, b) for n, (a, b) in sizes.items()], k)
    return decided[shown].sum(axis=0), cells, float(women.sum() / max(people.sum(), 1))


def summary(estimates: list[ShareEstimate], truths: list[float]) -> str:
    answered = [(e, t) for e, t in zip(estimates, truths, strict=True) if e.share is not None]
    if not answered:
        return f"answered 0/{len(estimates)}"
    error = np.mean([abs(e.share - t) for e, t in answered]) * 100  # type: ignore[operator]
    covered = np.mean([e.contains(t) for e, t in answered])
    return f"answered {len(answered):3d}/{len(estimates)}  error {error:4.1f} pts  interval covers {covered:4.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weeks", type=int, default=20, help="Weeks simulated per setting (default 20).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rates = _rates()
    matrix = rates.matrix()[None]
    rng = np.random.default_rng(args.seed)
    print(f"rates: {rates.source or 'the default bundle'}; k = {K}; {args.weeks} weeks of 168 hours per setting")
    for per_hour in (6, 10, 15, 30, 60):
        for share in (0.3, 0.5, 0.7):
            alone, counted, truths = [], [], []
            for _ in range(args.weeks):
                shown, cells, truth = week(rng, rates.rates(), per_hour, share)
                observed = shown[None, None].astype(float)
                alone += estimate_many(observed, matrix)
                counted += estimate_many(observed, matrix, cells)
                truths.append(truth)
            print(f"{per_hour:3d} people/hour, {share:.0%} women")
            print(f"    shown splits alone:     {summary(alone, truths)}")
            print(f"    withheld splits counted: {summary(counted, truths)}")


if __name__ == "__main__":
    main()
