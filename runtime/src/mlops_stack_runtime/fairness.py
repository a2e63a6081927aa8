"""Fairness of the model's predictions across the groups of the protected attribute (fairlearn).

Measured on the test set with fairlearn's MetricFrame, per group of the protected attribute, and
per task (the label's, data/columns.yaml):

- binary, at the decision threshold (params `model.threshold`): the row and positive counts, the
  selection rate (share predicted positive), the true and false positive rates. Two gaps between
  groups: the demographic parity difference (largest gap in selection rate) and the equalized
  odds difference (largest gap in true or false positive rate).
- multiclass, on the predicted class: the same four figures for each class against the rest
  (selection rate: share predicted that class). The demographic parity difference is the largest
  selection-rate gap over the classes, the equalized odds difference the largest true or false
  positive rate gap over the classes; every class's gaps are in the report.
- regression: the mean prediction, the mean label and the mean absolute error (MAE). Two gaps:
  in mean prediction, as a share of the label's standard deviation on the test set, and in MAE,
  as a share of the whole test set's MAE (params `max_mean_prediction_gap`, `max_mae_gap`).

A group is too small to judge, reported as insufficient data and left out of the gaps, with fewer
than params `gates.fairness.min_group_size` rows or, for the classification tasks, fewer than
`min_group_positives` "positives": binary, rows of the positive class; multiclass, rows of each
class (the group needs that many of every class). With no protected attribute in columns.yaml the
report is "not applicable".

fairlearn is a dependency of the enterprise tier only, so it is imported when a report is made:
this module (and the model card, which reads the report) imports without it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import FairnessSettings
from .data.columns import LABEL, PROTECTED_ATTRIBUTE, as_category
from .errors import ArtifactIntegrityError, ConfigError
from .evaluation import DIGITS

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from .data.columns import Declaration, LabelSpec
    from .evaluation import Evaluation

MISSING_GROUP = "(missing)"
# Binary: the thresholds at which each group's selection rate is reported (GroupScores).
SELECTION_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
QUANTILES = {"p10": 10, "p25": 25, "p50": 50, "p75": 75, "p90": 90}

# The report's gaps, per task: (metric, params key under gates.fairness).
GAP_SETTINGS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "binary": (
        ("demographic_parity_difference", "max_demographic_parity_difference"),
        ("equalized_odds_difference", "max_equalized_odds_difference"),
    ),
    "multiclass": (
        ("demographic_parity_difference", "max_demographic_parity_difference"),
        ("equalized_odds_difference", "max_equalized_odds_difference"),
    ),
    "regression": (
        ("mean_prediction_gap", "max_mean_prediction_gap"),
        ("mae_gap", "max_mae_gap"),
    ),
}


@dataclass(frozen=True)
class GroupRates:
    """Binary: a group's decisions at the threshold. Multiclass: one class against the rest,
    `positives` being the group's rows of that class."""

    count: int
    selection_rate: float
    true_positive_rate: float
    false_positive_rate: float
    positives: int = 0


@dataclass(frozen=True)
class GroupScores:
    """Binary: what a group's scores look like whatever the threshold, beside its base rate.

    A gate on decisions at one threshold can pass because the model flags almost nobody in any
    group, while the scores and the actual rates differ: these figures show it."""

    count: int
    base_rate: float  # share of the group's rows with the positive label
    mean_score: float
    # The 10th, 25th, 50th, 75th and 90th percentiles of the group's scores.
    score_quantiles: dict[str, float]
    # Share of the group's rows scored at or above each threshold of SELECTION_THRESHOLDS.
    selection_rates: dict[str, float]


@dataclass(frozen=True)
class GroupClassRates:
    """Multiclass: a group's rows, and each class's rates against the rest (GroupRates)."""

    count: int
    classes: dict[str, GroupRates]


@dataclass(frozen=True)
class GroupErrors:
    """Regression: a group's rows, mean prediction, mean label and mean absolute error."""

    count: int
    mean_prediction: float
    mean_label: float
    mae: float


@dataclass(frozen=True)
class ClassGaps:
    """Multiclass: one class's gaps between the groups judged (None: fewer than two)."""

    demographic_parity_difference: float | None
    equalized_odds_difference: float | None


