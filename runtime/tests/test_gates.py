from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_wine
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split

from mlops_stack_runtime import gates as gates_module
from mlops_stack_runtime import tasks
from mlops_stack_runtime.config import (
    Config,
    FairnessSettings,
    GateSettings,
)
from mlops_stack_runtime.data.columns import (
    LabelSpec,
)
from mlops_stack_runtime.evaluation import (
    Evaluation,
)
from mlops_stack_runtime.fairness import (
    FairnessReport,
    InsufficientGroup,
    not_applicable_report,
)
from mlops_stack_runtime.gates import (
    GATES,
    GateResult,
    baseline_gate,
    binary_minimums_gate,
    demographic_parity_gate,
    equalized_odds_gate,
    fairness_gaps_gate,
    fairness_group_size_gate,
    metric_gate,
    run_gates,
)

if TYPE_CHECKING:
    from mlops_stack_runtime.testing.fixtures import MakeProject

BINARY = LabelSpec("default", "defaulted", ("0", "1"), "1", "binary")
WINE = LabelSpec("cultivar", "wine cultivar", ("class_0", "class_1", "class_2"), None, "multiclass")
DIABETES = LabelSpec("progression", "disease progression", (), None, "regression")
LABELS = {"binary": BINARY, "multiclass": WINE, "regression": DIABETES}


def evaluation_with(roc_auc: float | None = None, **metrics: float) -> Evaluation:
    empty = np.array([], dtype=int)
    return Evaluation(
        test=pd.DataFrame(),
        y_true=empty,
        scores=empty.astype(float),
        y_pred=empty,
        metrics={**({} if roc_auc is None else {"roc_auc": roc_auc}), **metrics},
    )


def with_gates(config: Config, **settings: Any) -> Config:
    return dataclasses.replace(config, gates=GateSettings(**{"min_roc_auc": 0.5, **settings}))


def with_threshold(config: Config, min_roc_auc: float) -> Config:
    return with_gates(config, min_roc_auc=min_roc_auc)


