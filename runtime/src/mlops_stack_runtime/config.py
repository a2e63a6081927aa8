"""Settings: params.yaml read into strict, frozen pydantic models.

Every setting lives in params.yaml, where DVC tracks which stage reads which key; code never
hard-codes one. The repo root is the folder holding params.yaml and every path resolves from it,
so the pipeline behaves the same whatever the working directory.

`Params` is the file's schema (`Params.model_json_schema()`): each known section refuses keys it
does not know (a typo is an error, not a silent default), while top-level sections of the team's
own are left alone. A wrong value raises ConfigError naming the dotted key and the rule.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .errors import ConfigError

PARAMS_FILE_NAME = "params.yaml"
# Points the code at another params file (tests, one-off experiments) without a CLI option.
PARAMS_ENV_VAR = "PARAMS_FILE"


DEFAULT_ONNX_TOLERANCE = 1e-5
# Regression: largest difference relative to scikit-learn's value (onnx_export.py).
DEFAULT_ONNX_RELATIVE_TOLERANCE = 1e-4


# --- value rules: each refusal is "'<dotted key>' <message>" (see _refusal) ----------------------
def _refuse(message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError("params", message, context)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _refuse("must be a non-empty string, got {got}", got=repr(value))
    return value


def _integer(minimum: int) -> BeforeValidator:
    def check(value: Any) -> int:
        # bool is an int subclass; `true` is never a meaningful count.
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _refuse(
                "must be an integer >= {minimum}, got {got}", minimum=minimum, got=repr(value)
            )
        return value

    return BeforeValidator(check)


def _fraction(inclusive_max: bool) -> BeforeValidator:
    def check(value: Any) -> float:
        inside = _is_number(value) and (0 < value <= 1 if inclusive_max else 0 < value < 1)
        if not inside:
            bounds = "0 < x <= 1" if inclusive_max else "0 < x < 1"
            raise _refuse(
                "must be a number with {bounds}, got {got}", bounds=bounds, got=repr(value)
            )
        return float(value)

    return BeforeValidator(check)


def _number(minimum: float, maximum: float) -> BeforeValidator:
    def check(value: Any) -> float:
        if not _is_number(value) or not minimum <= value <= maximum:
            raise _refuse(
                "must be a number with {minimum} <= x <= {maximum}, got {got}",
                minimum=minimum,
                maximum=maximum,
                got=repr(value),
            )
        return float(value)

    return BeforeValidator(check)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _refuse("must be true or false, got {got}", got=repr(value))
    return value


def _mapping(value: Any) -> Mapping[str, Any]:
    if value is None:  # a key with nothing under it, e.g. a classifier with no overrides
        return {}
    if not isinstance(value, Mapping):
        raise _refuse("must be a mapping, got {got}", got=repr(value))
    return value


def _read_only(value: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    return MappingProxyType(
        {name: MappingProxyType(dict(overrides)) for name, overrides in value.items()}
    )


def _mapping_given(value: Any) -> Any:
    """An optional section left out is off; written with nothing under it, it is refused (as
    before: an empty `fairness:` must not switch a gate off)."""
    if value is None:
        raise _refuse("must be a mapping, got None")
    return value


def _optional(value: Any) -> Any:
    """An optional setting written with nothing after it is refused, not read as unset."""
    if value is None:
        raise _refuse("must be a number (leave the key out to switch it off), got None")
    return value


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, tuple):
        return value
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _refuse("must be a list of column names, got {got}", got=repr(value))
    return tuple(value)


def _approvers(value: Any) -> tuple[str, ...]:
    if isinstance(value, tuple):
        return value
    return tuple(name.strip() for name in _text(value).split(",") if name.strip())


Text = Annotated[str, BeforeValidator(_text)]
Count = Annotated[int, _integer(0)]
Boolean = Annotated[bool, BeforeValidator(_boolean)]
Fraction = Annotated[float, _fraction(inclusive_max=False)]
Share = Annotated[float, _fraction(inclusive_max=True)]


class _Section(BaseModel):
    """A section of params.yaml: frozen, and refusing keys it does not know."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ProjectSettings(_Section):
    slug: Text
    tier: Text


