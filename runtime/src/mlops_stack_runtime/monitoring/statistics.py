"""Per-column drift measures: PSI for how much a distribution moved, chi-square for whether the
move is more than chance.

PSI (population stability index) sums (q - p) * ln(q / p) over bins, p and q being the shares of
the reference and of the batch in each bin: 0 for identical distributions; by the credit-risk
convention below 0.1 is stable, 0.1-0.25 a moderate shift, above 0.25 a major one. It does not
grow with the number of rows, so it measures the size of a change. A p-value does grow with rows
(on 100,000 rows any difference is "significant"), but on a small batch it tells a real change
from sampling noise, which PSI alone cannot: a column drifts when PSI passes its threshold and
the chi-square test of the same bins passes its significance level. For numeric columns the
two-sample Kolmogorov-Smirnov statistic is reported as well (the largest gap between the two
cumulative distributions), the usual second opinion on a continuous shift.

Bins come from the reference: its deciles (params `drift.bins`) for numbers with many values,
one bin per value for numbers with few values (terms, counts) and for categories. Missing
values get a bin of their own, so a column that starts arriving empty drifts too; values of the
batch that the reference never had fall in an `<unseen>` bin.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

MISSING = "<missing>"
UNSEEN = "<unseen>"
# The share given to an empty bin: ln(0) is undefined, and a bin empty on one side only must
# count as a large change, not an infinite one.
EMPTY_BIN_SHARE = 1e-4


@dataclass(frozen=True)
class Binned:
    """The shares of the reference and the batch in the same bins."""

    labels: list[str]
    reference_counts: np.ndarray
    current_counts: np.ndarray

    @property
    def reference_shares(self) -> np.ndarray:
        return self.reference_counts / max(self.reference_counts.sum(), 1)

    @property
    def current_shares(self) -> np.ndarray:
        return self.current_counts / max(self.current_counts.sum(), 1)


@dataclass(frozen=True)
class ColumnDrift:
    psi: float
    chi2_statistic: float
    p_value: float
    # Numeric columns only: two-sample Kolmogorov-Smirnov on the non-missing values.
    ks_statistic: float | None
    ks_p_value: float | None
    binned: Binned


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    p = np.maximum(reference_counts / max(reference_counts.sum(), 1), EMPTY_BIN_SHARE)
    q = np.maximum(current_counts / max(current_counts.sum(), 1), EMPTY_BIN_SHARE)
    return float(np.sum((q - p) * np.log(q / p)))


def chi_square(binned: Binned) -> tuple[float, float]:
    """Chi-square test that both samples come from one distribution over the bins."""
    table = np.vstack([binned.reference_counts, binned.current_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def numeric_drift(reference: pd.Series, current: pd.Series, bins: int) -> ColumnDrift:
    ref_values = reference.dropna().to_numpy(dtype=float)
    cur_values = current.dropna().to_numpy(dtype=float)
    distinct = np.unique(ref_values)
    if len(distinct) <= bins:
        binned = _discrete_bins(pd.Series(ref_values), pd.Series(cur_values), _number_label)
    else:
        binned = _quantile_bins(ref_values, cur_values, bins)
    binned = _with_missing(binned, reference.isna().sum(), current.isna().sum())
    ks_statistic = ks_p_value = None
    if len(ref_values) and len(cur_values):
        ks = stats.ks_2samp(ref_values, cur_values)
        ks_statistic, ks_p_value = float(ks.statistic), float(ks.pvalue)
    statistic, p_value = chi_square(binned)
    return ColumnDrift(
        psi=psi(binned.reference_counts, binned.current_counts),
        chi2_statistic=statistic,
        p_value=p_value,
        ks_statistic=ks_statistic,
        ks_p_value=ks_p_value,
        binned=binned,
    )


def categorical_drift(reference: pd.Series, current: pd.Series) -> ColumnDrift:
    binned = _discrete_bins(reference.dropna().astype(str), current.dropna().astype(str), str)
    binned = _with_missing(binned, reference.isna().sum(), current.isna().sum())
    statistic, p_value = chi_square(binned)
    return ColumnDrift(
        psi=psi(binned.reference_counts, binned.current_counts),
        chi2_statistic=statistic,
        p_value=p_value,
        ks_statistic=None,
        ks_p_value=None,
        binned=binned,
    )


def _quantile_bins(reference: np.ndarray, current: np.ndarray, bins: int) -> Binned:
    # Inner edges at the reference's quantiles; ties (many equal values) merge bins.
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    count = len(edges) + 1
    reference_counts = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=count)
    current_counts = np.bincount(np.searchsorted(edges, current, side="right"), minlength=count)
    bounds = [_number_label(e) for e in edges]
    labels = [f"< {bounds[0]}"]
    labels += [f"{low} to {high}" for low, high in itertools.pairwise(bounds)]
    labels.append(f">= {bounds[-1]}")
    return Binned(labels, reference_counts.astype(float), current_counts.astype(float))


def _discrete_bins(reference: pd.Series, current: pd.Series, label: Callable[[Any], str]) -> Binned:
    """One bin per value of the reference, in order of value."""
    ref_counts = reference.value_counts().sort_index()
    cur_counts = current.value_counts()
    labels = [label(value) for value in ref_counts.index]
    unseen = cur_counts[~cur_counts.index.isin(ref_counts.index)].sum()
    reference_counts = ref_counts.to_numpy(dtype=float)
    current_counts = cur_counts.reindex(ref_counts.index, fill_value=0).to_numpy(dtype=float)
    if unseen:
        labels.append(UNSEEN)
        reference_counts = np.append(reference_counts, 0.0)
        current_counts = np.append(current_counts, float(unseen))
    return Binned(labels, reference_counts, current_counts)


def _with_missing(binned: Binned, reference_missing: int, current_missing: int) -> Binned:
    if not reference_missing and not current_missing:
        return binned
    return Binned(
        [*binned.labels, MISSING],
        np.append(binned.reference_counts, float(reference_missing)),
        np.append(binned.current_counts, float(current_missing)),
    )


def _number_label(value: float) -> str:
    return f"{value:.6g}"