@dataclass(frozen=True)
class InsufficientGroup:
    group: str
    count: int
    # Binary: the group's positive rows; multiclass: its rows of `scarcest_class`, the class it
    # has fewest of; regression: not counted (None).
    positives: int | None = None
    scarcest_class: str | None = None

    def describe(self) -> str:
        if self.positives is None:
            detail = ""
        elif self.scarcest_class is None:
            detail = f", positives={self.positives}"
        else:
            detail = f", rows of class {self.scarcest_class}={self.positives}"
        return f"insufficient data for group {self.group} (n={self.count}{detail})"


@dataclass(frozen=True)
class Gap:
    """One gap the fairness gate bounds: `value` must stay at most `limit` (params
    `gates.fairness.<setting>`); None when fewer than two groups have enough data."""

    metric: str
    value: float | None
    setting: str
    limit: float


Rates = GroupRates | GroupClassRates | GroupErrors


@dataclass(frozen=True)
class FairnessReport:
    # None: columns.yaml declares no protected attribute, and nothing was measured.
    protected_attribute: str | None
    # Binary and multiclass (largest over the classes); None for regression, or when fewer than
    # two groups have enough data to compare.
    demographic_parity_difference: float | None
    equalized_odds_difference: float | None
    overall: Rates | None
    by_group: Mapping[str, Rates]
    insufficient: list[InsufficientGroup] = field(default_factory=list)
    min_group_size: int = 0
    min_group_positives: int = 0
    task: str = "binary"
    # Regression: the gaps in mean prediction and MAE, relative (module docstring), and what
    # they are relative to: the label's standard deviation and the MAE on the whole test set.
    mean_prediction_gap: float | None = None
    mae_gap: float | None = None
    label_std: float | None = None
    # Multiclass: each class's gaps.
    by_class: Mapping[str, ClassGaps] = field(default_factory=dict)
    # The limit of each gap (params key under gates.fairness -> value) the report was made with;
    # a report written before limits were recorded reads as 1.0 (gaps() `limit`).
    limits: Mapping[str, float] = field(default_factory=dict)
    # Binary: each group's base rate, scores and selection rates across thresholds (GroupScores),
    # and the same over every row; empty for the other tasks and for older reports.
    scores_by_group: Mapping[str, GroupScores] = field(default_factory=dict)
    scores_overall: GroupScores | None = None

    @property
    def applicable(self) -> bool:
        return self.protected_attribute is not None

    def gaps(self) -> list[Gap]:
        """The gaps the fairness gate bounds, for this report's task; none if not applicable."""
        if not self.applicable:
            return []
        return [
            Gap(metric, getattr(self, metric), setting, float(self.limits.get(setting, 1.0)))
            for metric, setting in GAP_SETTINGS[self.task]
        ]

    def summary(self) -> str:
        if not self.applicable:
            return (
                "fairness: not applicable (no protected attribute in data/columns.yaml; "
                "`make use-data ... PROTECTED=<column>` declares one)"
            )
        lines = [f"fairness by {self.protected_attribute}:"]
        lines += [f"  {group.describe()}" for group in self.insufficient]
        return "\n".join(lines)


def not_applicable_report(task: str = "binary") -> FairnessReport:
    return FairnessReport(None, None, None, None, {}, task=task)


def fairness_report(
    evaluation: Evaluation,
    settings: FairnessSettings | None = None,
    declaration: Declaration | None = None,
) -> FairnessReport:
    """Per-group figures and the between-group gaps over the groups large enough to judge.

    `declaration` gives the label (its task) and the protected attribute: columns.yaml's unless
    given."""
    label = LABEL if declaration is None else declaration.label
    protected = PROTECTED_ATTRIBUTE if declaration is None else declaration.protected_attribute
    if protected is None:
        return not_applicable_report(label.task)
    settings = settings or FairnessSettings(
        max_demographic_parity_difference=1.0, max_equalized_odds_difference=1.0
    )
    try:
        from fairlearn import metrics
    except ImportError as error:
        raise ConfigError(
            "params.yaml sets gates.fairness, but fairlearn is not installed: "
            "`uv add --group train fairlearn`, or remove gates.fairness"
        ) from error

    groups = as_category(evaluation.test[protected.name]).fillna(MISSING_GROUP)
    groups = groups.astype(str).to_numpy()
    limits = {setting: float(getattr(settings, setting)) for _, setting in GAP_SETTINGS[label.task]}
    common = {
        "protected_attribute": protected.name,
        "min_group_size": settings.min_group_size,
        "min_group_positives": settings.min_group_positives,
        "task": label.task,
        "limits": limits,
    }
    truth, predicted = np.asarray(evaluation.y_true), np.asarray(evaluation.y_pred)
    if label.task == "regression":
        return _regression(metrics, truth, predicted, groups, settings, common)
    if label.task == "multiclass":
        return _multiclass(metrics, truth, predicted, groups, label, settings, common)
    scores = np.asarray(evaluation.scores, dtype=np.float64)
    return _binary(metrics, truth, predicted, groups, settings, common, scores)


