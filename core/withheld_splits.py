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
    probabilities at S shares; (E, S)."""
    n = n.astype(np.int64)
    top = int(n.max(initial=0))
    lf = _log_factorials(max(top, *high, 1))  # a part's range may reach past a small n (masked below)
    log_part = [_logs(q[..., j]) for j in range(3)]
    log_rest = [_logs(1.0 - q[..., j]) for j in range(3)]

    def pmf(counts: list[np.ndarray], logs: list[np.ndarray]) -> np.ndarray:  # (E, S)
        log = (lf[n] - sum(lf[c] for c in counts))[:, None]
        with np.errstate(invalid="ignore"):  # 0 · log 0 is 0, not the nan its product gives
            for c, log_p in zip(counts, logs, strict=True):
                log = log + np.where(c[:, None] > 0, c[:, None] * log_p, 0.0)
        # A probability's log is at most 0; entries the caller masks out (counts past n) may exceed it.
        chance: np.ndarray = np.exp(np.minimum(log, 0.0))
        return chance

    def values(j: int) -> range:
        return range(low[j], high[j] + 1)

    total = np.zeros(q.shape[:2])
    for j in range(3):  # one part in its range: a binomial
        for a in values(j):
            ok = a <= n
            taken = np.where(ok, a, 0)
            total += np.where(ok[:, None], pmf([taken, n - taken], [log_part[j], log_rest[j]]), 0.0)
    for i, j in ((0, 1), (0, 2), (1, 2)):  # two parts in their ranges, the third what is left
        rest_part = 3 - i - j
        for a in values(i):
            for b in values(j):
                ok = a + b <= n
                rest = np.where(ok, n - a - b, 0)
                counts = [np.full_like(n, a), np.full_like(n, b), rest]
                total -= np.where(ok[:, None], pmf(counts, [log_part[i], log_part[j], log_part[rest_part]]), 0.0)
    for a in values(0):  # all three
        for b in values(1):
            c = n - a - b
            ok = (c >= low[2]) & (c <= high[2])
            counts = [np.full_like(n, a), np.full_like(n, b), np.where(ok, c, 0)]
            total += np.where(ok[:, None], pmf(counts, log_part), 0.0)
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
    rows, at = np.nonzero(withheld > 1e-9)  # the (size, share) pairs worked out in full
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
