"""The model card (docs/model_card.md), regenerated from the pipeline's records by `model-card`.

Every number comes from a file the pipeline wrote: the audit record (models/model.json), the
held-out metrics, the fairness report and the last promotion decision. The card holds no
generation time, so the same model gives the same card and git shows only real changes. Adapt
the prose of intended use and limitations here, not in the generated file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, metadata
from typing import TYPE_CHECKING, Any

from .audit import MODEL_FILE_NAME, ModelRecord, decision_threshold, read_record
from .config import SplitSettings
from .data.columns import DECLARATION, Declaration, LabelSpec
from .data.split import describe_split
from .errors import ArtifactIntegrityError
from .estimators import FAMILIES
from .explain import Importance, read_importance
from .fairness import (
    FairnessReport,
    GroupClassRates,
    GroupErrors,
    GroupRates,
    read_fairness_report,
)
from .gates import BINARY_MINIMUMS
from .project import current_project
from .promotion import read_promotion_report
from .tasks import DIGITS, task_metrics

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from .config import Config


# The metrics of scikit-learn's Dummy estimator carry this prefix (evaluate.py).
BASELINE_PREFIX = "baseline_"


def metric_meanings(label: LabelSpec) -> dict[str, str]:
    """What each of the task's metrics measures, in the words of the label."""
    if label.task == "regression":
        units = f"in units of `{label.name}`"
        return {
            "rmse": f"typical error: root mean squared error, {units} (lower is better)",
            "mae": f"mean absolute error, {units} (lower is better)",
            "r2": f"share of the variance of `{label.name}` explained (1 perfect, 0 no better "
            "than predicting the mean)",
        }
    if label.task == "multiclass":
        return {
            "macro_f1": "F1 of each class (harmonic mean of precision and recall), averaged "
            "with every class counting equally",
            "balanced_accuracy": "share of each class's rows predicted as that class, averaged "
            "over the classes",
            "accuracy": "share of rows predicted as their class",
            "log_loss": "calibration: mean negative log of the probability given to the true "
            "class (lower is better)",
            "roc_auc_ovr": "ranking: ROC AUC of each class against the rest, averaged over the "
            "classes",
        }
    positive = f"{label.name} = {label.positive}"
    return {
        "roc_auc": f"ranking: chance a row with {positive} scores above one without",
        "pr_auc": f"ranking among the highest scores (average precision for {positive})",
        "brier": "calibration: mean squared error of the probability (lower is better)",
        "accuracy": "share of correct decisions at the threshold",
        "precision": f"share of rows predicted {positive} that have {positive}",
        "recall": f"share of rows with {positive} that were predicted so",
        "f1": "harmonic mean of precision and recall",
    }


@dataclass(frozen=True)
class CardInputs:
    config: Config
    record: ModelRecord
    metrics: dict[str, float]
    fairness: FairnessReport | None
    promotion: dict[str, Any] | None
    # The columns the model was made for: its label (the task) and protected attribute.
    declaration: Declaration = field(default=DECLARATION)
    # Permutation importance on the test set (reports/importance.json); None before the
    # `evaluate` stage wrote it.
    importance: Importance | None = None

    @property
    def label(self) -> LabelSpec:
        return self.declaration.label


def load_inputs(config: Config) -> CardInputs:
    """The records the card is made of; stale or missing ones raise ArtifactIntegrityError."""
    paths = config.paths
    record = read_record(paths.models_dir)
    if not paths.metrics.is_file():
        raise ArtifactIntegrityError(
            f"{paths.metrics} not found: run the pipeline (`make pipeline`)"
        )
    try:
        metrics = json.loads(paths.metrics.read_text(encoding="utf-8"))
    # Not JSON or not UTF-8 (ValueErrors), or unreadable.
    except (ValueError, OSError) as error:
        raise ArtifactIntegrityError(
            f"{paths.metrics} cannot be read as JSON: {error}; `make pipeline` writes it again"
        ) from error
    if metrics != record.metrics:
        raise ArtifactIntegrityError(
            f"{paths.metrics} does not match {paths.models_dir / 'model.json'}: the metrics belong "
            "to another model; run the pipeline (`make pipeline`)"
        )
    fairness = None
    if config.gates.fairness is not None:
        fairness = read_fairness_report(paths.fairness_report)
    return CardInputs(
        config=config,
        record=record,
        metrics=metrics,
        fairness=fairness,
        promotion=read_promotion_report(paths.promotion_report),
        importance=read_importance(paths.importance),
    )


