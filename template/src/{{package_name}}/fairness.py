"""Fairness of the model's decisions across the groups of the protected attribute (fairlearn).

Measured on the test set at the decision threshold, per group: the selection rate (share
predicted to default), the true and false positive rates, and the row count. The fairness gate
bounds two gaps between groups: the demographic parity difference (largest gap in selection
rate) and the equalized odds difference (largest gap in true or false positive rate).

fairlearn is a dependency of the enterprise tier only, so it is imported when a report is made:
this module (and the model card, which reads the report) imports without it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data.columns import PROTECTED_ATTRIBUTE
from .errors import ArtifactIntegrityError, ConfigError
from .evaluate import DIGITS

if TYPE_CHECKING:
    from .evaluate import Evaluation


@dataclass(frozen=True)
class GroupRates:
    count: int
    selection_rate: float
    true_positive_rate: float
    false_positive_rate: float


@dataclass(frozen=True)
class FairnessReport:
    protected_attribute: str
    demographic_parity_difference: float
    equalized_odds_difference: float
    overall: GroupRates
    by_group: dict[str, GroupRates]


def fairness_report(evaluation: Evaluation) -> FairnessReport:
    """Per-group rates and the two between-group gaps of the evaluation's decisions."""
    try:
        from fairlearn import metrics
    except ImportError as error:
        raise ConfigError(
            "params.yaml sets gates.fairness, but fairlearn is not installed: "
            "`uv add --group train fairlearn`, or remove gates.fairness"
        ) from error

    groups = evaluation.test[PROTECTED_ATTRIBUTE.name].astype(str).to_numpy()
    truth, decisions = evaluation.y_true, evaluation.y_pred
    frame = metrics.MetricFrame(
        metrics={
            "count": metrics.count,
            "selection_rate": metrics.selection_rate,
            "true_positive_rate": metrics.true_positive_rate,
            "false_positive_rate": metrics.false_positive_rate,
        },
        y_true=truth,
        y_pred=decisions,
        sensitive_features=groups,
    )
    return FairnessReport(
        protected_attribute=PROTECTED_ATTRIBUTE.name,
        demographic_parity_difference=_rounded(
            metrics.demographic_parity_difference(truth, decisions, sensitive_features=groups)
        ),
        equalized_odds_difference=_rounded(
            metrics.equalized_odds_difference(truth, decisions, sensitive_features=groups)
        ),
        overall=_rates(frame.overall.to_dict()),
        by_group={
            str(group): _rates(row) for group, row in frame.by_group.to_dict("index").items()
        },
    )


def write_fairness_report(report: FairnessReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    return path


def read_fairness_report(path: Path) -> FairnessReport:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        return FairnessReport(
            protected_attribute=content["protected_attribute"],
            demographic_parity_difference=content["demographic_parity_difference"],
            equalized_odds_difference=content["equalized_odds_difference"],
            overall=GroupRates(**content["overall"]),
            by_group={group: GroupRates(**rates) for group, rates in content["by_group"].items()},
        )
    except FileNotFoundError as error:
        raise ArtifactIntegrityError(
            f"{path} not found: the evaluate stage writes it (`make pipeline`)"
        ) from error
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ArtifactIntegrityError(f"{path} is not a fairness report: {error!r}") from error


def _rates(values: dict[str, Any]) -> GroupRates:
    return GroupRates(
        count=int(values["count"]),
        selection_rate=_rounded(values["selection_rate"]),
        true_positive_rate=_rounded(values["true_positive_rate"]),
        false_positive_rate=_rounded(values["false_positive_rate"]),
    )


def _rounded(value: float) -> float:
    return round(float(value), DIGITS)
