"""The model families of params `model.estimator`, per task, on real public datasets: each builds,
fits and compiles to ONNX with parity (onnx_export.py), or the test says why not."""

from __future__ import annotations

import importlib
import json
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlops_stack_runtime import estimators, onnx_export
from mlops_stack_runtime.config import (
    ModelSettings,
)
from mlops_stack_runtime.data.columns import (
    LabelSpec,
)
from mlops_stack_runtime.errors import (
    ConfigError,
)
from mlops_stack_runtime.estimators import (
    FAMILIES,
    build_estimator,
    families_for,
    is_tree_model,
)
from mlops_stack_runtime.onnx_export import (
    export,
)
from mlops_stack_runtime.serving.onnx_model import OnnxModel
from mlops_stack_runtime.train import fit_pipeline

BREAST_CANCER = LabelSpec("diagnosis", "benign", ("0", "1"), "1", "binary")
WINE = LabelSpec("cultivar", "wine cultivar", ("class_0", "class_1", "class_2"), None, "multiclass")
DIABETES = LabelSpec("progression", "disease progression", (), None, "regression")
DATASETS = {
    "binary": (load_breast_cancer, BREAST_CANCER),
    "multiclass": (load_wine, WINE),
    "regression": (load_diabetes, DIABETES),
}
CLASSES = {
    "gradient_boosting": ("GradientBoostingClassifier", "GradientBoostingRegressor"),
    "hist_gradient_boosting": (
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
    ),
    "random_forest": ("RandomForestClassifier", "RandomForestRegressor"),
    "logistic_regression": ("LogisticRegression", None),
    "ridge": (None, "Ridge"),
    "lightgbm": ("LGBMClassifier", "LGBMRegressor"),
    "xgboost": ("XGBClassifier", "XGBRegressor"),
}
# Small models: the suite stays fast; parity does not depend on the size.
SMALL = {
    "gradient_boosting": {"n_estimators": 30},
    "hist_gradient_boosting": {"max_iter": 30},
    "random_forest": {"n_estimators": 20},
    "logistic_regression": {"max_iter": 2000},
    "ridge": {"alpha": 1.0},
    "lightgbm": {"n_estimators": 30},
    "xgboost": {"n_estimators": 30},
}
CASES = [(task, name) for task in DATASETS for name in families_for(task)]  # type: ignore[arg-type]


def settings(name: str, **hyperparameters: Any) -> ModelSettings:
    return ModelSettings(estimator=name, random_state=3, hyperparameters={name: hyperparameters})


def real_split(task: str) -> tuple[pd.DataFrame, pd.DataFrame, Any, Any]:
    load, _ = DATASETS[task]
    data = load(as_frame=True)
    return train_test_split(data.data, data.target, test_size=0.3, random_state=0)


def pipeline_of(estimator: Any, columns: list[str]) -> Pipeline:
    """Impute, and scale for models that are not trees: as the template's features.py does."""
    steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if not is_tree_model(estimator):
        steps.append(("scale", StandardScaler()))
    numeric = Pipeline(steps)
    return Pipeline(
        [("preprocessor", ColumnTransformer([("numeric", numeric, columns)])), ("m", estimator)]
    )


def test_each_task_lists_the_families_that_fit_it() -> None:
    assert families_for("binary") == families_for("multiclass")
    assert "logistic_regression" in families_for("binary")
    assert "ridge" not in families_for("multiclass")
    assert "ridge" in families_for("regression")
    assert "logistic_regression" not in families_for("regression")
    assert set(families_for("binary")) | set(families_for("regression")) == set(FAMILIES)


@pytest.mark.parametrize(("task", "name"), CASES)
def test_the_family_builds_its_estimator_for_the_task(task: str, name: str) -> None:
    estimator = build_estimator(settings(name, **SMALL[name]), task)  # type: ignore[arg-type]
    expected = CLASSES[name][1 if task == "regression" else 0]
    assert type(estimator).__name__ == expected
    params = estimator.get_params()
    assert params | SMALL[name] == params
    if "random_state" in params:
        assert params["random_state"] == 3


@pytest.mark.parametrize(
    ("name", "tree"),
    [
        ("gradient_boosting", True),
        ("hist_gradient_boosting", True),
        ("random_forest", True),
        ("lightgbm", True),
        ("xgboost", True),
        ("logistic_regression", False),
    ],
)
def test_trees_are_told_apart_from_linear_models(name: str, tree: bool) -> None:
    assert is_tree_model(build_estimator(settings(name), "binary")) is tree
    if name != "logistic_regression":
        assert is_tree_model(build_estimator(settings(name), "regression")) is tree
    assert not is_tree_model(build_estimator(settings("ridge"), "regression"))