def write_model_card(config: Config) -> Path:
    path = config.paths.model_card
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(load_inputs(config)), encoding="utf-8")
    return path


def render(inputs: CardInputs) -> str:
    sections = (
        _title(inputs),
        _details(inputs),
        _intended_use(inputs),
        _data(inputs),
        _performance(inputs),
        _importance(inputs),
        _fairness(inputs),
        _limitations(inputs),
        _approvals(inputs),
    )
    return "\n\n".join(section.strip("\n") for section in sections) + "\n"


def _title(inputs: CardInputs) -> str:
    record = inputs.record
    summary = _package_metadata("Summary")
    lines = [
        f"# Model card: {record.registered_model_name} version {record.registered_model_version}"
    ]
    if summary:
        lines += ["", summary]
    lines += [
        "",
        "Generated by `make model-card` from `models/model.json`, `reports/metrics.json`, "
        "`reports/fairness.json` and `reports/promotion.json`. Do not edit by hand: change "
        "`model_card.py` and regenerate.",
    ]
    return "\n".join(lines)


def _algorithm(inputs: CardInputs) -> str:
    """The library and estimator of the family params `model.estimator` names (records made
    before tasks name it `model.classifier`)."""
    model = inputs.record.params["model"]
    name = model.get("estimator", model.get("classifier"))
    family = FAMILIES.get(name)
    path = family.estimator_path(inputs.label.task) if family is not None else None
    estimator = path.rpartition(":")[2] if path else name
    library = {"lightgbm": "LightGBM", "xgboost": "XGBoost"}.get(
        (family.package if family is not None else None) or "", "scikit-learn"
    )
    hyperparameters = ", ".join(
        f"{key}={value}" for key, value in (model["hyperparameters"].get(name) or {}).items()
    )
    return (
        f"{library} `{estimator}` (params `model.estimator` {name}; "
        f"{hyperparameters or 'library defaults'}; random_state {model['random_state']})"
    )


def _output(inputs: CardInputs) -> str:
    """What the model server and batch scoring return, per task (names from the label)."""
    label = inputs.label
    if label.task == "regression":
        return (
            f"`predicted_{label.name}`, the predicted value of `{label.name}` ({label.description})"
        )
    if label.task == "multiclass":
        return (
            f"`predicted_{label.name}`, the most probable class of `{label.name}` "
            f"({', '.join(label.classes)}), and each class's probability: "
            f"`{label.name}_probability_<class>` in v2 answers and tables, a mapping "
            f"`{label.name}_probabilities` (class to probability) in v1 answers"
        )
    return (
        f"`{label.name}_probability`, the probability that {label.name} is {label.positive}; "
        f"predicted class 1 (`{label.name}` = {label.positive}) at probability >= "
        f"{decision_threshold(inputs.record)}"
    )


def _details(inputs: CardInputs) -> str:
    record = inputs.record
    rows = [
        (
            "Registered model",
            f"`{record.registered_model_name}` version {record.registered_model_version}",
        ),
        ("MLflow run", f"`{record.mlflow_run_id}`"),
        ("Trained", f"{record.created_at} from git commit `{record.git_commit or 'unknown'}`"),
        ("Task", _task(inputs.label)),
        ("Algorithm", _algorithm(inputs)),
        (
            "Preprocessing",
            "numbers: median imputation (and standard scaling for models that are not trees); "
            "categories: most-frequent imputation and one-hot encoding (an unseen category "
            "encodes as all zeros)",
        ),
        ("Output", _output(inputs)),
        ("Model file", f"`models/{MODEL_FILE_NAME}`, sha256 `{record.model_sha256}`"),
        ("Libraries", f"scikit-learn {record.sklearn_version}, Python {record.python_version}"),
        ("Owner", _package_metadata("Author-email") or "see pyproject.toml"),
    ]
    return "## Model details\n\n" + _table(("", ""), rows)


