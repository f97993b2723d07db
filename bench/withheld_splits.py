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
    .venv/bin/python bench/withheld_splits.py --late 0.2   # a fifth of the hours get late people

With ``--late``, that share of hours gets 5 to 10 late people after readers saw it (an agent back from an outage).
The server moves a seen cell only in steps of k, and a split readers saw withheld stays withheld whatever comes
(footfall.server.release.keep_withheld). Such a split is estimated at the people the cell showed when readers saw it
withheld, as the server does; the bench also prints the estimate that reads it at the cell's later size, as the
server did before schema revision 0017.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from footfall.core.bundle import read_manifest
from footfall.core.paths import DEFAULT_GENDER_BUNDLE
from footfall.core.quantify import DecisionRates, ShareEstimate, estimate_many
from footfall.core.withheld_splits import SplitCells

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli import HelpFormatter, fraction, positive_int

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


def late_week(
    rng: np.random.Generator, rates: np.ndarray, per_hour: float, share: float, late: float, k: int = K
) -> tuple[np.ndarray, SplitCells, SplitCells, float]:
    """As :func:`week`, with a ``late`` share of the hours getting 5 to 10 late people after readers saw them, released
    as the server releases a seen cell (every value readers saw moves by 0 or at least k, a withheld split stays
    withheld): the shown decisions, the cells with kept splits at the size readers saw them withheld (the server's
    estimate) and at their later size (the one before), and the true share of the released people."""

    def decide(women: int, people: int) -> np.ndarray:
        return rng.multinomial(women, rates[0]) + rng.multinomial(people - women, rates[1])

    def shows(split: np.ndarray) -> bool:
        return bool(np.all((split == 0) | (split >= k)))

    shown = np.zeros(3, np.int64)
    seen_size: dict[int, list[int]] = {}
    later_size: dict[int, list[int]] = {}
    women_in, people_in = 0, 0
    for _ in range(24 * 7):
        people = int(rng.poisson(per_hour))
        women = int(rng.binomial(people, share))
        split = decide(women, people)
        extra = int(rng.integers(k, 2 * k + 1)) if rng.random() < late else 0
        extra_women = int(rng.binomial(extra, share))
        extra_split = decide(extra_women, extra)
        if people < k:  # nobody read it: the late people are released with it by the rule, as a new cell
            people, women, split = people + extra, women + extra_women, split + extra_split
            extra, extra_women, extra_split = 0, 0, np.zeros(3, np.int64)
            if people < k:
                continue
        women_in, people_in = women_in + women + extra_women, people_in + people + extra
        if not shows(split):  # kept withheld at any later size
            seen_size.setdefault(people, [0, 0])[1] += 1
            later_size.setdefault(people + extra, [0, 0])[1] += 1
            continue
        moves = extra and shows(split + extra_split) and all(v == 0 or v >= k for v in extra_split)
        size, decisions = (people + extra, split + extra_split) if moves else (people, split)
        shown += decisions
        for sizes in (seen_size, later_size):
            sizes.setdefault(size, [0, 0])[0] += 1

    def cells(sizes: dict[int, list[int]]) -> SplitCells:
        return SplitCells.of([(0, 0, n, a, b) for n, (a, b) in sizes.items()], k)

    return shown, cells(seen_size), cells(later_size), women_in / max(people_in, 1)


def summary(estimates: list[ShareEstimate], truths: list[float]) -> str:
    answered = [(e, t) for e, t in zip(estimates, truths, strict=True) if e.share is not None]
    if not answered:
        return f"answered 0/{len(estimates)}"
    error = np.mean([abs(e.share - t) for e, t in answered]) * 100  # type: ignore[operator]
    covered = np.mean([e.contains(t) for e, t in answered])
    return f"answered {len(answered):3d}/{len(estimates)}  error {error:4.1f} pts  interval covers {covered:4.0%}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--weeks", type=positive_int, default=20, help="Weeks simulated per setting.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the simulation.")
    parser.add_argument(
        "--late", type=fraction, default=None, help="Share of hours that get late people (0-1); see above."
    )
    args = parser.parse_args(argv)
    rates = _rates()
    matrix = rates.matrix()[None]
    rng = np.random.default_rng(args.seed)
    if args.late is not None:
        late_main(rng, rates, args.weeks, args.late)
        return
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


def late_main(rng: np.random.Generator, rates: DecisionRates, weeks: int, late: float) -> None:
    matrix = rates.matrix()[None]
    print(f"rates: {rates.source or 'the default bundle'}; k = {K}; {weeks} weeks of 168 hours per setting; ")
    print(f"{late:.0%} of the hours get 5 to 10 late people after readers saw them")
    for per_hour in (6, 10, 15, 30):
        for share in (0.3, 0.5, 0.7):
            at_seen, at_later, truths = [], [], []
            for _ in range(weeks):
                shown, seen_cells, later_cells, truth = late_week(rng, rates.rates(), per_hour, share, late)
                observed = shown[None, None].astype(float)
                at_seen += estimate_many(observed, matrix, seen_cells)
                at_later += estimate_many(observed, matrix, later_cells)
                truths.append(truth)
            print(f"{per_hour:3d} people/hour, {share:.0%} women")
            print(f"    kept splits at the size readers saw: {summary(at_seen, truths)}")
            print(f"    kept splits at their later size:     {summary(at_later, truths)}")


if __name__ == "__main__":
    main()
