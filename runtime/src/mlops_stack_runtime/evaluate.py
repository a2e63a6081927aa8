"""Model evaluation: held-out metrics, the DVC plots, the fairness report, and the quality gates.

`compute_metrics` is shared with training (the metrics logged to MLflow and the audit record),
so both stages report the same numbers for the same model and data.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from . import tasks
from .audit import load_verified_model
from .data.columns import LABEL
from .data.csv_files import read_frame
from .errors import GateFailedError
from .evaluation import DECISION_THRESHOLD, DIGITS, Evaluation
from .fairness import fairness_report, write_fairness_report
from .features import split_features_label
from .gates import GateResult, run_gates

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .config import Config, ProjectPaths


def compute_metrics(
    y_true: ArrayLike, y_prob: ArrayLike, threshold: float = DECISION_THRESHOLD
) -> dict[str, float]:
    """The task's metrics (tasks.py) of the declared label for these scores."""
    return tasks.compute_metrics(y_true, y_prob, LABEL, threshold)


def evaluate_model(
    model: Any, test: pd.DataFrame, threshold: float = DECISION_THRESHOLD
) -> Evaluation:
    """Score a fitted pipeline on a test frame (binary: deciding at `threshold`)."""
    features, label = split_features_label(test)
    scores = tasks.model_scores(model, features, LABEL)
    return Evaluation(
        test=test,
        y_true=label.to_numpy(),
        scores=scores,
        y_pred=tasks.decide(scores, LABEL, threshold),
        metrics=compute_metrics(label, scores, threshold),
    )


def roc_points(y_true: ArrayLike, y_prob: ArrayLike) -> pd.DataFrame:
    """The ROC curve as `fpr,tpr` rows (DVC `simple` plot template)."""
    fpr, tpr, _ = roc_curve(y_true, y_prob)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr}).round(DIGITS)


def confusion_rows(y_true: ArrayLike, y_pred: ArrayLike) -> pd.DataFrame:
    """One `actual,predicted` row per sample: DVC's `confusion` template counts them itself."""
    return pd.DataFrame({"actual": np.asarray(y_true), "predicted": np.asarray(y_pred)})


def write_reports(evaluation: Evaluation, paths: ProjectPaths) -> None:
    paths.metrics.parent.mkdir(parents=True, exist_ok=True)
    paths.metrics.write_text(json.dumps(evaluation.metrics, indent=2) + "\n", encoding="utf-8")
    paths.roc_plot.parent.mkdir(parents=True, exist_ok=True)
    roc_points(evaluation.y_true, evaluation.y_prob).to_csv(paths.roc_plot, index=False)
    confusion_rows(evaluation.y_true, evaluation.y_pred).to_csv(paths.confusion_plot, index=False)


def evaluate(config: Config) -> tuple[Evaluation, list[GateResult]]:
    """The `evaluate` stage: score the verified model, write reports, then apply the gates.

    Reports are written before the gates run, so a failing model's numbers can be inspected.
    """
    paths = config.paths
    model, _ = load_verified_model(paths.models_dir)
    evaluation = evaluate_model(model, read_frame(paths.test_data), config.model.threshold)
    write_reports(evaluation, paths)
    if config.gates.fairness is not None:
        write_fairness_report(
            fairness_report(evaluation, config.gates.fairness), paths.fairness_report
        )
    results = run_gates(evaluation, config)
    failed = [result.message for result in results if not result.passed]
    if failed:
        raise GateFailedError("quality gate failed: " + "; ".join(failed))
    return evaluation, results


def format_metrics(metrics: dict[str, float]) -> str:
    """One aligned `name value` line per metric, for the console."""
    return "\n".join(f"  {name:<10} {value:.4f}" for name, value in metrics.items())
