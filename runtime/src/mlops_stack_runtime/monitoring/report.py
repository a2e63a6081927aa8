"""The drift report: what drift.py decides and html_report.py draws.

Plain data with its own wording (text, JSON): both modules import it, neither imports the other
at load time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .batch import QualityProblem

DIGITS = 6
PREDICTIONS_WORDS = {
    "binary": "scores",
    "regression": "predicted values",
    "multiclass": "predicted class shares",
}


@dataclass(frozen=True)
class Shares:
    """The bins of a column with the share of each side in them (what the plots draw)."""

    bins: list[str]
    reference: list[float]
    current: list[float]


@dataclass(frozen=True)
class ColumnResult:
    name: str
    kind: str
    drifted: bool
    psi: float
    p_value: float
    chi2_statistic: float
    ks_statistic: float | None
    ks_p_value: float | None
    # "How much" in the column's own terms: medians of numbers, the most changed category.
    change: str
    reference_missing_share: float
    current_missing_share: float
    shares: Shares


@dataclass(frozen=True)
class DriftReport:
    batch: str
    batch_rows: int
    model: str
    model_version: int | None
    reference_data: str
    reference_rows: int
    training_data_sha256: str
    settings: dict[str, float]
    features: list[ColumnResult]
    prediction: ColumnResult
    quality_problems: list[QualityProblem]
    # The label's task: binary reports scores, regression values, multi-class class shares.
    task: str = "binary"
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def predictions_word(self) -> str:
        """What the model's predictions are, in words: "scores", "predicted values" or
        "predicted class shares"."""
        return PREDICTIONS_WORDS.get(self.task, "predictions")

    @property
    def drifted_features(self) -> list[ColumnResult]:
        """The drifted features, largest PSI first."""
        return sorted((f for f in self.features if f.drifted), key=lambda f: -f.psi)

    @property
    def drifted_share(self) -> float:
        return len(self.drifted_features) / len(self.features)

    @property
    def reasons(self) -> list[str]:
        """Why the batch counts as drifted; empty when it does not."""
        reasons = []
        limit = self.settings["max_drifted_share"]
        if self.drifted_features and self.drifted_share > limit:
            names = ", ".join(f.name for f in self.drifted_features)
            reasons.append(
                f"{len(self.drifted_features)} of {len(self.features)} features drifted "
                f"({self.drifted_share:.0%} > drift.max_drifted_share {limit:.0%}): {names}"
            )
        if self.prediction.drifted:
            reasons.append(f"the model's {self.predictions_word} drifted: {self.prediction.change}")
        if self.quality_problems:
            columns = sorted({problem.column for problem in self.quality_problems})
            reasons.append(f"data-quality problems in {', '.join(columns)}")
        return reasons

    @property
    def drifted(self) -> bool:
        return bool(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        content = asdict(self)
        content["drifted"] = self.drifted
        content["reasons"] = self.reasons
        content["drifted_features"] = [f.name for f in self.drifted_features]
        content["drifted_share"] = round(self.drifted_share, DIGITS)
        return content

    def to_text(self) -> str:
        lines = [
            f"reference: {self.model}",
            f"  training data: {self.reference_data}, {self.reference_rows} rows, sha256 verified",
            f"batch: {self.batch}, {self.batch_rows} rows",
        ]
        drifted = self.drifted_features
        lines.append(
            f"drifted features: {len(drifted)} of {len(self.features)}" + (":" if drifted else "")
        )
        lines += [f"  {_describe(column)}" for column in drifted]
        state = "drifted" if self.prediction.drifted else "stable"
        lines.append(
            f"predictions (vs. held-out test {self.predictions_word}): {state}, "
            f"{_describe(self.prediction)}"
        )
        lines.append(f"data-quality problems: {len(self.quality_problems) or 'none'}")
        lines += [f"  {problem.describe()}" for problem in self.quality_problems]
        if self.drifted:
            lines.append("DRIFT: " + "; ".join(self.reasons))
        else:
            lines.append("no drift beyond the thresholds of params.yaml `drift`")
        return "\n".join(lines)


def _describe(column: ColumnResult) -> str:
    p_value = "p < 0.001" if column.p_value < 0.001 else f"p {column.p_value:.3f}"
    return f"{column.name}: PSI {column.psi:.3f} ({p_value}), {column.change}"
