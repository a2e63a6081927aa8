"""`promote`: the new model version becomes the registry's champion only if it beats the old one.

The version trained last (models/model.json) gets the alias `challenger`. It also gets the alias
`champion` when it passes every gate of the project and
- there is no champion yet, or
- the champion fails a gate (thresholds tightened since it was promoted), or
- its held-out primary metric (tasks.py: binary roc_auc, multiclass macro_f1, regression rmse,
  each in its direction) beats the champion's by more than params `promotion.min_improvement`
  (in the metric's units) and by more than `promotion.min_relative_improvement` (a share of the
  champion's value), as MLflow's MetricThreshold judges.
A tie keeps the champion: retraining an identical model must not churn deployments. A champion
trained for another task (its version's `task` tag; none: binary, from before tasks) cannot
compete: promotion stops and says how to replace it.

Both models are scored by the same code on the same held-out set (data/validated/test.csv), so
the comparison does not depend on the numbers each recorded when it was trained. The decision is
written to reports/promotion.json (also an artifact of the challenger's MLflow run) and as
tags on the challenger version. Promotion only moves aliases and writes tags: it never deploys.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from . import tasks
from .audit import ModelRecord, load_verified_model, record_path, sha256_file
from .data.columns import LABEL
from .data.csv_files import read_frame
from .errors import ArtifactIntegrityError, PipelineError
from .evaluate import evaluate_model, recorded_baseline
from .evaluation import DIGITS
from .gates import GateResult, run_gates
from .registry import CHALLENGER, CHAMPION, RegisteredVersion, Registry, version_threshold

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from .config import Config, PromotionSettings

Outcome = Literal["promoted", "kept_champion", "already_champion"]


@dataclass(frozen=True)
class Contender:
    """A registered model version scored on the held-out set, with the project's gates applied."""

    version: int
    metrics: dict[str, float]
    gates: list[GateResult]
    training_data_sha256: str | None

    @property
    def score(self) -> float:
        """The held-out value of the task's primary metric."""
        return self.metrics[tasks.task_metrics(LABEL).primary]

    @property
    def failed_gates(self) -> list[GateResult]:
        return [gate for gate in self.gates if not gate.passed]


@dataclass(frozen=True)
class Decision:
    promoted: bool
    reason: str


def decide(
    challenger: Contender,
    champion: Contender | None,
    settings: PromotionSettings,
    task: tasks.TaskMetrics | None = None,
) -> Decision:
    """The promotion rule (see the module docstring); the reason names the numbers behind it.
    `task`: the declared label's (tasks.py) unless given."""
    task = task or tasks.task_metrics(LABEL)
    if challenger.failed_gates:
        failed = "; ".join(gate.message for gate in challenger.failed_gates)
        return Decision(False, f"challenger version {challenger.version} fails a gate: {failed}")
    if champion is None:
        return Decision(True, "no champion yet, and the challenger passes every gate")
    if champion.failed_gates:
        failed = "; ".join(gate.message for gate in champion.failed_gates)
        return Decision(True, f"champion version {champion.version} fails a gate: {failed}")
    new, old = challenger.metrics[task.primary], champion.metrics[task.primary]
    # Rounded like the metrics, so float noise cannot turn a tie into an improvement.
    gain = round(task.better(new, old), DIGITS)
    relative = round(task.relative_improvement(new, old), DIGITS) if gain else 0.0
    comparison = (
        f"{task.primary} {new:.4f} vs champion version {champion.version}'s {old:.4f}, "
        f"{task.direction} (gain {gain:+.4f}, promotion.min_improvement "
        f"{settings.min_improvement}; relative {relative:+.2%}, "
        f"promotion.min_relative_improvement {settings.min_relative_improvement})"
    )
    if gain > settings.min_improvement and relative > settings.min_relative_improvement:
        return Decision(True, f"challenger beats the champion: {comparison}")
    return Decision(False, f"challenger does not beat the champion: {comparison}")


@dataclass(frozen=True)
class Promotion:
    """What `promote` decided, as written to reports/promotion.json."""

    registered_model: str
    outcome: Outcome
    reason: str
    champion_version: int
    # What `make deploy` compares with models/model.json: only the champion's artifact ships.
    champion_model_sha256: str
    # The champion's model.onnx sha256 when ONNX Runtime serves it (the deployment's
    # ONNX_SHA256), None when scikit-learn does. Reports written before ONNX export lack it.
    champion_onnx_sha256: str | None
    challenger: Contender | None
    previous_champion: Contender | None
    test_data_sha256: str
    min_improvement: float
    decided_at: str
    # The metric compared (the task's primary) and the relative margin; reports written before
    # tasks lack them (roc_auc, no relative margin).
    metric: str = "roc_auc"
    min_relative_improvement: float = 0.0