SPLIT_KINDS = ("random", "group", "time")
# The keys each kind of split reads (SplitSettings): any other is refused with the kind named.
SPLIT_KEYS = {"random": (), "group": ("group_by",), "time": ("time_column", "cutoff")}


def _split_kind(value: Any) -> str:
    if value not in SPLIT_KINDS:
        raise _refuse(
            "must be one of {kinds}, got {got}", kinds=", ".join(SPLIT_KINDS), got=repr(value)
        )
    return str(value)


def _cutoff(value: Any) -> str | float:
    """A date or time as text (ISO 8601: 2024-01-31, 2024-01-31T12:00) or a number (a year, a
    period): compared with the time column's values by data/split.py."""
    if _is_number(value):
        return float(value)
    if hasattr(value, "isoformat"):  # YAML reads an unquoted 2024-01-31 as a date
        return str(value.isoformat())
    return _text(value)


class SplitSettings(_Section):
    """How `validate` holds rows out for testing (data/split.py).

    random: a seeded random share (`data.test_size`), stratified on a classification label.
    group: the same, drawn by groups: rows sharing a value of `group_by` (a person, a job ad, a
    customer) stay on one side, so the test measures the model on groups it has not seen.
    time: the latest rows of `time_column` are held out: those at or after `cutoff`, or without
    one the latest `data.test_size` share, so the test measures the model on a later period.
    """

    kind: Annotated[str, BeforeValidator(_split_kind)] = "random"
    group_by: Annotated[str | None, BeforeValidator(_text)] = None
    time_column: Annotated[str | None, BeforeValidator(_text)] = None
    cutoff: Annotated[str | float | None, BeforeValidator(_cutoff)] = None

    @model_validator(mode="after")
    def _keys_of_the_kind(self) -> SplitSettings:
        wanted = SPLIT_KEYS[self.kind]
        for key in ("group_by", "time_column", "cutoff"):
            given = getattr(self, key) is not None
            if given and key not in wanted:
                readers = next(kind for kind, keys in SPLIT_KEYS.items() if key in keys)
                raise _refuse(
                    "sets {key}, which only kind {readers} reads (kind is {kind})",
                    key=key,
                    readers=readers,
                    kind=self.kind,
                )
        if wanted and getattr(self, wanted[0]) is None:
            raise _refuse(
                "kind {kind} needs {key}: the column {what}",
                kind=self.kind,
                key=wanted[0],
                what="whose rows stay on one side"
                if self.kind == "group"
                else "whose latest values are held out",
            )
        return self


class DataSettings(_Section):
    source: Text
    n_rows: Annotated[int, _integer(10)]
    seed: Count
    test_size: Fraction
    split: SplitSettings = SplitSettings()
    # The data file of the `file` source, relative to the repo root (`make use-data` sets it).
    path: Annotated[str | None, BeforeValidator(_text)] = None
    # `use-data`: whole-number columns with at most this many distinct values become categories.
    max_category_levels: Count = 10
    # `use-data`: a text, true/false or category label with 3 to this many values is multi-class.
    max_classes: Annotated[int, _integer(3)] = 50


THRESHOLD_OBJECTIVES = ("max_f1", "recall", "precision", "cost")
# The settings each objective reads (ThresholdObjective): any other is refused.
OBJECTIVE_KEYS = {
    "max_f1": (),
    "recall": ("target",),
    "precision": ("target",),
    "cost": ("false_positive_cost", "false_negative_cost"),
}


def _objective(value: Any) -> str:
    if value not in THRESHOLD_OBJECTIVES:
        raise _refuse(
            "must be one of {objectives}, got {got}",
            objectives=", ".join(THRESHOLD_OBJECTIVES),
            got=repr(value),
        )
    return str(value)


