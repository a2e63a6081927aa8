"""Prediction drift for every task on real data: a multi-class model (iris) is judged on the shares
of the classes it predicts, a regression model (diabetes) on the values it predicts. A held-out
batch of the same population is quiet; a batch whose label-driving feature moved drifts, and the
report says so in the task's words. The binary case is test_drift.py's; here, a binary model whose
scores drift while no feature does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlops_stack_runtime.config import Config
from mlops_stack_runtime.data.columns import ColumnSpec, Declaration, LabelSpec
from mlops_stack_runtime.monitoring.drift import compare, drift_settings
from mlops_stack_runtime.monitoring.html_report import render
from mlops_stack_runtime.monitoring.reference import Reference
from mlops_stack_runtime.monitoring.report import DriftReport
from mlops_stack_runtime.testing.fixtures import write_project

from tests.serving import task_models
from tests.serving.task_models import TaskData

TASKS = {"multiclass": task_models.iris, "regression": task_models.diabetes}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The example's params.yaml: its `drift` thresholds are the ones judged here."""
    return write_project(tmp_path_factory.mktemp("tasks") / "project")


def halves(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The held-out rows split in two: the model's reference predictions, and a batch of the
    same population it never saw."""
    return frame.iloc[0::2].reset_index(drop=True), frame.iloc[1::2].reset_index(drop=True)


def judge(config: Config, make_task: Callable[[], TaskData], shift: float) -> DriftReport:
    """The drift report of a batch of held-out rows, the driving features moved by `shift`
    standard deviations of the training data."""
    data = make_task()
    model = task_models.fit(data)
    holdout, rows = halves(data.test)
    batch = data.features(rows).copy()
    for driving in data.driving_features():
        batch[driving] = batch[driving] + shift * data.train[driving].std()
    reference = Reference(
        model=model,
        model_description="a model of the test",
        model_version=None,
        training_data=data.train,
        training_data_sha256="0" * 64,
        data_location="memory",
        test_data=holdout,
    )
    return compare(reference, batch, [], drift_settings(config), "batch", data.declaration)


@pytest.mark.parametrize("task", list(TASKS))
def test_a_held_out_batch_has_no_prediction_drift(config: Config, task: str) -> None:
    report = judge(config, TASKS[task], shift=0.0)
    assert report.task == task
    assert not report.prediction.drifted, report.prediction
    assert not report.drifted, report.reasons
    assert "no drift beyond the thresholds" in report.to_text()


def test_a_multiclass_batch_drifts_on_the_shares_of_the_predicted_classes(config: Config) -> None:
    report = judge(config, task_models.iris, shift=3.0)
    prediction = report.prediction
    assert prediction.drifted
    assert prediction.name == "predicted class of species"
    # The bins are the classes: the batch's shares moved between them.
    assert set(prediction.shares.bins) <= {"setosa", "versicolor", "virginica"}
    assert prediction.ks_statistic is None  # classes have no order to test
    assert prediction.change.split(" ")[0] in ("setosa", "versicolor", "virginica")
    assert any(
        reason.startswith("the model's predicted class shares drifted: ")
        for reason in report.reasons
    )
    assert "probability" not in report.to_text()


def test_a_regression_batch_drifts_on_the_predicted_values(config: Config, tmp_path: Path) -> None:
    report = judge(config, task_models.diabetes, shift=2.0)
    prediction = report.prediction
    assert prediction.drifted
    assert prediction.name == "predicted value of progression"
    assert prediction.ks_statistic is not None and prediction.ks_statistic > 0.3
    before, after = (float(x) for x in prediction.change.removeprefix("mean ").split(" -> "))
    assert after > before  # more body mass, more progression predicted
    assert any(
        reason.startswith("the model's predicted values drifted: ") for reason in report.reasons
    )
    for text in (report.to_text(), render(report)):
        assert "probabilit" not in text
        assert "scores" not in text


def correlated(rows: int, sign: float, seed: int) -> pd.DataFrame:
    """Two standard normal features, y = sign * x plus a little noise: the same x and the same y
    column by column, whichever the sign."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    return pd.DataFrame({"x": x, "y": sign * x + 0.1 * rng.normal(size=rows)})


def test_scores_that_drift_while_no_feature_does_count_as_drift(config: Config) -> None:
    # The model scores x + y. In the batch y follows -x instead of x: each feature keeps its
    # distribution, but x + y collapses to about 0 and every score to about one half.
    declaration = Declaration(
        (ColumnSpec("x", "float", "x"), ColumnSpec("y", "float", "y")),
        LabelSpec("default", "yes (positive) or no", ("no", "yes"), "yes"),
    )
    training = correlated(2000, 1.0, seed=1)
    model = LogisticRegression().fit(training, (training["x"] + training["y"] > 0).astype(int))
    reference = Reference(
        model=model,
        model_description="a model of the test",
        model_version=None,
        training_data=training,
        training_data_sha256="0" * 64,
        data_location="memory",
        test_data=correlated(1000, 1.0, seed=2),
    )
    batch = correlated(1000, -1.0, seed=3)

    report = compare(reference, batch, [], drift_settings(config), "batch", declaration)

    assert report.drifted_features == []
    assert report.prediction.drifted
    assert report.prediction.name == "predicted probability that default is yes"
    assert report.drifted
    assert report.reasons == [f"the model's scores drifted: {report.prediction.change}"]