class _Common(TypedDict):
    """The fields of a Promotion that do not depend on the decision."""

    registered_model: str
    test_data_sha256: str
    min_improvement: float
    decided_at: str
    metric: str
    min_relative_improvement: float


def promote(config: Config) -> Promotion:
    """Score the new version and the champion on the test set, decide, record, move aliases."""
    paths = config.paths
    model, record = load_verified_model(paths.models_dir)
    name, version = _registration(record, paths.models_dir)
    registry = Registry(config)
    registered = registry.version(name, version)
    _check_same_model(registered, record, registry.location)
    current = registry.aliased(name, CHAMPION)
    common: _Common = {
        "registered_model": name,
        "test_data_sha256": sha256_file(paths.test_data),
        "min_improvement": config.promotion.min_improvement,
        "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "metric": tasks.task_metrics(LABEL).primary,
        "min_relative_improvement": config.promotion.min_relative_improvement,
    }
    if current is not None and current.version == version:
        # Nothing to compare, and the tags of the original decision stay as they are.
        promotion = Promotion(
            outcome="already_champion",
            reason=f"version {version} is already the champion",
            champion_version=version,
            champion_model_sha256=record.model_sha256,
            champion_onnx_sha256=served_onnx_sha256(record),
            challenger=None,
            previous_champion=None,
            **common,
        )
        write_promotion_report(promotion, paths.promotion_report)
        return promotion

    test = read_frame(paths.test_data)
    # The Dummy estimator of the current data (training measured it): both contenders are
    # scored on the same test set, so the same baseline gate applies to both.
    baseline = recorded_baseline(record.metrics, paths.models_dir)
    challenger = _score(model, registered, test, config, baseline)
    champion = None
    if current is not None:
        _check_same_task(current)
        champion = _score(_champion_model(registry, current), current, test, config, baseline)
    decision = decide(challenger, champion, config.promotion)
    promotion = Promotion(
        outcome="promoted" if decision.promoted else "kept_champion",
        reason=decision.reason,
        champion_version=version if decision.promoted or champion is None else champion.version,
        champion_model_sha256=(
            record.model_sha256
            if decision.promoted or current is None
            else current.tags.get("model_sha256", "unknown")
        ),
        champion_onnx_sha256=(
            served_onnx_sha256(record)
            if decision.promoted or current is None
            else _tagged_onnx_sha256(current)
        ),
        challenger=challenger,
        previous_champion=champion,
        **common,
    )
    registry.set_alias(name, CHALLENGER, version)
    registry.set_tags(name, version, decision_tags(promotion, challenger))
    if decision.promoted:
        if champion is not None:
            registry.set_tags(
                name,
                champion.version,
                {
                    "promotion.replaced_by": str(version),
                    "promotion.replaced_at": common["decided_at"],
                },
            )
        registry.set_alias(name, CHAMPION, version)
    report = write_promotion_report(promotion, paths.promotion_report)
    if registered.run_id:
        # The decision travels with the version: `fetch-model` brings it back beside the model
        # when the pipeline ran on a cluster.
        registry.log_run_file(registered.run_id, report)
    return promotion


def served_onnx_sha256(record: ModelRecord) -> str | None:
    """model.onnx's sha256 when the record says ONNX Runtime serves the model, else None."""
    inference = record.inference if isinstance(record.inference, dict) else {}
    return record.onnx_sha256 if inference.get("runtime") == "onnx" else None


def _tagged_onnx_sha256(version: RegisteredVersion) -> str | None:
    """The `onnx_sha256` tag training set on a registry version (None: "none", or older)."""
    value = version.tags.get("onnx_sha256", "none")
    return None if value == "none" else value


def decision_tags(promotion: Promotion, challenger: Contender) -> dict[str, str]:
    """Tags of the challenger version: the decision, both versions' numbers and the data used."""
    champion = promotion.previous_champion
    metric = promotion.metric
    return {
        "promotion.decision": promotion.outcome,
        "promotion.reason": promotion.reason,
        "promotion.decided_at": promotion.decided_at,
        "promotion.champion_before": str(champion.version) if champion else "none",
        "promotion.champion_after": str(promotion.champion_version),
        "promotion.metric": metric,
        f"promotion.challenger_{metric}": str(challenger.metrics[metric]),
        f"promotion.champion_{metric}": str(champion.metrics[metric]) if champion else "none",
        "promotion.challenger_gates": _gate_summary(challenger.gates),
        "promotion.champion_gates": _gate_summary(champion.gates) if champion else "none",
        "promotion.test_data_sha256": promotion.test_data_sha256,
        "promotion.champion_training_data_sha256": (
            (champion.training_data_sha256 or "unknown") if champion else "none"
        ),
        "promotion.min_improvement": str(promotion.min_improvement),
        "promotion.min_relative_improvement": str(promotion.min_relative_improvement),
    }


