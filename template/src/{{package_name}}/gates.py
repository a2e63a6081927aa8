"""Quality gates: checks a model must pass before the pipeline succeeds.

A gate is a function `(evaluation, config) -> GateResult`. Add a gate (fairness, calibration,
latency...) by writing one such function and listing it in `GATES`; its thresholds belong under
`gates:` in params.yaml.
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


Gate = Callable[["Evaluation", "Config"], GateResult]


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


GATES: tuple[Gate, ...] = (min_roc_auc_gate,)


def run_gates(
    evaluation: Evaluation, config: Config, gates: Sequence[Gate] = GATES
) -> list[GateResult]:
    """Run every gate (not just up to the first failure) so a report shows all problems."""
    return [gate(evaluation, config) for gate in gates]
