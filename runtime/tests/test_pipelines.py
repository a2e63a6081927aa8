"""pipelines/workspace.py: what a Kubeflow task runs, without kfp: each stage in a workspace
built from its input artifact folders, its outputs filed into its output artifact folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlops_stack_runtime.errors import PipelineError
from mlops_stack_runtime.pipelines.workspace import OUTPUTS, as_yaml, read_metrics, run_stage


def params_of(make_project, overrides: dict | None = None) -> str:
    return (make_project(overrides).root / "params.yaml").read_text(encoding="utf-8")


def artifacts(tmp_path: Path, stage: str) -> dict[str, str]:
    return {name: str(tmp_path / stage / name) for name in OUTPUTS[stage]}


def test_the_stages_hand_their_files_on_as_artifacts(tmp_path: Path, make_project) -> None:
    params = params_of(make_project)
    prepared = artifacts(tmp_path, "prepare")
    run_stage("prepare", params, [], prepared)
    assert (Path(prepared["raw"]) / "data" / "raw" / "credit.csv").is_file()

    validated = artifacts(tmp_path, "validate")
    run_stage("validate", params, [prepared["raw"]], validated)
    assert (Path(validated["train_set"]) / "data" / "validated" / "train.csv").is_file()
    assert not (Path(validated["train_set"]) / "data" / "validated" / "test.csv").exists()

    trained = artifacts(tmp_path, "train")
    run_stage("train", params, [validated["train_set"], validated["test_set"]], trained)
    record = json.loads((Path(trained["model"]) / "models" / "model.json").read_text())

    evaluated = artifacts(tmp_path, "evaluate")
    run_stage("evaluate", params, [validated["test_set"], trained["model"]], evaluated)
    assert read_metrics(evaluated["reports"]) == record["metrics"]
    # Nothing of the workspaces is left in the artifacts but the declared files.
    assert sorted(p.name for p in Path(trained["model"]).rglob("*") if p.is_file()) == [
        "model.joblib",
        "model.json",
        "model.onnx",
    ]


def test_a_stage_refuses_unknown_names_and_missing_outputs(tmp_path: Path, make_project) -> None:
    params = params_of(make_project)
    with pytest.raises(PipelineError, match="unknown stage 'deploy'"):
        run_stage("deploy", params, [], {})
    with pytest.raises(PipelineError, match="stage validate writes"):
        run_stage("validate", params, [], {"train_set": str(tmp_path)})


def test_prepare_refuses_the_file_source(tmp_path: Path, make_project) -> None:
    params = params_of(make_project, {"data.source": "file", "data.path": "data/credit.csv"})
    with pytest.raises(PipelineError, match="DVC remote"):
        run_stage("prepare", params, [], artifacts(tmp_path, "prepare"))


def test_the_json_parameter_becomes_yaml_that_keeps_its_numbers() -> None:
    # PyYAML reads JSON's 1e-05 as a string; the workspace's params.yaml must keep it a float.
    params = json.dumps({"serving": {"onnx_tolerance": 1e-05}, "data": {"n_rows": 100}})
    assert yaml.safe_load(as_yaml(params)) == {
        "serving": {"onnx_tolerance": 1e-05},
        "data": {"n_rows": 100},
    }
    assert as_yaml("data:\n  n_rows: 100\n") == "data:\n  n_rows: 100\n"
