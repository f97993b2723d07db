"""Metrics, temperature scaling and threshold selection against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
from footfall.core.classifier import softmax
from footfall.models.calibration import (
    abstention_by_label,
    balanced_thresholds,
    choose_threshold,
    count_rates,
    fit_temperature,
    nll,
)
from footfall.models.metrics import (
    accuracy,
    age_group,
    balanced_accuracy,
    binary_report,
    confusion_matrix,
    coverage_curve,
    expected_calibration_error,
    f1_score,
    group_report,
    roc_auc,
)

# Six cases: true labels and P(male). Predicted = P(male) >= 0.5.
Y = np.array([0, 0, 0, 1, 1, 1])
P_MALE = np.array([0.1, 0.4, 0.8, 0.7, 0.3, 0.9])
PROBS = np.stack([1 - P_MALE, P_MALE], axis=1)
PRED = np.array([0, 0, 1, 1, 0, 1])


def test_confusion_accuracy_balanced_f1() -> None:
    assert confusion_matrix(Y, PRED).tolist() == [[2, 1], [1, 2]]
    assert accuracy(Y, PRED) == pytest.approx(4 / 6)
    # recalls: female 2/3, male 2/3; with an imbalanced set the two measures differ:
    assert balanced_accuracy(Y, PRED) == pytest.approx(2 / 3)
    assert balanced_accuracy([0, 0, 0, 1], [0, 0, 0, 0]) == pytest.approx(0.5)
    assert accuracy([0, 0, 0, 1], [0, 0, 0, 0]) == pytest.approx(0.75)
    # F1 male: tp 2, fp 1, fn 1 -> 4 / 6
    assert f1_score(Y, PRED) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))


def test_roc_auc_counts_pairs() -> None:
    # Positives 0.7, 0.3, 0.9 vs negatives 0.1, 0.4, 0.8: pairs ranked right = 2 + 1 + 3 = 6 of 9.
    assert roc_auc(Y, P_MALE) == pytest.approx(6 / 9)
    # A tie counts one half.
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == pytest.approx(1.0)
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_expected_calibration_error_by_hand() -> None:
    # Confidences 0.9 (both in one bin, one right one wrong) and 0.6 (right): bins of width 1/30 over
    # [0.5, 1]: |0.5 - 0.9| * 2/3 + |1 - 0.6| * 1/3 = 0.2667 + 0.1333 = 0.4
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4]])
    y = np.array([0, 0, 0])
    assert expected_calibration_error(probs, y) == pytest.approx(0.4)
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(perfect, np.array([0, 1])) == pytest.approx(0.0)


def test_binary_report_with_abstention() -> None:
    report = binary_report(Y, PROBS, threshold=0.75)
    # Confidences 0.9, 0.6, 0.8, 0.7, 0.7, 0.9: answered 0.9 (right), 0.8 (wrong), 0.9 (right).
    assert report["n"] == 6
    assert report["abstention_rate"] == pytest.approx(0.5)
    assert report["answered_accuracy"] == pytest.approx(2 / 3)
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert (report["tn_female_as_female"], report["fp_female_as_male"]) == (2, 1)
    assert (report["fn_male_as_female"], report["tp_male_as_male"]) == (1, 2)


def test_group_report_and_age_bands() -> None:
    groups = ["a", "a", "b", "b", None, "b"]
    table = group_report(Y, PROBS, groups, threshold=0.5)
    assert table["a"]["n"] == 2 and table["a"]["accuracy"] == pytest.approx(1.0)
    # group b: cases 2 (female called male), 3 (male right), 5 (male right)
    assert table["b"]["n"] == 3 and table["b"]["accuracy"] == pytest.approx(2 / 3)
    assert table["b"]["female_accuracy"] == pytest.approx(0.0) and table["b"]["male_accuracy"] == pytest.approx(1.0)
    assert [age_group(a) for a in (0, 12.9, 13, 19, 20, 39, 40, 59.5, 60, 101)] == [
        "0-12",
        "0-12",
        "13-19",
        "13-19",
        "20-39",
        "20-39",
        "40-59",
        "40-59",
        "60+",
        "60+",
    ]
    assert age_group(None) is None and age_group(float("nan")) is None


def test_coverage_curve() -> None:
    rows = coverage_curve(Y, PROBS, [0.5, 0.85])
    assert rows[0] == {"threshold": 0.5, "coverage": 1.0, "answered_accuracy": pytest.approx(4 / 6)}
    assert rows[1]["coverage"] == pytest.approx(2 / 6) and rows[1]["answered_accuracy"] == 1.0


def test_temperature_scaling_recovers_the_true_temperature() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2.0, size=(4000, 2))
    labels = np.array([rng.choice(2, p=p) for p in softmax(true_logits)])
    overconfident = true_logits * 3.0  # a network that is 3× too sure of itself
    temperature = fit_temperature(overconfident, labels)
    assert temperature == pytest.approx(3.0, rel=0.1)
    assert nll(overconfident, labels, temperature) < nll(overconfident, labels, 1.0)


def test_threshold_reaches_target_with_most_coverage() -> None:
    # Confidence sorted: 0.99 r, 0.95 r, 0.9 r, 0.8 w, 0.7 r, 0.6 w.
    conf = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6])
    correct = np.array([1, 1, 1, 0, 1, 0], bool)
    y = np.zeros(6, int)
    probs = np.stack([np.where(correct, conf, 1 - conf), np.where(correct, 1 - conf, conf)], axis=1)
    # Target 100 %: answer the top three -> threshold 0.9.
    assert choose_threshold(probs, y, target_accuracy=1.0, max_abstention=1.0) == pytest.approx(0.9)
    # Target 80 %: top five are 4/5 right -> threshold 0.7.
    assert choose_threshold(probs, y, target_accuracy=0.8, max_abstention=1.0) == pytest.approx(0.7)
    # Abstention capped at 1/3: must answer at least four -> threshold 0.8 even though 100 % needs 0.9.
    assert choose_threshold(probs, y, target_accuracy=1.0, max_abstention=1 / 3) == pytest.approx(0.8)
    # Everything right: never abstain.
    assert choose_threshold(probs[correct], y[correct], target_accuracy=0.99) == 0.5


def test_balanced_thresholds_make_both_labels_abstain_equally() -> None:
    # Label 1 is less confident than label 0: one shared threshold leaves far more of label 1 unknown.
    rng = np.random.default_rng(3)
    top0, top1 = rng.uniform(0.6, 1.0, 400), rng.uniform(0.5, 0.9, 400)
    probs = np.concatenate([np.stack([top0, 1 - top0], 1), np.stack([1 - top1, top1], 1)])
    y = np.repeat([0, 1], 400)
    single = abstention_by_label(probs, y, np.array([0.8, 0.8]))
    assert single[1] - single[0] > 0.3
    thresholds = balanced_thresholds(probs, y, reference=0.8)
    rates = abstention_by_label(probs, y, thresholds)
    assert abs(rates[0] - rates[1]) < 0.02
    assert thresholds[1] < 0.8 < thresholds[0]
    # As many people left unknown overall as with the single threshold.
    assert rates.mean() == pytest.approx(single.mean(), abs=0.02)


def test_balanced_thresholds_cancel_one_sided_mistakes() -> None:
    # Both labels equally confident, but a fifth of label 1 is mistaken for label 0 (children read as
    # female): label 0 is over-counted until its threshold rises above label 1's.
    rng = np.random.default_rng(4)
    top = rng.uniform(0.55, 1.0, 1000)
    y = np.repeat([0, 1], 500)
    wrong = (y == 1) & (rng.random(1000) < 0.2)
    predicted = np.where(wrong, 0, y)
    probs = np.where(predicted[:, None] == 0, np.stack([top, 1 - top], 1), np.stack([1 - top, top], 1))
    assert count_rates(probs, y, np.array([0.8, 0.8]))[0] > 1.2 * count_rates(probs, y, np.array([0.8, 0.8]))[1]
    thresholds = balanced_thresholds(probs, y, reference=0.8)
    rates = count_rates(probs, y, thresholds)
    assert abs(rates[0] - rates[1]) < 0.02
    assert thresholds[0] > thresholds[1]


def test_balanced_thresholds_need_both_labels() -> None:
    with pytest.raises(ValueError, match="every label"):
        balanced_thresholds(np.array([[0.9, 0.1]]), np.array([0]), reference=0.8)