def _task(label: LabelSpec) -> str:
    """The task in words (data/columns.yaml `label.task`)."""
    if label.task == "regression":
        return f"regression: predicts the value of `{label.name}`"
    if label.task == "multiclass":
        return f"multi-class classification: predicts which of {len(label.classes)} classes"
    return f"binary classification: predicts whether `{label.name}` is {label.positive}"


def _intended_use(inputs: CardInputs) -> str:
    label = inputs.label
    meaning = {
        "binary": f"probability that {label.name} is {label.positive}",
        "multiclass": f"class of {label.name} and the probability of each class",
        "regression": f"value of {label.name}",
    }[label.task]
    use = {
        "binary": "Rank rows by that probability for manual review, and monitor it over time.",
        "multiclass": "Route rows by their most probable class, review those whose "
        "probabilities are close, and monitor the class shares over time.",
        "regression": "Use the estimate with the error to expect (mae and rmse under "
        "Performance), and monitor the predicted values over time.",
    }[label.task]
    return f"""## Intended use

- Estimate the {meaning} ({label.description}), from the data listed under Data,
  to support decisions that people make and review.
- {use}

Out of scope:

- Decisions without human review, or used as the only ground for a decision about a person.
- Rows unlike the training data: other populations, products, periods or sources (see
  Limitations).
- Any decision that uses the protected attribute: it is not a model input, and is kept only to
  measure fairness."""


def _label_row(label: LabelSpec) -> str:
    if label.task == "regression":
        bounds = ""
        if label.min_value is not None and label.max_value is not None:
            bounds = f" from {label.min_value} to {label.max_value}"
        return f"`{label.name}`: {label.description} (a number{bounds}; task regression)"
    if label.task == "multiclass":
        return (
            f"`{label.name}`: {label.description} (classes {', '.join(label.classes)}; "
            "task multiclass)"
        )
    return (
        f"`{label.name}`: {label.description} (values {', '.join(label.values)}; "
        f"positive {label.positive})"
    )


def _data(inputs: CardInputs) -> str:
    record = inputs.record
    data = record.params["data"]
    source = f"`{data['source']}` (params `data.source`)"
    if data["source"] == "synthetic":
        source += ", seeded synthetic applications generated by `data/synthetic.py`"
    rows = [
        ("Source", source),
        ("Split", _split(inputs)),
        ("Training set", f"`data/validated/train.csv`, sha256 `{record.training_data_sha256}`"),
        ("Test set", f"`data/validated/test.csv`, sha256 `{record.test_data_sha256}`"),
        ("Label", _label_row(inputs.label)),
        ("Protected attribute", _protected_attribute(inputs)),
    ]
    undescribed = [
        column.name
        for column in inputs.declaration.features
        if not column.description.strip() or column.description.strip() == column.name
    ]
    features = [
        (
            f"`{column.name}`",
            column.kind,
            ("no description yet" if column.name in undescribed else column.description)
            + (" (may be missing)" if column.nullable else ""),
        )
        for column in inputs.declaration.features
    ]
    missing = ""
    if undescribed:
        missing = (
            f"\n\n{len(undescribed)} of {len(features)} features have no description yet "
            f"({', '.join(f'`{name}`' for name in undescribed)}): write what each column holds, "
            "and where it comes from, as its `description` in data/columns.yaml."
        )
    return (
        "## Data\n\n"
        + _table(("", ""), rows)
        + "\n\nFeatures (validated against the schema before training):\n\n"
        + _table(("column", "type", "description"), features)
        + missing
    )


