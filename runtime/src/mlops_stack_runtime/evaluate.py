"""Model evaluation: held-out metrics, the DVC plots, the fairness report, and the quality gates.

The metrics are the task's (tasks.py), plus `baseline_<primary metric>`: the primary metric of
scikit-learn's Dummy estimator fitted on the training set, which the baseline gate compares the
model with. Training measures them (it has the training set) and records them in models/model.json;
this stage scores the model again on the test set and takes the baseline from that record, so both
stages report the same numbers for the same model and data.

The plots per task (reports/plots/, drawn by dvc.yaml's `plots:`): binary, the ROC curve and the
confusion matrix of the decisions at the threshold; multiclass, the confusion matrix with the
classes by name; regression, the predicted value against the actual one (predicted.csv).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from . import tasks
from .audit import decision_threshold, load_verified_model, record_path
from .data.columns import LABEL, class_names
from .data.csv_files import read_frame
from .errors import ArtifactIntegrityError, GateFailedError
from .evaluation import DECISION_THRESHOLD, DIGITS, Evaluation
from .fairness import fairness_report, write_fairness_report
from .features import split_features_label
from .gates import GateResult, run_gates

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from numpy.typing import ArrayLike

    from .config import Config, ProjectPaths
    from .data.columns import LabelSpec
    from .explain import Importance

BASELINE_PREFIX = "baseline_"
# Binary: a predicted positive rate more than this many times off the base rate, either way, is
# told after the metrics (the threshold is likely wrong for the data).
RATE_RATIO = 2.0


def compute_metrics(
    y_true: ArrayLike, y_prob: ArrayLike, threshold: float = DECISION_THRESHOLD
) -> dict[str, float]:
    """The task's metrics (tasks.py) of the declared label for these scores."""
    return tasks.compute_metrics(y_true, y_prob, LABEL, threshold)


def baseline_metric(label: LabelSpec = LABEL) -> str:
    """The metrics' key of the Dummy estimator's primary metric (`baseline_roc_auc`, ...)."""
    return BASELINE_PREFIX + tasks.task_metrics(label).primary


def baseline_metrics(
    train: pd.DataFrame, test: pd.DataFrame, threshold: float = DECISION_THRESHOLD
) -> dict[str, float]:
    """`{baseline_<primary>: value}`: the task's Dummy estimator (tasks.dummy_estimator: the
    class shares, or the mean) fitted on `train`, measured on `test` like the model."""
    features, label = split_features_label(train)
    dummy = tasks.dummy_estimator(LABEL).fit(features, label)
    test_features, test_label = split_features_label(test)
    scores = tasks.model_scores(dummy, test_features, LABEL)
    primary = tasks.task_metrics(LABEL).primary
    return {baseline_metric(): compute_metrics(test_label, scores, threshold)[primary]}


def evaluate_model(
    model: Any,
    test: pd.DataFrame,
    threshold: float = DECISION_THRESHOLD,
    *,
    train: pd.DataFrame | None = None,
    baseline: Mapping[str, float] | None = None,
) -> Evaluation:
    """Score a fitted pipeline on a test frame (binary: deciding at `threshold`).

    The metrics get the Dummy baseline measured on `train` (training), or `baseline` as a
    record holds it (evaluate, promote); without either, the baseline gate does not run.
    """
    features, label = split_features_label(test)
    scores = tasks.model_scores(model, features, LABEL)
    metrics = compute_metrics(label, scores, threshold)
    if train is not None:
        metrics.update(baseline_metrics(train, test, threshold))
    elif baseline is not None:
        metrics.update(baseline)
    return Evaluation(
        test=test,
        y_true=label.to_numpy(),
        scores=scores,
        y_pred=tasks.decide(scores, LABEL, threshold),
        metrics=metrics,
    )


def recorded_baseline(metrics: Mapping[str, float], model_dir: Path) -> dict[str, float]:
    """The Dummy baseline a model's record holds (training measured it on the same data)."""
    key = baseline_metric(LABEL)
    if key not in metrics and LABEL.task == "binary":
        # Records from before the baseline gate are binary: the Dummy's scores are one constant,
        # whose ROC AUC is 0.5 whatever the data, so the gate needs no retraining for them.
        return {key: 0.5}
    if key not in metrics:
        raise ArtifactIntegrityError(
            f"{record_path(model_dir)} records no {key} (the Dummy estimator's "
            f"{tasks.task_metrics(LABEL).primary}, which the baseline gate needs): it was "
            "trained by an older runtime or for another label; re-train (`make pipeline`)"
        )
    return {key: float(metrics[key])}


def roc_points(y_true: ArrayLike, y_prob: ArrayLike) -> pd.DataFrame:
    """The ROC curve as `fpr,tpr` rows (DVC `simple` plot template)."""
    fpr, tpr, _ = roc_curve(y_true, y_prob)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr}).round(DIGITS)


