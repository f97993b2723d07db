"""The corrected female share: recovers a known share where classify-and-count is biased, intervals that cover
the truth and widen with fewer people or shakier rates, and each bundle's decisions corrected with its rates."""

from __future__ import annotations

import numpy as np
import pytest
from footfall.core.quantify import DecisionCounts, DecisionRates, corrected_share
from pydantic import ValidationError

# Women are read as men twice as often as men as women, and go unknown more often: the counted share leans male.
LEANS_MALE = DecisionRates(
    counts={"female": {"female": 400, "male": 50, "unknown": 50}, "male": {"female": 25, "male": 450, "unknown": 25}}
)
LEANS_FEMALE = DecisionRates(
    counts={"female": {"female": 460, "male": 15, "unknown": 25}, "male": {"female": 60, "male": 400, "unknown": 40}}
)


def crowd(women: int, men: int, rates: DecisionRates) -> DecisionCounts:
    """The decisions a crowd gets on average: each true gender split by its rates (rounded)."""
    split = women * rates.rates()[0] + men * rates.rates()[1]
    female, male = (round(float(v)) for v in split[:2])
    return DecisionCounts(female, male, women + men - female - male)


def test_the_correction_recovers_a_known_share_that_counting_gets_wrong() -> None:
    estimate = corrected_share([(crowd(550, 450, LEANS_MALE), LEANS_MALE)])
    assert estimate.people == 1000
    assert estimate.share == pytest.approx(0.55, abs=0.005)
    assert estimate.raw is not None and estimate.raw < 0.53  # classify and count leans male by ~3 points
    assert estimate.contains(0.55) and not estimate.contains(estimate.raw)


