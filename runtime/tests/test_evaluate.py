from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from mlops_stack_runtime import evaluate as evaluate_module
from mlops_stack_runtime.config import (
    Config,
)
from mlops_stack_runtime.data.columns import LabelSpec
from mlops_stack_runtime.errors import (
    ArtifactIntegrityError,
    GateFailedError,
)
from mlops_stack_runtime.evaluate import (
    compute_metrics,
    confusion_rows,
    evaluate,
    positive_rate_warning,
    roc_points,
)
from mlops_stack_runtime.evaluation import Evaluation

if TYPE_CHECKING:
    from pathlib import Path

    from mlops_stack_runtime.testing.fixtures import MakeProject

METRICS = {"roc_auc", "pr_auc", "brier", "accuracy", "precision", "recall", "f1"}
# evaluate's metrics add the Dummy estimator's roc_auc, which training measured.
REPORTED = METRICS | {"baseline_roc_auc"}


def test_perfect_predictions() -> None:
    metrics = compute_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert set(metrics) == METRICS
    assert metrics["roc_auc"] == metrics["pr_auc"] == metrics["accuracy"] == metrics["f1"] == 1.0
    assert metrics["brier"] == pytest.approx(0.025)


def test_threshold_moves_decisions_not_ranking() -> None:
    y_true = [0, 0, 1, 1, 0, 1]
    y_prob = [0.1, 0.4, 0.35, 0.8, 0.6, 0.7]
    default = compute_metrics(y_true, y_prob)
    strict = compute_metrics(y_true, y_prob, threshold=0.75)
    assert default["roc_auc"] == strict["roc_auc"] == pytest.approx(7 / 9, abs=1e-6)
    assert default["recall"] == pytest.approx(2 / 3, abs=1e-6)
    assert strict["recall"] == pytest.approx(1 / 3, abs=1e-6)
    assert strict["precision"] == 1.0


def test_no_positive_prediction_gives_zero_f1_without_warning() -> None:
    metrics = compute_metrics([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4])
    assert metrics["f1"] == metrics["precision"] == metrics["recall"] == 0.0