def test_lightgbm_is_quiet_unless_params_say_otherwise() -> None:
    assert build_estimator(settings("lightgbm"), "binary").get_params()["verbose"] == -1
    assert build_estimator(settings("lightgbm", verbose=1), "binary").get_params()["verbose"] == 1


@pytest.mark.parametrize(
    ("task", "name", "message"),
    [
        (
            "regression",
            "svm",
            "unknown model.estimator 'svm'; for the label's task (regression) choose one of "
            "gradient_boosting, hist_gradient_boosting, random_forest, ridge, lightgbm, xgboost",
        ),
        (
            "multiclass",
            "svm",
            "choose one of gradient_boosting, hist_gradient_boosting, random_forest, "
            "logistic_regression, lightgbm, xgboost",
        ),
        (
            "regression",
            "logistic_regression",
            "model.estimator logistic_regression is for classification; for regression "
            "(regression, the label's task in data/columns.yaml) choose one of gradient_boosting, "
            "hist_gradient_boosting, random_forest, ridge, lightgbm, xgboost",
        ),
        (
            "binary",
            "ridge",
            "model.estimator ridge is for regression; for classification (binary, the label's "
            "task in data/columns.yaml) choose one of",
        ),
    ],
)
def test_a_family_that_does_not_fit_the_task_is_refused(task: str, name: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        build_estimator(settings(name), task)  # type: ignore[arg-type]
    assert message in str(refused.value)


@pytest.mark.parametrize(("name", "module"), [("lightgbm", "lightgbm"), ("xgboost", "xgboost")])
def test_a_family_whose_package_is_missing_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, name: str, module: str
) -> None:
    real_import = importlib.import_module

    def without(target: str, *args: Any) -> Any:
        if target.split(".")[0] == module:
            raise ModuleNotFoundError(f"No module named '{module}'")
        return real_import(target, *args)

    monkeypatch.setattr(estimators.importlib, "import_module", without)
    with pytest.raises(ConfigError) as refused:
        build_estimator(settings(name), "regression")
    shown = {"lightgbm": "LightGBM", "xgboost": "XGBoost"}[name]
    assert str(refused.value) == (
        f"model.estimator {name} needs {shown}: it is the runtime's `{module}` extra; in a "
        "generated repository run `make setup` after setting it (the Makefile adds the "
        f"`{module}` dependency group)"
    )


@pytest.mark.parametrize("name", ["random_forest", "lightgbm", "xgboost"])
def test_an_unknown_hyperparameter_names_the_family_and_the_known_ones(name: str) -> None:
    with pytest.raises(ConfigError) as refused:
        build_estimator(settings(name, n_trees=10), "binary")
    message = str(refused.value)
    assert message.startswith(f"params.yaml: model.hyperparameters.{name}: ")
    assert "no parameter 'n_trees'; it takes " in message
    assert "n_estimators" in message


@pytest.mark.parametrize(
    ("name", "hyperparameters"),
    [
        ("gradient_boosting", {"n_estimators": 0}),
        ("hist_gradient_boosting", {"learning_rate": -1.0}),
        ("lightgbm", {"learning_rate": -1.0}),
        ("xgboost", {"max_depth": -3}),
    ],
)
def test_a_bad_hyperparameter_value_names_the_setting(
    train_test_frames: tuple[pd.DataFrame, pd.DataFrame], name: str, hyperparameters: dict[str, Any]
) -> None:
    train, _ = train_test_frames
    with pytest.raises(ConfigError, match=rf"^params\.yaml: model\.hyperparameters\.{name}: "):
        fit_pipeline(train, settings(name, **hyperparameters))


# Measured on the held-out 30% of each dataset (max abs diff, tolerance 1e-5 / 1e-4 relative).
PARITY: dict[tuple[str, str], float] = {}