def test_intervals_widen_as_counts_shrink() -> None:
    widths = []
    for people in (2000, 200, 20):
        estimate = corrected_share([(crowd(people // 2, people // 2, LEANS_MALE), LEANS_MALE)])
        assert estimate.low is not None and estimate.high is not None
        widths.append(estimate.high - estimate.low)
    assert widths[0] < widths[1] < widths[2]
    assert widths[0] < 0.07 and widths[2] > 0.2


def test_intervals_widen_when_the_rates_rest_on_fewer_validation_people() -> None:
    few = DecisionRates(
        counts={t: {d: max(1, n // 10) for d, n in row.items()} for t, row in LEANS_MALE.counts.items()}
    )
    sure = corrected_share([(crowd(500, 500, LEANS_MALE), LEANS_MALE)])
    shaky = corrected_share([(crowd(500, 500, LEANS_MALE), few)])
    assert shaky.high - shaky.low > 1.5 * (sure.high - sure.low)  # type: ignore[operator]


def test_buckets_of_two_bundles_are_corrected_with_their_own_rates() -> None:
    # 300 women and 200 men through each bundle: 60 % women in all.
    groups = [(crowd(300, 200, LEANS_MALE), LEANS_MALE), (crowd(300, 200, LEANS_FEMALE), LEANS_FEMALE)]
    own = corrected_share(groups)
    assert own.share == pytest.approx(0.60, abs=0.005)
    wrong = corrected_share([(counts, LEANS_MALE) for counts, _ in groups])  # one bundle's rates for both
    assert abs(wrong.share - 0.60) > 0.02  # type: ignore[operator]


def test_the_interval_covers_this_crowds_share_at_least_nine_times_in_ten() -> None:
    rng = np.random.default_rng(7)
    rates = LEANS_MALE.rates()
    covered, trials = 0, 120
    for _ in range(trials):
        people = int(rng.integers(40, 400))
        women = int(rng.binomial(people, rng.uniform(0.3, 0.7)))
        decided = rng.multinomial(women, rates[0]) + rng.multinomial(people - women, rates[1])
        estimate = corrected_share([(DecisionCounts(*(int(v) for v in decided)), LEANS_MALE)])
        assert estimate.fits
        covered += estimate.contains(women / people)
    assert covered / trials >= 0.9


def test_undecided_people_count_through_their_expected_split() -> None:
    # 20 of 100 unknown, as the rates make them: women go unknown twice as often, so they lift the share.
    seen = crowd(60, 40, LEANS_MALE)
    assert seen.unknown > 0
    assert corrected_share([(seen, LEANS_MALE)]).share == pytest.approx(0.60, abs=0.01)
    few = corrected_share([(DecisionCounts(0, 0, 3), LEANS_MALE)])  # three undecided people say little
    assert few.people == 3 and few.raw is None
    assert few.low is not None and few.high is not None and few.high - few.low > 0.5


def test_nobody_seen_gives_no_share() -> None:
    nobody = corrected_share([(DecisionCounts(0, 0, 0), LEANS_MALE)])
    assert (nobody.share, nobody.low, nobody.high, nobody.people, nobody.raw) == (None, None, None, 0, None)


def test_decisions_the_rates_cannot_explain_give_no_share_rather_than_a_confident_one() -> None:
    # Everyone unknown, where the bundle leaves 5-10 % unknown: a camera unlike the validation clips.
    misfit = corrected_share([(DecisionCounts(0, 0, 30), LEANS_MALE)])
    assert (misfit.share, misfit.low, misfit.high, misfit.fits, misfit.people) == (None, None, None, False, 30)


def test_one_question_gets_one_answer() -> None:
    groups = [(DecisionCounts(40, 50, 10), LEANS_MALE)]
    assert corrected_share(groups) == corrected_share(groups)


@pytest.mark.parametrize(
    "counts",
    [
        {"female": {"female": 1, "male": 1, "unknown": 1}},
        {"female": {"female": 1, "male": 1}, "male": {"female": 1, "male": 1, "unknown": 1}},
        {"female": {"female": 0, "male": 0, "unknown": 0}, "male": {"female": 1, "male": 1, "unknown": 1}},
        {"female": {"female": -1, "male": 1, "unknown": 1}, "male": {"female": 1, "male": 1, "unknown": 1}},
    ],
)
def test_incomplete_rates_are_refused(counts: dict) -> None:
    with pytest.raises(ValidationError):
        DecisionRates(counts=counts)


def _interval_over_rate_draws(counts: DecisionCounts, rates: DecisionRates, draws: int = 400) -> tuple[float, float]:
    """The brute-force reference: the posterior of the share for each of ``draws`` draws of the rates from their
    Dirichlet posterior (Jeffreys' prior), averaged; the estimator folds the same uncertainty into its
    likelihood's covariance in one pass instead."""
    rng = np.random.default_rng(0)
    grid = np.linspace(0.0, 1.0, 801)
    observed = counts.as_array()
    size = observed.sum()
    total = np.zeros_like(grid)
    for _ in range(draws):
        women, men = (rng.dirichlet(row + 0.5)[:2] for row in rates.matrix())
        mean = size * (grid[:, None] * women + (1 - grid[:, None]) * men)
        cov = size * (
            grid[:, None, None] * (np.diag(women) - np.outer(women, women))
            + (1 - grid[:, None, None]) * (np.diag(men) - np.outer(men, men))
        ) + 0.5 * np.eye(2)
        residual = observed[:2] - mean
        solved = np.linalg.solve(cov, residual[..., None])[..., 0]
        loglik = -0.5 * ((residual * solved).sum(axis=1) + np.log(np.linalg.det(cov)))
        weights = np.exp(loglik - loglik.max())
        total += weights / weights.sum()
    cumulative = np.cumsum(total / draws)
    low, high = np.interp([0.025, 0.975], cumulative, grid)
    return float(low), float(high)


@pytest.mark.parametrize(("women", "men"), [(3, 5), (12, 8), (60, 40), (300, 300), (1500, 900)])
def test_the_interval_agrees_with_averaging_over_draws_of_the_rates(women: int, men: int) -> None:
    counts = crowd(women, men, LEANS_MALE)
    estimate = corrected_share([(counts, LEANS_MALE)])
    low, high = _interval_over_rate_draws(counts, LEANS_MALE)
    assert estimate.low is not None and estimate.high is not None
    assert abs(estimate.low - low) < 0.01 and abs(estimate.high - high) < 0.01, (estimate, low, high)
