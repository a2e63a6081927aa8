"""Settings: params.yaml loaded into frozen, typed dataclasses.

Every setting lives in params.yaml, where DVC tracks which stage reads which key; code never
hard-codes one. The repo root is the folder holding params.yaml and every path resolves from it,
so the pipeline behaves the same whatever the working directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from .errors import ConfigError

PARAMS_FILE_NAME = "params.yaml"
# Points the code at another params file (tests, one-off experiments) without a CLI option.
PARAMS_ENV_VAR = "PARAMS_FILE"


DEFAULT_ONNX_TOLERANCE = 1e-5


@dataclass(frozen=True)
class ProjectSettings:
    slug: str
    tier: str


@dataclass(frozen=True)
class DataSettings:
    source: str
    n_rows: int
    seed: int
    test_size: float
    # The data file of the `file` source, relative to the repo root (`make use-data` sets it).
    path: str | None = None
    # `use-data`: whole-number columns with at most this many distinct values become categories.
    max_category_levels: int = 10


@dataclass(frozen=True)
class ModelSettings:
    classifier: str
    random_state: int
    hyperparameters: Mapping[str, Mapping[str, Any]]
    # Probability at or above which the positive class is predicted (evaluation, gates, serving).
    threshold: float = 0.5

    def classifier_hyperparameters(self) -> dict[str, Any]:
        """Hyperparameters of the selected classifier (`model.hyperparameters.<classifier>`)."""
        if self.classifier not in self.hyperparameters:
            raise ConfigError(
                f"params.yaml: 'model.hyperparameters.{self.classifier}' is missing "
                f"(model.classifier is '{self.classifier}')"
            )
        return dict(self.hyperparameters[self.classifier])


@dataclass(frozen=True)
class FairnessSettings:
    """Largest allowed gaps between the groups of the protected attribute (fairlearn metrics)."""

    max_demographic_parity_difference: float
    max_equalized_odds_difference: float
    # Groups smaller than this, or with fewer positives, cannot be judged: "insufficient data".
    min_group_size: int = 30
    min_group_positives: int = 5
    # Whether a group with insufficient data fails the gate (true) or is only reported (false).
    block_on_insufficient_data: bool = False


@dataclass(frozen=True)
class GateSettings:
    min_roc_auc: float
    # None when params.yaml has no `gates.fairness` section: the fairness gates do not run.
    fairness: FairnessSettings | None = None


@dataclass(frozen=True)
class PromotionSettings:
    """How much a challenger must beat the champion's held-out roc_auc by to replace it."""

    min_improvement: float = 0.0


@dataclass(frozen=True)
class DriftSettings:
    """When `drift` calls a batch of current data different from the champion's training data.

    A feature drifts when its PSI exceeds `psi_threshold` and its test (KS or chi-square) gives a
    p-value below `p_value`; the batch drifts when more than `max_drifted_share` of the features
    drifted, the model's scores drifted, or the batch breaks the schema's value checks.
    """

    psi_threshold: float
    p_value: float
    bins: int
    max_drifted_share: float
    prediction_psi_threshold: float
    min_rows: int


@dataclass(frozen=True)
class GovernanceSettings:
    # Who approves production deployments in CI; empty in tiers without that approval.
    production_approvers: tuple[str, ...] = ()


@dataclass(frozen=True)
class MlflowSettings:
    tracking_uri: str
    experiment: str
    registered_model: str


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
    # params `serving.onnx_tolerance`: largest difference in probability, on any held-out row,
    # between the ONNX export and scikit-learn for the export to be served (onnx_export.py).
    onnx_tolerance: float = DEFAULT_ONNX_TOLERANCE

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

    reader = _Reader(params, source=path.name)
    data = DataSettings(
        source=reader.text("data.source"),
        n_rows=reader.integer("data.n_rows", minimum=10),
        seed=reader.integer("data.seed", minimum=0),
        test_size=reader.fraction("data.test_size"),
        path=reader.text("data.path") if reader.has("data.path") else None,
        max_category_levels=(
            reader.integer("data.max_category_levels", minimum=0)
            if reader.has("data.max_category_levels")
            else 10
        ),
    )
    model = ModelSettings(
        classifier=reader.text("model.classifier"),
        random_state=reader.integer("model.random_state", minimum=0),
        threshold=reader.fraction("model.threshold") if reader.has("model.threshold") else 0.5,
        hyperparameters=MappingProxyType(
            {
                name: MappingProxyType(dict(reader.mapping(f"model.hyperparameters.{name}")))
                for name in reader.mapping("model.hyperparameters")
            }
        ),
    )
    return Config(
        params_file=path,
        project=ProjectSettings(slug=reader.text("project.slug"), tier=reader.text("project.tier")),
        data=data,
        model=model,
        gates=GateSettings(
            min_roc_auc=reader.fraction("gates.min_roc_auc", inclusive_max=True),
            fairness=_fairness_settings(reader),
        ),
        mlflow=MlflowSettings(
            tracking_uri=reader.text("mlflow.tracking_uri"),
            experiment=reader.text("mlflow.experiment"),
            registered_model=reader.text("mlflow.registered_model"),
        ),
        promotion=_promotion_settings(reader),
        governance=_governance_settings(reader),
        params=MappingProxyType(dict(params)),
        drift=_drift_settings(reader),
        onnx_tolerance=(
            reader.number("serving.onnx_tolerance", minimum=0.0, maximum=1.0)
            if reader.has("serving.onnx_tolerance")
            else DEFAULT_ONNX_TOLERANCE
        ),
    )


