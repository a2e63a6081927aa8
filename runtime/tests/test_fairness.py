"""The fairness report and the fairness gates (params `gates.fairness`, fairlearn).

The groups are those of the protected attribute of columns.yaml; with none declared, the report
is "not applicable" and no fairness gate runs (checked whatever columns.yaml declares).
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from mlops_stack_runtime import (
    fairness as fairness_module,
)
from mlops_stack_runtime.config import (
    Config,
    load_config,
)
from mlops_stack_runtime.data.columns import (
    FEATURE_NAMES,
    LABEL,
    PROTECTED_ATTRIBUTE,
    as_category,
    binary_label,
)
from mlops_stack_runtime.data.csv_files import (
    read_frame,
)
from mlops_stack_runtime.data.sample import (
    generate_sample,
)
from mlops_stack_runtime.data.split import (
    split_train_test,
)
from mlops_stack_runtime.errors import (
    GateFailedError,
)
from mlops_stack_runtime.evaluate import (
    evaluate,
    evaluate_model,
)
from mlops_stack_runtime.fairness import (
    InsufficientGroup,
    fairness_report,
    read_fairness_report,
    write_fairness_report,
)
from mlops_stack_runtime.gates import (
    demographic_parity_gate,
    equalized_odds_gate,
    fairness_group_size_gate,
    run_gates,
)
from mlops_stack_runtime.testing.fixtures import repository_params
from mlops_stack_runtime.train import (
    fit_pipeline,
)

if TYPE_CHECKING:
    from pathlib import Path

    from mlops_stack_runtime.testing.fixtures import MakeProject

# About 2,000 rows per group of two: sampling noise far below the gate's thresholds.
LARGE_SAMPLE_ROWS = 4_000
SEED = 11
needs_protected_attribute = pytest.mark.skipif(
    PROTECTED_ATTRIBUTE is None, reason="columns.yaml declares no protected attribute"
)


@pytest.fixture(scope="module")
def repo_config() -> Config:
    """The repository's own thresholds (the small test projects relax them)."""
    config = load_config(repository_params())
    assert config.gates.fairness is not None
    return config


# The gaps a biased model must exceed in the tests below, whatever limits the project answered
# (a team may set them as high as 1.0 for data that is unequal by nature).
BIASED_LIMIT = 0.1


@pytest.fixture(scope="module")
def strict_config(repo_config: Config) -> Config:
    """The repository's settings with fairness limits no higher than BIASED_LIMIT."""
    fairness = repo_config.gates.fairness
    assert fairness is not None
    strict = fairness.model_copy(
        update={
            "max_demographic_parity_difference": min(
                fairness.max_demographic_parity_difference, BIASED_LIMIT
            ),
            "max_equalized_odds_difference": min(
                fairness.max_equalized_odds_difference, BIASED_LIMIT
            ),
        }
    )
    gates = repo_config.gates.model_copy(update={"fairness": strict})
    return dataclasses.replace(repo_config, gates=gates)


@pytest.fixture(scope="module")
def frames(trained_project: Config) -> tuple[Any, pd.DataFrame]:
    """A model of the project's settings trained on a large sample, and held-out rows of it."""
    frame = generate_sample(n_rows=2 * LARGE_SAMPLE_ROWS, seed=SEED)
    train, held_out = split_train_test(frame, test_size=0.5, seed=SEED)
    return fit_pipeline(train, trained_project.model), held_out


@pytest.fixture(scope="module")
def model(frames: tuple[Any, pd.DataFrame]) -> Any:
    return frames[0]


@pytest.fixture(scope="module")
def sample(frames: tuple[Any, pd.DataFrame]) -> pd.DataFrame:
    return frames[1]


def groups_of(frame: pd.DataFrame) -> pd.Series:
    """The group of every row, as the report names it (canonical text)."""
    assert PROTECTED_ATTRIBUTE is not None
    return as_category(frame[PROTECTED_ATTRIBUTE.name]).fillna("(missing)").astype(str)


def first_group(frame: pd.DataFrame) -> str:
    return sorted(groups_of(frame).unique())[0]


def flip_labels_of_one_group(frame: pd.DataFrame) -> pd.DataFrame:
    biased = frame.copy()
    rows = groups_of(biased) == first_group(biased)
    positive = binary_label(biased[LABEL.name]) == 1
    biased.loc[rows, LABEL.name] = np.where(positive[rows], LABEL.negative, LABEL.positive)
    return biased


def spread(rates: dict[str, float]) -> float:
    return max(rates.values()) - min(rates.values())