def _binary(
    metrics: Any,
    truth: np.ndarray,
    decisions: np.ndarray,
    groups: np.ndarray,
    settings: FairnessSettings,
    common: dict[str, Any],
    scores: np.ndarray | None = None,
) -> FairnessReport:
    frame = _rate_frame(metrics, truth, decisions, groups)
    by_group = {
        str(group): _rates(row, int(truth[groups == group].sum()))
        for group, row in frame.by_group.to_dict("index").items()
    }
    insufficient = [
        InsufficientGroup(group, rates.count, rates.positives)
        for group, rates in sorted(by_group.items())
        if rates.count < settings.min_group_size or rates.positives < settings.min_group_positives
    ]
    judged = _judged(groups, insufficient)
    comparable = len(set(groups[judged])) >= 2
    parity, odds = _class_gaps(metrics, truth, decisions, groups, judged, comparable)
    return FairnessReport(
        demographic_parity_difference=parity,
        equalized_odds_difference=odds,
        overall=_rates(frame.overall.to_dict(), int(truth.sum())),
        by_group=by_group,
        insufficient=insufficient,
        scores_by_group={}
        if scores is None
        else {
            str(group): _scores(truth[groups == group], scores[groups == group])
            for group in sorted(set(groups))
        },
        scores_overall=None if scores is None else _scores(truth, scores),
        **common,
    )


def _scores(truth: np.ndarray, scores: np.ndarray) -> GroupScores:
    quantiles = np.percentile(scores, list(QUANTILES.values())) if len(scores) else []
    return GroupScores(
        count=len(scores),
        base_rate=_rounded(float(np.mean(truth))) if len(truth) else 0.0,
        mean_score=_rounded(float(np.mean(scores))) if len(scores) else 0.0,
        score_quantiles={
            name: _rounded(value) for name, value in zip(QUANTILES, quantiles, strict=False)
        },
        selection_rates={
            f"{threshold:g}": _rounded(float(np.mean(scores >= threshold))) if len(scores) else 0.0
            for threshold in SELECTION_THRESHOLDS
        },
    )


def _multiclass(
    metrics: Any,
    truth: np.ndarray,
    predicted: np.ndarray,
    groups: np.ndarray,
    label: LabelSpec,
    settings: FairnessSettings,
    common: dict[str, Any],
) -> FairnessReport:
    names = sorted(set(groups))
    per_group: dict[str, dict[str, GroupRates]] = {group: {} for group in names}
    overall: dict[str, GroupRates] = {}
    for index, name in enumerate(label.classes):
        is_class, chose_class = truth == index, predicted == index
        frame = _rate_frame(metrics, is_class, chose_class, groups)
        for group, row in frame.by_group.to_dict("index").items():
            per_group[str(group)][name] = _rates(row, int(is_class[groups == group].sum()))
        overall[name] = _rates(frame.overall.to_dict(), int(is_class.sum()))
    counts = {group: int((groups == group).sum()) for group in names}
    by_group = {group: GroupClassRates(counts[group], per_group[group]) for group in names}
    insufficient = []
    for group, rates in by_group.items():
        scarcest = min(label.classes, key=lambda name: rates.classes[name].positives)
        fewest = rates.classes[scarcest].positives
        if rates.count < settings.min_group_size or fewest < settings.min_group_positives:
            insufficient.append(InsufficientGroup(group, rates.count, fewest, scarcest))
    judged = _judged(groups, insufficient)
    comparable = len(set(groups[judged])) >= 2
    by_class = {
        name: ClassGaps(
            *_class_gaps(metrics, truth == index, predicted == index, groups, judged, comparable)
        )
        for index, name in enumerate(label.classes)
    }
    return FairnessReport(
        demographic_parity_difference=_largest(
            gap.demographic_parity_difference for gap in by_class.values()
        ),
        equalized_odds_difference=_largest(
            gap.equalized_odds_difference for gap in by_class.values()
        ),
        overall=GroupClassRates(len(truth), overall),
        by_group=by_group,
        insufficient=insufficient,
        by_class=by_class,
        **common,
    )