def _split(inputs: CardInputs) -> str:
    """How the test set was held out (params `data.split`; records made before it: random)."""
    data = inputs.record.params["data"]
    split = SplitSettings.model_validate(data.get("split") or {})
    if split.kind != "random":
        seed = f" (seed {data['seed']})" if split.kind == "group" else ""
        return describe_split(split, data["test_size"]) + seed
    kind = "stratified on the label" if inputs.label.is_classification else "random"
    return (
        f"{kind}: {1 - data['test_size']:.0%} training, "
        f"{data['test_size']:.0%} held out for testing (seed {data['seed']})"
    )


def _performance(inputs: CardInputs) -> str:
    label = inputs.label
    task = task_metrics(label)
    threshold = getattr(inputs.config.gates, task.gate_setting)
    meanings = metric_meanings(label)
    baseline = inputs.metrics.get(BASELINE_PREFIX + task.primary)
    rows = []
    for name, value in inputs.metrics.items():
        gates = []
        if name == task.gate_metric:
            verdict = "passed" if value >= threshold else "FAILED"
            gates.append(f">= {threshold} (`gates.{task.gate_setting}`): {verdict}")
        for setting, metric in BINARY_MINIMUMS if label.task == "binary" else ():
            minimum = getattr(inputs.config.gates, setting)
            if name == metric and minimum is not None:
                verdict = "passed" if value >= minimum else "FAILED"
                gates.append(f">= {minimum} (`gates.{setting}`): {verdict}")
        if name == task.primary and baseline is not None:
            margin = inputs.config.gates.baseline_margin
            verdict = "passed" if _beats_baseline(inputs) else "FAILED"
            gates.append(
                f"beats the Dummy estimator's {baseline:.4f} by more than {margin} of it "
                f"(`gates.baseline_margin`): {verdict}"
            )
        meaning = meanings.get(name, "")
        if name.startswith(BASELINE_PREFIX):
            dummy = "the class shares" if label.is_classification else "the mean"
            meaning = (
                f"{name.removeprefix(BASELINE_PREFIX)} of scikit-learn's Dummy estimator "
                f"(predicts the training set's {dummy}), the baseline the model must beat"
            )
        rows.append((name, f"{value:.4f}", meaning, "; ".join(gates)))
    how = {
        "binary": f", decisions at probability >= {decision_threshold(inputs.record)}"
        + _threshold_rule(inputs.record),
        "multiclass": ", each row predicted as its most probable class",
        "regression": "",
    }[label.task]
    return (
        "## Performance\n\n"
        f"On the held-out test set{how}. Models are compared on {task.primary} "
        f"({task.direction}).\n\n" + _table(("metric", "value", "what it measures", "gate"), rows)
    )


def _importance(inputs: CardInputs) -> str:
    importance = inputs.importance
    title = "## What the model relies on\n\n"
    if importance is None:
        return title + (
            "Not measured yet: the `evaluate` stage writes `reports/importance.json` "
            "(`make pipeline`)."
        )
    rows = [
        (f"`{feature.name}`", f"{feature.mean:+.4f}", f"{feature.std:.4f}")
        for feature in importance.features
    ]
    return title + (
        f"Permutation importance on the {importance.rows} held-out rows: how much "
        f"{importance.metric} drops when one column's values are shuffled (the mean and standard "
        f"deviation of {importance.repeats} shuffles). A drop near zero means the model barely "
        "uses the column; a large one, that it leans on it. Columns that move together share "
        "their importance, and importance is not a cause.\n\n"
        + _table(("feature", f"drop in {importance.metric}", "std"), rows)
    )


def _threshold_rule(record: ModelRecord) -> str:
    """How a chosen threshold was chosen, in brackets; nothing for params' number."""
    rule = record.threshold_rule
    return f" ({rule})" if rule and rule.startswith("chosen") else ""


def _beats_baseline(inputs: CardInputs) -> bool:
    """Whether the primary metric beats the Dummy estimator's by more than
    `gates.baseline_margin` (as the baseline gate judges; True without a baseline recorded)."""
    task = task_metrics(inputs.label)
    baseline = inputs.metrics.get(BASELINE_PREFIX + task.primary)
    value = inputs.metrics.get(task.primary)
    if baseline is None or value is None:
        return True
    improvement = round(task.relative_improvement(value, baseline), DIGITS)
    return improvement > inputs.config.gates.baseline_margin


