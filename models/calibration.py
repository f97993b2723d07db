"""Temperature scaling and the abstention threshold, both chosen on validation only."""

from __future__ import annotations

import numpy as np
from footfall.core.classifier import softmax


def nll(logits: np.ndarray, y_true: np.ndarray, temperature: float) -> float:
    probs = softmax(np.asarray(logits, np.float64), temperature)
    return float(-np.log(np.clip(probs[np.arange(len(y_true)), np.asarray(y_true, int)], 1e-12, 1.0)).mean())


def fit_temperature(logits: np.ndarray, y_true: np.ndarray, low: float = 0.05, high: float = 20.0) -> float:
    """The temperature minimising validation negative log-likelihood (golden-section search on log T;
    NLL is unimodal in T for a fixed set of logits)."""
    if len(logits) == 0:
        return 1.0
    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    for _ in range(80):
        if nll(logits, y_true, np.exp(c)) < nll(logits, y_true, np.exp(d)):
            b = d
        else:
            a = c
        c, d = b - ratio * (b - a), a + ratio * (b - a)
    return float(np.exp((a + b) / 2.0))


def choose_threshold(
    probs: np.ndarray, y_true: np.ndarray, *, target_accuracy: float = 0.97, max_abstention: float = 0.15
) -> float:
    """The lowest confidence threshold whose answered-case accuracy reaches ``target_accuracy``, abstaining
    on at most ``max_abstention`` of the cases (the cap wins when both cannot hold). 0.5 means never
    abstain (two classes: the top probability is always ≥ 0.5)."""
    probs, y_true = np.asarray(probs, float), np.asarray(y_true, int)
    if len(probs) == 0:
        return 0.5
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    order = np.argsort(-confidence, kind="mergesort")
    conf_sorted, correct_sorted = confidence[order], correct[order]
    answered_acc = np.cumsum(correct_sorted) / np.arange(1, len(order) + 1)
    min_answered = int(np.ceil((1.0 - max_abstention) * len(order)))
    # Answering the k most confident cases: the threshold is the k-th confidence. Prefer the largest k
    # (most coverage) that reaches the target; never answer fewer than min_answered.
    for k in range(len(order), max(min_answered, 1) - 1, -1):
        if k < len(order) and conf_sorted[k] == conf_sorted[k - 1]:
            continue  # a threshold cannot split tied confidences
        if answered_acc[k - 1] >= target_accuracy:
            return 0.5 if k == len(order) else float(conf_sorted[k - 1])
    k = max(min_answered, 1)
    return 0.5 if k >= len(order) else float(conf_sorted[k - 1])


def threshold_decisions(probs: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The top label of each case and whether it is decided: its probability reaches that label's threshold."""
    probs = np.asarray(probs, float)
    best = probs.argmax(axis=1)
    return best, probs[np.arange(len(best)), best] >= np.asarray(thresholds, float)[best]


def count_rates(probs: np.ndarray, y_true: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per label, how many cases were decided as that label over how many truly are: 1.0 for every label
    means the decided shares equal the true shares (errors and abstention cancel out)."""
    y_true = np.asarray(y_true, int)
    best, decided = threshold_decisions(probs, thresholds)
    labels = np.shape(probs)[1]
    return np.array([(decided & (best == c)).sum() / max((y_true == c).sum(), 1) for c in range(labels)], float)


def abstention_by_label(probs: np.ndarray, y_true: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per true label, the share of cases left ``unknown`` when the top label needs ``thresholds[label]``."""
    y_true = np.asarray(y_true, int)
    _, decided = threshold_decisions(probs, thresholds)
    labels = np.shape(probs)[1]
    return np.array([(~decided)[y_true == c].mean() if (y_true == c).any() else np.nan for c in range(labels)])


def balanced_thresholds(
    probs: np.ndarray, y_true: np.ndarray, reference: float, grid: np.ndarray | None = None
) -> np.ndarray:
    """Per-label thresholds under which every label is counted at the same rate as it truly occurs
    (decided as the label / truly the label, see :func:`count_rates`), leaving as many cases ``unknown``
    overall as the single ``reference`` threshold does on the same cases.

    Shares counted from decided people only (the female share of a zone) are biased when one label goes
    ``unknown`` more often than the other, or is mistaken for the other more often; this cancels both
    without answering more or fewer people. Among equally good pairs, the one nearest ``reference`` wins."""
    probs, y_true = np.asarray(probs, float), np.asarray(y_true, int)
    labels = probs.shape[1]
    if labels != 2:
        raise ValueError("balanced thresholds are defined for two labels")
    if not all((y_true == c).any() for c in range(labels)):
        raise ValueError("every label needs cases to balance its count")
    grid = np.round(np.arange(0.5, 0.995, 0.005), 3) if grid is None else np.asarray(grid, float)
    target = float((probs.max(axis=1) < reference).mean())
    best, best_cost = np.full(labels, reference), np.inf
    for first in grid:
        for second in grid:
            thresholds = np.array([first, second])
            rates = count_rates(probs, y_true, thresholds)
            unknown = float((~threshold_decisions(probs, thresholds)[1]).mean())
            cost = abs(rates[0] - rates[1]) + abs(unknown - target) + 1e-3 * np.abs(thresholds - reference).sum()
            if cost < best_cost:
                best, best_cost = thresholds, cost
    return best
