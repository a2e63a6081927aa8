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

if TYPE_CHECKING:
    from .config import Config
    from .evaluate import Evaluation


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
    fairness = config.gates.fairness
    if fairness is None:
        return None
    from .fairness import fairness_report

    return _at_most(
        "demographic_parity_difference",
        fairness_report(evaluation).demographic_parity_difference,
        "gates.fairness.max_demographic_parity_difference",
        fairness.max_demographic_parity_difference,
    )


def equalized_odds_gate(evaluation: Evaluation, config: Config) -> GateResult | None:
    """True and false positive rates of the protected groups may differ by at most the gap."""
    fairness = config.gates.fairness
    if fairness is None:
        return None
    from .fairness import fairness_report

    return _at_most(
        "equalized_odds_difference",
        fairness_report(evaluation).equalized_odds_difference,
        "gates.fairness.max_equalized_odds_difference",
        fairness.max_equalized_odds_difference,
    )


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


GATES: tuple[Gate, ...] = (min_roc_auc_gate, demographic_parity_gate, equalized_odds_gate)


def run_gates(
    evaluation: Evaluation, config: Config, gates: Sequence[Gate] = GATES
) -> list[GateResult]:
    """Run every configured gate (not just up to the first failure): a report shows all problems."""
    results = (gate(evaluation, config) for gate in gates)
    return [result for result in results if result is not None]
