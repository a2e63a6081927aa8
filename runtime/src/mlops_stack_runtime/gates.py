"""Quality gates: checks a model must pass before the pipeline succeeds.

A gate is a function `(evaluation, config) -> GateResult | None`. Add a gate (calibration,
latency...) by writing one such function and listing it in `GATES`; its thresholds belong under
`gates:` in params.yaml. A gate whose section params.yaml lacks returns None and does not count:
the fairness gates run only where `gates.fairness` is set (the enterprise tier renders it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .fairness import fairness_report

if TYPE_CHECKING:
    from .config import Config
    from .evaluation import Evaluation
    from .fairness import FairnessReport


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    value: float
    threshold: float
    message: str


Gate = Callable[["Evaluation", "Config"], GateResult | None]


def min_roc_auc_gate(evaluation: Evaluation, config: Config) -> GateResult:
    """Held-out ROC AUC must reach params `gates.min_roc_auc`."""
    value = evaluation.metrics["roc_auc"]
    threshold = config.gates.min_roc_auc
    passed = value >= threshold
    relation = ">=" if passed else "is below"
    return GateResult(
        name="min_roc_auc",
        passed=passed,
        value=value,
        threshold=threshold,
        message=f"roc_auc {value:.4f} {relation} gates.min_roc_auc {threshold}",
    )


def demographic_parity_gate(evaluation: Evaluation, config: Config) -> GateResult | None:
    """Selection rates of the protected groups may differ by at most the configured gap."""
    return _fairness_gap_gate(
        evaluation,
        config,
        "demographic_parity_difference",
        "max_demographic_parity_difference",
    )


def equalized_odds_gate(evaluation: Evaluation, config: Config) -> GateResult | None:
    """True and false positive rates of the protected groups may differ by at most the gap."""
    return _fairness_gap_gate(
        evaluation, config, "equalized_odds_difference", "max_equalized_odds_difference"
    )


def fairness_group_size_gate(evaluation: Evaluation, config: Config) -> GateResult | None:
    """Groups too small to judge fail the gate when `block_on_insufficient_data` says so."""
    fairness = config.gates.fairness
    report = _fairness_report(evaluation, config)
    if fairness is None or report is None or not report.insufficient:
        return None
    blocks = fairness.block_on_insufficient_data
    problems = "; ".join(group.describe() for group in report.insufficient)
    return GateResult(
        name="fairness_group_size",
        passed=not blocks,
        value=float(len(report.insufficient)),
        threshold=0.0,
        message=(
            f"{problems} (gates.fairness.min_group_size {fairness.min_group_size}, "
            f"min_group_positives {fairness.min_group_positives}; "
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


def _fairness_gap_gate(
    evaluation: Evaluation, config: Config, metric: str, setting: str
) -> GateResult | None:
    fairness = config.gates.fairness
    report = _fairness_report(evaluation, config)
    if fairness is None or report is None:
        return None
    limit = getattr(fairness, setting)
    value = getattr(report, metric)
    if value is None:  # fewer than two groups with enough data: nothing to compare
        return GateResult(
            name=metric,
            passed=not fairness.block_on_insufficient_data,
            value=float("nan"),
            threshold=limit,
            message=f"{metric}: not measured, fewer than two groups of "
            f"{report.protected_attribute} have enough data",
        )
    return _at_most(metric, value, f"gates.fairness.{setting}", limit)


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
    min_roc_auc_gate,
    demographic_parity_gate,
    equalized_odds_gate,
    fairness_group_size_gate,
)


def run_gates(
    evaluation: Evaluation, config: Config, gates: Sequence[Gate] = GATES
) -> list[GateResult]:
    """Run every configured gate (not just up to the first failure): a report shows all problems."""
    results = (gate(evaluation, config) for gate in gates)
    return [result for result in results if result is not None]