@pytest.fixture
def declared(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Sets the label the gates read (as data/columns.yaml would)."""

    def declare(task: str) -> LabelSpec:
        monkeypatch.setattr(gates_module, "LABEL", LABELS[task])
        return LABELS[task]

    return declare


@pytest.mark.parametrize(
    ("roc_auc", "threshold", "passed"),
    [(0.80, 0.75, True), (0.75, 0.75, True), (0.7499, 0.75, False), (0.60, 0.75, False)],
)
def test_min_roc_auc_gate_around_the_threshold(
    make_project: MakeProject, declared: Any, roc_auc: float, threshold: float, passed: bool
) -> None:
    declared("binary")
    config = with_threshold(make_project(), threshold)
    result = metric_gate(evaluation_with(roc_auc), config)
    assert result.passed is passed
    assert result.name == "min_roc_auc"
    assert (result.value, result.threshold) == (roc_auc, threshold)
    relation = ">=" if passed else "is below"
    assert result.message == f"roc_auc {roc_auc:.4f} {relation} gates.min_roc_auc {threshold}"


@pytest.mark.parametrize(
    ("task", "metric", "setting", "threshold", "value", "passed"),
    [
        ("multiclass", "macro_f1", "min_macro_f1", 0.6, 0.6, True),
        ("multiclass", "macro_f1", "min_macro_f1", 0.6, 0.5999, False),
        ("regression", "r2", "min_r2", 0.3, 0.31, True),
        ("regression", "r2", "min_r2", 0.3, 0.2999, False),
        # R² below 0: worse than predicting the mean, refused by the default setting.
        ("regression", "r2", "min_r2", 0.1, -0.5, False),
    ],
)
def test_each_task_has_its_metric_gate(
    make_project: MakeProject,
    declared: Any,
    task: str,
    metric: str,
    setting: str,
    threshold: float,
    value: float,
    passed: bool,
) -> None:
    declared(task)
    config = with_gates(make_project(), **{setting: threshold})
    # The binary metric is there too: the gate must read the task's, not roc_auc.
    result = metric_gate(evaluation_with(0.99, **{metric: value}), config)
    assert (result.name, result.passed, result.value, result.threshold) == (
        setting,
        passed,
        value,
        threshold,
    )
    relation = ">=" if passed else "is below"
    assert result.message == f"{metric} {value:.4f} {relation} gates.{setting} {threshold}"


def test_threshold_comes_from_the_params(make_project: MakeProject, declared: Any) -> None:
    declared("binary")
    config = make_project({"gates.min_roc_auc": 0.9})
    assert not metric_gate(evaluation_with(0.85), config).passed


def test_every_gate_runs_even_after_a_failure(make_project: MakeProject, declared: Any) -> None:
    declared("binary")

    def always_fails(evaluation: Evaluation, config: Config) -> GateResult:
        return GateResult("always_fails", passed=False, value=0.0, threshold=1.0, message="no")

    config = with_threshold(make_project(), 0.5)
    results = run_gates(
        evaluation_with(0.9, baseline_roc_auc=0.5), config, gates=(always_fails, *GATES)
    )
    assert [(result.name, result.passed) for result in results] == [
        ("always_fails", False),
        ("min_roc_auc", True),
        ("baseline", True),
    ]


def test_fairness_gates_run_only_where_params_configure_them(
    make_project: MakeProject, declared: Any
) -> None:
    declared("binary")
    # with_threshold drops gates.fairness, as in a tier whose params.yaml has no such section.
    config = with_threshold(make_project(), 0.5)
    assert config.gates.fairness is None
    assert demographic_parity_gate(evaluation_with(0.9), config) is None
    assert equalized_odds_gate(evaluation_with(0.9), config) is None
    assert fairness_gaps_gate(evaluation_with(0.9), config) is None
    assert [result.name for result in run_gates(evaluation_with(0.9), config)] == ["min_roc_auc"]


# --- the baseline gate ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "metric", "value", "baseline", "margin", "passed"),
    [
        # Higher is better: 0.55 is 10% above 0.5.
        ("binary", "roc_auc", 0.56, 0.5, 0.1, True),
        ("binary", "roc_auc", 0.55, 0.5, 0.1, False),
        ("binary", "roc_auc", 0.5, 0.5, 0.0, False),  # a tie does not beat the Dummy
        ("multiclass", "macro_f1", 0.4, 0.2, 0.5, True),
        ("multiclass", "macro_f1", 0.3, 0.2, 0.5, False),
        # Lower is better: 45 is 10% below 50.
        ("regression", "rmse", 44.0, 50.0, 0.1, True),
        ("regression", "rmse", 45.0, 50.0, 0.1, False),
        ("regression", "rmse", 55.0, 50.0, 0.0, False),
    ],
)
def test_the_primary_metric_must_beat_the_dummy_by_the_margin(
    make_project: MakeProject,
    declared: Any,
    task: str,
    metric: str,
    value: float,
    baseline: float,
    margin: float,
    passed: bool,
) -> None:
    declared(task)
    config = with_gates(make_project(), baseline_margin=margin)
    result = baseline_gate(
        evaluation_with(**{metric: value, f"baseline_{metric}": baseline}), config
    )
    assert result is not None
    assert (result.name, result.passed, result.value, result.threshold) == (
        "baseline",
        passed,
        value,
        baseline,
    )
    assert result.message.startswith(
        f"{metric} {value:.4f} {'beats' if passed else 'does not beat'} the Dummy estimator's "
        f"{baseline:.4f} by more than gates.baseline_margin {margin}"
    )
    direction = "lower is better" if task == "regression" else "higher is better"
    assert result.message.endswith(f"{direction})")


def test_without_a_measured_baseline_the_gate_does_not_run(
    make_project: MakeProject, declared: Any
) -> None:
    declared("binary")
    assert baseline_gate(evaluation_with(0.9), with_gates(make_project())) is None


def _split(data: Any, seed: int = 0) -> tuple[Any, Any, Any, Any]:
    return train_test_split(data.data, data.target, test_size=0.3, random_state=seed)


def _evaluation(model: Any, label: LabelSpec, data: Any, shuffle: bool = False) -> Evaluation:
    """`model` and the task's Dummy fitted on one split of a real dataset, measured on the rest
    as evaluate.py measures them."""
    x_train, x_test, y_train, y_test = _split(data)
    if shuffle:  # the label no longer depends on the features
        y_train = np.random.default_rng(0).permutation(np.asarray(y_train))
    model.fit(x_train, y_train)
    dummy = tasks.dummy_estimator(label).fit(x_train, y_train)
    primary = tasks.task_metrics(label).primary
    scores = tasks.model_scores(model, x_test, label)
    metrics = tasks.compute_metrics(y_test, scores, label)
    baseline = tasks.compute_metrics(y_test, tasks.model_scores(dummy, x_test, label), label)
    return Evaluation(
        test=pd.DataFrame(x_test),
        y_true=np.asarray(y_test),
        scores=scores,
        y_pred=tasks.decide(scores, label),
        metrics={**metrics, f"baseline_{primary}": baseline[primary]},
    )


@pytest.mark.parametrize(
    ("task", "data", "model", "shuffle", "passed"),
    [
        ("regression", load_diabetes(), Ridge(alpha=1.0), False, True),
        # So regularised that it predicts about the mean: no better than the Dummy.
        ("regression", load_diabetes(), Ridge(alpha=1e6), False, False),
        ("multiclass", load_wine(), LogisticRegression(max_iter=5000), False, True),
        # Always the most common class, as the Dummy predicts: a tie does not beat it.
        ("multiclass", load_wine(), DummyClassifier(strategy="most_frequent"), False, False),
        # Learnt from shuffled values: nothing to learn.
        ("regression", load_diabetes(), Ridge(alpha=1.0), True, False),
    ],
)
def test_baseline_gate_on_real_data(
    make_project: MakeProject,
    declared: Any,
    task: str,
    data: Any,
    model: Any,
    shuffle: bool,
    passed: bool,
) -> None:
    label = declared(task)
    evaluation = _evaluation(model, label, data, shuffle)
    result = baseline_gate(evaluation, with_gates(make_project(), baseline_margin=0.05))
    assert result is not None
    assert result.passed is passed, result.message


# --- the fairness gates, per task ----------------------------------------------------------------

LIMITS = {
    "max_demographic_parity_difference": 0.1,
    "max_equalized_odds_difference": 0.2,
    "max_mean_prediction_gap": 0.5,
    "max_mae_gap": 0.3,
}


def fairness_config(config: Config, block: bool = False) -> Config:
    fairness = FairnessSettings(
        max_demographic_parity_difference=LIMITS["max_demographic_parity_difference"],
        max_equalized_odds_difference=LIMITS["max_equalized_odds_difference"],
        max_mean_prediction_gap=LIMITS["max_mean_prediction_gap"],
        max_mae_gap=LIMITS["max_mae_gap"],
        min_group_size=30,
        min_group_positives=5,
        block_on_insufficient_data=block,
    )
    return dataclasses.replace(config, gates=GateSettings(min_roc_auc=0.5, fairness=fairness))


def report_of(task: str, insufficient: list[InsufficientGroup] | None = None, **gaps: Any) -> Any:
    report = FairnessReport(
        protected_attribute="group",
        demographic_parity_difference=gaps.get("demographic_parity_difference"),
        equalized_odds_difference=gaps.get("equalized_odds_difference"),
        overall=None,
        by_group={},
        insufficient=insufficient or [],
        task=task,
        mean_prediction_gap=gaps.get("mean_prediction_gap"),
        mae_gap=gaps.get("mae_gap"),
        limits=LIMITS,
    )
    return lambda evaluation, settings: report


@pytest.mark.parametrize(
    ("task", "gaps", "expected"),
    [
        (
            "binary",
            {"demographic_parity_difference": 0.05, "equalized_odds_difference": 0.25},
            [
                (
                    "demographic_parity_difference",
                    True,
                    "demographic_parity_difference 0.0500 <= "
                    "gates.fairness.max_demographic_parity_difference 0.1",
                ),
                (
                    "equalized_odds_difference",
                    False,
                    "equalized_odds_difference 0.2500 exceeds "
                    "gates.fairness.max_equalized_odds_difference 0.2",
                ),
            ],
        ),
        (
            "regression",
            {"mean_prediction_gap": 0.6, "mae_gap": 0.1},
            [
                (
                    "mean_prediction_gap",
                    False,
                    "mean_prediction_gap 0.6000 exceeds gates.fairness.max_mean_prediction_gap 0.5",
                ),
                ("mae_gap", True, "mae_gap 0.1000 <= gates.fairness.max_mae_gap 0.3"),
            ],
        ),
    ],
)
def test_fairness_gates_bound_the_gaps_of_the_task(
    make_project: MakeProject,
    declared: Any,
    monkeypatch: pytest.MonkeyPatch,
    task: str,
    gaps: dict[str, float],
    expected: list[tuple[str, bool, str]],
) -> None:
    declared(task)
    monkeypatch.setattr(gates_module, "fairness_report", report_of(task, **gaps))
    config = fairness_config(make_project())
    results = fairness_gaps_gate(evaluation_with(0.9), config)
    assert results is not None
    assert [(r.name, r.passed, r.message) for r in results] == expected
    names = [result.name for result in run_gates(evaluation_with(0.9, r2=0.9), config)]
    assert names[1:] == [name for name, _, _ in expected]


@pytest.mark.parametrize("block", [False, True])
def test_an_unmeasured_gap_fails_only_when_blocking(
    make_project: MakeProject, declared: Any, monkeypatch: pytest.MonkeyPatch, block: bool
) -> None:
    declared("regression")
    small = [InsufficientGroup("b", 12)]
    monkeypatch.setattr(gates_module, "fairness_report", report_of("regression", small))
    config = fairness_config(make_project(), block=block)
    results = fairness_gaps_gate(evaluation_with(), config)
    assert results is not None
    assert [(r.name, r.passed) for r in results] == [
        ("mean_prediction_gap", not block),
        ("mae_gap", not block),
    ]
    assert results[0].message == (
        "mean_prediction_gap: not measured, fewer than two groups of group have enough data"
    )
    # Nothing measured: no value, against the configured limit.
    assert np.isnan(results[0].value)
    assert [r.threshold for r in results] == [
        LIMITS["max_mean_prediction_gap"],
        LIMITS["max_mae_gap"],
    ]
    size = fairness_group_size_gate(evaluation_with(), config)
    assert size is not None and size.passed is not block
    # A regression group is judged by its rows alone: no positives in the message.
    assert size.message == (
        "insufficient data for group b (n=12) (gates.fairness.min_group_size 30; "
        f"block_on_insufficient_data is {str(block).lower()})"
    )


def test_binary_group_size_message_names_the_positives(
    make_project: MakeProject, declared: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared("binary")
    small = [InsufficientGroup("b", 12, 2), InsufficientGroup("c", 40, 1)]
    monkeypatch.setattr(gates_module, "fairness_report", report_of("binary", small))
    size = fairness_group_size_gate(evaluation_with(0.9), fairness_config(make_project()))
    assert size is not None
    assert (size.name, size.passed, size.value, size.threshold) == (
        "fairness_group_size",
        True,
        2.0,
        0.0,
    )
    assert size.message == (
        "insufficient data for group b (n=12, positives=2); insufficient data for group c "
        "(n=40, positives=1) (gates.fairness.min_group_size 30, min_group_positives 5; "
        "block_on_insufficient_data is false)"
    )


def test_a_single_gap_gate_judges_its_own_gap_and_skips_a_task_without_it(
    make_project: MakeProject, declared: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared("binary")
    config = fairness_config(make_project())
    measured = report_of(
        "binary", demographic_parity_difference=0.05, equalized_odds_difference=0.25
    )
    monkeypatch.setattr(gates_module, "fairness_report", measured)
    parity = demographic_parity_gate(evaluation_with(0.9), config)
    odds = equalized_odds_gate(evaluation_with(0.9), config)
    assert parity is not None and (parity.name, parity.passed) == (
        "demographic_parity_difference",
        True,
    )
    assert odds is not None and (odds.name, odds.passed, odds.value) == (
        "equalized_odds_difference",
        False,
        0.25,
    )
    # Unmeasured: the message names the protected attribute the report is about.
    monkeypatch.setattr(gates_module, "fairness_report", report_of("binary"))
    unmeasured = demographic_parity_gate(evaluation_with(0.9), config)
    assert unmeasured is not None and unmeasured.message == (
        "demographic_parity_difference: not measured, fewer than two groups of group have "
        "enough data"
    )
    # A regression report has no demographic parity gap: that gate does not count.
    declared("regression")
    monkeypatch.setattr(gates_module, "fairness_report", report_of("regression", mae_gap=0.1))
    assert demographic_parity_gate(evaluation_with(), config) is None
    assert equalized_odds_gate(evaluation_with(), config) is None


def test_a_gap_equal_to_its_limit_passes(
    make_project: MakeProject, declared: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared("binary")
    limit = LIMITS["max_demographic_parity_difference"]
    at_limit = report_of("binary", demographic_parity_difference=limit)
    monkeypatch.setattr(gates_module, "fairness_report", at_limit)
    parity = demographic_parity_gate(evaluation_with(0.9), fairness_config(make_project()))
    assert parity is not None and parity.passed
    assert parity.message == (
        f"demographic_parity_difference {limit:.4f} <= "
        f"gates.fairness.max_demographic_parity_difference {limit}"
    )


def test_without_a_protected_attribute_the_fairness_gates_do_not_run(
    make_project: MakeProject, declared: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared("binary")
    report = not_applicable_report("binary")
    monkeypatch.setattr(gates_module, "fairness_report", lambda evaluation, settings: report)
    config = fairness_config(make_project())
    assert fairness_gaps_gate(evaluation_with(0.9), config) is None
    assert fairness_group_size_gate(evaluation_with(0.9), config) is None
    assert demographic_parity_gate(evaluation_with(0.9), config) is None


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, None),
        (
            {"min_pr_auc": 0.4},
            [("min_pr_auc", True, "pr_auc 0.4000 >= gates.min_pr_auc 0.4")],
        ),
        (
            {"min_pr_auc": 0.5, "min_recall": 0.3},
            [
                ("min_pr_auc", False, "pr_auc 0.4000 is below gates.min_pr_auc 0.5"),
                ("min_recall", True, "recall 0.3000 >= gates.min_recall 0.3"),
            ],
        ),
        (
            {"min_recall": 0.3001},
            [("min_recall", False, "recall 0.3000 is below gates.min_recall 0.3001")],
        ),
    ],
)
def test_binary_pr_auc_and_recall_gate_only_where_params_set_them(
    make_project: MakeProject,
    declared: Any,
    settings: dict[str, float],
    expected: list[tuple[str, bool, str]] | None,
) -> None:
    declared("binary")
    config = with_gates(make_project(), **settings)
    evaluation = evaluation_with(0.9, pr_auc=0.4, recall=0.3, baseline_roc_auc=0.5)
    results = binary_minimums_gate(evaluation, config)
    if expected is None:
        assert results is None
        assert [r.name for r in run_gates(evaluation, config)] == ["min_roc_auc", "baseline"]
        return
    assert results is not None
    assert [(r.name, r.passed, r.message) for r in results] == expected
    assert [(r.value, r.threshold) for r in results] == [
        (evaluation.metrics[name.removeprefix("min_")], settings[name]) for name, _, _ in expected
    ]
    assert [r.name for r in run_gates(evaluation, config)][:2] == ["min_roc_auc", expected[0][0]]


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_the_binary_minimums_do_not_apply_to_other_tasks(
    make_project: MakeProject, declared: Any, task: str
) -> None:
    declared(task)
    config = with_gates(make_project(), min_pr_auc=0.9, min_recall=0.9)
    assert binary_minimums_gate(evaluation_with(0.9, pr_auc=0.1, recall=0.1), config) is None