def _regression(
    metrics: Any,
    truth: np.ndarray,
    predicted: np.ndarray,
    groups: np.ndarray,
    settings: FairnessSettings,
    common: dict[str, Any],
) -> FairnessReport:
    truth, predicted = truth.astype(np.float64), predicted.astype(np.float64)
    frame = metrics.MetricFrame(
        metrics={
            "count": metrics.count,
            "mean_prediction": _mean_prediction,
            "mean_label": _mean_label,
            "mae": _mean_absolute_error,
        },
        y_true=truth,
        y_pred=predicted,
        sensitive_features=groups,
    )
    by_group = {str(group): _errors(row) for group, row in frame.by_group.to_dict("index").items()}
    insufficient = [
        InsufficientGroup(group, errors.count)
        for group, errors in sorted(by_group.items())
        if errors.count < settings.min_group_size
    ]
    left_out = {item.group for item in insufficient}
    judged = [errors for group, errors in by_group.items() if group not in left_out]
    overall = _errors(frame.overall.to_dict())
    label_std = float(np.std(truth))
    comparable = len(judged) >= 2
    return FairnessReport(
        demographic_parity_difference=None,
        equalized_odds_difference=None,
        overall=overall,
        by_group=by_group,
        insufficient=insufficient,
        mean_prediction_gap=_relative(_spread(e.mean_prediction for e in judged), label_std)
        if comparable
        else None,
        mae_gap=_relative(_spread(e.mae for e in judged), overall.mae) if comparable else None,
        label_std=_rounded(label_std),
        **common,
    )


def _rate_frame(metrics: Any, truth: np.ndarray, decisions: np.ndarray, groups: np.ndarray) -> Any:
    return metrics.MetricFrame(
        metrics={
            "count": metrics.count,
            "selection_rate": metrics.selection_rate,
            "true_positive_rate": metrics.true_positive_rate,
            "false_positive_rate": metrics.false_positive_rate,
        },
        y_true=np.asarray(truth, dtype=np.int64),
        y_pred=np.asarray(decisions, dtype=np.int64),
        sensitive_features=groups,
    )


def _class_gaps(
    metrics: Any,
    truth: np.ndarray,
    decisions: np.ndarray,
    groups: np.ndarray,
    judged: np.ndarray,
    comparable: bool,
) -> tuple[float | None, float | None]:
    """Demographic parity and equalized odds differences of 0/1 decisions over the judged rows."""
    if not comparable:
        return None, None
    truth = np.asarray(truth, dtype=np.int64)[judged]
    decisions = np.asarray(decisions, dtype=np.int64)[judged]
    return (
        _rounded(
            metrics.demographic_parity_difference(
                truth, decisions, sensitive_features=groups[judged]
            )
        ),
        _rounded(
            metrics.equalized_odds_difference(truth, decisions, sensitive_features=groups[judged])
        ),
    )


def _judged(groups: np.ndarray, insufficient: list[InsufficientGroup]) -> np.ndarray:
    """The rows of the groups large enough to judge."""
    return ~np.isin(groups, [item.group for item in insufficient])


def _largest(values: Any) -> float | None:
    measured = [value for value in values if value is not None]
    return max(measured) if measured else None


def _spread(values: Any) -> float:
    values = list(values)
    return max(values) - min(values)


def _relative(gap: float, scale: float) -> float:
    """`gap` as a share of `scale` (the gap itself when the scale is 0: nothing varied)."""
    return _rounded(gap / scale if scale > 0 else gap)


