"""A rendered repo runs its own commands for real: `make setup lint test pipeline`, MLflow's
registry, the metric gate, `dvc push` to the local remote, and a no-op second pipeline."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from .conftest import make, run

pytestmark = pytest.mark.slow

REGISTRY_QUERY = """
import json, mlflow
client = mlflow.MlflowClient()
versions = client.search_model_versions("name='{name}'")
print(json.dumps(sorted(int(v.version) for v in versions)))
"""


def registered_versions(project: Path, name: str) -> list[int]:
    tracking = f"sqlite:///{project / 'mlruns' / 'mlflow.db'}"
    out = run(
        [".venv/bin/python", "-c", REGISTRY_QUERY.format(name=name)],
        project,
        MLFLOW_TRACKING_URI=tracking,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_pipeline_writes_metrics_that_pass_the_gate(default_project):
    metrics = json.loads((default_project / "reports" / "metrics.json").read_text())
    assert {"roc_auc", "pr_auc", "f1", "accuracy", "brier"} <= set(metrics)
    assert 0.75 <= metrics["roc_auc"] < 1.0
    plots = default_project / "reports" / "plots"
    # The ROC curve DVC draws: from (0, 0) to (1, 1), never going back.
    roc = list(csv.DictReader((plots / "roc.csv").open()))
    fpr, tpr = ([float(row[axis]) for row in roc] for axis in ("fpr", "tpr"))
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert fpr == sorted(fpr) and tpr == sorted(tpr)
    # One confusion row per held-out sample, each an (actual, predicted) pair of classes.
    confusion = list(csv.DictReader((plots / "confusion.csv").open()))
    test_rows = (default_project / "data" / "validated" / "test.csv").read_text().splitlines()
    assert len(confusion) == len(test_rows) - 1
    assert {(row["actual"], row["predicted"]) for row in confusion} <= {
        ("0", "0"),
        ("0", "1"),
        ("1", "0"),
        ("1", "1"),
    }
    assert {row["actual"] for row in confusion} == {"0", "1"}


def test_make_score_scores_the_held_out_rows_and_rejects_a_broken_one(default_project, tmp_path):
    held_out = (default_project / "data" / "validated" / "test.csv").read_text().splitlines()
    header, rows = held_out[0], held_out[1:21]
    columns = yaml.safe_load(
        (default_project / "src" / "credit_risk_model" / "data" / "columns.yaml").read_text()
    )
    first = columns["features"][0]["name"]  # a model input, whatever the declaration
    broken = rows[4].split(",")
    broken[header.split(",").index(first)] = "[not a value]"
    source = tmp_path / "batch.csv"
    source.write_text("\n".join([header, *rows[:4], ",".join(broken), *rows[5:]]) + "\n")
    output = tmp_path / "scored.parquet"

    refused = make(default_project, "score", f"INPUT={source}", f"OUTPUT={output}", check=False)
    assert refused.returncode == 2, "make's status for the CLI's exit 5 (rows rejected)"
    assert "1 row(s) rejected" in refused.stderr
    read = "import sys, pandas; print(pandas.read_parquet(sys.argv[1]).to_json(orient='records'))"
    python = [".venv/bin/python", "-c", read]
    (rejected,) = json.loads(
        run([*python, str(tmp_path / "scored.rejects.parquet")], default_project).stdout
    )
    assert rejected["row"] == 5 and rejected["reason"].startswith(f"{first}: ")
    scored = json.loads(run([*python, str(output)], default_project).stdout)
    probability = f"{columns['label']['name']}_probability"
    assert len(scored) == 19 and all(0 <= r[probability] <= 1 for r in scored)
    make(default_project, "score", f"INPUT={source}", f"OUTPUT={output}", "ALLOW_REJECTS=1")


def test_registry_holds_a_model_version(default_project):
    assert registered_versions(default_project, "credit-risk-model") == [1]


def test_audit_record_matches_the_artifact(default_project):
    record = json.loads((default_project / "models" / "model.json").read_text())
    artifact = (default_project / "models" / "model.joblib").read_bytes()
    training_data = (default_project / "data" / "validated" / "train.csv").read_bytes()
    assert record["model_sha256"] == hashlib.sha256(artifact).hexdigest()
    assert record["training_data_sha256"] == hashlib.sha256(training_data).hexdigest()
    assert len(record["git_commit"]) == 40
    assert record["mlflow_run_id"]
    assert record["registered_model_name"] == "credit-risk-model"
    assert record["registered_model_version"] == 1
    assert record["metrics"]["roc_auc"] >= 0.75
    assert record["params"]["model"]["estimator"] == "gradient_boosting"


def test_second_pipeline_runs_no_stage(default_project):
    again = make(default_project, "pipeline")
    assert "Data and pipelines are up to date." in again.stdout + again.stderr
    for stage in ("prepare", "validate", "train", "evaluate"):
        assert f"Running stage '{stage}'" not in again.stdout + again.stderr
    assert registered_versions(default_project, "credit-risk-model") == [1]


def test_dvc_push_reaches_the_local_remote(default_project):
    remote = default_project.parent / "credit-risk-model-dvc-storage"
    make(default_project, "push")
    pushed = [p for p in remote.rglob("*") if p.is_file()]
    assert len(pushed) >= 4, "data, split and model files should be in the remote"
    status = run([".venv/bin/dvc", "status", "--cloud"], default_project)
    assert "Cache and remote 'storage' are in sync" in status.stdout


def test_metric_gate_fails_the_pipeline_when_not_met(default_project, tmp_path):
    params_file = default_project / "params.yaml"
    original = params_file.read_text()
    params = yaml.safe_load(original)
    params["gates"]["min_roc_auc"] = 0.999
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        failed = make(default_project, "pipeline", check=False)
    finally:
        params_file.write_text(original)
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert "roc_auc" in output
    assert "0.999" in output
    assert "Running stage 'train'" not in output, "only the gate's stage re-runs"


def test_audit_covers_every_locked_package_and_never_passes_unchecked(default_project):
    result = make(default_project, "audit", check=False)
    output = result.stdout + result.stderr
    exported = (default_project / "build" / "audit-requirements.txt").read_text()
    audited = {canonical(name) for name in re.findall(r"^([A-Za-z0-9._-]+)==", exported, re.M)}
    lock = tomllib.loads((default_project / "uv.lock").read_text())
    locked = {canonical(p["name"]) for p in lock["package"] if "registry" in p.get("source", {})}
    assert audited == locked, "every package of uv.lock, all groups, and only those"
    if "could not be audited" in output:
        # No advisory service reachable (an offline runner): a failure, never a quiet pass.
        assert result.returncode != 0, output[-2000:]
    elif result.returncode == 0:
        assert "No known vulnerabilities found" in output
    else:
        assert re.search(r"Found \d+ known vulnerabilit", output), output[-2000:]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
