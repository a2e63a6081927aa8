"""Fairness of the model's decisions across the groups of the protected attribute (fairlearn).

Measured on the test set at the decision threshold (params `model.threshold`), per group: the
row and positive counts, the selection rate (share predicted positive), the true and false
positive rates. The fairness gate bounds two gaps between groups: the demographic parity
difference (largest gap in selection rate) and the equalized odds difference (largest gap in true
or false positive rate). Groups with too few rows or positives to judge (params
`gates.fairness.min_group_size`, `min_group_positives`) are reported as insufficient data and
left out of the gaps; with no protected attribute in columns.yaml the gate is not applicable.

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
from .data.columns import PROTECTED_ATTRIBUTE, as_category
from .errors import ArtifactIntegrityError, ConfigError
from .evaluation import DIGITS

if TYPE_CHECKING:
    from .evaluation import Evaluation


@dataclass(frozen=True)
class GroupRates:
    count: int
    selection_rate: float
    true_positive_rate: float
    false_positive_rate: float
    positives: int = 0


@dataclass(frozen=True)
class InsufficientGroup:
    group: str
    count: int
    positives: int

    def describe(self) -> str:
        return (
            f"insufficient data for group {self.group} (n={self.count}, positives={self.positives})"
        )


@dataclass(frozen=True)
class FairnessReport:
    # None: columns.yaml declares no protected attribute, and nothing was measured.
    protected_attribute: str | None
    # None when fewer than two groups have enough data to compare.
    demographic_parity_difference: float | None
    equalized_odds_difference: float | None
    overall: GroupRates | None
    by_group: dict[str, GroupRates]
    insufficient: list[InsufficientGroup] = field(default_factory=list)
    min_group_size: int = 0
    min_group_positives: int = 0

    @property
    def applicable(self) -> bool:
        return self.protected_attribute is not None

    def summary(self) -> str:
        if not self.applicable:
            return (
                "fairness: not applicable (no protected attribute in data/columns.yaml; "
                "`make use-data ... PROTECTED=<column>` declares one)"
            )
        lines = [f"fairness by {self.protected_attribute}:"]
        lines += [f"  {group.describe()}" for group in self.insufficient]
        return "\n".join(lines)


def not_applicable_report() -> FairnessReport:
    return FairnessReport(None, None, None, None, {})


def fairness_report(
    evaluation: Evaluation, settings: FairnessSettings | None = None
) -> FairnessReport:
    """Per-group counts and rates, and the between-group gaps over the groups large enough."""
    if PROTECTED_ATTRIBUTE is None:
        return not_applicable_report()
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

    groups = as_category(evaluation.test[PROTECTED_ATTRIBUTE.name]).fillna("(missing)")
    groups = groups.astype(str).to_numpy()
    truth, decisions = np.asarray(evaluation.y_true), np.asarray(evaluation.y_pred)
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
    by_group = {
        str(group): _rates(row, int(truth[groups == group].sum()))
        for group, row in frame.by_group.to_dict("index").items()
    }
    insufficient = [
        InsufficientGroup(group, rates.count, rates.positives)
        for group, rates in sorted(by_group.items())
        if rates.count < settings.min_group_size or rates.positives < settings.min_group_positives
    ]
    judged = np.isin(groups, [g for g in by_group if g not in {i.group for i in insufficient}])
    comparable = len(set(groups[judged])) >= 2
    return FairnessReport(
        protected_attribute=PROTECTED_ATTRIBUTE.name,
        demographic_parity_difference=_rounded(
            metrics.demographic_parity_difference(
                truth[judged], decisions[judged], sensitive_features=groups[judged]
            )
        )
        if comparable
        else None,
        equalized_odds_difference=_rounded(
            metrics.equalized_odds_difference(
                truth[judged], decisions[judged], sensitive_features=groups[judged]
            )
        )
        if comparable
        else None,
        overall=_rates(frame.overall.to_dict(), int(truth.sum())),
        by_group=by_group,
        insufficient=insufficient,
        min_group_size=settings.min_group_size,
        min_group_positives=settings.min_group_positives,
    )


def write_fairness_report(report: FairnessReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"applicable": report.applicable, **asdict(report)}
    path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    return path


def read_fairness_report(path: Path) -> FairnessReport:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        overall = content.get("overall")
        return FairnessReport(
            protected_attribute=content["protected_attribute"],
            demographic_parity_difference=content["demographic_parity_difference"],
            equalized_odds_difference=content["equalized_odds_difference"],
            overall=None if overall is None else GroupRates(**overall),
            by_group={group: GroupRates(**rates) for group, rates in content["by_group"].items()},
            insufficient=[InsufficientGroup(**item) for item in content.get("insufficient", [])],
            min_group_size=content.get("min_group_size", 0),
            min_group_positives=content.get("min_group_positives", 0),
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


def _rates(values: dict[str, Any], positives: int) -> GroupRates:
    return GroupRates(
        count=int(values["count"]),
        selection_rate=_rounded(values["selection_rate"]),
        true_positive_rate=_rounded(values["true_positive_rate"]),
        false_positive_rate=_rounded(values["false_positive_rate"]),
        positives=positives,
    )


def _rounded(value: float) -> float:
    value = float(value)
    return 0.0 if np.isnan(value) else round(value, DIGITS)