def _fairness_settings(reader: _Reader) -> FairnessSettings | None:
    """`gates.fairness` is optional (the enterprise tier renders it); when present, it is whole."""
    if not reader.has("gates.fairness"):
        return None
    return FairnessSettings(
        max_demographic_parity_difference=reader.fraction(
            "gates.fairness.max_demographic_parity_difference", inclusive_max=True
        ),
        max_equalized_odds_difference=reader.fraction(
            "gates.fairness.max_equalized_odds_difference", inclusive_max=True
        ),
        **_group_minimums(reader),
    )


def _group_minimums(reader: _Reader) -> dict[str, Any]:
    """The optional per-group minimums of `gates.fairness` (older params files lack them)."""
    values: dict[str, Any] = {}
    for key in ("min_group_size", "min_group_positives"):
        if reader.has(f"gates.fairness.{key}"):
            values[key] = reader.integer(f"gates.fairness.{key}", minimum=0)
    if reader.has("gates.fairness.block_on_insufficient_data"):
        values["block_on_insufficient_data"] = reader.boolean(
            "gates.fairness.block_on_insufficient_data"
        )
    return values


def _promotion_settings(reader: _Reader) -> PromotionSettings:
    """`promotion` is optional (rendered from scale-up on); absent, any strict gain promotes."""
    if not reader.has("promotion"):
        return PromotionSettings()
    return PromotionSettings(
        min_improvement=reader.number("promotion.min_improvement", minimum=0.0, maximum=1.0)
    )


def _drift_settings(reader: _Reader) -> DriftSettings | None:
    """`drift` is read when present; a project from an older template may not have it yet."""
    if not reader.has("drift"):
        return None
    return DriftSettings(
        psi_threshold=reader.number("drift.psi_threshold", minimum=0.0, maximum=10.0),
        p_value=reader.fraction("drift.p_value"),
        bins=reader.integer("drift.bins", minimum=2),
        max_drifted_share=reader.number("drift.max_drifted_share", minimum=0.0, maximum=1.0),
        prediction_psi_threshold=reader.number(
            "drift.prediction_psi_threshold", minimum=0.0, maximum=10.0
        ),
        min_rows=reader.integer("drift.min_rows", minimum=1),
    )


def _governance_settings(reader: _Reader) -> GovernanceSettings:
    """`governance` is optional (rendered on the enterprise tier)."""
    if not reader.has("governance"):
        return GovernanceSettings()
    approvers = reader.text("governance.production_approvers")
    return GovernanceSettings(
        production_approvers=tuple(name.strip() for name in approvers.split(",") if name.strip())
    )


class _Reader:
    """Typed access to dotted keys, so every error message names the exact key."""

    def __init__(self, params: Mapping[str, Any], source: str) -> None:
        self._params = params
        self._source = source

    def _error(self, message: str) -> ConfigError:
        return ConfigError(f"{self._source}: {message}")

    def value(self, key: str) -> Any:
        node: Any = self._params
        for depth, part in enumerate(key.split(".")):
            if not isinstance(node, Mapping):
                parent = ".".join(key.split(".")[:depth])
                raise self._error(f"'{parent}' must be a mapping (needed for '{key}')")
            if part not in node:
                raise self._error(f"missing key '{key}'")
            node = node[part]
        return node

    def has(self, key: str) -> bool:
        """Whether an optional key is present (its parents must still be mappings)."""
        *parents, leaf = key.split(".")
        node = self.value(".".join(parents)) if parents else self._params
        return isinstance(node, Mapping) and leaf in node

    def text(self, key: str) -> str:
        value = self.value(key)
        if not isinstance(value, str) or not value.strip():
            raise self._error(f"'{key}' must be a non-empty string, got {value!r}")
        return value

    def integer(self, key: str, minimum: int) -> int:
        value = self.value(key)
        # bool is an int subclass; `true` is never a meaningful count.
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._error(f"'{key}' must be an integer >= {minimum}, got {value!r}")
        return value

    def boolean(self, key: str) -> bool:
        value = self.value(key)
        if not isinstance(value, bool):
            raise self._error(f"'{key}' must be true or false, got {value!r}")
        return value

    def fraction(self, key: str, inclusive_max: bool = False) -> float:
        value = self.value(key)
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        in_range = is_number and (0 < value <= 1 if inclusive_max else 0 < value < 1)
        if not in_range:
            bounds = "0 < x <= 1" if inclusive_max else "0 < x < 1"
            raise self._error(f"'{key}' must be a number with {bounds}, got {value!r}")
        return float(value)

    def number(self, key: str, minimum: float, maximum: float) -> float:
        value = self.value(key)
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or not minimum <= value <= maximum:
            raise self._error(
                f"'{key}' must be a number with {minimum} <= x <= {maximum}, got {value!r}"
            )
        return float(value)

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.value(key)
        if value is None:  # a key with nothing under it, e.g. a classifier with no overrides
            return {}
        if not isinstance(value, Mapping):
            raise self._error(f"'{key}' must be a mapping, got {value!r}")
        return value