class ThresholdObjective(_Section):
    """params `model.threshold` as an objective (binary): training chooses the threshold on
    out-of-fold scores of the training set, never the test set, and records it (thresholds.py).

    max_f1: the best F1. recall / precision: the best precision whose recall reaches `target`,
    or the best recall whose precision does. cost: the least `false_positive_cost` x false
    positives + `false_negative_cost` x false negatives.
    """

    objective: Annotated[str, BeforeValidator(_objective)]
    target: Annotated[float | None, _fraction(inclusive_max=True)] = None
    false_positive_cost: Annotated[float | None, _number(0.0, 1e12)] = None
    false_negative_cost: Annotated[float | None, _number(0.0, 1e12)] = None

    @model_validator(mode="after")
    def _keys_of_the_objective(self) -> ThresholdObjective:
        wanted = OBJECTIVE_KEYS[self.objective]
        for key in ("target", "false_positive_cost", "false_negative_cost"):
            given = getattr(self, key) is not None
            if given and key not in wanted:
                raise _refuse(
                    "sets {key}, which objective {objective} does not read",
                    key=key,
                    objective=self.objective,
                )
            if not given and key in wanted:
                raise _refuse(
                    "objective {objective} needs {key}", objective=self.objective, key=key
                )
        return self

    def describe(self) -> str:
        """The objective in words (the model card, the logs)."""
        if self.objective == "max_f1":
            return "the best F1"
        if self.objective == "recall":
            return f"the best precision at a recall of at least {self.target}"
        if self.objective == "precision":
            return f"the best recall at a precision of at least {self.target}"
        return (
            f"the least cost, a false positive costing {self.false_positive_cost:g} and a false "
            f"negative {self.false_negative_cost:g}"
        )


def _threshold(value: Any) -> float | ThresholdObjective:
    """A number (the probability at or above which the positive class is predicted), or an
    objective to choose it by (ThresholdObjective)."""
    if isinstance(value, ThresholdObjective):
        return value
    if isinstance(value, Mapping):
        try:
            return ThresholdObjective.model_validate(value)
        except ValidationError as error:
            refused = error.errors(include_url=False)[0]
            key = ".".join(str(part) for part in refused["loc"])
            raise _refuse(
                "{key}{detail}",
                key=f"{key}: " if key else "",
                detail=refused["msg"]
                if refused["type"] != "extra_forbidden"
                else "unknown key (objectives read objective, target, false_positive_cost, "
                "false_negative_cost)",
            ) from None
    if not _is_number(value) or not 0 < value < 1:
        raise _refuse(
            "must be a number with 0 < x < 1, or an objective such as {example}, got {got}",
            example="{objective: max_f1}",
            got=repr(value),
        )
    return float(value)


class ModelSettings(_Section):
    # The model family (estimators.py): gradient_boosting, hist_gradient_boosting, random_forest,
    # logistic_regression (classification), ridge (regression), lightgbm, xgboost. Written
    # `classifier` before regression existed; that spelling is still read.
    estimator: Text
    random_state: Count
    hyperparameters: Annotated[
        Mapping[str, Annotated[Mapping[str, Any], BeforeValidator(_mapping)]],
        BeforeValidator(_mapping),
        AfterValidator(_read_only),
    ]
    # Probability at or above which the positive class is predicted (binary: evaluation, gates,
    # serving), or an objective that training chooses it by (ThresholdObjective); the threshold
    # a model was trained with is in its record (audit.py `decision_threshold`).
    threshold: Annotated[float | ThresholdObjective, BeforeValidator(_threshold)] = 0.5

    @model_validator(mode="before")
    @classmethod
    def _classifier_is_the_old_name(cls, value: Any) -> Any:
        if isinstance(value, Mapping) and "classifier" in value:
            if "estimator" in value:
                raise _refuse(
                    "sets both 'estimator' and its old name 'classifier': keep 'estimator'"
                )
            value = {("estimator" if k == "classifier" else k): v for k, v in value.items()}
        return value

    @property
    def classifier(self) -> str:
        """The old name of `estimator`."""
        return self.estimator

    def estimator_hyperparameters(self) -> dict[str, Any]:
        """Hyperparameters of the selected estimator (`model.hyperparameters.<estimator>`)."""
        if self.estimator not in self.hyperparameters:
            raise ConfigError(
                f"params.yaml: 'model.hyperparameters.{self.estimator}' is missing "
                f"(model.estimator is '{self.estimator}')"
            )
        return dict(self.hyperparameters[self.estimator])

    classifier_hyperparameters = estimator_hyperparameters

    @property
    def fixed_threshold(self) -> float | None:
        """The threshold params give as a number; None when it is an objective to choose by."""
        return self.threshold if isinstance(self.threshold, float) else None


