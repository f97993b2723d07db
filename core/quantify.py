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

The interval holds both sources of error: it is the central 95 % of the posterior of this crowd's share
(uniform prior; the likelihood of the decisions seen given the crowd's women and men, a normal
approximation of the sum of two multinomials), with the rates' uncertainty (Dirichlet with Jeffreys' prior
on the validation counts) folded into that likelihood's covariance: the same first two moments as averaging
over draws of the rates, in one pass (tests/core/test_quantify.py checks it against 400 draws). So it
widens when few people were seen, and when the rates rest on few validation people; a crowd whose decisions
say little gets a wide interval, never a confident one; and it is deterministic.

A server releases a cell's split only where each part is 0 or at least k, so its shown splits are the even hours:
given the sizes of the cells whose split it withheld, :func:`estimate_many` counts those too, through the chance
that a split of that size is withheld (footfall.core.withheld_splits).

:func:`estimate_many` answers many crowds at once (a server's 90-day hourly series is 2,160 of them, an
ad-placement ranking hundreds): vectorised, a few milliseconds for all; :func:`corrected_share` is one.

numpy only: the edge (``footfall process``) and the server both use it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Annotated, Final

import numpy as np
from footfall.core.withheld_splits import SplitCells, shown_moments, withheld_probability
from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

LABELS: Final = ("female", "male")
DECISIONS: Final = ("female", "male", "unknown")
LEVEL: Final = 0.95
_EM_STEPS: Final = 400
_EM_TOLERANCE: Final = 1e-9
_COARSE: Final = np.linspace(0.0, 1.0, 21)  # 5-point steps: where each posterior lies
_FINE: Final = np.linspace(0.0, 1.0, 33)  # across that stretch: the interval is read here
# Shares at which the chances of withheld splits are worked out per distinct cell size; crowds read them in between
# (a cubic kept between its neighbours: with the rates' posterior mean a log-chance is smooth in the share).
_TABULATED: Final = np.linspace(0.0, 1.0, 101)
# Cell sizes up to this many times k are each worked out (below 3k a split's chance jumps from size to size: a split
# into three parts of k or more first fits at 3k); larger ones about 3 % apart, read in between.
_EXACT_SIZES: Final = 4
_TABULATED_MOMENTS: Final = np.linspace(0.0, 1.0, 41)  # shown splits' moments, smooth in the share
_CHUNK: Final = 512  # crowds per vectorised block: bounds memory at about (chunk × grid × groups × 4) floats
# (crowds with withheld splits are estimated together: about crowds × (101 + distinct sizes × groups) floats)


class DecisionRates(BaseModel):
    """How the edge's per-person decision answers each true gender: counts of people per true label and
    decision, measured on walk-by clips of validation faces through the edge pipeline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    counts: dict[str, dict[str, Annotated[int, Strict(), Field(ge=0, le=10**9)]]] = Field(
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
    # Each replicate stops at its own step, so its answer does not depend on what else is estimated with it (a
    # series' total moved its points' shares in the 9th decimal when it stopped the whole block later).
    done = np.zeros(share.shape, bool)
    for _ in range(_EM_STEPS):
        a = share[:, None, None] * women
        b = (1.0 - share)[:, None, None] * men
        total = a + b
        # P(woman | decision, share): a decision neither true gender makes (rate 0 for both) tells nothing.
        posterior = np.divide(a, total, out=np.full_like(total, 0.5), where=total > 0)
        updated = np.divide(
            (counts * posterior).sum(axis=(1, 2)), people, out=np.full_like(share, 0.5), where=people > 0
        )
        updated = np.where(done, share, updated)
        done |= np.abs(updated - share) < _EM_TOLERANCE
        share = updated
        if done.all():
            break
    return share


def corrected_share(groups: Sequence[tuple[DecisionCounts, DecisionRates]]) -> ShareEstimate:
    """The share of women among the people of ``groups`` (each: the decisions of one bundle and that bundle's
    rates), corrected for the classifier's mistakes, with its 95 % interval (see the module)."""
    groups = [(counts, rates) for counts, rates in groups if counts.people > 0]
    female = sum(counts.female for counts, _ in groups)
    decided = female + sum(counts.male for counts, _ in groups)
    raw = female / decided if decided else None
    if not groups:
        return ShareEstimate(None, None, None, 0, raw)
    observed = np.stack([counts.as_array() for counts, _ in groups])[None]  # (1, G, 3)
    validation = np.stack([rates.matrix() for _, rates in groups])  # (G, 2, 3)
    [estimate] = estimate_many(observed, validation)
    return ShareEstimate(estimate.share, estimate.low, estimate.high, estimate.people, raw, estimate.fits)


