"""train, evaluate and promote on a multi-class and a regression declaration, on real data.

The declaration is read once per process (data/columns.py), so each stage runs as the command a
generated repository runs, in a process of its own pointed at another columns.yaml
(COLUMNS_FILE): scikit-learn's wine data (three cultivars, text classes) and diabetes data (a
disease progression value). The project's preprocessing is the example package's features.py,
which reads the same declaration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import mlflow.models
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_diabetes, load_wine
from sklearn.model_selection import train_test_split

from mlops_stack_runtime.audit import load_verified_model
from mlops_stack_runtime.config import ProjectPaths
from mlops_stack_runtime.data.columns import DECLARATION_ENV_VAR
from mlops_stack_runtime.testing.fixtures import repository_params

pytestmark = pytest.mark.separate_process  # each stage runs as a command of its own

WINE_CLASSES = ["class_0", "class_1", "class_2"]


def wine() -> tuple[pd.DataFrame, dict[str, Any]]:
    data = load_wine(as_frame=True)
    frame = data.data.rename(columns=lambda name: name.replace("/", "_"))
    frame["cultivar"] = [WINE_CLASSES[index] for index in data.target]
    label = {"name": "cultivar", "task": "multiclass", "values": WINE_CLASSES}
    return frame, label


def diabetes() -> tuple[pd.DataFrame, dict[str, Any]]:
    data = load_diabetes(as_frame=True)
    frame = data.data.copy()
    frame["progression"] = data.target.astype(float)
    label = {"name": "progression", "task": "regression", "min": 0, "max": 400}
    return frame, label


def project(
    root: Path, task: str, estimator: str, hyperparameters: dict[str, Any], gates: dict[str, Any]
) -> tuple[Path, dict[str, str], ProjectPaths]:
    """A project folder with the dataset split into data/validated/, its columns.yaml, and the
    repository's params.yaml choosing `estimator`; the environment its commands run in."""
    frame, label = wine() if task == "multiclass" else diabetes()
    features = [c for c in frame.columns if c != label["name"]]
    declaration = {
        "label": {"description": label["name"], **label},
        "features": [{"name": name, "kind": "float", "description": name} for name in features],
    }
    (root / "columns.yaml").write_text(yaml.safe_dump(declaration), encoding="utf-8")
    stratify = frame[label["name"]] if task == "multiclass" else None
    train, test = train_test_split(frame, test_size=0.3, random_state=0, stratify=stratify)
    paths = ProjectPaths(root)
    paths.train_data.parent.mkdir(parents=True)
    train.to_csv(paths.train_data, index=False)
    test.to_csv(paths.test_data, index=False)
    params = yaml.safe_load(repository_params().read_text(encoding="utf-8"))
    params["model"].pop("classifier", None)
    params["model"]["estimator"] = estimator
    params["model"]["hyperparameters"] = {estimator: hyperparameters}
    params["gates"].update(gates)
    params["mlflow"]["registered_model"] = f"tasks-{task}-{estimator}"
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    env = {**os.environ, DECLARATION_ENV_VAR: str(root / "columns.yaml")}
    return root / "params.yaml", env, paths