@pytest.mark.parametrize(("task", "name"), CASES)
def test_every_family_compiles_to_onnx_with_parity(task: str, name: str) -> None:
    _, label = DATASETS[task]
    x_train, x_test, y_train, _ = real_split(task)
    estimator = build_estimator(settings(name, **SMALL[name]), task)  # type: ignore[arg-type]
    pipeline = pipeline_of(estimator, list(x_train.columns)).fit(x_train, y_train)
    exported = export(pipeline, x_test, 0.5, 1e-5, 1e-4, label=label, text_columns=frozenset())
    assert exported.content is not None
    assert exported.accepted, exported.inference["reason"]
    assert exported.inference["rows_compared"] == len(x_test)
    PARITY[(task, name)] = exported.inference["max_abs_diff"]
    graph = onnx.load_from_string(exported.content)
    metadata = {entry.key: entry.value for entry in graph.metadata_props}
    assert metadata["task"] == task
    assert json.loads(metadata["feature_names"]) == list(x_train.columns)
    outputs = [output.name for output in graph.graph.output]
    served = OnnxModel(exported.content)
    if task == "regression":
        assert "value" in outputs and "variable" not in outputs
        assert "classes" not in metadata
        np.testing.assert_allclose(
            served.predict(x_test), pipeline.predict(x_test), rtol=1e-4, atol=1e-5
        )
    else:
        assert "probabilities" in outputs
        assert json.loads(metadata["classes"]) == list(range(len(label.classes)))
        probabilities = served.predict_proba(x_test)
        assert probabilities.shape == (len(x_test), len(label.classes))
        # The same class wherever scikit-learn's two most probable classes are not tied (a
        # random forest of 20 trees gives 0.5 exactly, which float32 may break either way).
        expected = pipeline.predict_proba(x_test)
        top_two = np.sort(expected, axis=1)[:, -2:]
        clear = top_two[:, 1] - top_two[:, 0] > 1e-5
        np.testing.assert_array_equal(
            np.argmax(probabilities, axis=1)[clear], np.argmax(expected, axis=1)[clear]
        )


def test_parity_is_refused_beyond_the_tolerance() -> None:
    """Regression: a tolerance of 0 refuses a float32 graph of values in the hundreds."""
    _, label = DATASETS["regression"]
    x_train, x_test, y_train, _ = real_split("regression")
    pipeline = pipeline_of(build_estimator(settings("ridge"), "regression"), list(x_train.columns))
    pipeline.fit(x_train, y_train)
    refused = export(pipeline, x_test, 0.5, 0.0, 0.0, label=label, text_columns=frozenset())
    assert not refused.accepted
    assert refused.content is not None  # written, but scikit-learn serves
    assert refused.inference["values_differing"] > 0
    assert refused.inference["reason"].startswith("ONNX values differ from scikit-learn's on ")
    accepted = export(pipeline, x_test, 0.5, 0.0, 1e-4, label=label, text_columns=frozenset())
    assert accepted.accepted, accepted.inference["reason"]


def test_multiclass_parity_is_refused_beyond_the_tolerance() -> None:
    _, label = DATASETS["multiclass"]
    x_train, x_test, y_train, _ = real_split("multiclass")
    estimator = build_estimator(settings("logistic_regression", max_iter=2000), "multiclass")
    pipeline = pipeline_of(estimator, list(x_train.columns)).fit(x_train, y_train)
    # float32 probabilities never equal float64 ones on every row of every class.
    refused = export(pipeline, x_test, 0.5, 0.0, label=label, text_columns=frozenset())
    assert not refused.accepted
    assert refused.inference["reason"].startswith(
        "ONNX class probabilities differ from scikit-learn's by up to "
    )
    assert refused.inference["reason"].endswith("over serving.onnx_tolerance 0")


@pytest.mark.parametrize(
    ("expected", "actual", "refused"),
    [
        # Within the tolerance, but another class is the most probable where one clearly was.
        ([[0.40, 0.35, 0.25]], [[0.36, 0.39, 0.25]], True),
        # The two most probable classes were within the tolerance: either may win.
        ([[0.40, 0.39, 0.21]], [[0.39, 0.40, 0.21]], False),
        ([[0.40, 0.35, 0.25]], [[0.40, 0.35, 0.25]], False),
    ],
)
def test_multiclass_parity_wants_the_same_class(
    expected: list[list[float]], actual: list[list[float]], refused: bool
) -> None:
    parity = onnx_export._PARITY["multiclass"](
        np.array(expected), np.array(actual), 0.5, 0.05, 1e-4
    )
    assert (parity.refusal is not None) is refused
    assert parity.differing == int(refused)
    if refused:
        assert parity.refusal == (
            "ONNX predicts another class than scikit-learn on 1 held-out row(s) where one class "
            "is clearly the most probable"
        )
