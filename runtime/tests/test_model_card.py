from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from mlops_stack_runtime.audit import (
    ModelRecord,
    read_record,
)
from mlops_stack_runtime.config import (
    Config,
)
from mlops_stack_runtime.data.columns import (
    ColumnSpec,
    Declaration,
    LabelSpec,
)
from mlops_stack_runtime.errors import (
    ArtifactIntegrityError,
)
from mlops_stack_runtime.evaluate import (
    evaluate,
)
from mlops_stack_runtime.evaluation import (
    Evaluation,
)
from mlops_stack_runtime.explain import read_importance
from mlops_stack_runtime.fairness import (
    fairness_report,
    read_fairness_report,
)
from mlops_stack_runtime.model_card import (
    CardInputs,
    load_inputs,
    metric_meanings,
    render,
    write_model_card,
)
from mlops_stack_runtime.promotion import (
    Contender,
    Promotion,
    write_promotion_report,
)

if TYPE_CHECKING:
    from mlops_stack_runtime.testing.fixtures import MakeProject

SECTIONS = (
    "## Model details",
    "## Intended use",
    "## Data",
    "## Performance",
    "## What the model relies on",
    "## Fairness",
    "## Limitations",
    "## Approvals",
)


@pytest.fixture
def evaluated(copy_trained_project: MakeProject) -> Config:
    """A trained project after the evaluate stage: metrics (and fairness) reports written."""
    config = copy_trained_project()
    evaluate(config)
    return config


def kept_champion(record: ModelRecord, version: int) -> Promotion:
    challenger = Contender(
        version=version, metrics=record.metrics, gates=[], training_data_sha256=None
    )
    return Promotion(
        registered_model=str(record.registered_model_name),
        outcome="kept_champion",
        reason="challenger does not beat the champion: roc_auc 0.8000 vs 0.8100",
        champion_version=version + 1,
        champion_model_sha256="f" * 64,
        champion_onnx_sha256=None,
        challenger=challenger,
        previous_champion=None,
        test_data_sha256=record.test_data_sha256,
        min_improvement=0.0,
        decided_at="2030-01-02T03:04:05+00:00",
    )


def test_the_card_holds_the_real_numbers_of_the_model(evaluated: Config) -> None:
    path = write_model_card(evaluated)
    assert path == evaluated.root / "docs" / "model_card.md"
    card = path.read_text()
    record = read_record(evaluated.paths.models_dir)
    name, version = record.registered_model_name, record.registered_model_version
    assert card.startswith(f"# Model card: {name} version {version}\n")
    assert [line for line in card.splitlines() if line.startswith("## ")] == list(SECTIONS)
    for name, value in record.metrics.items():
        assert f"| {name} | {value:.4f} |" in card
    for digest in (record.model_sha256, record.training_data_sha256, record.test_data_sha256):
        assert digest in card
    assert f">= {evaluated.gates.min_roc_auc} (`gates.min_roc_auc`): passed" in card
    importance = read_importance(evaluated.paths.importance)
    assert importance is not None and importance.metric == "roc_auc"
    assert f"Permutation importance on the {importance.rows} held-out rows" in card
    for feature in importance.features:
        assert f"| `{feature.name}` | {feature.mean:+.4f} | {feature.std:.4f} |" in card
    assert "- Quality gates: passed" in card
    assert "- Registry: no promotion decision yet (`make promote`)." in card

    fairness = evaluated.gates.fairness
    if fairness is None:
        assert "Not measured: this project has no fairness gate" in card
    else:
        report = read_fairness_report(evaluated.paths.fairness_report)
        if not report.applicable:
            assert "Not applicable: data/columns.yaml declares no protected attribute" in card
        else:
            for group, rates in report.by_group.items():
                row = (
                    f"| {group} | {rates.count} | {rates.positives} | {rates.selection_rate:.4f} |"
                )
                assert row in card
            assert report.scores_overall is not None
            overall = report.scores_overall
            assert (
                f"| all | {overall.base_rate:.4f} | {overall.mean_score:.4f} | "
                f"{overall.score_quantiles['p10']:.4f} | {overall.score_quantiles['p50']:.4f} | "
                f"{overall.score_quantiles['p90']:.4f} |"
            ) in card
            for group, figures in report.scores_by_group.items():
                rates = " | ".join(f"{rate:.4f}" for rate in figures.selection_rates.values())
                assert f"| {group} | {rates} |" in card
            assert "Selection rate at other thresholds (the model decides at 0.5):" in card
            measured = report.equalized_odds_difference
            if measured is None:
                assert "| not measured | fewer than two groups with enough data |" in card
            else:
                assert (
                    f"| {measured:.4f} | <= "
                    f"{fairness.max_equalized_odds_difference} (`gates.fairness."
                ) in card
    approvers = evaluated.governance.production_approvers
    if approvers:
        assert f"approval by {', '.join(approvers)}" in card
    else:
        assert "no human approval step is configured" in card