def _mean_prediction(y_true: Any, y_pred: Any) -> float:
    return float(np.mean(y_pred))


def _mean_label(y_true: Any, y_pred: Any) -> float:
    return float(np.mean(y_true))


def _mean_absolute_error(y_true: Any, y_pred: Any) -> float:
    return float(np.mean(np.abs(np.asarray(y_true) - np.asarray(y_pred))))


def write_fairness_report(report: FairnessReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    content = asdict(report)
    # Each task's file holds its own figures only: binary's is the file of before tasks existed.
    unused = {
        "binary": ("mean_prediction_gap", "mae_gap", "label_std", "by_class"),
        "multiclass": (
            "mean_prediction_gap",
            "mae_gap",
            "label_std",
            "scores_by_group",
            "scores_overall",
        ),
        "regression": (
            "demographic_parity_difference",
            "equalized_odds_difference",
            "by_class",
            "scores_by_group",
            "scores_overall",
        ),
    }[report.task]
    for key in unused:
        content.pop(key)
    text = json.dumps({"applicable": report.applicable, **content}, indent=2)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def read_fairness_report(path: Path) -> FairnessReport:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        task = content.get("task", "binary")
        if task not in GAP_SETTINGS:
            raise ValueError(f"unknown task {task!r}")
        readers: dict[str, Callable[[Any], Rates]] = {
            "binary": _read_group_rates,
            "multiclass": _read_class_rates,
            "regression": _read_group_errors,
        }
        rates = readers[task]
        overall = content.get("overall")
        return FairnessReport(
            protected_attribute=content["protected_attribute"],
            demographic_parity_difference=content.get("demographic_parity_difference"),
            equalized_odds_difference=content.get("equalized_odds_difference"),
            overall=None if overall is None else rates(overall),
            by_group={group: rates(value) for group, value in content["by_group"].items()},
            insufficient=[InsufficientGroup(**item) for item in content.get("insufficient", [])],
            min_group_size=content.get("min_group_size", 0),
            min_group_positives=content.get("min_group_positives", 0),
            task=task,
            mean_prediction_gap=content.get("mean_prediction_gap"),
            mae_gap=content.get("mae_gap"),
            label_std=content.get("label_std"),
            by_class={
                name: ClassGaps(**gaps) for name, gaps in content.get("by_class", {}).items()
            },
            limits={str(key): float(value) for key, value in content.get("limits", {}).items()},
            scores_by_group={
                group: GroupScores(**value)
                for group, value in content.get("scores_by_group", {}).items()
            },
            scores_overall=None
            if content.get("scores_overall") is None
            else GroupScores(**content["scores_overall"]),
        )
    except FileNotFoundError as error:
        raise ArtifactIntegrityError(
            f"{path} not found: the evaluate stage writes it (`make pipeline`)"
        ) from error
    except OSError as error:
        raise ArtifactIntegrityError(f"{path} cannot be read: {error}") from error
    # Not JSON or not UTF-8 (ValueErrors), or JSON of another shape.
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ArtifactIntegrityError(
            f"{path} is not a fairness report: {error!r}; `make pipeline` writes it again"
        ) from error


def _read_group_rates(value: Any) -> GroupRates:
    return GroupRates(**value)


def _read_group_errors(value: Any) -> GroupErrors:
    return GroupErrors(**value)


def _read_class_rates(value: Any) -> GroupClassRates:
    return GroupClassRates(
        count=value["count"],
        classes={name: GroupRates(**rates) for name, rates in value["classes"].items()},
    )


def _rates(values: dict[str, Any], positives: int) -> GroupRates:
    return GroupRates(
        count=int(values["count"]),
        selection_rate=_rounded(values["selection_rate"]),
        true_positive_rate=_rounded(values["true_positive_rate"]),
        false_positive_rate=_rounded(values["false_positive_rate"]),
        positives=positives,
    )


def _errors(values: dict[str, Any]) -> GroupErrors:
    return GroupErrors(
        count=int(values["count"]),
        mean_prediction=_rounded(values["mean_prediction"]),
        mean_label=_rounded(values["mean_label"]),
        mae=_rounded(values["mae"]),
    )


def _rounded(value: float) -> float:
    value = float(value)
    return 0.0 if np.isnan(value) else round(value, DIGITS)
