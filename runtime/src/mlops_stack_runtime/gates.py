"""Quality gates: checks a model must pass before the pipeline succeeds.

A gate is a function `(evaluation, config) -> GateResult | list[GateResult] | None`. Add a gate
(calibration, latency...) by writing one such function and listing it in `GATES`; its thresholds
belong under `gates:` in params.yaml. A gate whose section params.yaml lacks returns None and does
not count: the fairness gates run only where `gates.fairness` is set (the enterprise tier renders
it).

The gates follow the declared label's task (tasks.py): the task's metric must reach its params
setting (binary `gates.min_roc_auc`, multiclass `gates.min_macro_f1`, regression `gates.min_r2`);
the primary metric must beat scikit-learn's Dummy estimator by more than `gates.baseline_margin`
(relative); the fairness gates bound the gaps the fairness report measures for the task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import tasks
from .data.columns import LABEL
from .fairness import fairness_report

if TYPE_CHECKING:
    from .config import Config
    from .evaluation import Evaluation
    from .fairness import FairnessReport, Gap

BASELINE_GATE = "baseline"


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    value: float
    threshold: float
    message: str


Gate = Callable[["Evaluation", "Config"], "GateResult | list[GateResult] | None"]


def metric_gate(evaluation: Evaluation, config: Config) -> GateResult:
    """The task's held-out metric must reach its params setting (binary roc_auc >=
    `gates.min_roc_auc`, multiclass macro_f1 >= `gates.min_macro_f1`, regression r2 >=
    `gates.min_r2`)."""
    task = tasks.task_metrics(LABEL)
    value = evaluation.metrics[task.gate_metric]
    threshold = float(getattr(config.gates, task.gate_setting))
    passed = value >= threshold
    relation = ">=" if passed else "is below"
    return GateResult(
        name=task.gate_setting,
        passed=passed,
        value=value,
        threshold=threshold,
        message=f"{task.gate_metric} {value:.4f} {relation} gates.{task.gate_setting} {threshold}",
    )


def baseline_gate(evaluation: Evaluation, config: Config) -> GateResult | None:
    """The primary metric must beat the Dummy estimator's (`baseline_<primary>` in the metrics,
    fitted on the training set) by more than params `gates.baseline_margin`, a share of the
    Dummy's value. None where the evaluation has no baseline (evaluate and promote give it)."""
    task = tasks.task_metrics(LABEL)
    baseline = evaluation.metrics.get(f"baseline_{task.primary}")
    if baseline is None:
        return None
    value = evaluation.metrics[task.primary]
    margin = config.gates.baseline_margin
    # Rounded like the metrics, so float noise cannot decide a tie with the margin.
    improvement = round(task.relative_improvement(value, baseline), tasks.DIGITS)
    passed = improvement > margin
    relation = "beats" if passed else "does not beat"
    return GateResult(
        name=BASELINE_GATE,
        passed=passed,
        value=value,
        threshold=baseline,
        message=(
            f"{task.primary} {value:.4f} {relation} the Dummy estimator's {baseline:.4f} by more "
            f"than gates.baseline_margin {margin} ({improvement:+.2%}, {task.direction})"
        ),
    )


# Binary: optional minimums of other reported metrics (params key -> metric).
BINARY_MINIMUMS = (("min_pr_auc", "pr_auc"), ("min_recall", "recall"))


def binary_minimums_gate(evaluation: Evaluation, config: Config) -> list[GateResult] | None:
    """Binary: PR AUC and recall (at `model.threshold`) must reach `gates.min_pr_auc` and
    `gates.min_recall` where params set them. None for the other tasks, or when neither is set."""
    if LABEL.task != "binary":
        return None
    results = []
    for setting, metric in BINARY_MINIMUMS:
        threshold = getattr(config.gates, setting)
        if threshold is None:
            continue
        value = evaluation.metrics[metric]
        passed = value >= threshold
        relation = ">=" if passed else "is below"
        results.append(
            GateResult(
                name=setting,
                passed=passed,
                value=value,
                threshold=threshold,
                message=f"{metric} {value:.4f} {relation} gates.{setting} {threshold}",
            )
        )
    return results or None