def test_the_same_records_give_the_same_card(evaluated: Config) -> None:
    first = write_model_card(evaluated).read_text()
    assert write_model_card(evaluated).read_text() == first


def test_the_card_states_the_last_promotion_decision_about_this_version(
    evaluated: Config,
) -> None:
    record = read_record(evaluated.paths.models_dir)
    version = int(record.registered_model_version or 0)
    write_promotion_report(kept_champion(record, version), evaluated.paths.promotion_report)
    card = render(load_inputs(evaluated))
    assert (
        "- Registry: challenger, not promoted on 2030-01-02T03:04:05+00:00 (champion stays "
        f"version {version + 1}): challenger does not beat the champion"
    ) in card

    # A decision about another version says nothing about this one.
    write_promotion_report(kept_champion(record, version + 5), evaluated.paths.promotion_report)
    card = render(load_inputs(evaluated))
    assert "- Registry: no promotion decision yet for this version (`make promote`)." in card


def test_metrics_of_another_model_are_refused(evaluated: Config) -> None:
    metrics = json.loads(evaluated.paths.metrics.read_text())
    metrics["roc_auc"] = 0.5
    evaluated.paths.metrics.write_text(json.dumps(metrics))
    with pytest.raises(ArtifactIntegrityError, match=r"metrics\.json does not match"):
        write_model_card(evaluated)
    assert not evaluated.paths.model_card.exists()


def test_a_model_never_evaluated_has_no_card(copy_trained_project: MakeProject) -> None:
    config = copy_trained_project()
    with pytest.raises(ArtifactIntegrityError, match=r"metrics\.json not found"):
        write_model_card(config)


# Cards of the other tasks: CardInputs carries the declaration the model was made for, so these
# render a regression and a multi-class model whatever task the example project declares.

PROTECTED = ColumnSpec("group", "category", "a group", categories=("a", "b"))
FEATURES = (ColumnSpec("dose", "float", "Dose given"),)
REGRESSION = Declaration(
    FEATURES,
    LabelSpec("progression", "disease progression after a year", (), None, "regression", 25, 346),
    PROTECTED,
)
MULTICLASS = Declaration(
    FEATURES,
    LabelSpec(
        "cultivar", "grape cultivar", ("barolo", "grignolino", "barbera"), None, "multiclass"
    ),
    PROTECTED,
)


def record_of(estimator: str, metrics: dict[str, float]) -> ModelRecord:
    return ModelRecord(
        model_file="model.joblib",
        model_sha256="a" * 64,
        training_data_sha256="b" * 64,
        test_data_sha256="c" * 64,
        git_commit=None,
        params={
            "data": {"source": "file", "test_size": 0.2, "seed": 42},
            "model": {
                "estimator": estimator,
                "random_state": 42,
                "hyperparameters": {estimator: {"max_iter": 100}},
            },
        },
        metrics=metrics,
        mlflow_run_id="run",
        registered_model_name="model",
        registered_model_version=3,
        sklearn_version="1.0",
        python_version="3.12",
        feature_names=["dose"],
        created_at="2030-01-01T00:00:00+00:00",
    )


def card_of(
    config: Config, declaration: Declaration, estimator: str, metrics: dict[str, float], report: Any
) -> str:
    inputs = CardInputs(config, record_of(estimator, metrics), metrics, report, None, declaration)
    return render(inputs)


