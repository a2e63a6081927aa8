"""The model families params.yaml chooses from (`model.estimator`), for the declared task.

Each family names its scikit-learn-compatible estimator for classification and for regression
(None: the family does not fit that task) and the package it needs (the runtime's extra, for the
families outside scikit-learn); `is_tree_model` says which estimators split on feature values
(they get no scaling). A family is one `Family` in `FAMILIES`; its hyperparameters are params
`model.hyperparameters.<family>`, checked against the estimator's own parameters.

The families outside scikit-learn (LightGBM, XGBoost) are imported only when chosen, so the
runtime works without them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .config import ModelSettings
    from .data.columns import TaskKind


@dataclass(frozen=True)
class Family:
    """A model family: its estimator per task as `module:Class` (None: not for that task)."""

    name: str
    classifier: str | None
    regressor: str | None
    # The importable module the estimators live in, and the runtime's extra (and the generated
    # repository's dependency group) that installs it; None: scikit-learn's own.
    package: str | None = None
    # Settings the family gets unless params set them (e.g. LightGBM's logging off).
    defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # Keyword arguments the estimator takes beyond its get_params() (LightGBM's `verbose`).
    extra_parameters: tuple[str, ...] = ()

    def estimator_path(self, task: TaskKind) -> str | None:
        return self.regressor if task == "regression" else self.classifier


FAMILIES: Mapping[str, Family] = MappingProxyType(
    {
        family.name: family
        for family in (
            Family(
                "gradient_boosting",
                "sklearn.ensemble:GradientBoostingClassifier",
                "sklearn.ensemble:GradientBoostingRegressor",
            ),
            Family(
                "hist_gradient_boosting",
                "sklearn.ensemble:HistGradientBoostingClassifier",
                "sklearn.ensemble:HistGradientBoostingRegressor",
            ),
            Family(
                "random_forest",
                "sklearn.ensemble:RandomForestClassifier",
                "sklearn.ensemble:RandomForestRegressor",
            ),
            Family(
                "logistic_regression",
                "sklearn.linear_model:LogisticRegression",
                None,
            ),
            Family("ridge", None, "sklearn.linear_model:Ridge"),
            Family(
                "lightgbm",
                "lightgbm:LGBMClassifier",
                "lightgbm:LGBMRegressor",
                package="lightgbm",
                defaults=MappingProxyType({"verbose": -1}),
                extra_parameters=("verbose",),
            ),
            Family(
                "xgboost",
                "xgboost:XGBClassifier",
                "xgboost:XGBRegressor",
                package="xgboost",
            ),
        )
    }
)
# Packages whose every estimator splits on feature values.
_TREE_MODULES = ("lightgbm", "xgboost")


def families_for(task: TaskKind) -> tuple[str, ...]:
    """The family names that fit `task`, in FAMILIES order."""
    return tuple(name for name, family in FAMILIES.items() if family.estimator_path(task))


def _task_kind(task: TaskKind) -> str:
    return "regression" if task == "regression" else "classification"


def family_of(name: str, task: TaskKind) -> Family:
    """The family params `model.estimator` names; ConfigError when unknown or not for `task`."""
    valid = ", ".join(families_for(task))
    family = FAMILIES.get(name)
    if family is None:
        raise ConfigError(
            f"params.yaml: unknown model.estimator '{name}'; for the label's task ({task}) "
            f"choose one of {valid}"
        )
    if family.estimator_path(task) is None:
        fits = "regression" if family.regressor else "classification"
        raise ConfigError(
            f"params.yaml: model.estimator {name} is for {fits}; for {_task_kind(task)} "
            f"({task}, the label's task in data/columns.yaml) choose one of {valid}"
        )
    return family


def estimator_class(family: Family, task: TaskKind) -> type:
    """The estimator class of `family` for `task`, imported (ConfigError when its package is
    not installed)."""
    path = family.estimator_path(task)
    if path is None:  # family_of refuses this first
        raise ConfigError(f"params.yaml: model.estimator {family.name} does not fit {task}")
    module_name, class_name = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        extra = family.package or module_name
        raise ConfigError(
            f"model.estimator {family.name} needs {_display(extra)}: it is the runtime's "
            f"`{extra}` extra; in a generated repository run `make setup` after setting it "
            f"(the Makefile adds the `{extra}` dependency group)"
        ) from error
    estimator: type = getattr(module, class_name)
    return estimator


def _display(package: str) -> str:
    return {"lightgbm": "LightGBM", "xgboost": "XGBoost"}.get(package, package)


def build_estimator(settings: ModelSettings, task: TaskKind) -> Any:
    """The estimator params `model.estimator` names, for `task`, with its hyperparameters
    (`model.hyperparameters.<estimator>`) and `model.random_state`."""
    family = family_of(settings.estimator, task)
    cls = estimator_class(family, task)
    hyperparameters = settings.estimator_hyperparameters()
    known = set(cls().get_params()) | set(family.extra_parameters)
    unknown = sorted(set(hyperparameters) - known)
    if unknown:
        raise ConfigError(
            f"params.yaml: model.hyperparameters.{family.name}: {cls.__name__} has no "
            f"parameter {', '.join(map(repr, unknown))}; it takes {', '.join(sorted(known))}"
        )
    arguments = {**family.defaults, **hyperparameters}
    if "random_state" in known:
        arguments["random_state"] = settings.random_state
    try:
        return cls(**arguments)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"params.yaml: model.hyperparameters.{family.name}: {error}") from error


def fit_errors(estimator: Any) -> tuple[type[BaseException], ...]:
    """The errors fitting `estimator` raises for a hyperparameter value it refuses."""
    # Public class, private module: the error scikit-learn raises for a value out of range.
    from sklearn.utils._param_validation import InvalidParameterError

    errors: list[type[BaseException]] = [InvalidParameterError]
    module = type(estimator).__module__.split(".")[0]
    if module == "lightgbm":
        from lightgbm.basic import LightGBMError

        errors += [LightGBMError, ValueError]
    elif module == "xgboost":
        from xgboost.core import XGBoostError

        errors += [XGBoostError, ValueError, TypeError]
    return tuple(errors)


def is_tree_model(estimator: Any) -> bool:
    """Whether `estimator` splits on feature values (so scaling changes nothing it learns):
    scikit-learn's trees and tree ensembles, LightGBM and XGBoost."""
    from sklearn import ensemble
    from sklearn.tree import BaseDecisionTree

    trees: tuple[type, ...] = (
        BaseDecisionTree,
        ensemble.ExtraTreesClassifier,
        ensemble.ExtraTreesRegressor,
        ensemble.GradientBoostingClassifier,
        ensemble.GradientBoostingRegressor,
        ensemble.HistGradientBoostingClassifier,
        ensemble.HistGradientBoostingRegressor,
        ensemble.RandomForestClassifier,
        ensemble.RandomForestRegressor,
    )
    return isinstance(estimator, trees) or type(estimator).__module__.split(".")[0] in (
        _TREE_MODULES
    )
