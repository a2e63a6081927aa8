"""What each task predicts and how it is measured: binary, multi-class, regression.

The declaration's label says the task (data/columns.py `LabelSpec.task`). Everything downstream
asks this module rather than the label: the scores a model gives (binary: the positive class's
probability; multi-class: every class's probability; regression: the value), the decision taken
from them (a class index at the threshold, the most probable class, the value itself), the
task's metrics, its primary metric and that metric's direction (gates, promotion, the baseline),
and the Dummy estimator every model must beat.

Class indices are positions in `LabelSpec.classes` (binary: 0 the negative value, 1 the positive).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .data.columns import LabelSpec, TaskKind

# Enough digits to compare runs, few enough to keep metrics diffs readable.
DIGITS = 6
# Probability at or above which the positive class is predicted, unless params.yaml sets
# `model.threshold` (binary only).
DECISION_THRESHOLD = 0.5


@dataclass(frozen=True)
class TaskMetrics:
    """A task's metrics: the one that ranks models (gates' baseline, promotion), its direction,
    the absolute gate's params key and metric, and every metric reported."""

    kind: TaskKind
    primary: str
    higher_is_better: bool
    gate_setting: str  # params `gates.<gate_setting>`: the metric must reach it
    gate_metric: str
    reported: tuple[str, ...]

    def better(self, new: float, old: float) -> float:
        """How much better `new` is than `old` in the primary metric's direction (< 0: worse)."""
        return new - old if self.higher_is_better else old - new

    def relative_improvement(self, new: float, old: float) -> float:
        """`better(new, old)` as a share of `old` (inf when old is 0 and new is better)."""
        gain = self.better(new, old)
        if old == 0:
            return 0.0 if gain == 0 else (float("inf") if gain > 0 else float("-inf"))
        return gain / abs(old)

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"


TASK_METRICS: Mapping[str, TaskMetrics] = {
    "binary": TaskMetrics(
        "binary",
        "roc_auc",
        True,
        "min_roc_auc",
        "roc_auc",
        ("roc_auc", "pr_auc", "brier", "accuracy", "precision", "recall", "f1"),
    ),
    "multiclass": TaskMetrics(
        "multiclass",
        "macro_f1",
        True,
        "min_macro_f1",
        "macro_f1",
        ("macro_f1", "balanced_accuracy", "accuracy", "log_loss", "roc_auc_ovr"),
    ),
    "regression": TaskMetrics("regression", "rmse", False, "min_r2", "r2", ("rmse", "mae", "r2")),
}


def task_metrics(label: LabelSpec) -> TaskMetrics:
    return TASK_METRICS[label.task]


def model_scores(model: Any, features: Any, label: LabelSpec) -> np.ndarray:
    """What `model` gives for `features`: binary, the positive class's probability per row;
    multi-class, a [rows, classes] matrix of probabilities in `label.classes` order (a class the
    model never saw scores 0); regression, the predicted value."""
    if label.task == "regression":
        return np.asarray(model.predict(features), dtype=np.float64).reshape(-1)
    proba = np.asarray(model.predict_proba(features), dtype=np.float64)
    return align_probabilities(proba, getattr(model, "classes_", None), label)


def align_probabilities(
    proba: np.ndarray, model_classes: ArrayLike | None, label: LabelSpec
) -> np.ndarray:
    """Probabilities by the model's classes (`classes_`, class indices) rearranged into one
    column per class of the label; binary gives the positive column."""
    n_classes = len(label.classes)
    if model_classes is None:
        indices = np.arange(proba.shape[1])
    else:
        indices = np.asarray(model_classes).astype(np.int64)
    full = np.zeros((proba.shape[0], n_classes), dtype=np.float64)
    full[:, indices] = proba
    return full[:, 1] if label.task == "binary" else full


def decide(scores: np.ndarray, label: LabelSpec, threshold: float = DECISION_THRESHOLD) -> Any:
    """The prediction of each row: binary, class 1 at or above `threshold`; multi-class, the
    most probable class (a tie goes to the first in `label.classes`); regression, the value."""
    if label.task == "binary":
        return (np.asarray(scores) >= threshold).astype(np.int64)
    if label.task == "multiclass":
        return np.argmax(np.asarray(scores), axis=1).astype(np.int64)
    return np.asarray(scores, dtype=np.float64)


def compute_metrics(
    y_true: ArrayLike,
    scores: ArrayLike,
    label: LabelSpec,
    threshold: float = DECISION_THRESHOLD,
) -> dict[str, float]:
    """The task's metrics of `scores` (as `model_scores` gives them) against the encoded label."""
    if label.task == "binary":
        values = _binary_metrics(np.asarray(y_true).astype(int), np.asarray(scores), threshold)
    elif label.task == "multiclass":
        values = _multiclass_metrics(
            np.asarray(y_true).astype(int), np.asarray(scores), len(label.classes)
        )
    else:
        values = _regression_metrics(
            np.asarray(y_true, dtype=float), np.asarray(scores, dtype=float)
        )
    return {name: round(float(value), DIGITS) for name, value in values.items()}


def _binary_metrics(truth: np.ndarray, prob: np.ndarray, threshold: float) -> dict[str, float]:
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        brier_score_loss,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    prob = prob.astype(float)
    pred = (prob >= threshold).astype(int)
    return {
        "roc_auc": roc_auc_score(truth, prob),
        "pr_auc": average_precision_score(truth, prob),
        "brier": brier_score_loss(truth, prob),
        "accuracy": accuracy_score(truth, pred),
        "precision": precision_score(truth, pred, zero_division=0),
        "recall": recall_score(truth, pred, zero_division=0),
        "f1": f1_score(truth, pred, zero_division=0),
    }


def _multiclass_metrics(truth: np.ndarray, proba: np.ndarray, n_classes: int) -> dict[str, float]:
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        log_loss,
        roc_auc_score,
    )

    labels = list(range(n_classes))
    pred = np.argmax(proba, axis=1)
    # Rows may not sum to exactly 1 after a float32 runtime; log loss wants them to.
    totals = proba.sum(axis=1, keepdims=True)
    normalised = np.divide(proba, totals, out=np.full_like(proba, 1 / n_classes), where=totals > 0)
    # One-vs-rest ROC AUC, averaged over the classes present with both outcomes in the test set.
    aucs = [
        roc_auc_score(truth == k, proba[:, k])
        for k in labels
        if 0 < int(np.sum(truth == k)) < len(truth)
    ]
    return {
        "macro_f1": f1_score(truth, pred, labels=labels, average="macro", zero_division=0),
        "balanced_accuracy": balanced_accuracy_score(truth, pred),
        "accuracy": accuracy_score(truth, pred),
        "log_loss": log_loss(truth, normalised, labels=labels),
        "roc_auc_ovr": float(np.mean(aucs)) if aucs else float("nan"),
    }


def _regression_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "rmse": float(np.sqrt(mean_squared_error(truth, predicted))),
        "mae": mean_absolute_error(truth, predicted),
        "r2": r2_score(truth, predicted),
    }


def dummy_estimator(label: LabelSpec) -> Any:
    """scikit-learn's baseline for the task: the class shares, or the mean value."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    if label.task == "regression":
        return DummyRegressor(strategy="mean")
    return DummyClassifier(strategy="prior")


def format_metrics(metrics: Mapping[str, float]) -> str:
    """One aligned `name value` line per metric, for the console."""
    return "\n".join(f"  {name:<18} {value:.4f}" for name, value in metrics.items())
