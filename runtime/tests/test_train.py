from __future__ import annotations

import json

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest

from mlops_stack_runtime.audit import (
    load_verified_model,
    read_record,
    sha256_file,
)
from mlops_stack_runtime.config import (
    Config,
    ModelSettings,
)
from mlops_stack_runtime.data.columns import (
    FEATURE_NAMES,
    LABEL,
)
from mlops_stack_runtime.data.sample import (
    generate_sample,
)
from mlops_stack_runtime.data.split import (
    split_train_test,
)
from mlops_stack_runtime.errors import (
    ConfigError,
)
from mlops_stack_runtime.evaluate import (
    compute_metrics,
)
from mlops_stack_runtime.features import (
    split_features_label,
)
from mlops_stack_runtime.tasks import (
    TASK_METRICS,
)
from mlops_stack_runtime.train import (
    build_pipeline,
    fit_pipeline,
)


def settings(estimator: str, **hyperparameters: object) -> ModelSettings:
    return ModelSettings(
        estimator=estimator,
        random_state=3,
        hyperparameters={estimator: hyperparameters},
    )


def test_the_pipeline_ends_with_the_estimator_of_the_params() -> None:
    pipeline = build_pipeline(settings("random_forest", n_estimators=7))
    step, estimator = pipeline.steps[-1]
    assert step == ("classifier" if LABEL.is_classification else "regressor")
    assert estimator.n_estimators == 7
    assert estimator.random_state == 3


def test_invalid_hyperparameter_value_names_the_setting(
    train_test_frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, _ = train_test_frames
    with pytest.raises(
        ConfigError, match=r"model\.hyperparameters\.gradient_boosting.*n_estimators"
    ):
        fit_pipeline(train, settings("gradient_boosting", n_estimators=0))


def test_two_fits_give_identical_predictions(
    trained_project: Config, train_test_frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = train_test_frames
    features, _ = split_features_label(test)
    first = fit_pipeline(train, trained_project.model).predict_proba(features)
    second = fit_pipeline(train, trained_project.model).predict_proba(features)
    np.testing.assert_array_equal(first, second)


def test_model_uses_the_declared_features_only(
    train_test_frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, _ = train_test_frames
    pipeline = fit_pipeline(train, settings("logistic_regression", max_iter=200))
    assert list(pipeline.feature_names_in_) == list(FEATURE_NAMES)


def test_model_learns_a_useful_but_imperfect_signal(trained_project: Config) -> None:
    train, test = split_train_test(generate_sample(n_rows=3_000, seed=21), test_size=0.25, seed=21)
    pipeline = fit_pipeline(train, trained_project.model)
    features, label = split_features_label(test)
    roc_auc = compute_metrics(label, pipeline.predict_proba(features)[:, 1])["roc_auc"]
    assert 0.78 < roc_auc < 0.97


def test_train_writes_the_model_and_its_audit_record(trained_project: Config) -> None:
    paths = trained_project.paths
    record = read_record(paths.models_dir)
    assert record.model_sha256 == sha256_file(paths.models_dir / "model.joblib")
    assert record.training_data_sha256 == sha256_file(paths.train_data)
    assert record.test_data_sha256 == sha256_file(paths.test_data)
    assert record.params == json.loads(json.dumps(dict(trained_project.params)))
    assert record.feature_names == list(FEATURE_NAMES)
    assert set(record.metrics) >= {"roc_auc", "pr_auc", "f1", "accuracy", "brier"}
    # The Dummy estimator's class shares rank no row above another: chance.
    assert record.metrics["baseline_roc_auc"] == 0.5
    assert record.created_at.endswith("+00:00")


def test_train_logs_the_run_and_registers_a_version(
    trained_project: Config, mlflow_client: mlflow.MlflowClient
) -> None:
    record = read_record(trained_project.paths.models_dir)
    run = mlflow_client.get_run(record.mlflow_run_id)
    assert run.data.metrics["roc_auc"] == pytest.approx(record.metrics["roc_auc"])
    assert run.data.params["model.estimator"] == trained_project.model.classifier
    version = mlflow_client.get_model_version(
        record.registered_model_name, str(record.registered_model_version)
    )
    assert version.run_id == record.mlflow_run_id
    assert version.tags["model_sha256"] == record.model_sha256
    assert version.tags["training_data_sha256"] == record.training_data_sha256
    assert version.tags["test_data_sha256"] == record.test_data_sha256
    assert version.tags["classifier"] == trained_project.model.classifier
    assert version.tags["estimator"] == trained_project.model.estimator
    assert version.tags["task"] == LABEL.task == record.task
    assert record.estimator == trained_project.model.estimator
    primary = TASK_METRICS[LABEL.task].primary
    assert version.tags["primary_metric"] == primary
    assert version.tags[primary] == str(record.metrics[primary])
    if LABEL.task == "binary":
        assert version.tags["roc_auc"] == str(record.metrics["roc_auc"])
    artifacts = {artifact.path for artifact in mlflow_client.list_artifacts(record.mlflow_run_id)}
    assert "model.json" in artifacts


def test_registry_model_predicts_like_the_joblib_file(
    trained_project: Config,
    train_test_frames: tuple[pd.DataFrame, pd.DataFrame],
    mlflow_client: mlflow.MlflowClient,
) -> None:
    record = read_record(trained_project.paths.models_dir)
    registered = mlflow.sklearn.load_model(
        f"models:/{record.registered_model_name}/{record.registered_model_version}"
    )
    pipeline, _ = load_verified_model(trained_project.paths.models_dir)
    features, _ = split_features_label(train_test_frames[1])
    np.testing.assert_array_equal(
        registered.predict_proba(features), pipeline.predict_proba(features)
    )


@pytest.mark.parametrize(
    ("name", "scaled"),
    [("gradient_boosting", False), ("random_forest", False), ("logistic_regression", True)],
)
def test_only_models_that_need_it_get_a_scaler(name: str, scaled: bool) -> None:
    # Trees split on values: a scaler changes nothing they learn, and its float64 output in front
    # of float32 splits would keep the ONNX export from matching scikit-learn.
    numeric = build_pipeline(settings(name)).named_steps["preprocessor"].transformers[0][1]
    assert ("standardscaler" in numeric.named_steps) is scaled
