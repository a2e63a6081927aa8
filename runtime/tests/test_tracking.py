from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from mlops_stack_runtime.config import (
    Config,
)
from mlops_stack_runtime.tracking import (
    TRACKING_URI_ENV_VAR,
    artifact_location,
    redacted,
    resolve_tracking_uri,
    sqlite_database,
)

ROOT = Path("/srv/project")


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("sqlite:///mlruns/mlflow.db", "sqlite:////srv/project/mlruns/mlflow.db"),
        ("sqlite:////var/mlflow/mlflow.db", "sqlite:////var/mlflow/mlflow.db"),
        ("http://mlflow.internal:5000", "http://mlflow.internal:5000"),
    ],
)
def test_configured_uri_is_made_absolute(configured: str, expected: str) -> None:
    assert resolve_tracking_uri(configured, ROOT, environ={}) == expected


def test_environment_variable_wins() -> None:
    environ = {TRACKING_URI_ENV_VAR: "https://mlflow.example.com"}
    uri = resolve_tracking_uri("sqlite:///mlruns/mlflow.db", ROOT, environ=environ)
    assert uri == "https://mlflow.example.com"


def test_relative_sqlite_in_the_environment_resolves_from_the_root() -> None:
    environ = {TRACKING_URI_ENV_VAR: "sqlite:///other.db"}
    assert (
        resolve_tracking_uri("unused", ROOT, environ=environ) == "sqlite:////srv/project/other.db"
    )


def test_local_store_keeps_its_artifacts_beside_the_database() -> None:
    uri = "sqlite:////srv/project/mlruns/mlflow.db"
    assert sqlite_database(uri) == Path("/srv/project/mlruns/mlflow.db")
    assert artifact_location(uri) == "file:///srv/project/mlruns/artifacts"


@pytest.mark.parametrize("uri", ["http://mlflow.internal:5000", "databricks", "sqlite:///:memory:"])
def test_other_stores_choose_their_own_artifact_location(uri: str) -> None:
    assert sqlite_database(uri) is None
    assert artifact_location(uri) is None


def test_training_artifacts_stay_beside_the_store(
    trained_project: Config, mlflow_tracking_uri: str
) -> None:
    database = sqlite_database(mlflow_tracking_uri)
    assert database is not None
    artifacts = database.parent / "artifacts"
    logged = [path for path in artifacts.rglob("*") if path.is_file()]
    assert any(path.name == "model.json" for path in logged)
    # The store came from the environment: the project's own mlruns/ is left untouched.
    assert not (trained_project.root / "mlruns").exists()


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://ci-bot:s3cret@mlflow.example.com/path", "https://mlflow.example.com/path"),
        ("http://token@mlflow.internal:5000", "http://mlflow.internal:5000"),
        ("http://mlflow.internal:5000", "http://mlflow.internal:5000"),
        ("sqlite:////srv/project/mlruns/mlflow.db", "sqlite:////srv/project/mlruns/mlflow.db"),
    ],
)
def test_credentials_in_the_uri_are_never_shown(uri: str, shown: str) -> None:
    assert redacted(uri) == shown


@pytest.mark.parametrize(("family", "distribution"), [("lightgbm", "lightgbm"), ("xgboost", None)])
def test_the_registered_model_requires_the_estimators_package(
    family: str, distribution: str | None
) -> None:
    from importlib.metadata import packages_distributions

    from mlops_stack_runtime.config import ModelSettings
    from mlops_stack_runtime.estimators import build_estimator
    from mlops_stack_runtime.tracking import _pip_requirements

    estimator = build_estimator(
        ModelSettings(estimator=family, random_state=0, hyperparameters={family: {}}), "binary"
    )
    # xgboost's module may come from the `xgboost` or the `xgboost-cpu` distribution.
    name = distribution or packages_distributions()[family][0]
    requirements = _pip_requirements(Pipeline([("model", estimator)]))
    assert [r.split("==")[0] for r in requirements] == [
        "scikit-learn",
        "numpy",
        "pandas",
        "skops",
        name,
    ]
    assert _pip_requirements(Pipeline([("model", LogisticRegression())]))[-1].startswith("skops==")