def test_without_a_protected_attribute_the_report_is_not_applicable(
    model: Any, sample: pd.DataFrame, repo_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fairness_module, "PROTECTED_ATTRIBUTE", None)
    evaluation = evaluate_model(model, sample)
    report = fairness_report(evaluation, repo_config.gates.fairness)
    assert not report.applicable
    assert report.protected_attribute is None
    assert report.by_group == {}
    assert report.demographic_parity_difference is None
    assert report.equalized_odds_difference is None
    assert report.summary().startswith("fairness: not applicable")
    # No fairness gate runs: only the metric gate is left.
    assert demographic_parity_gate(evaluation, repo_config) is None
    assert equalized_odds_gate(evaluation, repo_config) is None
    assert fairness_group_size_gate(evaluation, repo_config) is None
    assert [result.name for result in run_gates(evaluation, repo_config)] == ["min_roc_auc"]


def test_evaluate_without_a_protected_attribute_writes_a_not_applicable_report(
    copy_trained_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fairness_module, "PROTECTED_ATTRIBUTE", None)
    config = copy_trained_project()
    _, results = evaluate(config)
    assert [result.name for result in results] == ["min_roc_auc"]
    assert json.loads(config.paths.fairness_report.read_text())["applicable"] is False
    report = read_fairness_report(config.paths.fairness_report)
    assert not report.applicable
    assert report.by_group == {}
    assert report.overall is None


@needs_protected_attribute
def test_the_default_data_passes_the_fairness_gates(
    model: Any, sample: pd.DataFrame, repo_config: Config
) -> None:
    evaluation = evaluate_model(model, sample)
    results = {result.name: result for result in run_gates(evaluation, repo_config)}
    fairness = repo_config.gates.fairness
    assert fairness is not None
    parity = results["demographic_parity_difference"]
    odds = results["equalized_odds_difference"]
    assert parity.passed and parity.threshold == fairness.max_demographic_parity_difference
    assert odds.passed and odds.threshold == fairness.max_equalized_odds_difference
    assert "fairness_group_size" not in results  # every group is large enough to judge


@needs_protected_attribute
def test_report_rates_are_those_of_the_decisions(
    model: Any, sample: pd.DataFrame, repo_config: Config
) -> None:
    assert PROTECTED_ATTRIBUTE is not None
    evaluation = evaluate_model(model, sample)
    report = fairness_report(evaluation, repo_config.gates.fairness)
    assert report.applicable
    assert report.protected_attribute == PROTECTED_ATTRIBUTE.name
    groups = groups_of(sample)
    assert set(report.by_group) == set(groups)
    if PROTECTED_ATTRIBUTE.categories:
        assert set(report.by_group) <= set(PROTECTED_ATTRIBUTE.categories)
    assert report.insufficient == []
    assert report.overall is not None
    assert report.overall.count == LARGE_SAMPLE_ROWS
    truth, decisions = evaluation.y_true, evaluation.y_pred
    assert report.overall.positives == truth.sum()
    selection, tpr, fpr = {}, {}, {}
    for group, rates in report.by_group.items():
        rows = (groups == group).to_numpy()
        assert rates.count == rows.sum()
        assert rates.positives == truth[rows].sum()
        selection[group] = decisions[rows].mean()
        tpr[group] = decisions[rows & (truth == 1)].mean()
        fpr[group] = decisions[rows & (truth == 0)].mean()
        assert rates.selection_rate == pytest.approx(selection[group], abs=1e-6)
        assert rates.true_positive_rate == pytest.approx(tpr[group], abs=1e-6)
        assert rates.false_positive_rate == pytest.approx(fpr[group], abs=1e-6)
    assert report.demographic_parity_difference == pytest.approx(spread(selection), abs=1e-6)
    assert report.equalized_odds_difference == pytest.approx(
        max(spread(tpr), spread(fpr)), abs=1e-6
    )