def _protected_attribute(inputs: CardInputs) -> str:
    protected = inputs.declaration.protected_attribute
    if protected is None:
        return "none declared (data/columns.yaml `protected_attribute`): fairness is not measured"
    values = f" ({', '.join(protected.categories)})" if protected.categories else ""
    return f"`{protected.name}`{values}: not a model input; used to measure fairness"


# What each gap of the fairness report means, per task (fairness.py).
GAP_MEANINGS = {
    ("binary", "demographic_parity_difference"): (
        "demographic parity difference",
        "largest gap in selection rate",
    ),
    ("binary", "equalized_odds_difference"): (
        "equalized odds difference",
        "largest gap in true or false positive rate",
    ),
    ("multiclass", "demographic_parity_difference"): (
        "demographic parity difference",
        "largest gap in the share predicted a class, over the classes",
    ),
    ("multiclass", "equalized_odds_difference"): (
        "equalized odds difference",
        "largest gap in a class's true or false positive rate (that class against the rest), "
        "over the classes",
    ),
    ("regression", "mean_prediction_gap"): (
        "mean prediction gap",
        "largest gap in mean prediction, as a share of the label's standard deviation",
    ),
    ("regression", "mae_gap"): (
        "MAE gap",
        "largest gap in mean absolute error, as a share of the whole test set's",
    ),
}


def _fairness(inputs: CardInputs) -> str:
    report = inputs.fairness
    settings = inputs.config.gates.fairness
    if report is None or settings is None:
        return (
            "## Fairness\n\n"
            "Not measured: this project has no fairness gate (params `gates.fairness`)."
        )
    if not report.applicable or report.overall is None:
        return (
            "## Fairness\n\nNot applicable: data/columns.yaml declares no protected attribute "
            "(`make use-data ... PROTECTED=<column>` declares one)."
        )
    gaps = []
    for gap in report.gaps():
        measure, meaning = GAP_MEANINGS[(report.task, gap.metric)]
        gaps.append(_gap(measure, meaning, gap.value, getattr(settings, gap.setting), gap.setting))
    intro, table = {
        "binary": _binary_fairness,
        "multiclass": _multiclass_fairness,
        "regression": _regression_fairness,
    }[report.task](inputs, report)
    return (
        f"## Fairness\n\nBy protected attribute `{report.protected_attribute}` on the held-out "
        f"test set (fairlearn). {intro}\n\n"
        + table
        + _insufficient(report)
        + "\n\n"
        + _table(("measure", "meaning", "value", "gate"), gaps)
    )


def _binary_fairness(inputs: CardInputs, report: FairnessReport) -> tuple[str, str]:
    label = inputs.label
    groups = [("all", report.overall), *sorted(report.by_group.items())]
    rows = [
        (
            group,
            str(rate.count),
            str(rate.positives),
            f"{rate.selection_rate:.4f}",
            f"{rate.true_positive_rate:.4f}",
            f"{rate.false_positive_rate:.4f}",
        )
        for group, rate in groups
        if isinstance(rate, GroupRates)
    ]
    header = (
        "group",
        "test rows",
        "positives",
        "selection rate",
        "true positive rate",
        "false positive rate",
    )
    return (
        f"Selection rate: share predicted {label.name} = {label.positive}.",
        _table(header, rows) + _score_tables(inputs, report),
    )