def write_promotion_report(promotion: Promotion, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(promotion), indent=2) + "\n", encoding="utf-8")
    return path


# What readers of reports/promotion.json (release-check, pin-image, the model card) rely on.
REPORT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "outcome": str,
    "reason": str,
    "champion_version": int,
    "champion_model_sha256": str,
}


def read_promotion_report(path: Path) -> dict[str, Any] | None:
    """The last decision as written, None when `promote` never ran here.

    A file that is not the JSON object `promote` writes raises ArtifactIntegrityError naming
    the problem: `make promote` writes it again.
    """
    if not path.exists():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ArtifactIntegrityError(f"{path} is not valid JSON: {error}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise ArtifactIntegrityError(f"{path} cannot be read: {error}") from error
    if not isinstance(report, dict):
        raise ArtifactIntegrityError(
            f"{path} must hold a JSON object, not {type(report).__name__}: `make promote` "
            "writes it again"
        )
    wrong = [
        name
        for name, kind in REPORT_FIELDS.items()
        if not isinstance(report.get(name), kind) or isinstance(report.get(name), bool)
    ]
    if wrong:
        raise ArtifactIntegrityError(
            f"{path} lacks or mistypes {', '.join(wrong)}: it was not written by `promote` "
            "(`make promote` writes it again)"
        )
    return report


def _registration(record: ModelRecord, model_dir: Path) -> tuple[str, int]:
    if record.registered_model_name is None or record.registered_model_version is None:
        raise ArtifactIntegrityError(
            f"{record_path(model_dir)} names no registered model version: the model was not "
            "registered in MLflow; re-train it (`make pipeline`)"
        )
    return record.registered_model_name, int(record.registered_model_version)


def _check_same_model(registered: RegisteredVersion, record: ModelRecord, location: str) -> None:
    """The registry version must hold the very model file the record describes."""
    held = registered.tags.get("model_sha256")
    if held != record.model_sha256:
        raise ArtifactIntegrityError(
            f"version {registered.version} of '{registered.name}' in the registry at {location} "
            f"holds model sha256 {held or '(none)'}, but models/model.json records "
            f"{record.model_sha256}: the model was registered in another tracking store; "
            "re-train against this one (`make pipeline` with MLFLOW_TRACKING_URI set)"
        )


# A registry version's task when it has no `task` tag: trained before tasks existed.
UNTAGGED_TASK = "binary"


def _check_same_task(champion: RegisteredVersion) -> None:
    """The champion must predict what the challenger does (its `task` tag, or binary)."""
    task = champion.tags.get("task", UNTAGGED_TASK)
    if task != LABEL.task:
        raise PipelineError(
            f"champion version {champion.version} of '{champion.name}' is a {task} model, but "
            f"the label '{LABEL.name}' of data/columns.yaml is {LABEL.task}: the two cannot be "
            "compared. If the data changed on purpose (`make use-data`), register under a new "
            f"name (params mlflow.registered_model) or remove its `{CHAMPION}` alias"
        )


def _champion_model(registry: Registry, champion: RegisteredVersion) -> Any:
    """The champion's pipeline, verified like every load (its model_sha256 tag)."""
    try:
        return registry.load_verified_model(champion)
    except ArtifactIntegrityError as error:
        raise ArtifactIntegrityError(
            f"the champion cannot be compared with: {error}. To replace it without a "
            f"comparison, remove its alias `{CHAMPION}` (in MLflow), then `make promote`"
        ) from None


def _score(
    model: Any,
    registered: RegisteredVersion,
    test: pd.DataFrame,
    config: Config,
    baseline: dict[str, float],
) -> Contender:
    try:
        threshold = version_threshold(registered, config.model.fixed_threshold)
        evaluation = evaluate_model(model, test, threshold, baseline=baseline)
    except (KeyError, ValueError) as error:
        raise PipelineError(
            f"version {registered.version} of '{registered.name}' cannot score "
            f"{config.paths.test_data}: {error}. If the data changed on purpose (`make "
            "use-data`), the old champion cannot compete: register under a new name (params "
            "mlflow.registered_model) or remove its `champion` alias"
        ) from error
    return Contender(
        version=registered.version,
        metrics=evaluation.metrics,
        gates=run_gates(evaluation, config),
        training_data_sha256=registered.tags.get("training_data_sha256"),
    )


def _gate_summary(gates: list[GateResult]) -> str:
    return "; ".join(
        f"{gate.name} {gate.value:.4f} {'pass' if gate.passed else 'FAIL'}" for gate in gates
    )
