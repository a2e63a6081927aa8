"""`drift`: compare a batch of current data with the champion's training data.

Per feature (data/columns.py) a PSI and a chi-square test (statistics.py); the same for the
model's predictions on the batch against its predictions on its held-out test data (prediction
drift), per task: binary, the positive class's probability; regression, the predicted value
(with the Kolmogorov-Smirnov statistic); multi-class, the shares of the predicted classes; and
the schema's value checks on the batch (data quality). The batch has drifted when more than
params `drift.max_drifted_share` of the features drifted, or the predictions drifted, or the
batch has data-quality problems. The result is written to reports/drift.json and drawn in
reports/drift.html. Nothing here writes to the model registry.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..data.columns import DECLARATION, Declaration, LabelSpec, class_names
from ..errors import ConfigError
from ..tasks import decide, model_scores
from .batch import QualityProblem, quality_problems, read_batch, usable_features
from .reference import Reference, find_reference
from .report import DIGITS, ColumnResult, DriftReport, Shares
from .statistics import MISSING, ColumnDrift, categorical_drift, numeric_drift

if TYPE_CHECKING:
    from pathlib import Path

    from ..config import Config, DriftSettings


def drift_settings(config: Config) -> DriftSettings:
    if config.drift is None:
        raise ConfigError(
            f"{config.params_file.name}: no 'drift' section (thresholds of the drift check); "
            "copy it from the template's params.yaml"
        )
    return config.drift


def run_drift(config: Config, batch_path: Path) -> DriftReport:
    """Check the batch, find the reference, compare them, write the JSON and HTML reports."""
    from .html_report import write_html_report

    settings = drift_settings(config)
    # The batch first: an unusable one fails before the registry is even contacted.
    current = usable_features(read_batch(batch_path), settings.min_rows, str(batch_path))
    problems = quality_problems(current)
    reference = find_reference(config)
    report = compare(reference, current, problems, settings, str(batch_path))
    write_json_report(report, config.paths.drift_report)
    write_html_report(report, config.paths.drift_html)
    return report


def compare(
    reference: Reference,
    current: pd.DataFrame,
    problems: list[QualityProblem],
    settings: DriftSettings,
    batch: str,
    declaration: Declaration | None = None,
) -> DriftReport:
    """The drift of every feature and of the predictions, judged by `settings`; the columns
    and the task are `declaration`'s (data/columns.yaml by default)."""
    declaration = declaration or DECLARATION
    names = list(declaration.feature_names)
    baseline = reference.training_data[names]
    features = []
    for spec in declaration.features:
        if spec.kind == "category":
            drift = categorical_drift(baseline[spec.name], current[spec.name])
            change = _largest_share_change(drift)
        else:
            drift = numeric_drift(baseline[spec.name], current[spec.name], settings.bins)
            change = _median_change(baseline[spec.name], current[spec.name])
        features.append(
            _result(spec.name, spec.kind, drift, change, settings.psi_threshold, settings.p_value)
        )
    holdout = reference.test_data[names]
    prediction = prediction_drift(
        reference.model, holdout, current[names], declaration.label, settings
    )
    return DriftReport(
        batch=batch,
        batch_rows=len(current),
        model=reference.model_description,
        model_version=reference.model_version,
        reference_data=reference.data_location,
        reference_rows=len(baseline),
        training_data_sha256=reference.training_data_sha256,
        settings={key: float(value) for key, value in settings.model_dump().items()},
        features=features,
        prediction=prediction,
        quality_problems=problems,
        task=declaration.label.task,
    )


def prediction_drift(
    model: Any,
    holdout: pd.DataFrame,
    current: pd.DataFrame,
    label: LabelSpec,
    settings: DriftSettings,
) -> ColumnResult:
    """The model's predictions on `current` against its predictions on `holdout`: binary, the
    positive class's probability; regression, the value; multi-class, the class shares."""
    if label.task == "binary":
        reference_scores = pd.Series(model.predict_proba(holdout)[:, 1])
        current_scores = pd.Series(model.predict_proba(current)[:, 1])
        drift = numeric_drift(reference_scores, current_scores, settings.bins)
        change = f"mean {reference_scores.mean():.4f} -> {current_scores.mean():.4f}"
        name, kind = f"predicted probability that {label.name} is {label.positive}", "score"
    elif label.task == "regression":
        reference_values = pd.Series(model_scores(model, holdout, label))
        current_values = pd.Series(model_scores(model, current, label))
        drift = numeric_drift(reference_values, current_values, settings.bins)
        change = f"mean {reference_values.mean():.6g} -> {current_values.mean():.6g}"
        name, kind = f"predicted value of {label.name}", "prediction"
    else:
        reference_classes = _predicted_classes(model, holdout, label)
        current_classes = _predicted_classes(model, current, label)
        drift = categorical_drift(reference_classes, current_classes)
        change = _largest_share_change(drift)
        name, kind = f"predicted class of {label.name}", "prediction"
    return _result(name, kind, drift, change, settings.prediction_psi_threshold, settings.p_value)


def _predicted_classes(model: Any, frame: pd.DataFrame, label: LabelSpec) -> pd.Series:
    """The class (as text) the model predicts for each row of `frame`."""
    return pd.Series(class_names(decide(model_scores(model, frame, label), label), label))


def write_json_report(report: DriftReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def _result(
    name: str,
    kind: str,
    drift: ColumnDrift,
    change: str,
    psi_threshold: float,
    p_value: float,
) -> ColumnResult:
    binned = drift.binned
    reference_shares, current_shares = binned.reference_shares, binned.current_shares
    missing = binned.labels.index(MISSING) if MISSING in binned.labels else None
    return ColumnResult(
        name=name,
        kind=kind,
        drifted=drift.psi > psi_threshold and drift.p_value < p_value,
        psi=round(drift.psi, DIGITS),
        p_value=float(f"{drift.p_value:.3g}"),
        chi2_statistic=round(drift.chi2_statistic, DIGITS),
        ks_statistic=None if drift.ks_statistic is None else round(drift.ks_statistic, DIGITS),
        ks_p_value=None if drift.ks_p_value is None else float(f"{drift.ks_p_value:.3g}"),
        change=change,
        reference_missing_share=_round(reference_shares[missing]) if missing is not None else 0.0,
        current_missing_share=_round(current_shares[missing]) if missing is not None else 0.0,
        shares=Shares(
            bins=list(binned.labels),
            reference=[_round(share) for share in reference_shares],
            current=[_round(share) for share in current_shares],
        ),
    )


def _median_change(reference: pd.Series, current: pd.Series) -> str:
    return f"median {reference.median():.6g} -> {current.median():.6g}"


def _largest_share_change(drift: ColumnDrift) -> str:
    binned = drift.binned
    gaps = binned.current_shares - binned.reference_shares
    top = int(np.argmax(np.abs(gaps)))
    return (
        f"{binned.labels[top]} {binned.reference_shares[top]:.1%} -> "
        f"{binned.current_shares[top]:.1%}"
    )


def _round(value: float) -> float:
    return round(float(value), DIGITS)
