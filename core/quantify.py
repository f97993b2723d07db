"""Quantification: the female share of a crowd, corrected for the classifier's mistakes, with a 95 % interval.

Counting the people decided female (classify and count) is biased whenever the classifier's errors are: when
women are read as men more often than men as women, or go ``unknown`` more often, the counted share leans
male however many people pass (Forman 2008). The correction needs the classifier's **decision rates**: how
often a true woman, and a true man, is decided female, male or unknown by the edge's per-person decision.
A bundle's manifest carries them, counted on walk-by clips of validation faces through the edge pipeline
(bench/calibrate_tracks.py).

A crowd with a share π of women is then decided female, male and unknown with the probabilities
``π · rates[woman] + (1 − π) · rates[man]``: a two-part mixture whose weight π is estimated by maximum
likelihood from the decisions seen. EM on that mixture is the prior re-estimation of Saerens, Latinne and
Decaestecker (2002), here with hard decisions; it stays within [0, 1] by construction, and unlike adjusted
classify and count it uses every decision, ``unknown`` included: undecided people count through their
expected split, they are never dropped. Decisions made by different bundles (a fleet mid-upgrade) are
separate groups of one likelihood, each with its own rates.

The interval holds both sources of error: it is the central 95 % of the share's posterior (uniform prior,
the decisions' multinomial likelihood under the mixture) averaged over draws of the rates from their own
posterior given the validation counts (Dirichlet with Jeffreys' prior). So it widens when few people were
seen, and when the rates rest on few validation people; a crowd whose decisions say little (all unknown)
gets a wide interval, never a confident one. It treats the people seen as a sample of the zone's traffic,
so for the very people who passed it is somewhat wide: erring on the honest side. The rate draws are
seeded, so one question always gets one answer.

numpy only: the edge (``footfall process``) and the server both use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Final

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

LABELS: Final = ("female", "male")
DECISIONS: Final = ("female", "male", "unknown")
REPLICATES: Final = 400
LEVEL: Final = 0.95
_EM_STEPS: Final = 400
_EM_TOLERANCE: Final = 1e-9
_GRID: Final = np.linspace(0.0, 1.0, 401)  # shares the interval is read from (0.25-point steps)


class DecisionRates(BaseModel):
    """How the edge's per-person decision answers each true gender: counts of people per true label and
    decision, measured on walk-by clips of validation faces through the edge pipeline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    counts: dict[str, dict[str, Annotated[int, Field(ge=0, le=10**9)]]] = Field(
        description="True label → decision (female, male, unknown) → people, e.g. "
        "{'female': {'female': 410, 'male': 31, 'unknown': 22}, 'male': {...}}."
    )
    source: str = Field(default="", max_length=300, description="Where and how the counts were measured.")

    @model_validator(mode="after")
    def _complete(self) -> DecisionRates:
        if set(self.counts) != set(LABELS):
            raise ValueError(f"counts must have one row per true label {list(LABELS)}")
        for label, row in self.counts.items():
            if set(row) != set(DECISIONS):
                raise ValueError(f"counts[{label!r}] must count each decision {list(DECISIONS)}")
            if sum(row.values()) == 0:
                raise ValueError(f"counts[{label!r}] has no people: its rates are unknown")
        return self

    def matrix(self) -> np.ndarray:
        """Counts as a (true label, decision) array, rows in LABELS order, columns in DECISIONS order."""
        return np.array([[self.counts[t][d] for d in DECISIONS] for t in LABELS], float)

    def rates(self) -> np.ndarray:
        """Each row of :meth:`matrix` as proportions: P(decision | true label)."""
        counts = self.matrix()
        rates: np.ndarray = counts / counts.sum(axis=1, keepdims=True)
        return rates

    def recall(self) -> dict[str, float]:
        """Per true label, the share decided as that label."""
        rates = self.rates()
        return {label: float(rates[i, i]) for i, label in enumerate(LABELS)}


@dataclass(frozen=True)
class DecisionCounts:
    """People of one group (one bundle's decisions) by decision."""

    female: int
    male: int
    unknown: int

    @property
    def people(self) -> int:
        return self.female + self.male + self.unknown

    def as_array(self) -> np.ndarray:
        return np.array([self.female, self.male, self.unknown], float)


@dataclass(frozen=True)
class ShareEstimate:
    """The estimated share of women among ``people`` and its 95 % interval; all None when nobody was seen, or
    when the decisions do not fit the rates (``fits`` False: e.g. far more unknown than the bundle ever leaves
    on validation clips, a camera unlike them), rather than a confident answer to the wrong model. ``raw``
    is classify and count, female / (female + male), for comparison (None without decisions)."""

    share: float | None
    low: float | None
    high: float | None
    people: int
    raw: float | None
    fits: bool = True  # False: the decisions are too unlike any mix of the rates to correct with them

    def contains(self, value: float) -> bool:
        return self.low is not None and self.high is not None and self.low <= value <= self.high


