"""Promotion against a real MLflow registry (the session's throwaway sqlite store).

Each test registers its own model name, so aliases set by one test never meet another's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pytest

from mlops_stack_runtime import promotion as promotion_module
from mlops_stack_runtime.audit import (
    read_record,
    sha256_file,
)
from mlops_stack_runtime.config import (
    Config,
    PromotionSettings,
)
from mlops_stack_runtime.data.columns import (
    LABEL,
)
from mlops_stack_runtime.errors import (
    ArtifactIntegrityError,
    PipelineError,
)
from mlops_stack_runtime.gates import (
    GateResult,
)
from mlops_stack_runtime.promotion import (
    Contender,
    decide,
    promote,
)
from mlops_stack_runtime.registry import (
    RegisteredVersion,
)
from mlops_stack_runtime.tasks import (
    TASK_METRICS,
)
from mlops_stack_runtime.testing.fixtures import write_project
from mlops_stack_runtime.tracking import (
    TRACKING_URI_ENV_VAR,
)
from mlops_stack_runtime.train import (
    train,
)

from tests.tampering import plant_booby_trap

if TYPE_CHECKING:
    from mlops_stack_runtime.testing.fixtures import MakeProject

# A model that barely learns: one depth-1 tree.
CRIPPLED = {
    "model.estimator": "gradient_boosting",
    "model.hyperparameters.gradient_boosting": {"n_estimators": 1, "max_depth": 1},
}
# Low enough for the crippled model to pass the metric gate, so it loses on roc_auc alone: one
# split on one feature ranks little better than chance when several features share the signal.
LENIENT = {"gates.min_roc_auc": 0.5}


def settings(name: str, *parts: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {"mlflow.registered_model": name}
    for part in parts:
        merged.update(part)
    return merged


def retrain(config: Config, overrides: Mapping[str, Any]) -> Config:
    """The same project with other params, trained again: the next version in the registry."""
    config = write_project(config.root, overrides)
    train(config)
    return config


def aliases(client: mlflow.MlflowClient, name: str) -> dict[str, int]:
    registered = client.get_registered_model(name)
    return {alias: int(version) for alias, version in registered.aliases.items()}


def test_first_version_becomes_champion_and_a_repeat_changes_nothing(
    copy_trained_project: MakeProject, mlflow_client: mlflow.MlflowClient
) -> None:
    config = copy_trained_project(settings("promote-first"))
    train(config)

    promotion = promote(config)

    assert promotion.outcome == "promoted"
    assert "no champion yet" in promotion.reason
    assert aliases(mlflow_client, "promote-first") == {"champion": 1, "challenger": 1}
    record = read_record(config.paths.models_dir)
    assert promotion.challenger is not None
    # Scored again by promote, on the same test set: the numbers training recorded.
    assert promotion.challenger.metrics == record.metrics
    # Every gate of evaluate, the Dummy baseline (training's) included.
    assert [gate.name for gate in promotion.challenger.gates][:2] == ["min_roc_auc", "baseline"]
    tags = mlflow_client.get_model_version("promote-first", "1").tags
    assert tags["promotion.decision"] == "promoted"
    assert tags["promotion.champion_before"] == "none"
    assert tags["promotion.challenger_roc_auc"] == str(record.metrics["roc_auc"])
    assert tags["promotion.test_data_sha256"] == sha256_file(config.paths.test_data)
    report = json.loads(config.paths.promotion_report.read_text())
    assert (report["outcome"], report["champion_version"]) == ("promoted", 1)

    again = promote(config)
    assert (again.outcome, again.champion_version) == ("already_champion", 1)
    later_tags = mlflow_client.get_model_version("promote-first", "1").tags
    assert later_tags["promotion.decided_at"] == tags["promotion.decided_at"]


def test_a_better_challenger_becomes_champion(
    copy_trained_project: MakeProject, mlflow_client: mlflow.MlflowClient
) -> None:
    name = "promote-better"
    config = copy_trained_project(settings(name, CRIPPLED, LENIENT))
    train(config)
    assert promote(config).outcome == "promoted"

    config = retrain(config, settings(name, LENIENT))
    promotion = promote(config)

    assert promotion.outcome == "promoted"
    assert promotion.challenger is not None and promotion.previous_champion is not None
    assert promotion.challenger.score > promotion.previous_champion.score
    assert "challenger beats the champion" in promotion.reason
    assert aliases(mlflow_client, name) == {"champion": 2, "challenger": 2}
    assert mlflow_client.get_model_version(name, "1").tags["promotion.replaced_by"] == "2"
    assert mlflow_client.get_model_version(name, "2").tags["promotion.champion_before"] == "1"


def test_a_worse_challenger_is_refused_with_the_reason(
    copy_trained_project: MakeProject, mlflow_client: mlflow.MlflowClient
) -> None:
    name = "promote-worse"
    config = copy_trained_project(settings(name, LENIENT))
    train(config)
    promote(config)

    config = retrain(config, settings(name, CRIPPLED, LENIENT))
    promotion = promote(config)

    challenger, champion = promotion.challenger, promotion.previous_champion
    assert challenger is not None and champion is not None
    assert promotion.outcome == "kept_champion"
    assert promotion.champion_version == 1
    assert "does not beat the champion" in promotion.reason
    assert f"roc_auc {challenger.score:.4f}" in promotion.reason
    assert f"version 1's {champion.score:.4f}, higher is better" in promotion.reason
    assert aliases(mlflow_client, name) == {"champion": 1, "challenger": 2}
    tags = mlflow_client.get_model_version(name, "2").tags
    assert tags["promotion.decision"] == "kept_champion"
    assert tags["promotion.reason"] == promotion.reason
    assert (tags["promotion.champion_before"], tags["promotion.champion_after"]) == ("1", "1")
    assert tags["promotion.champion_roc_auc"] == str(champion.score)
    assert tags["promotion.metric"] == "roc_auc"
    assert tags["promotion.champion_training_data_sha256"] == sha256_file(config.paths.train_data)
    assert "promotion.replaced_by" not in mlflow_client.get_model_version(name, "1").tags

    # Under a metric gate just above its score, the same challenger fails it: refused for that.
    # (On data with few features one split may score above the project's gate, so the gate is
    # set from the challenger's own roc_auc.)
    gate = {"gates.min_roc_auc": round(min(challenger.score + 0.01, 1.0), 4)}
    strict = write_project(config.root, settings(name, CRIPPLED, gate))
    refused = promote(strict)
    assert refused.outcome == "kept_champion"
    assert "challenger version 2 fails a gate" in refused.reason
    assert f"is below gates.min_roc_auc {strict.gates.min_roc_auc}" in refused.reason
    assert aliases(mlflow_client, name)["champion"] == 1


def test_a_record_that_does_not_match_the_registry_is_refused(
    copy_trained_project: MakeProject,
    mlflow_client: mlflow.MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    name = "promote-integrity"
    config = copy_trained_project(settings(name))
    train(config)
    mlflow_client.set_model_version_tag(name, "1", "model_sha256", "0" * 64)
    with pytest.raises(ArtifactIntegrityError, match="registered in another tracking store"):
        promote(config)

    monkeypatch.setenv(TRACKING_URI_ENV_VAR, f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(PipelineError, match=rf"could not read version 1 of '{name}'"):
        promote(config)
    assert not config.paths.promotion_report.exists()


def test_a_champion_tampered_with_in_the_store_is_refused_and_never_unpickled(
    copy_trained_project: MakeProject, mlflow_client: mlflow.MlflowClient, tmp_path: Path
) -> None:
    name = "promote-tampered-champion"
    config = copy_trained_project(settings(name, LENIENT))
    train(config)
    assert promote(config).outcome == "promoted"
    marker = tmp_path / "unpickled"
    run_id, planted = plant_booby_trap(mlflow_client, name, 1, marker)
    config = retrain(config, settings(name, CRIPPLED, LENIENT))

    with pytest.raises(ArtifactIntegrityError) as raised:
        promote(config)

    message = str(raised.value)
    assert f"version 1 of '{name}'" in message
    assert f"runs:/{run_id}/model.joblib has sha256 {planted}" in message
    assert "refusing to load it" in message
    assert "remove its alias `champion`" in message
    assert not marker.exists(), "the champion's tampered file was unpickled"
    assert aliases(mlflow_client, name) == {"champion": 1, "challenger": 1}


def test_a_missing_record_is_a_clear_error(make_project: MakeProject) -> None:
    with pytest.raises(ArtifactIntegrityError, match=r"model\.json not found: train a model"):
        promote(make_project())


def test_an_unregistered_model_cannot_be_promoted(copy_trained_project: MakeProject) -> None:
    config = copy_trained_project()
    record_file = config.paths.models_dir / "model.json"
    record = json.loads(record_file.read_text())
    record["registered_model_version"] = None
    record_file.write_text(json.dumps(record))
    with pytest.raises(ArtifactIntegrityError, match="names no registered model version"):
        promote(config)


def gate(passed: bool) -> GateResult:
    message = "roc_auc 0.9000 >= 0.75" if passed else "roc_auc 0.7000 is below 0.75"
    return GateResult("min_roc_auc", passed=passed, value=0.9, threshold=0.75, message=message)


def contender(
    version: int, value: float, passed: bool = True, metric: str = "roc_auc"
) -> Contender:
    return Contender(
        version=version,
        metrics={metric: value},
        gates=[gate(passed)],
        training_data_sha256=None,
    )


def margins(absolute: float = 0.0, relative: float = 0.0) -> PromotionSettings:
    return PromotionSettings(min_improvement=absolute, min_relative_improvement=relative)


BINARY = TASK_METRICS["binary"]


@pytest.mark.parametrize(
    ("challenger_auc", "champion_auc", "min_improvement", "promoted"),
    [
        (0.86, 0.85, 0.0, True),
        (0.85, 0.85, 0.0, False),  # a tie keeps the champion
        (0.84, 0.85, 0.0, False),
        (0.87, 0.85, 0.02, False),  # the gain must exceed min_improvement, not equal it
        (0.871, 0.85, 0.02, True),
    ],
)
def test_roc_auc_must_beat_the_champion_by_more_than_min_improvement(
    challenger_auc: float, champion_auc: float, min_improvement: float, promoted: bool
) -> None:
    decision = decide(
        contender(2, challenger_auc), contender(1, champion_auc), margins(min_improvement), BINARY
    )
    assert decision.promoted is promoted
    assert f"promotion.min_improvement {min_improvement}" in decision.reason


@pytest.mark.parametrize(
    ("challenger", "champion", "absolute", "relative", "promoted"),
    [
        (45.0, 50.0, 0.0, 0.0, True),  # lower is better
        (55.0, 50.0, 0.0, 0.0, False),
        (50.0, 50.0, 0.0, 0.0, False),  # a tie keeps the champion
        (45.0, 50.0, 5.0, 0.0, False),  # 5 better: not more than 5
        (44.9, 50.0, 5.0, 0.0, True),
        (45.0, 50.0, 0.0, 0.1, False),  # 10% better: not more than 10%
        (44.9, 50.0, 0.0, 0.1, True),
        (44.9, 50.0, 6.0, 0.1, False),  # both margins must be exceeded
        (40.0, 50.0, 6.0, 0.1, True),
    ],
)
def test_rmse_must_fall_below_the_champion_by_both_margins(
    challenger: float, champion: float, absolute: float, relative: float, promoted: bool
) -> None:
    decision = decide(
        contender(2, challenger, metric="rmse"),
        contender(1, champion, metric="rmse"),
        margins(absolute, relative),
        TASK_METRICS["regression"],
    )
    assert decision.promoted is promoted, decision.reason
    assert decision.reason.endswith(
        f"rmse {challenger:.4f} vs champion version 1's {champion:.4f}, lower is better "
        f"(gain {champion - challenger:+.4f}, promotion.min_improvement {absolute}; relative "
        f"{(champion - challenger) / champion:+.2%}, promotion.min_relative_improvement "
        f"{relative})"
    )


@pytest.mark.parametrize(
    ("challenger", "champion", "relative", "promoted"),
    [(0.66, 0.6, 0.1, False), (0.67, 0.6, 0.1, True)],
)
def test_macro_f1_must_rise_by_the_relative_margin(
    challenger: float, champion: float, relative: float, promoted: bool
) -> None:
    decision = decide(
        contender(2, challenger, metric="macro_f1"),
        contender(1, champion, metric="macro_f1"),
        margins(relative=relative),
        TASK_METRICS["multiclass"],
    )
    assert decision.promoted is promoted, decision.reason
    assert "macro_f1" in decision.reason and "higher is better" in decision.reason


def test_a_challenger_failing_a_gate_is_refused_however_good() -> None:
    decision = decide(contender(2, 0.99, passed=False), contender(1, 0.8), margins(), BINARY)
    assert not decision.promoted
    assert decision.reason == "challenger version 2 fails a gate: roc_auc 0.7000 is below 0.75"
    assert not decide(contender(2, 0.99, passed=False), None, margins(), BINARY).promoted


@pytest.mark.parametrize(
    ("tags", "compatible"),
    [
        ({}, LABEL.task == "binary"),  # before tasks: binary
        ({"task": LABEL.task}, True),
        ({"task": "regression" if LABEL.task != "regression" else "binary"}, False),
    ],
)
def test_a_champion_of_another_task_cannot_compete(tags: dict[str, str], compatible: bool) -> None:
    champion = RegisteredVersion("credit", 4, tags)
    if compatible:
        promotion_module._check_same_task(champion)
        return
    with pytest.raises(PipelineError) as refused:
        promotion_module._check_same_task(champion)
    assert str(refused.value).startswith(
        f"champion version 4 of 'credit' is a {tags.get('task', 'binary')} model, but the label "
        f"'{LABEL.name}' of data/columns.yaml is {LABEL.task}: the two cannot be compared"
    )


def test_a_champion_failing_a_gate_gives_way_to_a_challenger_passing_them() -> None:
    decision = decide(contender(2, 0.80), contender(1, 0.85, passed=False), margins(), BINARY)
    assert decision.promoted
    assert "champion version 1 fails a gate" in decision.reason