def run(params: Path, env: dict[str, str], command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_stack_runtime", "--params", str(params), command],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )


def registered_predicts_like_the_model(
    paths: ProjectPaths, name: str, output_shape: tuple[int, ...]
) -> None:
    """The registry's skops copy loads (its types are trusted) and predicts as models/ does;
    its signature's output is the task's scores."""
    uri = f"models:/{name}/1"
    info = mlflow.models.get_model_info(uri)
    assert info.signature is not None
    assert info.signature.outputs.inputs[0].shape == output_shape
    registered = mlflow.sklearn.load_model(uri)
    local, _ = load_verified_model(paths.models_dir)
    test = pd.read_csv(paths.test_data)
    features = test.drop(columns=["cultivar", "progression"], errors="ignore")
    np.testing.assert_array_equal(registered.predict(features), local.predict(features))


def test_multiclass_train_evaluate_promote(tmp_path: Path, mlflow_tracking_uri: str) -> None:
    params, env, paths = project(
        tmp_path, "multiclass", "hist_gradient_boosting", {"max_iter": 50}, {"min_macro_f1": 0.8}
    )
    trained = run(params, env, "train")
    assert trained.returncode == 0, trained.stderr
    record = json.loads((paths.models_dir / "model.json").read_text())
    assert (record["task"], record["estimator"]) == ("multiclass", "hist_gradient_boosting")
    metrics = record["metrics"]
    assert set(metrics) == {
        "macro_f1",
        "balanced_accuracy",
        "accuracy",
        "log_loss",
        "roc_auc_ovr",
        "baseline_macro_f1",
    }
    assert metrics["macro_f1"] > 0.85
    # The Dummy predicts the most common class: F1 for one class of three, at best 1/3 * 2/3...
    assert metrics["baseline_macro_f1"] < 0.25
    assert f"held-out macro_f1 {metrics['macro_f1']:.4f}" in trained.stdout
    assert record["inference"]["runtime"] == "onnx", record["inference"]
    assert record["inference"]["classes_differing"] == 0

    evaluated = run(params, env, "evaluate")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(paths.metrics.read_text()) == metrics
    assert (
        f"gate passed: macro_f1 {metrics['macro_f1']:.4f} >= gates.min_macro_f1 0.8"
        in evaluated.stdout
    )
    assert "gate passed: macro_f1" in evaluated.stdout and "the Dummy estimator's" in (
        evaluated.stdout
    )
    confusion = pd.read_csv(paths.confusion_plot)
    test = pd.read_csv(paths.test_data)
    assert list(confusion.columns) == ["actual", "predicted"]
    assert confusion["actual"].tolist() == test["cultivar"].tolist()
    assert set(confusion["predicted"]) <= set(WINE_CLASSES)
    # Plots that are not the task's are written with their header only (dvc.yaml declares all).
    assert pd.read_csv(paths.roc_plot).empty
    assert pd.read_csv(paths.predicted_plot).empty

    promoted = run(params, env, "promote")
    assert promoted.returncode == 0, promoted.stderr
    assert f"challenger: version 1, held-out macro_f1 {metrics['macro_f1']:.4f}" in (
        promoted.stdout
    )
    client = mlflow.MlflowClient(mlflow_tracking_uri)
    tags = client.get_model_version("tasks-multiclass-hist_gradient_boosting", "1").tags
    assert (tags["task"], tags["estimator"], tags["primary_metric"]) == (
        "multiclass",
        "hist_gradient_boosting",
        "macro_f1",
    )
    assert tags["macro_f1"] == str(metrics["macro_f1"])
    assert tags["promotion.challenger_macro_f1"] == str(metrics["macro_f1"])
    assert "roc_auc" not in tags
    registered_predicts_like_the_model(paths, "tasks-multiclass-hist_gradient_boosting", (-1, 3))


@pytest.mark.parametrize("estimator", ["lightgbm", "ridge"])
def test_regression_train_evaluate_and_gate_failure(
    tmp_path: Path, mlflow_tracking_uri: str, estimator: str
) -> None:
    hyperparameters = {"n_estimators": 60} if estimator == "lightgbm" else {"alpha": 0.1}
    params, env, paths = project(
        tmp_path, "regression", estimator, hyperparameters, {"min_r2": 0.2, "baseline_margin": 0.1}
    )
    trained = run(params, env, "train")
    assert trained.returncode == 0, trained.stderr
    record = json.loads((paths.models_dir / "model.json").read_text())
    metrics = record["metrics"]
    assert set(metrics) == {"rmse", "mae", "r2", "baseline_rmse"}
    assert record["task"] == "regression"
    # The Dummy predicts the training mean: R² about 0 on the test set.
    test = pd.read_csv(paths.test_data)
    assert metrics["baseline_rmse"] == pytest.approx(test["progression"].std(ddof=0), rel=0.02)
    assert metrics["rmse"] < 0.9 * metrics["baseline_rmse"]
    assert record["inference"]["runtime"] == "onnx", record["inference"]
    assert record["inference"]["values_differing"] == 0
    assert record["inference"]["relative_tolerance"] == 1e-4

    evaluated = run(params, env, "evaluate")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(paths.metrics.read_text()) == metrics
    assert f"gate passed: r2 {metrics['r2']:.4f} >= gates.min_r2 0.2" in evaluated.stdout
    assert (
        f"gate passed: rmse {metrics['rmse']:.4f} beats the Dummy estimator's "
        f"{metrics['baseline_rmse']:.4f} by more than gates.baseline_margin 0.1"
    ) in evaluated.stdout
    predicted = pd.read_csv(paths.predicted_plot)
    assert list(predicted.columns) == ["actual", "predicted"]
    assert predicted["actual"].tolist() == pytest.approx(test["progression"].tolist())
    assert pd.read_csv(paths.confusion_plot).empty and pd.read_csv(paths.roc_plot).empty

    registered_predicts_like_the_model(paths, f"tasks-regression-{estimator}", (-1,))

    # A gate out of reach: exit 1, the reason and the metrics table, reports still written.
    strict = yaml.safe_load(params.read_text())
    strict["gates"]["min_r2"] = 0.99
    params.write_text(yaml.safe_dump(strict))
    paths.metrics.unlink()
    failed = run(params, env, "evaluate")
    assert failed.returncode == 1
    assert f"r2 {metrics['r2']:.4f} is below gates.min_r2 0.99" in failed.stderr
    assert "held-out metrics:" in failed.stderr
    assert "rmse" in failed.stderr and f"{metrics['baseline_rmse']:.4f}" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert paths.metrics.is_file()
