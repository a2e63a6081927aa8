"""Permutation importance: the drop in the task's primary metric when a column is shuffled."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from mlops_stack_runtime.data.columns import FEATURE_NAMES, LabelSpec
from mlops_stack_runtime.errors import ArtifactIntegrityError
from mlops_stack_runtime.evaluate import evaluate
from mlops_stack_runtime.explain import (
    FeatureImportance,
    Importance,
    permutation_importances,
    read_importance,
    write_importance,
)

if TYPE_CHECKING:
    from pathlib import Path

    from mlops_stack_runtime.config import Config
    from mlops_stack_runtime.testing.fixtures import MakeProject

BINARY = LabelSpec("y", "outcome", ("0", "1"), "1", "binary")
REGRESSION = LabelSpec("y", "amount", (), None, "regression")


def signal_and_noise(rows: int = 400) -> pd.DataFrame:
    """`signal` decides the label, `noise` does not."""
    rng = np.random.default_rng(0)
    signal, noise = rng.normal(size=rows), rng.normal(size=rows)
    return pd.DataFrame({"signal": signal, "noise": noise})


def test_the_column_that_decides_comes_first_and_noise_near_zero() -> None:
    frame = signal_and_noise()
    frame["y"] = np.where(
        frame["signal"] + 0.3 * np.random.default_rng(1).normal(size=400) > 0, "1", "0"
    )
    model = LogisticRegression().fit(frame[["signal", "noise"]], (frame["y"] == "1").astype(int))
    importance = permutation_importances(model, frame, 0.5, BINARY, ("signal", "noise"))
    assert (importance.metric, importance.repeats, importance.rows) == ("roc_auc", 5, 400)
    signal, noise = importance.features
    assert (signal.name, noise.name) == ("signal", "noise")
    assert signal.mean > 0.3
    assert abs(noise.mean) < 0.02
    # Seeded: the same model and rows give the same figures.
    assert permutation_importances(model, frame, 0.5, BINARY, ("signal", "noise")) == importance


def test_a_regression_drop_is_positive_though_rmse_is_lower_is_better() -> None:
    frame = signal_and_noise()
    frame["y"] = 3 * frame["signal"] + 0.1 * np.random.default_rng(2).normal(size=400)
    model = LinearRegression().fit(frame[["noise", "signal"]], frame["y"])
    importance = permutation_importances(model, frame, 0.5, REGRESSION, ("noise", "signal"))
    assert importance.metric == "rmse"
    assert [feature.name for feature in importance.features] == ["signal", "noise"]
    assert importance.features[0].mean > 2  # RMSE grows from ~0.1 to ~4 when shuffled


def test_the_console_shows_the_first_features_and_counts_the_rest() -> None:
    features = tuple(FeatureImportance(f"f{i}", 0.1 - i / 100, 0.001) for i in range(12))
    text = Importance("roc_auc", 5, 200, features).to_text(limit=2)
    assert text.splitlines() == [
        "what the model relies on (roc_auc drop when a column is shuffled, 200 held-out rows; "
        "reports/importance.json):",
        "  f0      +0.1000 ± 0.0010",
        "  f1      +0.0900 ± 0.0010",
        "  ... and 10 more",
    ]


def test_the_file_reads_back_and_a_broken_one_is_named(tmp_path: Path) -> None:
    importance = Importance("rmse", 5, 10, (FeatureImportance("a", 1.5, 0.25),))
    path = write_importance(importance, tmp_path / "reports" / "importance.json")
    assert read_importance(path) == importance
    assert read_importance(tmp_path / "missing.json") is None
    path.write_text(json.dumps({"metric": "rmse"}))
    with pytest.raises(ArtifactIntegrityError, match=r"importance\.json cannot be read"):
        read_importance(path)


def test_evaluate_writes_importance_and_logs_it_to_the_training_run(
    copy_trained_project: MakeProject,
) -> None:
    config: Config = copy_trained_project()
    evaluate(config)
    importance = read_importance(config.paths.importance)
    assert importance is not None
    assert sorted(feature.name for feature in importance.features) == sorted(FEATURE_NAMES)
    assert importance.features[0].mean > 0
    record = json.loads((config.paths.models_dir / "model.json").read_text())
    client = mlflow.MlflowClient()
    logged = [artifact.path for artifact in client.list_artifacts(record["mlflow_run_id"])]
    assert "importance.json" in logged


def test_a_run_the_store_does_not_hold_is_told_and_the_report_kept(
    copy_trained_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model fetched from another store: its record names a run this store lacks."""
    config: Config = copy_trained_project()
    record_file = config.paths.models_dir / "model.json"
    record = json.loads(record_file.read_text())
    from mlops_stack_runtime.tracking import log_file_to_run

    path = config.paths.importance
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    assert not log_file_to_run(config, "0" * 32, path)
    note = capsys.readouterr().err
    assert note.startswith(
        f"note: importance.json is written but not logged to MLflow run {'0' * 32}"
    )
    assert note.count("\n") == 1
    assert log_file_to_run(config, record["mlflow_run_id"], path)