@needs_protected_attribute
def test_a_group_too_small_to_judge_is_reported_and_left_out_of_the_gaps(
    model: Any, sample: pd.DataFrame, repo_config: Config
) -> None:
    fairness = repo_config.gates.fairness
    assert fairness is not None
    groups = groups_of(sample)
    small = first_group(sample)
    few = fairness.min_group_size - 1
    frame = pd.concat([sample[groups != small], sample[groups == small].head(few)])
    evaluation = evaluate_model(model, frame)
    report = fairness_report(evaluation, fairness)
    positives = int(binary_label(frame.loc[groups_of(frame) == small, LABEL.name]).sum())
    assert report.insufficient == [InsufficientGroup(small, few, positives)]
    assert report.by_group[small].count == few  # still reported, only not compared
    judged = {group: rates for group, rates in report.by_group.items() if group != small}
    if len(judged) >= 2:
        rates = {group: r.selection_rate for group, r in judged.items()}
        assert report.demographic_parity_difference == pytest.approx(spread(rates), abs=1e-6)
    else:
        assert report.demographic_parity_difference is None
        assert report.equalized_odds_difference is None
    assert f"insufficient data for group {small} (n={few}, positives={positives})" in (
        report.summary()
    )

    reported = fairness_group_size_gate(evaluation, repo_config)
    assert reported is not None and reported.passed  # block_on_insufficient_data: false
    assert f"insufficient data for group {small}" in reported.message
    blocking = dataclasses.replace(
        repo_config,
        gates=repo_config.gates.model_copy(
            update={"fairness": fairness.model_copy(update={"block_on_insufficient_data": True})}
        ),
    )
    blocked = fairness_group_size_gate(evaluation, blocking)
    assert blocked is not None and not blocked.passed
    assert "block_on_insufficient_data is true" in blocked.message


@needs_protected_attribute
def test_flipped_labels_for_one_group_fail_equalized_odds(
    model: Any, sample: pd.DataFrame, strict_config: Config
) -> None:
    evaluation = evaluate_model(model, flip_labels_of_one_group(sample))
    odds = equalized_odds_gate(evaluation, strict_config)
    assert odds is not None and not odds.passed
    assert odds.value > 0.3
    assert odds.message == (
        f"equalized_odds_difference {odds.value:.4f} exceeds "
        f"gates.fairness.max_equalized_odds_difference {odds.threshold}"
    )
    # The decisions did not change, so their rates per group are as fair as before.
    parity = demographic_parity_gate(evaluation, strict_config)
    assert parity is not None and parity.passed


@needs_protected_attribute
def test_riskier_rows_in_one_group_fail_demographic_parity(
    model: Any, sample: pd.DataFrame, strict_config: Config
) -> None:
    # The rows of one group take the inputs of the rows the model scores highest.
    biased = sample.copy()
    rows = (groups_of(biased) == first_group(biased)).to_numpy()
    scores = model.predict_proba(biased[list(FEATURE_NAMES)])[:, 1]
    riskiest = biased.iloc[np.argsort(-scores)[: rows.sum()]]
    biased.loc[rows, list(FEATURE_NAMES)] = riskiest[list(FEATURE_NAMES)].to_numpy()
    parity = demographic_parity_gate(evaluate_model(model, biased), strict_config)
    assert parity is not None and not parity.passed
    assert parity.value > 0.3
    assert parity.message.startswith("demographic_parity_difference ")
    assert parity.message.endswith(
        f"exceeds gates.fairness.max_demographic_parity_difference {parity.threshold}"
    )


@needs_protected_attribute
def test_evaluate_writes_the_report_then_fails_a_biased_model(
    copy_trained_project: MakeProject, strict_config: Config
) -> None:
    fairness = strict_config.gates.fairness
    assert fairness is not None
    config = copy_trained_project(
        {
            # Flipping one group's labels also costs ranking quality: only fairness is judged.
            "gates.min_roc_auc": 0.01,
            "gates.fairness.max_demographic_parity_difference": (
                fairness.max_demographic_parity_difference
            ),
            "gates.fairness.max_equalized_odds_difference": fairness.max_equalized_odds_difference,
        }
    )
    test = read_frame(config.paths.test_data)
    flip_labels_of_one_group(test).to_csv(config.paths.test_data, index=False)

    with pytest.raises(
        GateFailedError,
        match=r"equalized_odds_difference 0\.\d{4} exceeds gates\.fairness\.max_equalized_odds",
    ):
        evaluate(config)
    report = read_fairness_report(config.paths.fairness_report)
    assert report.applicable
    assert sum(rates.count for rates in report.by_group.values()) == len(test)
    assert report.equalized_odds_difference is not None
    assert report.equalized_odds_difference > fairness.max_equalized_odds_difference


@needs_protected_attribute
def test_the_report_file_reads_back_whole(
    model: Any, sample: pd.DataFrame, repo_config: Config, tmp_path: Path
) -> None:
    report = fairness_report(evaluate_model(model, sample.head(500)), repo_config.gates.fairness)
    path = write_fairness_report(report, tmp_path / "reports" / "fairness.json")
    assert read_fairness_report(path) == report
    assert report.equalized_odds_difference is not None
    assert np.isfinite(report.equalized_odds_difference)
