from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from mlops_stack_runtime.config import (
    Config,
    GateSettings,
)
from mlops_stack_runtime.evaluation import (
    Evaluation,
)
from mlops_stack_runtime.gates import (
    GATES,
    GateResult,
    demographic_parity_gate,
    equalized_odds_gate,
    min_roc_auc_gate,
    run_gates,
)

if TYPE_CHECKING:
    from mlops_stack_runtime.testing.fixtures import MakeProject


def evaluation_with(roc_auc: float) -> Evaluation:
    empty = np.array([], dtype=int)
    return Evaluation(
        test=pd.DataFrame(),
        y_true=empty,
        y_prob=empty.astype(float),
        y_pred=empty,
        metrics={"roc_auc": roc_auc},
    )


def with_threshold(config: Config, min_roc_auc: float) -> Config:
    return dataclasses.replace(config, gates=GateSettings(min_roc_auc=min_roc_auc))


@pytest.mark.parametrize(
    ("roc_auc", "threshold", "passed"),
    [(0.80, 0.75, True), (0.75, 0.75, True), (0.7499, 0.75, False), (0.60, 0.75, False)],
)
def test_min_roc_auc_gate_around_the_threshold(
    make_project: MakeProject, roc_auc: float, threshold: float, passed: bool
) -> None:
    config = with_threshold(make_project(), threshold)
    result = min_roc_auc_gate(evaluation_with(roc_auc), config)
    assert result.passed is passed
    assert (result.value, result.threshold) == (roc_auc, threshold)
    assert f"{roc_auc:.4f}" in result.message
    assert str(threshold) in result.message


def test_threshold_comes_from_the_params(make_project: MakeProject) -> None:
    config = make_project({"gates.min_roc_auc": 0.9})
    assert not min_roc_auc_gate(evaluation_with(0.85), config).passed


def test_every_gate_runs_even_after_a_failure(make_project: MakeProject) -> None:
    def always_fails(evaluation: Evaluation, config: Config) -> GateResult:
        return GateResult("always_fails", passed=False, value=0.0, threshold=1.0, message="no")

    config = with_threshold(make_project(), 0.5)
    results = run_gates(evaluation_with(0.9), config, gates=(always_fails, *GATES))
    assert [(result.name, result.passed) for result in results] == [
        ("always_fails", False),
        ("min_roc_auc", True),
    ]


def test_fairness_gates_run_only_where_params_configure_them(make_project: MakeProject) -> None:
    # with_threshold drops gates.fairness, as in a tier whose params.yaml has no such section.
    config = with_threshold(make_project(), 0.5)
    assert config.gates.fairness is None
    assert demographic_parity_gate(evaluation_with(0.9), config) is None
    assert equalized_odds_gate(evaluation_with(0.9), config) is None
    assert [result.name for result in run_gates(evaluation_with(0.9), config)] == ["min_roc_auc"]
