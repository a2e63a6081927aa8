from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlops_stack_runtime.monitoring.statistics import (
    MISSING,
    UNSEEN,
    categorical_drift,
    numeric_drift,
    psi,
)

RNG_SEED = 3


def normal(mean: float, n: int = 3000, seed: int = RNG_SEED) -> pd.Series:
    return pd.Series(np.random.default_rng(seed).normal(mean, 1.0, n))


def test_psi_is_zero_for_equal_shares_and_matches_its_formula() -> None:
    counts = np.array([10.0, 30.0, 60.0])
    assert psi(counts, counts * 3) == 0.0
    # (0.9 - 0.5) ln(0.9 / 0.5) + (0.1 - 0.5) ln(0.1 / 0.5)
    expected = 0.4 * math.log(1.8) + 0.4 * math.log(5)
    assert psi(np.array([50.0, 50.0]), np.array([90.0, 10.0])) == pytest.approx(expected)


def test_same_distribution_is_stable_and_a_shifted_one_is_not() -> None:
    same = numeric_drift(normal(0.0), normal(0.0, seed=4), bins=10)
    assert same.psi < 0.02
    assert same.p_value > 0.01
    shifted = numeric_drift(normal(0.0), normal(0.8, seed=4), bins=10)
    assert shifted.psi > 0.5
    assert shifted.p_value < 1e-10
    assert shifted.ks_statistic is not None and shifted.ks_statistic > 0.25
    assert len(shifted.binned.labels) == 10


def test_few_distinct_numbers_get_one_bin_each_in_order_and_new_values_an_unseen_bin() -> None:
    reference = pd.Series([12, 36, 36, 60, 12, 36] * 50)
    current = pd.Series([12, 36, 60, 84] * 50)
    drift = numeric_drift(reference, current, bins=10)
    assert drift.binned.labels == ["12", "36", "60", UNSEEN]
    assert drift.binned.reference_counts[-1] == 0
    assert drift.binned.current_shares[-1] == pytest.approx(0.25)


def test_missing_values_have_their_own_bin_and_a_column_arriving_empty_drifts() -> None:
    reference = normal(0.0).mask(np.arange(3000) % 20 == 0)  # 5% missing
    drift = numeric_drift(reference, pd.Series([np.nan] * 300), bins=10)
    assert drift.binned.labels[-1] == MISSING
    assert drift.binned.reference_shares[-1] == pytest.approx(0.05)
    assert drift.binned.current_shares[-1] == 1.0
    assert drift.psi > 1
    assert drift.p_value < 1e-10
    assert drift.ks_statistic is None  # nothing to compare on the values


def test_categories_compare_their_shares_and_put_new_ones_in_an_unseen_bin() -> None:
    reference = pd.Series(["car"] * 500 + ["medical"] * 500)
    assert categorical_drift(reference, reference.sample(frac=1, random_state=1)).psi == 0
    current = pd.Series(["car"] * 100 + ["medical"] * 60 + ["crypto"] * 40)
    drift = categorical_drift(reference, current)
    assert drift.binned.labels == ["car", "medical", UNSEEN]
    assert drift.psi > 0.25
    assert drift.p_value < 1e-6