def fairness_gaps_gate(evaluation: Evaluation, config: Config) -> list[GateResult] | None:
    """Each gap of the fairness report (per task: fairness.py) may be at most its params limit
    under `gates.fairness`; a gap that could not be measured fails only when
    `block_on_insufficient_data` says so."""
    report = _fairness_report(evaluation, config)
    if report is None:
        return None
    return [_gap_result(gap, report, config) for gap in report.gaps()]


def demographic_parity_gate(evaluation: Evaluation, config: Config) -> GateResult | None:
    """Selection rates of the protected groups may differ by at most the configured gap."""
    return _one_gap(evaluation, config, "demographic_parity_difference")


def equalized_odds_gate(evaluation: Evaluation, config: Config) -> GateResult | None:
    """True and false positive rates of the protected groups may differ by at most the gap."""
    return _one_gap(evaluation, config, "equalized_odds_difference")


def fairness_group_size_gate(evaluation: Evaluation, config: Config) -> GateResult | None:
    """Groups too small to judge fail the gate when `block_on_insufficient_data` says so."""
    fairness = config.gates.fairness
    report = _fairness_report(evaluation, config)
    if fairness is None or report is None or not report.insufficient:
        return None
    blocks = fairness.block_on_insufficient_data
    problems = "; ".join(group.describe() for group in report.insufficient)
    # Regression groups are judged by their rows alone.
    positives = (
        f", min_group_positives {fairness.min_group_positives}" if LABEL.is_classification else ""
    )
    return GateResult(
        name="fairness_group_size",
        passed=not blocks,
        value=float(len(report.insufficient)),
        threshold=0.0,
        message=(
            f"{problems} (gates.fairness.min_group_size {fairness.min_group_size}{positives}; "
            f"block_on_insufficient_data is {str(blocks).lower()})"
        ),
    )


def _fairness_report(evaluation: Evaluation, config: Config) -> FairnessReport | None:
    """The report of the configured fairness gate; None when there is no gate or nothing to
    measure (no protected attribute declared)."""
    if config.gates.fairness is None:
        return None
    report = fairness_report(evaluation, config.gates.fairness)
    return report if report.applicable else None


def _one_gap(evaluation: Evaluation, config: Config, metric: str) -> GateResult | None:
    report = _fairness_report(evaluation, config)
    if report is None:
        return None
    gap = next((gap for gap in report.gaps() if gap.metric == metric), None)
    return None if gap is None else _gap_result(gap, report, config)


def _gap_result(gap: Gap, report: FairnessReport, config: Config) -> GateResult:
    blocks = config.gates.fairness is not None and config.gates.fairness.block_on_insufficient_data
    if gap.value is None:  # fewer than two groups with enough data: nothing to compare
        return GateResult(
            name=gap.metric,
            passed=not blocks,
            value=float("nan"),
            threshold=gap.limit,
            message=f"{gap.metric}: not measured, fewer than two groups of "
            f"{report.protected_attribute} have enough data",
        )
    return _at_most(gap.metric, gap.value, f"gates.fairness.{gap.setting}", gap.limit)


def _at_most(metric: str, value: float, setting: str, threshold: float) -> GateResult:
    passed = value <= threshold
    relation = "<=" if passed else "exceeds"
    return GateResult(
        name=metric,
        passed=passed,
        value=value,
        threshold=threshold,
        message=f"{metric} {value:.4f} {relation} {setting} {threshold}",
    )


GATES: tuple[Gate, ...] = (
    metric_gate,
    binary_minimums_gate,
    baseline_gate,
    fairness_gaps_gate,
    fairness_group_size_gate,
)


def run_gates(
    evaluation: Evaluation, config: Config, gates: Sequence[Gate] = GATES
) -> list[GateResult]:
    """Run every configured gate (not just up to the first failure): a report shows all problems."""
    results: list[GateResult] = []
    for gate in gates:
        outcome = gate(evaluation, config)
        if isinstance(outcome, GateResult):
            results.append(outcome)
        elif outcome is not None:
            results.extend(outcome)
    return results
