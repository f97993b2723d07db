"""Age bands and the age estimate every part of footfall reads from an age distribution."""

from __future__ import annotations

import numpy as np
import pytest
from footfall.core.ages import band_of, median_ages, parse_band

GRID = np.arange(81, dtype=np.float64)  # the age head's units: 0 … 80 (the last: 80 or more)


def test_the_estimate_is_the_median_not_the_mean_of_a_skewed_distribution() -> None:
    """A face read as most likely 20-24, with a long tail towards old ages: the mean (37) lands two bands away;
    the median stays where half the probability lies."""
    row = np.zeros(81)
    row[20:25] = 0.12  # 60 % between 20 and 24
    row[40:80] = 0.01  # 40 % spread over 40-79
    assert row @ GRID == pytest.approx(37.0)
    assert median_ages(row, GRID).tolist() == [24.0]
    assert band_of(median_ages(row, GRID)[0]) == "18-24"


def test_the_median_is_the_least_absolute_error_over_the_distribution() -> None:
    rng = np.random.default_rng(0)
    rows = rng.dirichlet(np.full(81, 0.3), size=50)
    for row, median in zip(rows, median_ages(rows, GRID), strict=True):
        errors = [float(row @ np.abs(GRID - guess)) for guess in GRID]
        assert errors[int(median)] == pytest.approx(min(errors))


def test_rows_that_do_not_add_up_to_one_exactly_and_edge_rows() -> None:
    """Probabilities in float32 (an ONNX output) add up to 1 within rounding; all the mass on the first or the
    last unit gives that unit; a row of one face is a row, not a scalar."""
    first, last = np.eye(81)[0], np.eye(81)[80]
    assert median_ages(np.stack([first, last]), GRID).tolist() == [0.0, 80.0]
    assert median_ages(np.full(81, 1 / 81 * 0.999, dtype=np.float32), GRID).tolist() == [40.0]


def test_bands_are_parsed_as_written_in_queries() -> None:
    assert parse_band("65plus") == "65+" and parse_band(" 25–34 ") == "25-34"
    with pytest.raises(ValueError, match="bands are"):
        parse_band("20-30")
