from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from mlops_stack_runtime.audit import (
    ModelRecord,
    read_record,
)
from mlops_stack_runtime.config import (
    Config,
)
from mlops_stack_runtime.errors import (
    ArtifactIntegrityError,
)
from mlops_stack_runtime.evaluate import (
    evaluate,
)
from mlops_stack_runtime.fairness import (
    read_fairness_report,
)
from mlops_stack_runtime.model_card import (
    load_inputs,
    render,
    write_model_card,
)
from mlops_stack_runtime.promotion import (
    Contender,
    Promotion,
    write_promotion_report,
)

if TYPE_CHECKING:
    from mlops_stack_runtime.testing.fixtures import MakeProject

SECTIONS = (
    "## Model details",
    "## Intended use",
    "## Data",
    "## Performance",
    "## Fairness",
    "## Limitations",
    "## Approvals",
)


@pytest.fixture
def evaluated(copy_trained_project: MakeProject) -> Config:
    """A trained project after the evaluate stage: metrics (and fairness) reports written."""
    config = copy_trained_project()
    evaluate(config)
    return config


def kept_champion(record: ModelRecord, version: int) -> Promotion:
    challenger = Contender(
        version=version, metrics=record.metrics, gates=[], training_data_sha256=None
    )
    return Promotion(
        registered_model=str(record.registered_model_name),
        outcome="kept_champion",
        reason="challenger does not beat the champion: roc_auc 0.8000 vs 0.8100",
        champion_version=version + 1,
        champion_model_sha256="f" * 64,
        champion_onnx_sha256=None,
        challenger=challenger,
        previous_champion=None,
        test_data_sha256=record.test_data_sha256,
        min_improvement=0.0,
        decided_at="2030-01-02T03:04:05+00:00",
    )


def test_the_card_holds_the_real_numbers_of_the_model(evaluated: Config) -> None:
    path = write_model_card(evaluated)
    assert path == evaluated.root / "docs" / "model_card.md"
    card = path.read_text()
    record = read_record(evaluated.paths.models_dir)
    name, version = record.registered_model_name, record.registered_model_version
    assert card.startswith(f"# Model card: {name} version {version}\n")
    assert [line for line in card.splitlines() if line.startswith("## ")] == list(SECTIONS)
    for name, value in record.metrics.items():
        assert f"| {name} | {value:.4f} |" in card
    for digest in (record.model_sha256, record.training_data_sha256, record.test_data_sha256):
        assert digest in card
    assert f">= {evaluated.gates.min_roc_auc} (`gates.min_roc_auc`): passed" in card
    assert "- Quality gates: passed" in card
    assert "- Registry: no promotion decision yet (`make promote`)." in card

    fairness = evaluated.gates.fairness
    if fairness is None:
        assert "Not measured: this project has no fairness gate" in card
    else:
        report = read_fairness_report(evaluated.paths.fairness_report)
        if not report.applicable:
            assert "Not applicable: data/columns.yaml declares no protected attribute" in card
        else:
            for group, rates in report.by_group.items():
                row = (
                    f"| {group} | {rates.count} | {rates.positives} | {rates.selection_rate:.4f} |"
                )
                assert row in card
            measured = report.equalized_odds_difference
            if measured is None:
                assert "| not measured | fewer than two groups with enough data |" in card
            else:
                assert (
                    f"| {measured:.4f} | <= "
                    f"{fairness.max_equalized_odds_difference} (`gates.fairness."
                ) in card
    approvers = evaluated.governance.production_approvers
    if approvers:
        assert f"approval by {', '.join(approvers)}" in card
    else:
        assert "no human approval step is configured" in card


def test_the_same_records_give_the_same_card(evaluated: Config) -> None:
    first = write_model_card(evaluated).read_text()
    assert write_model_card(evaluated).read_text() == first


def test_the_card_states_the_last_promotion_decision_about_this_version(
    evaluated: Config,
) -> None:
    record = read_record(evaluated.paths.models_dir)
    version = int(record.registered_model_version or 0)
    write_promotion_report(kept_champion(record, version), evaluated.paths.promotion_report)
    card = render(load_inputs(evaluated))
    assert (
        "- Registry: challenger, not promoted on 2030-01-02T03:04:05+00:00 (champion stays "
        f"version {version + 1}): challenger does not beat the champion"
    ) in card

    # A decision about another version says nothing about this one.
    write_promotion_report(kept_champion(record, version + 5), evaluated.paths.promotion_report)
    card = render(load_inputs(evaluated))
    assert "- Registry: no promotion decision yet for this version (`make promote`)." in card


def test_metrics_of_another_model_are_refused(evaluated: Config) -> None:
    metrics = json.loads(evaluated.paths.metrics.read_text())
    metrics["roc_auc"] = 0.5
    evaluated.paths.metrics.write_text(json.dumps(metrics))
    with pytest.raises(ArtifactIntegrityError, match=r"metrics\.json does not match"):
        write_model_card(evaluated)
    assert not evaluated.paths.model_card.exists()


def test_a_model_never_evaluated_has_no_card(copy_trained_project: MakeProject) -> None:
    config = copy_trained_project()
    with pytest.raises(ArtifactIntegrityError, match=r"metrics\.json not found"):
        write_model_card(config)