def scored(truth: list[float], predicted: list[float]) -> Evaluation:
    groups = ["a"] * (len(truth) // 2) + ["b"] * (len(truth) - len(truth) // 2)
    return Evaluation(
        pd.DataFrame({"group": groups}),
        np.asarray(truth),
        np.asarray(predicted),
        np.asarray(predicted),
        {},
    )


def test_a_regression_card_speaks_of_values(make_project: MakeProject) -> None:
    config = make_project(
        {
            "gates.min_r2": 0.3,
            "gates.baseline_margin": 0.1,
            # make_project loosens every fairness limit to 1.0 for its small samples.
            "gates.fairness.max_mean_prediction_gap": 0.5,
        }
    )
    assert config.gates.fairness is not None
    report = fairness_report(
        scored([100, 120, 140, 200, 220, 240], [110, 120, 130, 190, 230, 250]),
        config.gates.fairness.model_copy(update={"min_group_size": 2}),
        REGRESSION,
    )
    metrics = {"rmse": 55.1, "mae": 44.2, "r2": 0.45, "baseline_rmse": 70.0}
    card = card_of(config, REGRESSION, "ridge", metrics, report)
    assert "| Task | regression: predicts the value of `progression` |" in card
    assert "scikit-learn `Ridge` (params `model.estimator` ridge; max_iter=100" in card
    assert "| Output | `predicted_progression`, the predicted value of `progression`" in card
    assert "Estimate the value of progression (disease progression after a year)" in card
    assert "(a number from 25 to 346; task regression)" in card
    assert "| Split | random: 80% training" in card
    assert (
        "| rmse | 55.1000 | typical error: root mean squared error, in units of `progression` "
        "(lower is better) | beats"
    ) in card
    assert ">= 0.3 (`gates.min_r2`): passed |" in card
    # RMSE 55.1 is 21% below the Dummy's 70: more than the margin of 0.1.
    assert (
        "(lower is better) | beats the Dummy estimator's 70.0000 by more than 0.1 of it "
        "(`gates.baseline_margin`): passed |"
    ) in card
    assert "| baseline_rmse | 70.0000 | rmse of scikit-learn's Dummy estimator" in card
    assert "Models are compared on rmse (lower is better)." in card
    # Per group: a 100 120 140 predicted 110 120 130, b 200 220 240 predicted 190 230 250.
    assert "| a | 3 | 120.0000 | 120.0000 | 6.6667 |" in card
    assert "| b | 3 | 220.0000 | 223.3333 | 10.0000 |" in card
    assert (
        "| mean prediction gap | largest gap in mean prediction, as a share of the label's "
        f"standard deviation | {report.mean_prediction_gap:.4f} | <= 0.5 "
        "(`gates.fairness.max_mean_prediction_gap`): "
    ) in card
    assert "`gates.fairness.max_mae_gap`" in card
    assert (
        "- Fairness is measured for `group` alone, on the mean prediction and the mean error of "
        "each group, not on the whole spread of its errors; other attributes and their "
        "intersections are not covered."
    ) in card
    # Nothing of a classifier is left.
    for word in ("probabilit", "positive", "threshold", "selection rate", "roc_auc", "class"):
        assert word not in card.lower(), word


def test_a_multiclass_card_speaks_of_classes(make_project: MakeProject) -> None:
    config = make_project({"gates.min_macro_f1": 0.5, "gates.baseline_margin": 0.1})
    assert config.gates.fairness is not None
    report = fairness_report(
        scored([0, 1, 2, 0, 1, 2], [0, 1, 2, 1, 1, 2]),
        config.gates.fairness.model_copy(update={"min_group_size": 2, "min_group_positives": 1}),
        MULTICLASS,
    )
    metrics = {
        "macro_f1": 0.42,
        "balanced_accuracy": 0.5,
        "accuracy": 0.6,
        "log_loss": 0.9,
        "roc_auc_ovr": 0.8,
        "baseline_macro_f1": 0.4,
    }
    card = card_of(config, MULTICLASS, "hist_gradient_boosting", metrics, report)
    assert "| Task | multi-class classification: predicts which of 3 classes |" in card
    assert "scikit-learn `HistGradientBoostingClassifier`" in card
    assert (
        "`predicted_cultivar`, the most probable class of `cultivar` (barolo, grignolino, "
        "barbera), and each class's probability: `cultivar_probability_<class>` in v2 answers "
        "and tables, a mapping `cultivar_probabilities` (class to probability) in v1 answers"
    ) in card
    assert "(classes barolo, grignolino, barbera; task multiclass)" in card
    assert "| Split | stratified on the label: 80% training" in card
    assert "| macro_f1 | 0.4200 | F1 of each class" in card
    # Macro F1 0.42 is 5% above the Dummy's 0.4: not more than the margin of 0.1.
    assert (
        ">= 0.5 (`gates.min_macro_f1`): FAILED; beats the Dummy estimator's 0.4000 by more than "
        "0.1 of it (`gates.baseline_margin`): FAILED |"
    ) in card
    assert "- Quality gates: FAILED (min_macro_f1, baseline_margin): this model" in card
    # Group b predicted grignolino for one barolo: barolo's selection rate there is 0.
    assert "| b | barolo | 1 | 0.0000 | 0.0000 | 0.0000 |" in card
    assert "| a | barolo | 1 | 0.3333 | 1.0000 | 0.0000 |" in card
    assert "| barolo | 0.3333 | 1.0000 |" in card  # that class's gaps
    assert "largest gap in the share predicted a class, over the classes" in card
    for word in ("threshold", "positives", "_probability`", "probability >="):
        assert word not in card, word


def test_every_task_s_card_fails_on_a_fairness_gap(make_project: MakeProject) -> None:
    config = make_project()
    fairness = config.gates.fairness
    assert fairness is not None
    strict = fairness.model_copy(
        update={"min_group_size": 2, "max_mean_prediction_gap": 0.1, "max_mae_gap": 5.0}
    )
    config = dataclasses.replace(
        config, gates=config.gates.model_copy(update={"fairness": strict, "min_r2": 0.1})
    )
    # Group b predicted 10 too high: a gap of 10 / 16.33 (the label's standard deviation).
    report = fairness_report(
        scored([100, 120, 140, 100, 120, 140], [100, 120, 140, 110, 130, 150]), strict, REGRESSION
    )
    assert report.mean_prediction_gap == pytest.approx(10 / np.std([100, 120, 140]), abs=1e-4)
    card = card_of(config, REGRESSION, "ridge", {"rmse": 30.0, "mae": 25.0, "r2": 0.5}, report)
    assert "- Quality gates: FAILED (max_mean_prediction_gap): this model must not" in card
    assert "(`gates.fairness.max_mean_prediction_gap`): FAILED |" in card


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_every_metric_meaning_is_a_complete_phrase_in_the_label_s_words(task: str) -> None:
    values = {"binary": ("no", "yes"), "multiclass": ("a", "b", "c"), "regression": ()}[task]
    label = LabelSpec(
        name="received_callback",
        description="",
        values=values,
        positive="yes" if task == "binary" else None,
        task=task,  # type: ignore[arg-type]
    )
    meanings = metric_meanings(label)
    dangling = ("that are", "that is", " of", " the", " a", " and", " or", " with", " for")
    for metric, meaning in meanings.items():
        assert not meaning.rstrip().endswith(dangling), (metric, meaning)
    if task == "binary":
        assert meanings["precision"] == (
            "share of rows predicted received_callback = yes that have received_callback = yes"
        )
        assert meanings["recall"].startswith("share of rows with received_callback = yes")


@pytest.mark.parametrize(
    ("split", "row"),
    [
        (
            {"kind": "group", "group_by": "patient"},
            "| Split | by groups of `patient` (params `data.split`): about 20% of the groups held "
            "out for testing, no group on both sides (seed 42) |",
        ),
        (
            {"kind": "time", "time_column": "visit", "cutoff": "2024-06-01"},
            "| Split | by time on `visit` (params `data.split`): rows at or after 2024-06-01 held "
            "out |",
        ),
    ],
)
def test_the_card_names_a_grouped_or_time_split(
    make_project: MakeProject, split: dict[str, Any], row: str
) -> None:
    config = make_project({"gates.min_r2": 0.3})
    metrics = {"rmse": 55.1, "mae": 44.2, "r2": 0.45}
    record = record_of("ridge", metrics)
    record.params["data"]["split"] = split
    card = render(CardInputs(config, record, metrics, None, None, REGRESSION))
    assert row in card


def test_a_card_before_the_importance_is_measured_says_so(make_project: MakeProject) -> None:
    config = make_project({"gates.min_r2": 0.3})
    metrics = {"rmse": 55.1, "mae": 44.2, "r2": 0.45}
    card = render(CardInputs(config, record_of("ridge", metrics), metrics, None, None, REGRESSION))
    assert (
        "## What the model relies on\n\nNot measured yet: the `evaluate` stage writes "
        "`reports/importance.json` (`make pipeline`)."
    ) in card


def test_the_card_names_the_features_still_without_a_description(
    make_project: MakeProject,
) -> None:
    """`use-data` writes each column's name as its description: the card says which are left."""
    config = make_project({"gates.min_r2": 0.3})
    features = (
        ColumnSpec("dose", "float", "Dose given, in mg"),
        ColumnSpec("bmi", "float", "bmi", nullable=True),
        ColumnSpec("age", "int", " "),
    )
    declaration = Declaration(features, REGRESSION.label, PROTECTED)
    metrics = {"rmse": 55.1, "mae": 44.2, "r2": 0.45}
    card = render(CardInputs(config, record_of("ridge", metrics), metrics, None, None, declaration))
    assert "| `dose` | float | Dose given, in mg |" in card
    assert "| `bmi` | float | no description yet (may be missing) |" in card
    assert "| `age` | int | no description yet |" in card
    assert (
        "2 of 3 features have no description yet (`bmi`, `age`): write what each column holds, "
        "and where it comes from, as its `description` in data/columns.yaml."
    ) in card
    described = Declaration(features[:1], REGRESSION.label, PROTECTED)
    card = render(CardInputs(config, record_of("ridge", metrics), metrics, None, None, described))
    assert "no description yet" not in card