class FairnessSettings(_Section):
    """Largest allowed gaps between the groups of the protected attribute (fairlearn metrics)."""

    max_demographic_parity_difference: Share
    max_equalized_odds_difference: Share
    # Groups smaller than this, or with fewer positives, cannot be judged: "insufficient data".
    min_group_size: Count = 30
    min_group_positives: Count = 5
    # Whether a group with insufficient data fails the gate (true) or is only reported (false).
    block_on_insufficient_data: Boolean = False
    # Regression: largest gap between groups in mean prediction, as a share of the label's
    # standard deviation on the test set, and in mean absolute error, as a share of the whole
    # test set's MAE. (Binary and multi-class use the two limits above, per class for
    # multi-class.)
    max_mean_prediction_gap: Annotated[float, _number(0.0, 100.0)] = 0.5
    max_mae_gap: Annotated[float, _number(0.0, 100.0)] = 0.5


class GateSettings(_Section):
    """The held-out metric each task's model must reach, and the margin by which every model
    must beat scikit-learn's Dummy estimator on the task's primary metric (tasks.py)."""

    min_roc_auc: Share  # binary
    # Binary, optional: PR AUC (average precision) and recall at model.threshold must reach these
    # too; unset, they are reported and not gated. Useful when the positive class is rare.
    min_pr_auc: Annotated[Share | None, BeforeValidator(_optional)] = None
    min_recall: Annotated[Share | None, BeforeValidator(_optional)] = None
    min_macro_f1: Share = 0.4  # multiclass
    min_r2: Annotated[float, _number(-1000.0, 1.0)] = 0.1  # regression
    # The primary metric (binary roc_auc, multiclass macro_f1, regression rmse) must beat the
    # Dummy estimator's on the same test set by more than this share of the Dummy's value.
    baseline_margin: Annotated[float, _number(0.0, 10.0)] = 0.0
    # None when params.yaml has no `gates.fairness` section: the fairness gates do not run.
    fairness: Annotated[FairnessSettings | None, BeforeValidator(_mapping_given)] = None


class PromotionSettings(_Section):
    """How much a challenger must beat the champion by, on the task's primary metric (binary
    roc_auc, multiclass macro_f1, regression rmse, in its direction), to replace it: by more than
    `min_improvement` (in the metric's units) and more than `min_relative_improvement` (a share
    of the champion's value), as MLflow's MetricThreshold judges."""

    min_improvement: Annotated[float, _number(0.0, 1e12)] = 0.0
    min_relative_improvement: Annotated[float, _number(0.0, 10.0)] = 0.0


class DriftSettings(_Section):
    """When `drift` calls a batch of current data different from the champion's training data.

    A feature drifts when its PSI exceeds `psi_threshold` and its test (KS or chi-square) gives a
    p-value below `p_value`; the batch drifts when more than `max_drifted_share` of the features
    drifted, the model's scores drifted, or the batch breaks the schema's value checks.
    """

    psi_threshold: Annotated[float, _number(0.0, 10.0)]
    p_value: Fraction
    bins: Annotated[int, _integer(2)]
    max_drifted_share: Annotated[float, _number(0.0, 1.0)]
    prediction_psi_threshold: Annotated[float, _number(0.0, 10.0)]
    min_rows: Annotated[int, _integer(1)]


class GovernanceSettings(_Section):
    # Who approves production deployments in CI; empty in tiers without that approval.
    production_approvers: Annotated[tuple[str, ...], BeforeValidator(_approvers)] = ()