def estimate_many(observed: np.ndarray, validation: np.ndarray, cells: SplitCells | None = None) -> list[ShareEstimate]:
    """:func:`corrected_share` of many crowds decided by the same bundles: ``observed`` (crowds, bundles, 3)
    decisions (female, male, unknown), ``validation`` (bundles, 2, 3) each bundle's :meth:`DecisionRates.matrix`.
    ``raw`` is left None (the caller has the raw counts).

    ``cells``: where ``observed`` holds only the released splits of a server's cells, the sizes of the cells whose
    split was shown and of those whose split was withheld (footfall.core.withheld_splits); a crowd with withheld
    splits is estimated with them, and its ``people`` counts theirs too."""
    observed = np.asarray(observed, float)
    validation = np.asarray(validation, float)
    parts = [
        _estimate_block(observed[offset : offset + _CHUNK], validation) for offset in range(0, len(observed), _CHUNK)
    ]
    share, low, high, fits = (np.concatenate([part[i] for part in parts]) for i in range(4))
    people = observed.sum(axis=(1, 2)).astype(int)
    if cells is not None and cells.withheld.any():
        # All crowds with withheld splits at once: their chances are worked out per distinct cell size.
        crowds = observed.shape[0]
        rows = np.flatnonzero(np.bincount(cells.crowd, weights=cells.withheld, minlength=crowds) > 0)
        people = people + np.bincount(cells.crowd, weights=cells.withheld * cells.people, minlength=crowds).astype(int)
        share[rows], low[rows], high[rows], fits[rows] = _censored(observed[rows], validation, cells.select(rows))
    # Plain Python values, read out whole (a server's series is thousands of crowds).
    seen = (observed.sum(axis=(1, 2)) > 0).tolist()
    counted, fitted = people.tolist(), fits.tolist()
    points, lows, highs = share.tolist(), np.minimum(low, share).tolist(), np.maximum(high, share).tolist()
    out: list[ShareEstimate] = []
    for c in range(observed.shape[0]):
        if not seen[c]:
            out.append(ShareEstimate(None, None, None, counted[c], None))
        elif not fitted[c]:
            out.append(ShareEstimate(None, None, None, counted[c], None, fits=False))
        else:
            out.append(ShareEstimate(points[c], lows[c], highs[c], counted[c], None))
    return out


def _estimate_block(observed: np.ndarray, validation: np.ndarray) -> tuple[np.ndarray, ...]:
    """Share (EM), interval and fit of a block of crowds from their decisions alone."""
    crowds = observed.shape[0]
    point_rates = validation / validation.sum(axis=2, keepdims=True)  # (G, 2, 3)
    share = _em(observed, np.broadcast_to(point_rates, (crowds, *point_rates.shape)))
    fits = _fits_many(observed, point_rates, share)
    low, high, _, _ = _read_posterior(lambda grid: _loglik(observed, validation, grid), crowds)
    return share, low, high, fits


