"""A seeded synthetic credit dataset with the columns of columns.py, for a pipeline that runs
end to end before real data is plugged in (see source.py).

Default risk is a logistic function of plausible drivers (late payments, debt-to-income ratio,
credit history, employment, loan purpose and term) plus an unobserved component, so a good model
reaches a high but imperfect ROC AUC. The protected attribute is drawn independently of every
driver and of the label: a model trained on this data should pass a fairness gate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataSourceError
from .columns import DECLARATION

# The example's columns, in order: features, protected attribute, label (columns.yaml's default).
COLUMNS = (
    "age",
    "annual_income",
    "loan_amount",
    "loan_term_months",
    "credit_history_years",
    "num_late_payments",
    "employment_status",
    "employment_years",
    "purpose",
    "sex",
    "default",
)

EMPLOYMENT_INCOME_FACTOR = {
    "employed": 1.0,
    "self_employed": 1.1,
    "unemployed": 0.35,
    "retired": 0.6,
    "student": 0.3,
}
EMPLOYMENT_RISK = {
    "employed": 0.0,
    "self_employed": 0.3,
    "unemployed": 0.9,
    "retired": 0.1,
    "student": 0.4,
}
# (share of loans, median amount, added default risk)
PURPOSES = {
    "debt_consolidation": (0.30, 12_000, 0.25),
    "home_improvement": (0.15, 20_000, -0.15),
    "car": (0.20, 18_000, -0.2),
    "education": (0.08, 15_000, 0.1),
    "medical": (0.07, 6_000, 0.3),
    "business": (0.10, 35_000, 0.4),
    "other": (0.10, 8_000, 0.15),
}
LOAN_TERMS_MONTHS = np.array([12, 24, 36, 48, 60, 72, 120, 240, 360])
LOAN_TERM_SHARES = np.array([0.10, 0.15, 0.25, 0.15, 0.15, 0.08, 0.06, 0.04, 0.02])
# Share of values missing in each nullable column, as in real application forms.
MISSING_SHARE = {
    "annual_income": 0.04,
    "credit_history_years": 0.05,
    "employment_status": 0.03,
    "employment_years": 0.06,
}


def generate(n_rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """`n_rows` applicants with features, protected attribute and label; same seed, same frame.

    `shift` > 0 simulates a changed population for drift checks: lower incomes, larger loans and
    more late payments (0 is the reference population; 1 is a strong shift).
    """
    if n_rows < 1:
        raise ValueError(f"n_rows must be positive, got {n_rows}")
    if not declares_example():
        raise DataSourceError(
            "data.source 'synthetic' generates the credit example's columns and binary label, "
            "but columns.yaml declares others: set data.source to 'file' (`make use-data`), "
            "'sample' or your own"
        )
    if shift < 0:
        raise ValueError(f"shift must be >= 0, got {shift}")
    rng = np.random.default_rng(seed)

    age = np.clip(rng.normal(42, 13, n_rows), 18, 90).round().astype(np.int64)
    employment = _employment_status(rng, age)
    employment_years = np.where(
        np.isin(employment, ["employed", "self_employed"]),
        np.minimum(rng.exponential(6, n_rows), age - 18),
        0.0,
    ).round(1)
    income_factor = np.array([EMPLOYMENT_INCOME_FACTOR[e] for e in employment])
    income = (
        rng.lognormal(np.log(52_000), 0.45, n_rows)
        * income_factor
        * (1 + 0.01 * np.minimum(employment_years, 20))
        * np.exp(-0.3 * shift)
    )
    income = np.clip(income, 3_000, 10_000_000).round(-2)
    credit_history = ((age - 18) * rng.beta(2.5, 1.5, n_rows)).round(1)

    purpose_names = list(PURPOSES)
    purpose_shares = np.array([PURPOSES[p][0] for p in purpose_names])
    purpose = rng.choice(purpose_names, size=n_rows, p=purpose_shares / purpose_shares.sum())
    median_amount = np.array([PURPOSES[p][1] for p in purpose])
    loan_amount = median_amount * rng.lognormal(0, 0.5, n_rows) * np.exp(0.3 * shift)
    loan_amount = np.clip(loan_amount, 500, 1_000_000).round(-1)
    loan_term = rng.choice(LOAN_TERMS_MONTHS, size=n_rows, p=LOAN_TERM_SHARES)

    # Unobserved creditworthiness: drives late payments and default, and caps the achievable AUC.
    hidden_risk = rng.normal(0, 1, n_rows)
    late_rate = np.exp(-0.8 + 0.8 * hidden_risk) * (1 + shift)
    late_payments = np.minimum(rng.poisson(late_rate), 120).astype(np.int64)

    debt_to_income = loan_amount / income
    logit = (
        -3.0
        + 0.75 * np.minimum(late_payments, 8)
        + 5.0 * np.log1p(debt_to_income)
        - 0.07 * np.minimum(credit_history, 30)
        - 0.04 * np.minimum(employment_years, 15)
        + 1.5 * np.array([EMPLOYMENT_RISK[e] for e in employment])
        + np.array([PURPOSES[p][2] for p in purpose])
        + 0.004 * (loan_term - 36)
        + 0.4 * hidden_risk
    )
    default = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    sex = rng.choice(["female", "male"], size=n_rows)

    frame = pd.DataFrame(
        {
            "age": age,
            "annual_income": income,
            "loan_amount": loan_amount,
            "loan_term_months": loan_term.astype(np.int64),
            "credit_history_years": credit_history,
            "num_late_payments": late_payments,
            "employment_status": employment,
            "employment_years": employment_years,
            "purpose": purpose,
            "sex": sex,
            "default": default,
        }
    )
    _blank_out(frame, rng)
    return frame[list(COLUMNS)]


def declares_example() -> bool:
    """Whether columns.yaml still declares the example's columns and its binary label (before
    `make use-data`)."""
    protected = DECLARATION.protected_attribute
    declared = (
        *DECLARATION.feature_names,
        *(() if protected is None else (protected.name,)),
        DECLARATION.label.name,
    )
    return declared == COLUMNS and DECLARATION.label.task == "binary"


def _employment_status(rng: np.random.Generator, age: np.ndarray) -> np.ndarray:
    """Students are mostly young, retirees old; everyone else mostly employed."""
    draw = rng.random(age.size)
    status = np.where(
        draw < 0.78, "employed", np.where(draw < 0.91, "self_employed", "unemployed")
    ).astype(object)
    status[(age < 25) & (rng.random(age.size) < 0.45)] = "student"
    status[(age >= 63) & (rng.random(age.size) < 0.7)] = "retired"
    return status


def _blank_out(frame: pd.DataFrame, rng: np.random.Generator) -> None:
    """Missing values appear after the label is drawn: they hide information, not change risk."""
    for column, share in MISSING_SHARE.items():
        frame.loc[rng.random(len(frame)) < share, column] = np.nan