def confusion_rows(y_true: ArrayLike, y_pred: ArrayLike) -> pd.DataFrame:
    """One `actual,predicted` row per sample: DVC's `confusion` template counts them itself."""
    return pd.DataFrame({"actual": np.asarray(y_true), "predicted": np.asarray(y_pred)})


def predicted_rows(y_true: ArrayLike, y_pred: ArrayLike) -> pd.DataFrame:
    """Regression: one `actual,predicted` row per sample (DVC `scatter` template)."""
    return pd.DataFrame(
        {"actual": np.asarray(y_true, dtype=float), "predicted": np.asarray(y_pred, dtype=float)}
    ).round(DIGITS)


def write_reports(evaluation: Evaluation, paths: ProjectPaths) -> None:
    """metrics.json and the plots (module docstring). dvc.yaml, the same for every task, declares
    every plot file: a plot that does not apply to the task is written with its header only."""
    paths.metrics.parent.mkdir(parents=True, exist_ok=True)
    paths.metrics.write_text(json.dumps(evaluation.metrics, indent=2) + "\n", encoding="utf-8")
    paths.roc_plot.parent.mkdir(parents=True, exist_ok=True)
    roc = pd.DataFrame({"fpr": [], "tpr": []})
    confusion = confusion_rows([], [])
    predicted = predicted_rows([], [])
    if LABEL.task == "binary":
        roc = roc_points(evaluation.y_true, evaluation.scores)
        confusion = confusion_rows(evaluation.y_true, evaluation.y_pred)
    elif LABEL.task == "multiclass":
        confusion = confusion_rows(class_names(evaluation.y_true), class_names(evaluation.y_pred))
    else:
        predicted = predicted_rows(evaluation.y_true, evaluation.y_pred)
    roc.to_csv(paths.roc_plot, index=False)
    confusion.to_csv(paths.confusion_plot, index=False)
    predicted.to_csv(paths.predicted_plot, index=False)


def evaluate(config: Config) -> tuple[Evaluation, list[GateResult]]:
    """The `evaluate` stage: score the verified model, write reports, then apply the gates.

    Reports are written before the gates run, so a failing model's numbers can be inspected.
    """
    paths = config.paths
    model, record = load_verified_model(paths.models_dir)
    threshold = decision_threshold(record)
    evaluation = evaluate_model(
        model,
        read_frame(paths.test_data),
        threshold,
        baseline=recorded_baseline(record.metrics, paths.models_dir),
    )
    write_reports(evaluation, paths)
    write_and_log_importance(config, model, evaluation.test, record.mlflow_run_id, threshold)
    if config.gates.fairness is not None:
        write_fairness_report(
            fairness_report(evaluation, config.gates.fairness), paths.fairness_report
        )
    results = run_gates(evaluation, config)
    failed = [result.message for result in results if not result.passed]
    if failed:
        raise GateFailedError(
            "quality gate failed: "
            + "; ".join(failed)
            + f"\nheld-out metrics:\n{format_metrics(evaluation.metrics)}"
        )
    return evaluation, results


def write_and_log_importance(
    config: Config, model: Any, test: pd.DataFrame, run_id: str | None, threshold: float
) -> Importance:
    """Permutation importance on `test`, the frame the stage scored (explain.py):
    reports/importance.json, and an artifact of the MLflow run that trained the model."""
    from .explain import permutation_importances, write_importance
    from .tracking import log_file_to_run

    importance = permutation_importances(model, test, threshold)
    path = write_importance(importance, config.paths.importance)
    if run_id:
        log_file_to_run(config, run_id, path)
    return importance


def positive_rate_warning(
    evaluation: Evaluation, threshold: float, label: LabelSpec | None = None
) -> str | None:
    """Binary: a warning when the share of test rows predicted positive is more than RATE_RATIO
    times off the share that is positive (a threshold of 0.5 on a rare class predicts almost
    nobody, and ROC AUC does not show it); None otherwise."""
    label = label or LABEL
    truth, decided = np.asarray(evaluation.y_true), np.asarray(evaluation.y_pred)
    if label.task != "binary" or len(truth) == 0 or not truth.any():
        return None
    base, predicted = float(truth.mean()), float(decided.mean())
    if 1 / RATE_RATIO <= predicted / base <= RATE_RATIO:
        return None
    return (
        f"warning: at model.threshold {threshold} the model predicts {label.name} = "
        f"{label.positive} for {predicted:.1%} of the test rows, against a base rate of "
        f"{base:.1%} (recall {evaluation.metrics.get('recall', float('nan')):.4f}): set "
        "model.threshold in params.yaml nearer the scores of the positive rows, or gate on "
        "recall (gates.min_recall)"
    )


def format_metrics(metrics: Mapping[str, float]) -> str:
    """One aligned `name value` line per metric, for the console."""
    width = max([10, *(len(name) for name in metrics)])
    return "\n".join(f"  {name:<{width}} {value:.4f}" for name, value in metrics.items())