def _read_posterior(
    loglik: Callable[[np.ndarray], np.ndarray], crowds: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The central 95 % interval of each crowd's posterior (uniform prior), the grid it was read on and the
    log-likelihood there, from its log-likelihood at any (crowds, S) shares."""
    # A coarse grid over [0, 1] finds where each posterior lies; a fine one across that stretch reads it.
    coarse = np.broadcast_to(_COARSE, (crowds, _COARSE.size))
    cumulative = np.cumsum(_normalised(loglik(coarse)), axis=1)
    step = _COARSE[1] - _COARSE[0]
    lo = np.clip(_COARSE[np.argmax(cumulative > 1e-9, axis=1)] - step, 0.0, 1.0)
    hi = np.clip(_COARSE[np.argmax(cumulative >= 1.0 - 1e-9, axis=1)] + step, 0.0, 1.0)
    grid = lo[:, None] + (hi - lo)[:, None] * _FINE[None, :]
    at_grid = loglik(grid)
    density = _normalised(at_grid)
    # The distribution function by the trapezoid rule: 0 at the first share, 1 at the last.
    cumulative = np.concatenate(
        [np.zeros((crowds, 1)), np.cumsum((density[:, 1:] + density[:, :-1]) / 2, axis=1)], axis=1
    )
    cumulative /= np.maximum(cumulative[:, -1:], 1e-300)
    tail = (1.0 - LEVEL) / 2
    low, high = (_quantile(cumulative, grid, q) for q in (tail, 1.0 - tail))
    return low, high, grid, at_grid


def _censored(
    observed: np.ndarray, validation: np.ndarray, cells: SplitCells
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Share, interval and fit of crowds with withheld splits (footfall.core.withheld_splits).

    The shown splits are a selected sample (an hour's split shows where no part is 1 to k-1), far from the
    normal approximation's mean, so these crowds use the exact likelihood: the released decisions' multinomial
    at the point rates, times each withheld split's chance. Its maximum is the share and its posterior the
    sampling interval. The rates' uncertainty then widens each side of it by what it adds to the interval of a
    crowd of all these people decided as the share predicts (the normal approximation with and without it)."""
    crowds = observed.shape[0]
    rates = validation / validation.sum(axis=2, keepdims=True)

    # A withheld split's chance with the rates' posterior mean (Jeffreys' prior, as the interval's): a decision the
    # validation clips never made is rare, not impossible, so no withheld split is impossible at 0 or 100 % women,
    # where its log-chance would plunge too steeply to read between tabulated shares.
    smoothed = (validation + 0.5) / (validation + 0.5).sum(axis=2, keepdims=True)
    withheld = _withheld_loglik(cells, smoothed, crowds)

    def exact(grid: np.ndarray) -> np.ndarray:
        released = (observed[:, None] * np.log(np.maximum(_mixture(rates, grid), 1e-300))).sum(axis=(2, 3))
        loglik: np.ndarray = released + _at_shares(withheld, grid)
        return loglik

    low, high, grid, at_grid = _read_posterior(exact, crowds)
    share = _maximum(at_grid, grid)
    fits = _fits_shown(observed, cells, rates, share)
    # Every person of the crowd, decided as the share predicts: how much wider do the rates make its interval?
    sizes = observed.sum(axis=2) + _group_sums(cells, cells.withheld * cells.people, crowds, rates.shape[0])
    predicted = sizes[:, :, None] * _mixture(rates, share[:, None])[:, 0]
    sure = validation * 1e6  # rates known exactly: sampling alone
    lo_r, hi_r, _, _ = _read_posterior(lambda grid: _loglik(predicted, validation, grid), crowds)
    lo_s, hi_s, _, _ = _read_posterior(lambda grid: _loglik(predicted, sure, grid), crowds)
    below = np.sqrt(np.maximum((share - lo_r) ** 2 - (share - lo_s) ** 2, 0.0))
    above = np.sqrt(np.maximum((hi_r - share) ** 2 - (hi_s - share) ** 2, 0.0))
    low = np.clip(share - np.hypot(np.maximum(share - low, 0.0), below), 0.0, 1.0)
    high = np.clip(share + np.hypot(np.maximum(high - share, 0.0), above), 0.0, 1.0)
    return share, low, high, fits


def _group_sums(cells: SplitCells, values: np.ndarray, crowds: int, groups: int) -> np.ndarray:
    out = np.zeros((crowds, groups))
    np.add.at(out, (cells.crowd, cells.group), values)
    return out


def _mixture(rates: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """P(decision) of a crowd with each share of ``grid`` (P, S), per group of ``rates`` (G, 2, 3): (P, S, G, 3)."""
    share = grid[:, :, None, None]
    mixed: np.ndarray = share * rates[None, None, :, 0] + (1.0 - share) * rates[None, None, :, 1]
    return mixed


def _distinct_sizes(group: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (group, size) pairs of some entries, and which of them each entry is."""
    base = int(size.max(initial=0)) + 1
    keys, which = np.unique(group * base + size, return_inverse=True)
    return keys // base, keys % base, which


class _SizeRows:
    """Rows of the per-size tables already worked out, kept between calls: a row depends only on what the table
    is, the group's rates, k and the size, never on the crowds asking, and the sizes a server asks for recur (every
    hour of a zone is one of a few hundred sizes, above 4k on a fixed grid). Without them, a 90-day hourly series
    spent most of its time on the tables of its total. Bounded: a call whose rows would take the store past
    ``limit`` drops all kept ones first (one call keeps every row it made, even past the limit; a row is 101 to 246
    floats, and a bundle and k need at most about 4k + 400 rows of each table)."""

    def __init__(self, limit: int = 20_000):
        self.limit = limit
        self._rows: dict[tuple[Hashable, bytes, int, int], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        self._rows.clear()

    def rows(
        self,
        kind: Hashable,
        rates: np.ndarray,
        k: int,
        groups: np.ndarray,
        sizes: np.ndarray,
        table: Callable[[np.ndarray, np.ndarray], np.ndarray],
    ) -> np.ndarray:
        """``table(groups, sizes)``, each row taken from those kept where it was worked out before (``kind``
        names the table and the shares it is worked out at, ``rates`` (G, 2, 3) the rates it reads per group)."""
        per_group = [rates[g].tobytes() for g in range(rates.shape[0])]
        keys = [(kind, per_group[g], k, n) for g, n in zip(groups.tolist(), sizes.tolist(), strict=True)]
        # Read once, then filled in: another request's thread may clear the store meanwhile.
        found = [self._rows.get(key) for key in keys]
        missing = [i for i, row in enumerate(found) if row is None]
        if missing:
            made = table(groups[missing], sizes[missing])
            if len(self._rows) + len(missing) > self.limit:
                self._rows.clear()
            for i, row in zip(missing, made, strict=True):
                found[i] = self._rows[keys[i]] = row
        return np.stack([row for row in found if row is not None])  # every one is, by now


_SIZE_ROWS: Final = _SizeRows()


def _by_size(
    groups: np.ndarray,
    sizes: np.ndarray,
    k: int,
    table: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    kind: Hashable,
    rates: np.ndarray,
) -> np.ndarray:
    """``table(groups, sizes)`` (rows first) at each distinct (group, size): worked out at every size up to
    :data:`_EXACT_SIZES` times k, and above that at sizes about 3 % apart, linear in between (a chance or moment
    changes slowly with the size there; each size costs about k² array steps). Rows are kept for later calls
    (:class:`_SizeRows`: ``kind`` names the table and its shares, ``rates`` are the ones it reads per group)."""
    rows: list[tuple[int, int]] = []
    below, above, weight = np.zeros(sizes.size, int), np.zeros(sizes.size, int), np.zeros(sizes.size)
    for g in np.unique(groups):
        mine = np.flatnonzero(groups == g)
        wanted = sizes[mine]
        exact = wanted[wanted <= _EXACT_SIZES * k]
        large = wanted[wanted > _EXACT_SIZES * k]
        # Sizes 3 % apart from 4k on, the same whatever else a call holds: each crowd's answer is its own.
        steps = int(np.ceil(np.log(large.max() / (_EXACT_SIZES * k)) / np.log(1.03))) + 1 if large.size else 0
        spaced = np.ceil(_EXACT_SIZES * k * 1.03 ** np.arange(steps + 1)) if large.size else np.zeros(0)
        grid = np.unique(np.concatenate([exact, spaced])).astype(int)
        at = np.searchsorted(grid, wanted)
        hit = grid[np.minimum(at, grid.size - 1)] == wanted
        lower = np.where(hit, at, at - 1)
        offset = len(rows)
        below[mine], above[mine] = offset + lower, offset + at
        span = grid[np.minimum(at, grid.size - 1)] - grid[lower]
        weight[mine] = np.where(hit, 0.0, (wanted - grid[lower]) / np.maximum(span, 1))
        rows.extend((int(g), int(n)) for n in grid)
    row_groups, row_sizes = (np.array(column, int) for column in zip(*rows, strict=True))
    values = _SIZE_ROWS.rows(kind, rates, k, row_groups, row_sizes, table)
    w = weight.reshape(-1, *([1] * (values.ndim - 1)))
    out: np.ndarray = values[below] * (1.0 - w) + values[above] * w
    return out


def _per_crowd(rows: np.ndarray, which: np.ndarray, counts: np.ndarray, table: np.ndarray, total: int) -> np.ndarray:
    """Σ counts × table[which] per row of ``rows`` (0 to total-1): a (rows, distinct) count matrix times the table."""
    if table.shape[0] == 0:
        return np.zeros((total, *table.shape[1:]))
    matrix = np.zeros((total, table.shape[0]))
    np.add.at(matrix, (rows, which), counts)
    out: np.ndarray = matrix @ table.reshape(table.shape[0], -1)
    return out.reshape(total, *table.shape[1:])


def _at_shares(values: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Each row's ``values`` (P, T, ...), tabulated at T even steps over [0, 1], at its ``shares`` (P, S): the
    cubic through the four tabulated shares around each (Catmull-Rom), kept between the two around it."""
    top = values.shape[1] - 1
    position = np.clip(shares, 0.0, 1.0) * top
    i = np.clip(np.floor(position).astype(int), 0, top - 1)
    t = (position - i).reshape(*shares.shape, *([1] * (values.ndim - 2)))
    rows = np.arange(values.shape[0])[:, None]
    y0, y1, y2, y3 = (values[rows, np.clip(i + d, 0, top)] for d in (-1, 0, 1, 2))
    cubic = y1 + 0.5 * t * ((y2 - y0) + t * ((2 * y0 - 5 * y1 + 4 * y2 - y3) + t * (3 * (y1 - y2) + y3 - y0)))
    # Kept between its two tabulated neighbours: next to a share a withheld split cannot have (its log-chance
    # floored at log 1e-300) an unlimited cubic overshoots by hundreds and makes a false peak.
    out: np.ndarray = np.clip(cubic, np.minimum(y1, y2), np.maximum(y1, y2))
    return out


def _withheld_loglik(cells: SplitCells, rates: np.ndarray, crowds: int) -> np.ndarray:
    """Σ over each crowd's withheld splits of log P(a split of that size is withheld), at the shares of
    :data:`_TABULATED` (P, T): worked out once per distinct size (:func:`_by_size`), however many crowds and cells
    have it."""
    held = cells.withheld > 0
    groups, sizes, which = _distinct_sizes(cells.group[held], cells.people[held])

    def log_chance(row_groups: np.ndarray, row_sizes: np.ndarray) -> np.ndarray:
        chance = withheld_probability(row_sizes, _mixture(rates, _TABULATED[None])[0, :, row_groups], cells.k)
        logs: np.ndarray = np.log(np.maximum(chance, 1e-300))
        return logs

    table = (
        _by_size(groups, sizes, cells.k, log_chance, kind=("withheld", _TABULATED.tobytes()), rates=rates)
        if sizes.size
        else np.zeros((0, _TABULATED.size))
    )
    return _per_crowd(cells.crowd[held], which, cells.withheld[held].astype(float), table, crowds)


def _maximum(loglik: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Per row, the share where ``loglik`` peaks: the best grid share, refined by the parabola through it and its
    neighbours."""
    rows = np.arange(loglik.shape[0])
    best = np.argmax(loglik, axis=1)
    inner = np.clip(best, 1, loglik.shape[1] - 2)
    y0, y1, y2 = (loglik[rows, inner + d] for d in (-1, 0, 1))
    curve = y0 - 2 * y1 + y2
    offset = np.clip(np.divide(0.5 * (y0 - y2), curve, out=np.zeros_like(y1), where=curve < 0), -1.0, 1.0)
    step = grid[:, 1] - grid[:, 0]
    refined = grid[rows, inner] + offset * step
    peak: np.ndarray = np.where(best == inner, refined, grid[rows, best])
    return peak


def _fits_shown(observed: np.ndarray, cells: SplitCells, rates: np.ndarray, share: np.ndarray) -> np.ndarray:
    """:func:`_fits_many` for the shown splits of crowds with withheld ones, by the same level. Shown splits are
    lumpy (a part is 0 or k and more), so their sums vary far more than a multinomial's: the test is Pearson's on
    the female and male decisions, with the mean and covariance of each shown cell given that it showed
    (tabulated per distinct size at the shares of :data:`_TABULATED_MOMENTS`, read at each crowd's share)."""
    crowds, group_count = observed.shape[:2]
    shown = cells.shown > 0
    groups, sizes, which = _distinct_sizes(cells.group[shown], cells.people[shown])
    tabulated = _TABULATED_MOMENTS  # the same shares whatever else a call holds: each crowd's answer is its own

    def moments(row_groups: np.ndarray, row_sizes: np.ndarray) -> np.ndarray:
        mean, covariance = shown_moments(row_sizes, _mixture(rates, tabulated[None])[0, :, row_groups], cells.k)
        return np.concatenate([mean[..., :2], covariance[..., :2, :2].reshape(*mean.shape[:2], 4)], axis=-1)

    table = (
        _by_size(groups, sizes, cells.k, moments, kind=("moments", tabulated.tobytes()), rates=rates)
        if sizes.size
        else np.zeros((0, tabulated.size, 6))
    )
    rows = cells.crowd[shown] * group_count + cells.group[shown]
    summed = _per_crowd(rows, which, cells.shown[shown].astype(float), table, crowds * group_count)
    at_share = _at_shares(summed.reshape(crowds, group_count, -1, 6).swapaxes(1, 2), share[:, None])[:, 0]
    residual = observed[..., :2] - at_share[..., :2]  # (P, G, 2)
    spread = at_share[..., 2:].reshape(crowds, group_count, 2, 2) + 0.5 * np.eye(2)  # invertible as the posterior's
    statistic = np.einsum("pgi,pgi->p", residual, np.linalg.solve(spread, residual[..., None])[..., 0])
    fits: np.ndarray = statistic <= _chi_square_critical(2 * group_count - 1)
    return fits


def _chi_square_critical(df: int, alpha_z: float = 4.265) -> float:
    """The chi-square quantile at the 0.001 % level (``alpha_z`` its normal quantile), by Wilson and Hilferty."""
    return float(df * (1 - 2 / (9 * df) + alpha_z * (2 / (9 * df)) ** 0.5) ** 3)


def _quantile(cumulative: np.ndarray, grid: np.ndarray, q: float) -> np.ndarray:
    """Per row, the share where the cumulative posterior reaches ``q`` (linear between grid shares)."""
    rows = np.arange(cumulative.shape[0])
    above = np.clip(np.argmax(cumulative >= q, axis=1), 1, cumulative.shape[1] - 1)
    c0, c1 = cumulative[rows, above - 1], cumulative[rows, above]
    g0, g1 = grid[rows, above - 1], grid[rows, above]
    t = np.clip(np.divide(q - c0, c1 - c0, out=np.zeros_like(c0), where=c1 > c0), 0.0, 1.0)
    found = np.where(cumulative[:, 0] >= q, grid[:, 0], g0 + t * (g1 - g0))
    last: np.ndarray = np.where((cumulative >= q).any(axis=1), found, grid[:, -1])  # q beyond the last share
    return last


def _normalised(loglik: np.ndarray) -> np.ndarray:
    """Posterior weights (uniform prior) from a log-likelihood per share (P, S)."""
    weights = np.exp(loglik - loglik.max(axis=1, keepdims=True))
    posterior: np.ndarray = weights / weights.sum(axis=1, keepdims=True)
    return posterior


def _loglik(observed: np.ndarray, validation: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Log-likelihood of each share of each crowd's ``grid`` (P, S): of the decisions seen
    (normal approximation of the decisions of a crowd of this size and share), with the rates' uncertainty
    folded into its covariance instead of averaged over draws: each bundle's rates are Dirichlet (Jeffreys'
    prior on its validation counts), whose covariance, scaled by the crowd's size, adds to the sampling one.
    Same first two moments as the draws, at the cost of one pass instead of hundreds."""
    alpha = validation + 0.5  # (G, 2, 3)
    total = alpha.sum(axis=2, keepdims=True)
    mean_rates = alpha / total
    # Dirichlet covariance of the first two decision rates per bundle and true label: (G, 2, 2, 2)
    m = mean_rates[..., :2]
    rate_cov = (m[..., :, None] * np.eye(2) - m[..., :, None] * m[..., None, :]) / (total[..., None] + 1.0)
    share = grid[:, :, None]  # (P, S, 1)
    women, men = m[None, None, :, 0, :], m[None, None, :, 1, :]  # (1, 1, G, 2)
    sizes = observed.sum(axis=2)[:, None, :]  # (P, 1, G)
    squared = sizes**2

    def spread(rates: np.ndarray, i: int, j: int) -> np.ndarray:  # multinomial covariance of one person's decisions
        entry: np.ndarray = rates[..., i] * ((i == j) - rates[..., j])
        return entry

    def covariance(i: int, j: int) -> np.ndarray:  # (P, S, G)
        sampling = share * spread(women, i, j) + (1.0 - share) * spread(men, i, j)
        rates = share**2 * rate_cov[None, None, :, 0, i, j] + (1.0 - share) ** 2 * rate_cov[None, None, :, 1, i, j]
        entry: np.ndarray = sizes * sampling + squared * rates + 0.5 * (i == j)
        return entry

    a, b, d = covariance(0, 0), covariance(0, 1), covariance(1, 1)
    x = observed[:, None, :, 0] - sizes * (share * women[..., 0] + (1.0 - share) * men[..., 0])
    y = observed[:, None, :, 1] - sizes * (share * women[..., 1] + (1.0 - share) * men[..., 1])
    det = a * d - b * b
    loglik: np.ndarray = (-0.5 * ((d * x * x - 2 * b * x * y + a * y * y) / det + np.log(det))).sum(axis=2)
    return loglik


def _fits_many(observed: np.ndarray, rates: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Likelihood-ratio (G) test of each crowd's decisions against the best mix of the rates, at the 0.001 %
    level (:func:`_chi_square_critical`). The level is strict because the test is too eager on small expected
    counts: it is there to catch a crowd the rates cannot explain at all (far more unknown than validation ever
    saw), not a rare draw."""
    mix = share[:, None, None] * rates[None, :, 0] + (1.0 - share[:, None, None]) * rates[None, :, 1]
    expected = observed.sum(axis=2, keepdims=True) * mix
    terms = np.where(observed > 0, observed * np.log(np.maximum(observed, 1e-12) / np.maximum(expected, 1e-12)), 0.0)
    statistic = 2.0 * terms.sum(axis=(1, 2))
    fits: np.ndarray = statistic <= _chi_square_critical(2 * observed.shape[1] - 1)
    return fits
