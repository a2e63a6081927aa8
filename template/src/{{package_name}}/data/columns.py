"""The columns of the dataset: one declaration that validation, training and serving all read.

The pandera schemas (schema.py), the feature lists of the model (features.py) and the request
validation of the model server are derived from these specs, so a column is declared once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnKind = Literal["int", "float", "category"]


@dataclass(frozen=True)
class ColumnSpec:
    """One column: its type, whether it may be missing, and its allowed values."""

    name: str
    kind: ColumnKind
    description: str
    nullable: bool = False
    min_value: float | None = None
    max_value: float | None = None
    categories: tuple[str, ...] = field(default_factory=tuple)


FEATURES: tuple[ColumnSpec, ...] = (
    ColumnSpec("age", "int", "Applicant age in years", min_value=18, max_value=100),
    ColumnSpec(
        "annual_income", "float", "Yearly income", nullable=True, min_value=0, max_value=10_000_000
    ),
    ColumnSpec("loan_amount", "float", "Requested amount", min_value=100, max_value=1_000_000),
    ColumnSpec("loan_term_months", "int", "Loan duration in months", min_value=6, max_value=360),
    ColumnSpec(
        "credit_history_years",
        "float",
        "Years since the first credit line",
        nullable=True,
        min_value=0,
        max_value=80,
    ),
    ColumnSpec(
        "num_late_payments", "int", "Late payments in the last 5 years", min_value=0, max_value=120
    ),
    ColumnSpec(
        "employment_status",
        "category",
        "Current employment",
        nullable=True,
        categories=("employed", "self_employed", "unemployed", "retired", "student"),
    ),
    ColumnSpec(
        "employment_years",
        "float",
        "Years with the current employer",
        nullable=True,
        min_value=0,
        max_value=60,
    ),
    ColumnSpec(
        "purpose",
        "category",
        "What the loan is for",
        categories=(
            "debt_consolidation",
            "home_improvement",
            "car",
            "education",
            "medical",
            "business",
            "other",
        ),
    ),
)

# Kept out of the model's inputs; used only by the fairness gate and its reports.
PROTECTED_ATTRIBUTE = ColumnSpec(
    "sex", "category", "Protected attribute (not a model input)", categories=("female", "male")
)

LABEL = ColumnSpec("default", "int", "1 if the loan defaulted", min_value=0, max_value=1)

NUMERIC_FEATURES: tuple[str, ...] = tuple(c.name for c in FEATURES if c.kind != "category")
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(c.name for c in FEATURES if c.kind == "category")
FEATURE_NAMES: tuple[str, ...] = tuple(c.name for c in FEATURES)
