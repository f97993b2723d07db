"""What the server's suppression of small gender splits tells about a crowd's share of women.

The server releases a zone-hour's gender split (female, male, unknown decisions) only when each part is 0 or at
least k (footfall.server.release). Which splits are released therefore depends on the share: in an hour of 15
people, a split with 12 women and 3 men is withheld, one with 8 and 7 released. An estimate from the released
splits alone is a biased sample of the hours, leaning toward an even split (a zone of 15 people an hour and 30 %
women read as 40 %), and at 30 an hour its released decisions carry too many unknowns to fit the rates at all.

The withheld splits still count. A cell of ``n`` released people whose split was withheld says that its
decisions fell where some part was 1 to k-1: an event whose probability depends on the share. The likelihood of
a query's cells is then the multinomial of the released splits (pooled: every cell's decisions are drawn from the
same mixture) times, for each withheld split, the probability that a split of its size is withheld. Both use only
released values (each cell's people, and whether its split was shown), so the estimate gives nothing away.

The probability is worked out by inclusion and exclusion over the three parts, a few dozen terms whatever ``n``:
the chance that some part lies in its hidden range is the sum over one part, less over pairs, plus all three.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SplitCells:
    """The cells of many crowds, by crowd, group (classifier bundle) and size: how many cells of ``people`` released
    people showed their split (``shown``) and how many had it withheld (``withheld``); ``k`` the release threshold.
    Flat arrays of one entry per (crowd, group, size)."""

    crowd: np.ndarray
    group: np.ndarray
    people: np.ndarray
    shown: np.ndarray
    withheld: np.ndarray
    k: int

    @staticmethod
    def of(entries: list[tuple[int, int, int, int, int]], k: int) -> SplitCells:
        """From (crowd, group, people, shown, withheld) tuples."""
        crowd, group, people, shown, withheld = np.array(entries, dtype=np.int64).reshape(-1, 5).T
        return SplitCells(crowd, group, people, shown, withheld, k)

    def select(self, crowds: np.ndarray) -> SplitCells:
        """The entries of ``crowds`` (indices, ascending), renumbered 0.. in that order."""
        keep = np.isin(self.crowd, crowds)
        crowd = np.searchsorted(crowds, self.crowd[keep])
        return SplitCells(crowd, self.group[keep], self.people[keep], self.shown[keep], self.withheld[keep], self.k)


def _log_factorials(n: int) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])


def _logs(p: np.ndarray) -> np.ndarray:
    """log p, -inf where p is 0 (a decision no one makes)."""
    out: np.ndarray = np.log(np.where(p > 0, p, 1.0))
    return np.where(p > 0, out, -np.inf)


def some_part_hidden(n: np.ndarray, q: np.ndarray, low: tuple[int, int, int], high: tuple[int, int, int]) -> np.ndarray:
    """P(some part j of a multinomial(n, q) lies in [low[j], high[j]]): ``n`` (E,) sizes, ``q`` (E, S, 3) part
    probabilities at S shares; (E, S).

    By inclusion and exclusion: each part's binomial mass over its range, less each pair's, plus all three. A pair
    (i, j) sums P(x_i = a) P(x_j = b | x_i = a) over a in i's range and b in j's, where given x_i = a the part j is
    binomial in the other n - a decisions; every a is one axis of the arrays, so the loops run over b only: some 6k
    array steps, each as wide as a's range (k up to a site's strictest, 50)."""
    n = n.astype(np.int64)
    lf = _log_factorials(max(int(n.max(initial=0)), *high, 1))
    logs = [_logs(q[..., j]) for j in range(3)]
    log_rest = [_logs(1.0 - q[..., j]) for j in range(3)]

    def binomial(m: np.ndarray, c: int, log_p: np.ndarray, log_not_p: np.ndarray) -> np.ndarray:
        """P(Bin(m, p) = c), 0 where c > m; ``m`` broadcasts against the logs."""
        ok = c <= m
        rest = np.where(ok, m - c, 0)
        with np.errstate(invalid="ignore"):  # 0 · log 0 is 0, not the nan its product gives
            log = (
                lf[np.where(ok, m, 0)]
                - lf[c]
                - lf[rest]
                + (c * log_p if c else 0.0)
                + np.where(rest > 0, rest * log_not_p, 0.0)
            )
        # A probability's log is at most 0; entries masked out (counts past m) may exceed it.
        return np.where(ok, np.exp(np.minimum(log, 0.0)), 0.0)

    ranges = [np.arange(low[j], high[j] + 1) for j in range(3)]
    total = np.zeros(q.shape[:2])
    # P(x_i = a) for every a of i's range, stacked on a last axis: (E, S, A_i).
    singles = []
    for j in range(3):
        masses = [binomial(n[:, None], int(a), logs[j], log_rest[j]) for a in ranges[j]]
        single = np.stack(masses, axis=-1) if masses else np.zeros((*q.shape[:2], 0))
        singles.append(single)
        total += single.sum(axis=-1)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        other = 3 - i - j
        if not ranges[i].size or not ranges[j].size:
            continue
        # Given x_i = a, x_j is binomial in n - a decisions with p = q_j / (1 - q_i).
        with np.errstate(divide="ignore", invalid="ignore"):
            log_p = (logs[j] - log_rest[i])[..., None]
            log_not_p = (logs[other] - log_rest[i])[..., None]
        rest_of = n[:, None, None] - ranges[i][None, None, :]  # (E, 1, A_i)
        for b in ranges[j]:
            conditional = binomial(rest_of, int(b), log_p, log_not_p)
            joint = np.where(singles[i] > 0, singles[i] * np.nan_to_num(conditional), 0.0)  # x_i = a impossible: 0
            total -= joint.sum(axis=-1)
            if (i, j) == (0, 1):  # all three: the third part is what is left, in its own range
                third = rest_of - b
                total += np.where((third >= low[2]) & (third <= high[2]), joint, 0.0).sum(axis=-1)
    return np.clip(total, 0.0, 1.0)


def withheld_probability(n: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """P(a split of ``n`` decisions drawn with probabilities ``q`` (E, S, 3) is withheld): some part is 1 to k-1."""
    return some_part_hidden(n, q, (1, 1, 1), (k - 1, k - 1, k - 1))


def shown_moments(n: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (E, S, 3) and covariance (E, S, 3, 3) of a split of ``n`` decisions drawn with probabilities ``q``,
    given that it is shown: the factorial moments n q_j P(shown | one decision is j) and n (n - 1) q_i q_j
    P(shown | one is i and one j), each P by :func:`some_part_hidden` over the other decisions."""
    hidden_range = (1, k - 1)

    def shown_given(extra: tuple[int, ...], size: np.ndarray, q: np.ndarray) -> np.ndarray:
        # Part j of the other decisions hides the split when, with the ``extra`` ones of j added, it is 1 to k-1.
        low, high = [hidden_range[0]] * 3, [hidden_range[1]] * 3
        for j in set(extra):
            added = extra.count(j)
            low[j], high[j] = max(hidden_range[0] - added, 0), hidden_range[1] - added
        hidden = some_part_hidden(size, q, (low[0], low[1], low[2]), (high[0], high[1], high[2]))
        shown: np.ndarray = 1.0 - hidden
        return shown

    nf = n.astype(float)[:, None]
    # The multinomial's own moments; where a split of this size is all but never withheld they are the answer
    # (each differs by at most about n² times that chance).
    mean = nf[..., None] * q
    covariance = nf[..., None, None] * (q[..., :, None] * np.eye(3) - q[..., :, None] * q[..., None, :])
    withheld = withheld_probability(n, q, k)
    # The (size, share) pairs worked out in full: where a split is sometimes withheld, and not so nearly always that
    # the moments given it shows are lost to rounding (such a size and share are as good as never shown).
    rows, at = np.nonzero((withheld > 1e-9) & (withheld < 1.0 - 1e-6))
    if rows.size == 0:
        return mean, covariance
    sizes, chances, nf = n[rows], q[rows, at][:, None, :], nf[rows]
    p_shown = np.maximum(1.0 - withheld[rows, at][:, None], 1e-300)
    one, two = np.maximum(sizes - 1, 0), np.maximum(sizes - 2, 0)
    given = (
        np.stack([nf * chances[..., j] * shown_given((j,), one, chances) for j in range(3)], axis=-1)
        / p_shown[..., None]
    )
    second = np.empty((*chances.shape, 3))
    for i in range(3):
        for j in range(i, 3):
            pair = nf * (nf - 1) * chances[..., i] * chances[..., j] * shown_given((i, j), two, chances) / p_shown
            second[..., i, j] = second[..., j, i] = pair
        second[..., i, i] += given[..., i]  # E[x_i x_j | shown], from the factorial moments
    mean[rows, at] = given[:, 0]
    covariance[rows, at] = (second - given[..., :, None] * given[..., None, :])[:, 0]
    return mean, covariance