def _em(counts: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Maximum-likelihood share of women per replicate.

    ``counts``: (R, G, 3) decisions per replicate and group; ``rates``: (R, G, 2, 3) P(decision | truth).
    """
    people = counts.sum(axis=(1, 2))
    share = np.full(counts.shape[0], 0.5)
    women, men = rates[:, :, 0, :], rates[:, :, 1, :]
    for _ in range(_EM_STEPS):
        a = share[:, None, None] * women
        b = (1.0 - share)[:, None, None] * men
        total = a + b
        # P(woman | decision, share): a decision neither true gender makes (rate 0 for both) tells nothing.
        posterior = np.divide(a, total, out=np.full_like(total, 0.5), where=total > 0)
        updated = np.divide(
            (counts * posterior).sum(axis=(1, 2)), people, out=np.full_like(share, 0.5), where=people > 0
        )
        converged = np.max(np.abs(updated - share)) < _EM_TOLERANCE
        share = updated
        if converged:
            break
    return share


def corrected_share(
    groups: Sequence[tuple[DecisionCounts, DecisionRates]],
    *,
    replicates: int = REPLICATES,
    seed: int = 0,
) -> ShareEstimate:
    """The share of women among the people of ``groups`` (each: the decisions of one bundle and that bundle's
    rates), corrected for the classifier's mistakes, with a 95 % bootstrap interval (see the module)."""
    groups = [(counts, rates) for counts, rates in groups if counts.people > 0]
    people = sum(counts.people for counts, _ in groups)
    female = sum(counts.female for counts, _ in groups)
    decided = female + sum(counts.male for counts, _ in groups)
    raw = female / decided if decided else None
    if not groups:
        return ShareEstimate(None, None, None, 0, raw)
    observed = np.stack([counts.as_array() for counts, _ in groups])  # (G, 3)
    validation = np.stack([rates.matrix() for _, rates in groups])  # (G, 2, 3)

    point_rates = validation / validation.sum(axis=2, keepdims=True)
    point = float(_em(observed[None], point_rates[None])[0])
    if not _fits(observed, point_rates, point):
        return ShareEstimate(None, None, None, people, raw, fits=False)
    low, high = _interval(observed, validation, replicates, seed)
    return ShareEstimate(point, min(low, point), max(high, point), people, raw)


def _fits(observed: np.ndarray, rates: np.ndarray, share: float, alpha_z: float = 4.265) -> bool:
    """Likelihood-ratio (G) test of the decisions against the best mix of the rates at the 0.001 % level
    (``alpha_z`` its normal quantile; the chi-square quantile by Wilson and Hilferty's approximation). The
    level is strict because the test is too eager on small expected counts: it is there to catch a crowd
    the rates cannot explain at all, not a rare draw."""
    expected = observed.sum(axis=1, keepdims=True) * (share * rates[:, 0] + (1.0 - share) * rates[:, 1])
    seen = observed > 0
    statistic = 2.0 * float((observed[seen] * np.log(observed[seen] / np.maximum(expected[seen], 1e-12))).sum())
    df = 2 * observed.shape[0] - 1
    critical = df * (1 - 2 / (9 * df) + alpha_z * (2 / (9 * df)) ** 0.5) ** 3
    return bool(statistic <= critical)


def _interval(observed: np.ndarray, validation: np.ndarray, replicates: int, seed: int) -> tuple[float, float]:
    """The central 95 % of the posterior of this crowd's share of women: uniform prior, the likelihood of the
    decisions seen given the crowd's women and men (normal approximation of the sum of two multinomials), and
    the rates integrated over their posterior by ``replicates`` draws."""
    rng = np.random.default_rng(seed)
    drawn = np.empty((replicates, *validation.shape))  # (R, G, 2, 3)
    for g in range(validation.shape[0]):
        for t in range(2):
            drawn[:, g, t, :] = rng.dirichlet(validation[g, t] + 0.5, size=replicates)
    # For each share on the grid: the mean and covariance of the (female, male) decisions of a crowd of this
    # size with that share of women, in each group (unknown is what is left, so two of three suffice).
    share = _GRID[None, :, None, None]  # (1, P, 1, 1)
    sizes = observed.sum(axis=1)[None, None, :, None]  # (1, 1, G, 1)
    women, men = drawn[:, None, :, 0, :2], drawn[:, None, :, 1, :2]  # (R, 1, G, 2)
    mean = sizes * (share * women + (1.0 - share) * men)  # (R, P, G, 2)

    def spread(rates: np.ndarray) -> np.ndarray:  # multinomial covariance of one person's two decisions
        covariance: np.ndarray = rates[..., :, None] * (np.eye(2) - rates[..., None, :])
        return covariance

    cov = sizes[..., None] * (share[..., None] * spread(women) + (1.0 - share[..., None]) * spread(men))
    cov = cov + 0.5 * np.eye(2)  # counts are whole numbers: keep a crowd whose decisions are certain finite
    residual = observed[None, None, :, :2] - mean
    a, b, d = cov[..., 0, 0], cov[..., 0, 1], cov[..., 1, 1]
    det = a * d - b * b
    x, y = residual[..., 0], residual[..., 1]
    mahalanobis = (d * x * x - 2 * b * x * y + a * y * y) / det
    loglik = (-0.5 * (mahalanobis + np.log(det))).sum(axis=2)  # (R, P)
    weights = np.exp(loglik - loglik.max(axis=1, keepdims=True))
    posterior = (weights / weights.sum(axis=1, keepdims=True)).mean(axis=0)
    cumulative = np.cumsum(posterior)
    tail = (1.0 - LEVEL) / 2
    low, high = np.interp([tail, 1.0 - tail], cumulative, _GRID)
    return float(low), float(high)