def _score_tables(inputs: CardInputs, report: FairnessReport) -> str:
    """Binary: each group's base rate and scores, and its selection rate at other thresholds,
    so that a gate passed at one threshold cannot hide groups scored differently."""
    if report.scores_overall is None:
        return ""
    label = inputs.label
    groups = [("all", report.scores_overall), *sorted(report.scores_by_group.items())]
    scores = [
        (
            group,
            f"{figures.base_rate:.4f}",
            f"{figures.mean_score:.4f}",
            *(f"{figures.score_quantiles.get(name, 0.0):.4f}" for name in ("p10", "p50", "p90")),
        )
        for group, figures in groups
    ]
    thresholds = list(report.scores_overall.selection_rates)
    selections = [
        (group, *(f"{figures.selection_rates.get(t, 0.0):.4f}" for t in thresholds))
        for group, figures in groups
    ]
    return (
        f"\n\nBase rate (share of rows with {label.name} = {label.positive}) and the "
        "distribution of the scores, per group:\n\n"
        + _table(
            ("group", "base rate", "mean score", "10th percentile", "median", "90th percentile"),
            scores,
        )
        + f"\n\nSelection rate at other thresholds (the model decides at "
        f"{decision_threshold(inputs.record)}):\n\n"
        + _table(("group", *(f">= {t}" for t in thresholds)), selections)
    )


def _multiclass_fairness(inputs: CardInputs, report: FairnessReport) -> tuple[str, str]:
    groups = [("all", report.overall), *sorted(report.by_group.items())]
    rows = [
        (
            group,
            name,
            str(rate.positives),
            f"{rate.selection_rate:.4f}",
            f"{rate.true_positive_rate:.4f}",
            f"{rate.false_positive_rate:.4f}",
        )
        for group, rates in groups
        if isinstance(rates, GroupClassRates)
        for name, rate in rates.classes.items()
    ]
    header = (
        "group",
        "class",
        "test rows of the class",
        "selection rate",
        "true positive rate",
        "false positive rate",
    )
    per_class = [
        (
            name,
            _measured(gaps.demographic_parity_difference),
            _measured(gaps.equalized_odds_difference),
        )
        for name, gaps in report.by_class.items()
    ]
    return (
        f"Each class of `{inputs.label.name}` against the rest; selection rate: share predicted "
        "that class.",
        _table(header, rows)
        + "\n\nGaps between the groups, per class:\n\n"
        + _table(
            ("class", "demographic parity difference", "equalized odds difference"), per_class
        ),
    )


def _regression_fairness(inputs: CardInputs, report: FairnessReport) -> tuple[str, str]:
    groups = [("all", report.overall), *sorted(report.by_group.items())]
    rows = [
        (
            group,
            str(errors.count),
            f"{errors.mean_label:.4f}",
            f"{errors.mean_prediction:.4f}",
            f"{errors.mae:.4f}",
        )
        for group, errors in groups
        if isinstance(errors, GroupErrors)
    ]
    spread = "" if report.label_std is None else f" (standard deviation {report.label_std:.4f})"
    return (
        f"Mean of `{inputs.label.name}`{spread}, mean prediction and mean absolute error (MAE) "
        "per group.",
        _table(("group", "test rows", "mean label", "mean prediction", "MAE"), rows),
    )


def _insufficient(report: FairnessReport) -> str:
    listed = "".join(f"\n- {group.describe()}" for group in report.insufficient)
    if not listed:
        return ""
    rule = {
        "binary": f"fewer than {report.min_group_size} rows or {report.min_group_positives} "
        "positives",
        "multiclass": f"fewer than {report.min_group_size} rows, or fewer than "
        f"{report.min_group_positives} rows of some class",
        "regression": f"fewer than {report.min_group_size} rows",
    }[report.task]
    return f"\n\nLeft out of the gaps ({rule}):{listed}"


def _measured(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.4f}"


def _gap(
    measure: str, meaning: str, value: float | None, limit: float, key: str
) -> tuple[str, ...]:
    if value is None:
        return (measure, meaning, "not measured", "fewer than two groups with enough data")
    verdict = "passed" if value <= limit else "FAILED"
    return (measure, meaning, f"{value:.4f}", f"<= {limit} (`gates.fairness.{key}`): {verdict}")