class MlflowSettings(_Section):
    tracking_uri: Text
    experiment: Text
    registered_model: Text


class ServingSettings(_Section):
    # Largest difference, on any held-out row, between the ONNX export and scikit-learn for the
    # export to be served (onnx_export.py): in probability (classification, every class), or in
    # the predicted value (regression, which must also be within the relative tolerance).
    onnx_tolerance: Annotated[float, _number(0.0, 1.0)] = DEFAULT_ONNX_TOLERANCE
    # Regression: largest difference as a share of scikit-learn's value.
    onnx_relative_tolerance: Annotated[float, _number(0.0, 1.0)] = DEFAULT_ONNX_RELATIVE_TOLERANCE
    # Columns a request may carry besides the features, which the server drops rather than
    # refuses: an id, the label or the protected attribute of rows sent as exported. Recorded
    # with the model at training time (the server reads them from models/model.json).
    ignore_columns: Annotated[tuple[str, ...], BeforeValidator(_names)] = ()


class Params(BaseModel):
    """params.yaml: the known sections, checked; other top-level sections are the team's."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    project: ProjectSettings
    data: DataSettings
    model: ModelSettings
    gates: GateSettings
    mlflow: MlflowSettings
    promotion: PromotionSettings = PromotionSettings()
    governance: GovernanceSettings = GovernanceSettings()
    # None when params.yaml has no `drift` section: only the `drift` command needs it.
    drift: Annotated[DriftSettings | None, BeforeValidator(_mapping_given)] = None
    serving: ServingSettings = ServingSettings()


@dataclass(frozen=True)
class ProjectPaths:
    """Files the stages read and write; dvc.yaml declares the same paths as deps and outs."""

    root: Path

    @property
    def raw_data(self) -> Path:
        return self.root / "data" / "raw" / "credit.csv"

    @property
    def train_data(self) -> Path:
        return self.root / "data" / "validated" / "train.csv"

    @property
    def test_data(self) -> Path:
        return self.root / "data" / "validated" / "test.csv"

    @property
    def validation_report(self) -> Path:
        return self.root / "reports" / "validation.json"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def metrics(self) -> Path:
        return self.root / "reports" / "metrics.json"

    @property
    def roc_plot(self) -> Path:
        return self.root / "reports" / "plots" / "roc.csv"

    @property
    def confusion_plot(self) -> Path:
        return self.root / "reports" / "plots" / "confusion.csv"

    @property
    def predicted_plot(self) -> Path:
        """Regression: predicted against actual value per test row (header only otherwise)."""
        return self.root / "reports" / "plots" / "predicted.csv"

    @property
    def importance(self) -> Path:
        """Permutation importance of the features on the test set (explain.py)."""
        return self.root / "reports" / "importance.json"

    @property
    def fairness_report(self) -> Path:
        return self.root / "reports" / "fairness.json"

    @property
    def promotion_report(self) -> Path:
        return self.root / "reports" / "promotion.json"

    @property
    def model_card(self) -> Path:
        return self.root / "docs" / "model_card.md"

    @property
    def current_batch(self) -> Path:
        """Where `make batch` and `make collect` write a batch of current data for `drift`."""
        return self.root / "data" / "current" / "batch.csv"

    @property
    def drift_report(self) -> Path:
        return self.root / "reports" / "drift.json"

    @property
    def drift_html(self) -> Path:
        return self.root / "reports" / "drift.html"


@dataclass(frozen=True)
class Config:
    params_file: Path
    project: ProjectSettings
    data: DataSettings
    model: ModelSettings
    gates: GateSettings
    mlflow: MlflowSettings
    promotion: PromotionSettings
    governance: GovernanceSettings
    # The whole file as read: logged with every model so a run can be reproduced.
    params: Mapping[str, Any]
    # None when params.yaml has no `drift` section: only the `drift` command needs it.
    drift: DriftSettings | None = None
    # params `serving.onnx_tolerance`: largest difference in probability (regression: in value),
    # on any held-out row, between the ONNX export and scikit-learn for the export to be served
    # (onnx_export.py).
    onnx_tolerance: float = DEFAULT_ONNX_TOLERANCE
    # params `serving.onnx_relative_tolerance`: regression, the same as a share of the value.
    onnx_relative_tolerance: float = DEFAULT_ONNX_RELATIVE_TOLERANCE

    @property
    def root(self) -> Path:
        return self.params_file.parent

    @property
    def paths(self) -> ProjectPaths:
        return ProjectPaths(self.root)


def find_params_file(explicit: Path | None = None, start: Path | None = None) -> Path:
    """params.yaml to use: `explicit`, else $PARAMS_FILE, else the nearest one up from `start`."""
    from_env = os.environ.get(PARAMS_ENV_VAR)
    chosen = explicit or (Path(from_env) if from_env else None)
    if chosen is not None:
        if not chosen.is_file():
            raise ConfigError(f"params file not found: {chosen}")
        return chosen.resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PARAMS_FILE_NAME).is_file():
            return folder / PARAMS_FILE_NAME
    raise ConfigError(
        f"no {PARAMS_FILE_NAME} in {here} or its parents: run from inside the project, "
        f"or pass --params / set {PARAMS_ENV_VAR}"
    )


def load_config(params_file: Path | None = None) -> Config:
    """Read and check params.yaml; a missing or wrong key raises ConfigError naming the key."""
    path = find_params_file(params_file)
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {error.start}): save it as UTF-8"
        ) from error
    except OSError as error:
        raise ConfigError(f"{path} cannot be read: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(params, Mapping):
        raise ConfigError(f"{path} must hold a mapping of sections (project, data, model, ...)")
    try:
        checked = Params.model_validate(params)
    except ValidationError as error:
        raise ConfigError(f"{path.name}: {_refusal(error)}") from None
    return Config(
        params_file=path,
        project=checked.project,
        data=checked.data,
        model=checked.model,
        gates=checked.gates,
        mlflow=checked.mlflow,
        promotion=checked.promotion,
        governance=checked.governance,
        params=MappingProxyType(dict(params)),
        drift=checked.drift,
        onnx_tolerance=checked.serving.onnx_tolerance,
        onnx_relative_tolerance=checked.serving.onnx_relative_tolerance,
    )


def _refusal(error: ValidationError) -> str:
    """The first refusal of `error`, as "'<dotted key>' <rule>" or "missing key '<key>'"; an
    unknown key is added to it, since a misspelt key also leaves the right one missing."""
    errors = error.errors(include_url=False)
    message = _one_refusal(errors[0])
    unknown = next((e for e in errors[1:] if e["type"] == "extra_forbidden"), None)
    return message if unknown is None else f"{message}; {_one_refusal(unknown)}"


def _one_refusal(refused: Any) -> str:
    location = [str(part) for part in refused["loc"]]
    key = ".".join(location)
    kind = refused["type"]
    if kind == "missing":
        return f"missing key '{_first_required(key)}'"
    if kind == "extra_forbidden":
        section = ".".join(location[:-1])
        return f"unknown key '{key}' (a typo? '{section}' knows {_known(section)})"
    if kind in ("model_type", "model_attributes_type", "dict_type", "mapping_type"):
        return f"'{key}' must be a mapping, got {refused['input']!r}"
    return f"'{key}' {refused['msg']}"


def _section_model(dotted: str) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Params
    for part in dotted.split(".") if dotted else []:
        if model is None or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        members = getattr(annotation, "__args__", (annotation,))
        model = next((m for m in members if isinstance(m, type) and issubclass(m, BaseModel)), None)
    return model


def _first_required(key: str) -> str:
    """A missing section is named by its first required key (`gates` -> `gates.min_roc_auc`)."""
    model = _section_model(key)
    while model is not None:
        required = [name for name, field in model.model_fields.items() if field.is_required()]
        if not required:
            break
        key = f"{key}.{required[0]}"
        model = _section_model(key)
    return key


def _known(section: str) -> str:
    model = _section_model(section)
    names = list(model.model_fields) if model is not None else []
    return ", ".join(names) or "no keys"