def test_roc_points_run_from_origin_to_corner() -> None:
    points = roc_points([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    assert list(points.columns) == ["fpr", "tpr"]
    assert tuple(points.iloc[0]) == (0.0, 0.0)
    assert tuple(points.iloc[-1]) == (1.0, 1.0)
    assert points["fpr"].is_monotonic_increasing
    assert points["tpr"].is_monotonic_increasing


def test_confusion_rows_hold_one_row_per_sample() -> None:
    rows = confusion_rows(np.array([0, 1, 1]), np.array([0, 0, 1]))
    assert rows.to_dict("list") == {"actual": [0, 1, 1], "predicted": [0, 0, 1]}


def test_evaluate_writes_metrics_and_plots(trained_project: Config) -> None:
    evaluation, gates = evaluate(trained_project)
    paths = trained_project.paths
    metrics = json.loads(paths.metrics.read_text())
    assert metrics == evaluation.metrics
    assert set(metrics) == REPORTED
    # evaluate raises when a gate fails; what it returns must be the gates it applied.
    metric_gate = next(gate for gate in gates if gate.name == "min_roc_auc")
    assert metric_gate.value == metrics["roc_auc"]
    assert metric_gate.threshold == trained_project.gates.min_roc_auc
    baseline = next(gate for gate in gates if gate.name == "baseline")
    assert (baseline.value, baseline.threshold) == (metrics["roc_auc"], 0.5)
    assert baseline.passed
    test_rows = len(pd.read_csv(paths.test_data))
    confusion = pd.read_csv(paths.confusion_plot)
    assert list(confusion.columns) == ["actual", "predicted"]
    assert len(confusion) == test_rows
    assert list(pd.read_csv(paths.roc_plot).columns) == ["fpr", "tpr"]
    # The regression plot, declared by dvc.yaml for every task: its header only.
    predicted = pd.read_csv(paths.predicted_plot)
    assert list(predicted.columns) == ["actual", "predicted"] and predicted.empty


def test_evaluate_agrees_with_training(trained_project: Config) -> None:
    record = json.loads((trained_project.paths.models_dir / "model.json").read_text())
    evaluation, _ = evaluate(trained_project)
    assert evaluation.metrics == record["metrics"]


def test_gate_failure_reports_value_and_threshold_after_writing_metrics(
    copy_trained_project: MakeProject,
) -> None:
    strict = copy_trained_project({"gates.min_roc_auc": 0.999})
    with pytest.raises(
        GateFailedError, match=r"roc_auc 0\.\d{4} is below gates\.min_roc_auc 0\.999"
    ):
        evaluate(strict)
    assert set(json.loads(strict.paths.metrics.read_text())) == REPORTED
    assert strict.paths.confusion_plot.is_file()


def test_gate_failure_prints_the_metrics_table(copy_trained_project: MakeProject) -> None:
    strict = copy_trained_project({"gates.min_roc_auc": 0.999})
    with pytest.raises(GateFailedError) as failed:
        evaluate(strict)
    metrics = json.loads(strict.paths.metrics.read_text())
    _, table = str(failed.value).split("\nheld-out metrics:\n")
    assert table.splitlines() == [f"  {name:<16} {value:.4f}" for name, value in metrics.items()]


def test_a_binary_record_from_before_the_baseline_gate_is_judged_against_0_5(
    copy_trained_project: MakeProject,
) -> None:
    """A constant score has ROC AUC 0.5 on any data: an older binary record needs no retrain."""
    config = copy_trained_project()
    record_file = config.paths.models_dir / "model.json"
    record = json.loads(record_file.read_text())
    del record["metrics"]["baseline_roc_auc"]
    record_file.write_text(json.dumps(record))
    _, results = evaluate(config)
    baseline = next(result for result in results if result.name == "baseline")
    assert baseline.threshold == 0.5 and baseline.passed
    assert json.loads(config.paths.metrics.read_text())["baseline_roc_auc"] == 0.5


def test_a_record_of_another_task_without_the_baseline_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    regression = LabelSpec("y", "a number", (), None, "regression")
    monkeypatch.setattr(evaluate_module, "LABEL", regression)
    with pytest.raises(ArtifactIntegrityError, match=r"records no baseline_rmse .*re-train"):
        evaluate_module.recorded_baseline({"rmse": 1.0}, tmp_path)
    assert evaluate_module.recorded_baseline({"baseline_rmse": 2.0}, tmp_path) == {
        "baseline_rmse": 2.0
    }


def test_evaluate_refuses_a_tampered_model(copy_trained_project: MakeProject) -> None:
    config = copy_trained_project()
    with (config.paths.models_dir / "model.joblib").open("ab") as model_file:
        model_file.write(b"tampered")
    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        evaluate(config)
    assert not config.paths.metrics.exists()


def scored(truth: list[int], decisions: list[int], recall: float = 0.5) -> Evaluation:
    return Evaluation(
        test=pd.DataFrame(),
        y_true=np.asarray(truth),
        scores=np.asarray(decisions, dtype=float),
        y_pred=np.asarray(decisions),
        metrics={"recall": recall},
    )


@pytest.mark.parametrize(
    ("positives", "predicted", "told"),
    [(10, 4, True), (10, 5, False), (10, 20, False), (10, 21, True), (0, 5, False)],
)
def test_a_predicted_positive_rate_far_from_the_base_rate_is_told(
    positives: int, predicted: int, told: bool
) -> None:
    """100 test rows: told when the predicted share is more than twice or under half the
    positive share."""
    truth = [1] * positives + [0] * (100 - positives)
    decisions = [1] * predicted + [0] * (100 - predicted)
    label = LabelSpec("default", "defaulted", ("no", "yes"), "yes", "binary")
    warning = positive_rate_warning(scored(truth, decisions, 0.4), 0.5, label)
    if not told:
        assert warning is None
        return
    assert warning == (
        f"warning: at model.threshold 0.5 the model predicts default = yes for {predicted}.0% "
        f"of the test rows, against a base rate of {positives}.0% (recall 0.4000): set "
        "model.threshold in params.yaml nearer the scores of the positive rows, or gate on "
        "recall (gates.min_recall)"
    )


def test_other_tasks_get_no_rate_warning() -> None:
    label = LabelSpec("kind", "a kind", ("p", "q", "r"), None, "multiclass")
    assert positive_rate_warning(scored([0, 1, 2, 2], [2, 2, 2, 2]), 0.5, label) is None