def _limitations(inputs: CardInputs) -> str:
    lines = ["## Limitations", ""]
    if inputs.record.params["data"]["source"] == "synthetic":
        lines.append(
            "- Trained on synthetic data: the numbers show the pipeline works, not that the "
            "model is fit for real use. Adopt real data (`make use-data`) before any real use."
        )
    lines += [
        "- The metrics come from one held-out split; a different sample gives somewhat "
        "different numbers, most for small groups.",
        "- Performance holds only while new data resemble the training data; a changed "
        "population degrades it without an error (`make drift` watches for that).",
        "- Missing values are imputed from the training data, which hides how much a row "
        "was missing.",
    ]
    label = inputs.label
    if label.task == "regression" and label.min_value is not None and label.max_value is not None:
        lines.append(
            f"- `{label.name}` was declared from {label.min_value} to {label.max_value}: "
            "estimates outside the values seen in training are extrapolations."
        )
    protected = inputs.declaration.protected_attribute
    if protected is not None:
        measured = {
            "binary": "at one decision threshold",
            "multiclass": "on the predicted class",
            "regression": "on the mean prediction and the mean error of each group, not on "
            "the whole spread of its errors",
        }[label.task]
        others = "other attributes" + (
            ", their intersections and other thresholds"
            if label.task == "binary"
            else " and their intersections"
        )
        lines.append(
            f"- Fairness is measured for `{protected.name}` alone, {measured}; {others} are not "
            "covered. Features may still act as proxies for the protected attribute."
        )
    return "\n".join(lines)


def _approvals(inputs: CardInputs) -> str:
    lines = ["## Approvals", ""]
    lines.append(f"- Quality gates: {_gate_verdict(inputs)}.")
    lines.append(f"- Registry: {_registry_status(inputs)}.")
    approvers = inputs.config.governance.production_approvers
    if approvers:
        lines.append(
            "- Production: every deployment waits in CI for an approval by "
            f"{', '.join(approvers)} (params `governance.production_approvers`); the CI system "
            "records who approved and when."
        )
    else:
        lines.append("- Production: no human approval step is configured for this project.")
    return "\n".join(lines)


def _gate_verdict(inputs: CardInputs) -> str:
    task = task_metrics(inputs.label)
    failed = []
    value = inputs.metrics.get(task.gate_metric)
    if value is None or value < getattr(inputs.config.gates, task.gate_setting):
        failed.append(task.gate_setting)
    if not _beats_baseline(inputs):
        failed.append("baseline_margin")
    settings, report = inputs.config.gates.fairness, inputs.fairness
    if settings is not None and report is not None and report.applicable:
        for gap in report.gaps():
            if gap.value is not None and gap.value > getattr(settings, gap.setting):
                failed.append(gap.setting)
        if report.insufficient and settings.block_on_insufficient_data:
            failed.append("min_group_size")
    checked = [task.gate_metric]
    if BASELINE_PREFIX + task.primary in inputs.metrics:
        checked.append("the baseline")
    if settings is not None:
        checked.append("fairness")
    if failed:
        return f"FAILED ({', '.join(failed)}): this model must not be deployed"
    listed = ", ".join(checked[:-1]) + " and " + checked[-1] if len(checked) > 1 else checked[0]
    return f"passed ({listed}, on the held-out test set)"


def _registry_status(inputs: CardInputs) -> str:
    """The last `promote` decision about this version, if there was one."""
    version = inputs.record.registered_model_version
    decision = inputs.promotion
    if decision is None:
        return "no promotion decision yet (`make promote`)"
    challenger = decision.get("challenger") or {}
    if decision["outcome"] == "already_champion" and decision["champion_version"] == version:
        return f"champion (confirmed {decision['decided_at']})"
    if challenger.get("version") != version:
        return "no promotion decision yet for this version (`make promote`)"
    if decision["outcome"] == "promoted":
        return f"champion since {decision['decided_at']}: {decision['reason']}"
    return (
        f"challenger, not promoted on {decision['decided_at']} (champion stays version "
        f"{decision['champion_version']}): {decision['reason']}"
    )


def _package_metadata(field: str) -> str | None:
    try:
        return metadata(current_project().distribution)[field]
    except (PackageNotFoundError, KeyError):
        return None


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)
