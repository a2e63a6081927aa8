"""Run one pipeline stage (or batch scoring) in a workspace folder built from KFP artifacts.

Why a workspace and not the artifacts' own paths: every stage reads and writes the files that
params.yaml's repo root and dvc.yaml name (data/raw/credit.csv, models/model.joblib, ...). Each
KFP task runs in a pod (or, with `kfp.local`, a subprocess) of its own, so nothing on disk is
shared between tasks: a task gets its inputs as artifacts, copies them into a fresh folder laid
out like the repository, writes params.yaml there, runs the project's own stage function, and
copies the files the stage wrote into its output artifacts. Each artifact is a folder holding
those files at their repository paths, so the same code works with the local runner and with
object storage on a cluster, and no stage logic is written twice.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..audit import PIPELINE_RUN_ID_ENV_VAR, SOURCE_COMMIT_ENV_VAR
from ..config import PARAMS_FILE_NAME, Config, load_config
from ..errors import PipelineError
from .data_file import DataFile, place
from .remote_files import copy_out, fetch_input


def _prepare(config: Config) -> None:
    path = config.data.path
    # No data.path at all: prepare() below reports it (DataSourceError).
    if config.data.source == "file" and path is not None and not (config.root / path).is_file():
        raise PipelineError(
            f"params.yaml data.source is `file`, but the run was given no {config.data.path}: "
            "compile the pipeline again (`make kfp-compile`), which names the file in the DVC "
            "remote"
        )
    from ..data.prepare import prepare

    prepare(config)


def _validate(config: Config) -> None:
    from ..data.validate import validate

    validate(config)


def _train(config: Config) -> None:
    from ..train import train

    train(config)


def _evaluate(config: Config) -> None:
    from ..evaluate import evaluate

    evaluate(config)


def _promote(config: Config) -> None:
    from ..promotion import promote

    promote(config)


def _model_card(config: Config) -> None:
    from ..audit import read_record
    from ..model_card import write_model_card
    from ..registry import Registry

    card = write_model_card(config)
    # With the version's run, beside its model and promotion report: CD's `fetch-model` has no
    # other way to the card a cluster run wrote.
    run_id = read_record(config.paths.models_dir).mlflow_run_id
    if run_id:
        Registry(config).log_run_file(run_id, card)


STAGES: dict[str, Callable[[Config], None]] = {
    "prepare": _prepare,
    "validate": _validate,
    "train": _train,
    "evaluate": _evaluate,
    "promote": _promote,
    "model-card": _model_card,
}

# What each stage writes, by output artifact: repository paths (dvc.yaml's outs and metrics).
OUTPUTS: dict[str, dict[str, tuple[str, ...]]] = {
    "prepare": {"raw": ("data/raw/credit.csv",)},
    "validate": {
        "train_set": ("data/validated/train.csv",),
        "test_set": ("data/validated/test.csv",),
        "validation": ("reports/validation.json",),
    },
    "train": {"model": ("models/model.joblib", "models/model.onnx", "models/model.json")},
    "evaluate": {
        "reports": (
            "reports/metrics.json",
            "reports/fairness.json",
            "reports/plots/roc.csv",
            "reports/plots/confusion.csv",
            "reports/plots/predicted.csv",
        )
    },
    "promote": {"promotion": ("reports/promotion.json",)},
    "model-card": {"card": ("docs/model_card.md",)},
}


def run_stage(
    stage: str,
    params_yaml: str,
    inputs: Sequence[str],
    outputs: Mapping[str, str],
    source_commit: str | None = None,
    kfp_run_id: str | None = None,
    data: DataFile | None = None,
) -> None:
    """Run `stage` with `params_yaml` on the input artifact folders; fill the output folders.

    `outputs` maps the stage's output names (OUTPUTS) to artifact paths. `source_commit`: the
    commit the audit record names, since the workspace is no git checkout. `kfp_run_id`: the
    Kubeflow run the task belongs to, which training tags the registry version with. `data`:
    the adopted data file (params `data.source: file`), placed at `data.path` first.
    """
    if stage not in STAGES:
        raise PipelineError(f"unknown stage {stage!r}; the stages are {', '.join(STAGES)}")
    expected = set(OUTPUTS[stage])
    if set(outputs) != expected:
        raise PipelineError(f"stage {stage} writes {sorted(expected)}, got {sorted(outputs)}")
    if source_commit:
        os.environ[SOURCE_COMMIT_ENV_VAR] = source_commit
    if kfp_run_id:
        os.environ[PIPELINE_RUN_ID_ENV_VAR] = kfp_run_id
    with tempfile.TemporaryDirectory(prefix=f"{stage}-") as workspace:
        _run_in(Path(workspace), stage, params_yaml, inputs, outputs, data)


def _run_in(
    root: Path,
    stage: str,
    params_yaml: str,
    inputs: Sequence[str],
    outputs: Mapping[str, str],
    data: DataFile | None = None,
) -> None:
    for folder in inputs:
        shutil.copytree(folder, root, dirs_exist_ok=True)
    (root / PARAMS_FILE_NAME).write_text(as_yaml(params_yaml), encoding="utf-8")
    config = load_config(root / PARAMS_FILE_NAME)
    if data is not None and data.uri and config.data.source == "file" and config.data.path:
        place(data, root / config.data.path)
    STAGES[stage](config)
    for name, artifact in outputs.items():
        for relative in OUTPUTS[stage][name]:
            source = root / relative
            # Optional outputs (fairness.json off the enterprise tier) are simply absent.
            if source.is_file():
                target = Path(artifact) / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        Path(artifact).mkdir(parents=True, exist_ok=True)


def run_scoring(
    params_yaml: str,
    input_uri: str,
    model_version: str,
    allow_rejects: bool,
    output_dir: str,
    output_uri: str = "",
) -> None:
    """Score the file at `input_uri` with a registered `model_version` (scoring.py), writing
    predictions<suffix> (and predictions.rejects<suffix>) into `output_dir`, and copying them
    under `output_uri` when given. Raises RowsRejectedError when rows were rejected, unless
    `allow_rejects`: the files are written first, so the rejects can be read."""
    from ..errors import RowsRejectedError
    from ..scoring import load_scorer, score_file

    if not model_version:
        raise PipelineError("the scoring pipeline needs a model version: `champion` or a number")
    with tempfile.TemporaryDirectory(prefix="score-") as workspace:
        root = Path(workspace)
        (root / PARAMS_FILE_NAME).write_text(as_yaml(params_yaml), encoding="utf-8")
        config = load_config(root / PARAMS_FILE_NAME)
        local_input = fetch_input(input_uri, root / "input")
        model = load_scorer(config, root / "models", model_version)
        target = Path(output_dir)
        target.mkdir(parents=True, exist_ok=True)
        summary = score_file(model, local_input, target / f"predictions{local_input.suffix}")
    written = [summary.output, *([summary.rejects] if summary.rejects else [])]
    if output_uri:
        copy_out(written, output_uri)
    if summary.rejected and not allow_rejects:
        raise RowsRejectedError(
            f"{summary.rejected} of {summary.rows} rows of {input_uri} were rejected (see "
            f"{written[-1].name} in the task's output); allow_rejects=True scores the rest"
        )


def as_yaml(params: str) -> str:
    """params.yaml's text from the pipeline parameter: one line of JSON, written back as YAML.

    JSON is YAML, except for numbers like `1e-05` that YAML 1.1 (PyYAML) reads as strings;
    dumping the parsed JSON writes `1.0e-05`, a float to both.
    """
    try:
        parsed = json.loads(params)
    except json.JSONDecodeError:
        return params  # already YAML (a parameter set by hand)
    return yaml.safe_dump(parsed, sort_keys=False)


def read_metrics(reports: str | Path) -> dict[str, Any]:
    """The held-out metrics of an `evaluate` reports artifact (reports/metrics.json)."""
    path = Path(reports) / "reports" / "metrics.json"
    metrics: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return metrics
