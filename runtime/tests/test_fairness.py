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
    FairnessSettings,
    load_config,
)
from mlops_stack_runtime.data.columns import (
    FEATURE_NAMES,
    LABEL,
    PROTECTED_ATTRIBUTE,
    ColumnSpec,
    Declaration,
    LabelSpec,
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
from mlops_stack_runtime.evaluation import (
    Evaluation,
)
from mlops_stack_runtime.fairness import (
    ClassGaps,
    Gap,
    GroupClassRates,
    GroupErrors,
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


# The names of the fairness gates' results (gates.py), whatever the task.
FAIRNESS_GATES = {
    "demographic_parity_difference",
    "equalized_odds_difference",
    "mean_prediction_gap",
    "mae_gap",
    "fairness_group_size",
}

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
    # No fairness gate runs: only the metric gates are left.
    assert demographic_parity_gate(evaluation, repo_config) is None
    assert equalized_odds_gate(evaluation, repo_config) is None
    assert fairness_group_size_gate(evaluation, repo_config) is None
    names = [result.name for result in run_gates(evaluation, repo_config)]
    assert "min_roc_auc" in names
    assert not set(names) & FAIRNESS_GATES


def test_evaluate_without_a_protected_attribute_writes_a_not_applicable_report(
    copy_trained_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fairness_module, "PROTECTED_ATTRIBUTE", None)
    config = copy_trained_project()
    _, results = evaluate(config)
    names = [result.name for result in results]
    assert "min_roc_auc" in names
    assert not set(names) & FAIRNESS_GATES
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


# Regression and multi-class: fairness_report takes the declaration (its label's task and its
# protected attribute), so these run on real data whatever task the example project declares.


def declared(label: LabelSpec, protected: str | None = "group") -> Declaration:
    feature = ColumnSpec("x", "float", "x")
    attribute = (
        None
        if protected is None
        else ColumnSpec(protected, "category", protected, categories=("a", "b"))
    )
    return Declaration((feature,), label, attribute)


REGRESSION = LabelSpec("y", "a value", (), None, "regression")
MULTICLASS = LabelSpec("kind", "a kind", ("p", "q", "r"), None, "multiclass")


def settings(**overrides: Any) -> FairnessSettings:
    values: dict[str, Any] = {
        "max_demographic_parity_difference": 0.2,
        "max_equalized_odds_difference": 0.3,
        "max_mean_prediction_gap": 0.4,
        "max_mae_gap": 0.6,
        "min_group_size": 2,
        "min_group_positives": 1,
    }
    return FairnessSettings(**{**values, **overrides})


def scored(groups: list[str], truth: Any, predicted: Any, column: str = "group") -> Evaluation:
    """An evaluation of decisions already taken (the fairness report reads y_true and y_pred)."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    test = pd.DataFrame({column: groups})
    return Evaluation(test=test, y_true=truth, scores=predicted, y_pred=predicted, metrics={})


def test_regression_gaps_are_those_computed_by_hand() -> None:
    # a: truth 1, 2, 3 predicted 2, 2, 2 -> mean prediction 2, MAE 2/3
    # b: truth 4..7 predicted 6 each -> mean prediction 6, MAE (2 + 1 + 0 + 1) / 4 = 1
    # whole test set: label std (population) of 1..7 = 2, MAE (2 + 4) / 7 = 6/7
    evaluation = scored(["a"] * 3 + ["b"] * 4, [1, 2, 3, 4, 5, 6, 7], [2, 2, 2, 6, 6, 6, 6])
    report = fairness_report(evaluation, settings(), declared(REGRESSION))
    assert report.task == "regression"
    assert report.by_group["a"] == GroupErrors(
        count=3, mean_prediction=2.0, mean_label=2.0, mae=pytest.approx(2 / 3, abs=1e-6)
    )
    assert report.by_group["b"] == GroupErrors(
        count=4, mean_prediction=6.0, mean_label=5.5, mae=1.0
    )
    assert report.overall == GroupErrors(
        count=7,
        mean_prediction=pytest.approx(30 / 7, abs=1e-6),
        mean_label=4.0,
        mae=pytest.approx(6 / 7, abs=1e-6),
    )
    assert report.label_std == pytest.approx(2.0)
    assert report.mean_prediction_gap == pytest.approx((6 - 2) / 2.0, abs=1e-6)
    assert report.mae_gap == pytest.approx((1 - 2 / 3) / (6 / 7), abs=1e-6)
    # Classification measures do not apply.
    assert report.demographic_parity_difference is None
    assert report.equalized_odds_difference is None
    assert report.gaps() == [
        Gap("mean_prediction_gap", report.mean_prediction_gap, "max_mean_prediction_gap", 0.4),
        Gap("mae_gap", report.mae_gap, "max_mae_gap", 0.6),
    ]


def test_regression_groups_are_judged_by_size_alone() -> None:
    # Group b has too few rows; positives mean nothing for a value (min_group_positives 100).
    evaluation = scored(["a"] * 3 + ["b"], [1, 2, 3, 4], [1, 2, 3, 40])
    report = fairness_report(
        evaluation, settings(min_group_size=3, min_group_positives=100), declared(REGRESSION)
    )
    assert report.insufficient == [InsufficientGroup("b", 1)]
    assert report.insufficient[0].describe() == "insufficient data for group b (n=1)"
    assert report.by_group["b"].count == 1  # reported, not compared
    assert report.mean_prediction_gap is None and report.mae_gap is None
    assert [gap.value for gap in report.gaps()] == [None, None]


def test_multiclass_gaps_are_per_class_and_the_largest_is_gated() -> None:
    # Classes p, q, r are indices 0, 1, 2.
    # a: truth p p q r, predicted p q q r
    # b: truth p q q r, predicted p p r r
    evaluation = scored(["a"] * 4 + ["b"] * 4, [0, 0, 1, 2, 0, 1, 1, 2], [0, 1, 1, 2, 0, 0, 2, 2])
    report = fairness_report(evaluation, settings(), declared(MULTICLASS))
    a, b = report.by_group["a"], report.by_group["b"]
    assert isinstance(a, GroupClassRates) and isinstance(b, GroupClassRates)
    assert (a.count, b.count) == (4, 4)
    # Selection rates (share predicted the class): a p 1/4 q 2/4 r 1/4; b p 2/4 q 0 r 2/4.
    assert {k: v.selection_rate for k, v in a.classes.items()} == {"p": 0.25, "q": 0.5, "r": 0.25}
    assert {k: v.selection_rate for k, v in b.classes.items()} == {"p": 0.5, "q": 0.0, "r": 0.5}
    # Rows of each class: a p 2 q 1 r 1; b p 1 q 2 r 1.
    assert {k: v.positives for k, v in a.classes.items()} == {"p": 2, "q": 1, "r": 1}
    assert {k: v.positives for k, v in b.classes.items()} == {"p": 1, "q": 2, "r": 1}
    # True positive rates: a p 1/2 q 1 r 1; b p 1 q 0 r 1.
    # False positive rates: a p 0 q 1/3 r 0; b p 1/3 q 0 r 1/3.
    assert a.classes["p"].true_positive_rate == 0.5
    assert b.classes["q"].true_positive_rate == 0.0
    assert a.classes["q"].false_positive_rate == pytest.approx(1 / 3, abs=1e-6)
    assert b.classes["r"].false_positive_rate == pytest.approx(1 / 3, abs=1e-6)
    assert report.by_class["p"] == ClassGaps(0.25, 0.5)
    assert report.by_class["q"] == ClassGaps(0.5, 1.0)
    assert report.by_class["r"] == ClassGaps(0.25, pytest.approx(1 / 3, abs=1e-6))
    assert report.demographic_parity_difference == 0.5
    assert report.equalized_odds_difference == 1.0
    assert report.gaps() == [
        Gap("demographic_parity_difference", 0.5, "max_demographic_parity_difference", 0.2),
        Gap("equalized_odds_difference", 1.0, "max_equalized_odds_difference", 0.3),
    ]
    overall = report.overall
    assert isinstance(overall, GroupClassRates) and overall.count == 8
    assert overall.classes["p"].selection_rate == pytest.approx(3 / 8)


def test_a_multiclass_group_needs_rows_of_every_class() -> None:
    # Group b has four rows but none of class r: it cannot be judged on r, so it is left out.
    evaluation = scored(["a"] * 4 + ["b"] * 4, [0, 1, 2, 2, 0, 0, 1, 1], [0, 1, 2, 2, 1, 1, 1, 1])
    report = fairness_report(evaluation, settings(min_group_size=4), declared(MULTICLASS))
    assert report.insufficient == [InsufficientGroup("b", 4, 0, "r")]
    assert report.insufficient[0].describe() == (
        "insufficient data for group b (n=4, rows of class r=0)"
    )
    assert report.demographic_parity_difference is None
    assert report.equalized_odds_difference is None
    assert report.by_class["p"] == ClassGaps(None, None)
    enough = fairness_report(
        evaluation, settings(min_group_size=4, min_group_positives=0), declared(MULTICLASS)
    )
    assert enough.insufficient == []
    assert enough.demographic_parity_difference is not None


def test_without_a_protected_attribute_no_task_measures_fairness() -> None:
    for label in (REGRESSION, MULTICLASS):
        evaluation = scored(["a", "b"], [0, 1], [0, 1])
        report = fairness_report(evaluation, settings(), declared(label, protected=None))
        assert not report.applicable
        assert report.gaps() == []
        assert report.summary().startswith("fairness: not applicable")


@pytest.fixture(scope="module")
def diabetes() -> tuple[pd.DataFrame, np.ndarray]:
    """scikit-learn's diabetes data (sex 1 or 2), half scored by a ridge fit on the other half."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    frame = load_diabetes(as_frame=True, scaled=False).frame
    train, test = frame.iloc[::2], frame.iloc[1::2].reset_index(drop=True)
    features = [name for name in frame.columns if name not in ("target", "sex")]
    model = Ridge().fit(train[features], train["target"])
    return test, model.predict(test[features])


def test_regression_fairness_on_the_diabetes_data(
    diabetes: tuple[pd.DataFrame, np.ndarray],
) -> None:
    test, predicted = diabetes
    declaration = declared(REGRESSION, protected="sex")
    declaration = dataclasses.replace(
        declaration,
        protected_attribute=ColumnSpec("sex", "category", "sex", categories=("1", "2")),
    )
    truth = test["target"].to_numpy()
    evaluation = Evaluation(test, truth, predicted, predicted, {})
    report = fairness_report(evaluation, settings(min_group_size=30), declaration)
    assert set(report.by_group) == {"1", "2"}
    by_sex = pd.DataFrame({"sex": test["sex"], "truth": truth, "pred": predicted}).groupby("sex")
    means = by_sex["pred"].mean()
    errors = by_sex.apply(lambda rows: (rows["truth"] - rows["pred"]).abs().mean())
    assert report.mean_prediction_gap == pytest.approx(
        abs(means.iloc[0] - means.iloc[1]) / truth.std(), abs=1e-5
    )
    assert report.mae_gap == pytest.approx(
        abs(errors.iloc[0] - errors.iloc[1]) / np.abs(truth - predicted).mean(), abs=1e-5
    )

    # The predictions of the sex predicted higher, raised by half a standard deviation: the gap
    # grows by 0.5, past a 0.4 limit.
    shifted = predicted + np.where(test["sex"] == means.idxmax(), 0.5 * truth.std(), 0.0)
    biased = fairness_report(
        Evaluation(test, truth, shifted, shifted, {}), settings(min_group_size=30), declaration
    )
    gap = biased.gaps()[0]
    assert gap.metric == "mean_prediction_gap" and gap.value is not None
    assert report.mean_prediction_gap is not None
    assert gap.value == pytest.approx(report.mean_prediction_gap + 0.5, abs=1e-5)
    assert gap.value > gap.limit == 0.4


@pytest.fixture(scope="module")
def wine() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """scikit-learn's wine data with a group drawn at random (independent of the wine), half
    classified by a logistic regression fit on the other half."""
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_wine(as_frame=True).frame
    frame["group"] = np.random.default_rng(SEED).choice(["a", "b"], size=len(frame))
    train, test = frame.iloc[::2], frame.iloc[1::2].reset_index(drop=True)
    features = [name for name in frame.columns if name not in ("target", "group")]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(train[features], train["target"])
    return test, test["target"].to_numpy(), model.predict(test[features])


def test_multiclass_fairness_on_the_wine_data(
    wine: tuple[pd.DataFrame, np.ndarray, np.ndarray],
) -> None:
    test, truth, predicted = wine
    label = LabelSpec("target", "cultivar", ("0", "1", "2"), None, "multiclass")
    report = fairness_report(
        Evaluation(test, truth, predicted, predicted, {}),
        settings(min_group_size=20),
        declared(label),
    )
    groups = test["group"].to_numpy()
    for index, name in enumerate(label.classes):
        chosen = predicted == index
        rates = {g: chosen[groups == g].mean() for g in ("a", "b")}
        assert report.by_group["a"].classes[name].selection_rate == pytest.approx(
            rates["a"], abs=1e-6
        )
        assert report.by_class[name].demographic_parity_difference == pytest.approx(
            abs(rates["a"] - rates["b"]), abs=1e-6
        )
    assert report.demographic_parity_difference == max(
        gaps.demographic_parity_difference for gaps in report.by_class.values()
    )

    # Every row of group a predicted class 0: the selection-rate gap of class 0 is large.
    biased = np.where(groups == "a", 0, predicted)
    unfair = fairness_report(
        Evaluation(test, truth, biased, biased, {}), settings(min_group_size=20), declared(label)
    )
    parity = unfair.gaps()[0]
    assert parity.metric == "demographic_parity_difference"
    assert parity.value is not None and parity.value > 0.5 > parity.limit


def test_every_task_s_report_file_reads_back_whole(tmp_path: Path) -> None:
    regression = fairness_report(
        scored(["a"] * 3 + ["b"] * 3, [1, 2, 3, 4, 5, 6], [2, 2, 2, 5, 5, 5]),
        settings(),
        declared(REGRESSION),
    )
    multiclass = fairness_report(
        scored(["a"] * 4 + ["b"] * 4, [0, 0, 1, 2, 0, 1, 1, 2], [0, 1, 1, 2, 0, 0, 2, 2]),
        settings(),
        declared(MULTICLASS),
    )
    for report in (regression, multiclass):
        path = write_fairness_report(report, tmp_path / f"{report.task}.json")
        assert read_fairness_report(path) == report
        assert read_fairness_report(path).gaps() == report.gaps()
    content = json.loads((tmp_path / "regression.json").read_text())
    assert content["task"] == "regression"
    assert "demographic_parity_difference" not in content
    assert content["limits"] == {"max_mean_prediction_gap": 0.4, "max_mae_gap": 0.6}
    assert "mean_prediction_gap" not in json.loads((tmp_path / "multiclass.json").read_text())


BINARY = LabelSpec("y", "an outcome", ("0", "1"), "1", "binary")


def test_binary_groups_report_base_rates_scores_and_selection_across_thresholds(
    tmp_path: Path,
) -> None:
    """The case a gate at one threshold hides: the model flags nobody at 0.5, yet group b's
    scores sit higher and its base rate is three times a's."""
    groups = ["a"] * 4 + ["b"] * 4
    truth = [0, 0, 0, 1, 1, 1, 1, 0]
    scores = [0.05, 0.10, 0.15, 0.20, 0.30, 0.35, 0.40, 0.45]
    decisions = [0] * 8
    evaluation = Evaluation(
        test=pd.DataFrame({"group": groups}),
        y_true=np.asarray(truth),
        scores=np.asarray(scores),
        y_pred=np.asarray(decisions),
        metrics={},
    )
    report = fairness_report(evaluation, settings(), declared(BINARY))
    assert report.demographic_parity_difference == 0.0  # nobody selected anywhere
    a, b = report.scores_by_group["a"], report.scores_by_group["b"]
    assert (a.count, a.base_rate, a.mean_score) == (4, 0.25, 0.125)
    assert (b.count, b.base_rate, b.mean_score) == (4, 0.75, 0.375)
    assert a.score_quantiles == {
        "p10": 0.065, "p25": 0.0875, "p50": 0.125, "p75": 0.1625, "p90": 0.185,
    }  # fmt: skip
    assert a.selection_rates["0.1"] == 0.75 and a.selection_rates["0.2"] == 0.25
    assert b.selection_rates["0.3"] == 1.0 and b.selection_rates["0.4"] == 0.5
    assert a.selection_rates["0.5"] == b.selection_rates["0.5"] == 0.0
    assert list(a.selection_rates) == [f"0.{tenth}" for tenth in range(1, 10)]
    assert report.scores_overall is not None
    assert (report.scores_overall.count, report.scores_overall.base_rate) == (8, 0.5)
    path = write_fairness_report(report, tmp_path / "fairness.json")
    assert read_fairness_report(path) == report
    # The other tasks' files carry no score figures.
    regression = fairness_report(
        scored(groups, [1.0] * 8, [1.0] * 8), settings(), declared(REGRESSION)
    )
    content = json.loads(write_fairness_report(regression, tmp_path / "r.json").read_text())
    assert "scores_by_group" not in content and "scores_overall" not in content
