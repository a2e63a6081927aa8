"""The cluster tiers' Kubeflow Pipelines v2 pipeline (src/<package>/pipelines, `make kfp-*`).

Fast: the pipeline of each cluster tier and orchestrator compiles (with this environment's kfp,
no project environment) and loads back with the stages the tier runs; startup has none of it.
The scoring pipeline compiles and loads back too. Slow: on an enterprise render, `make kfp-local`
gives the metrics `make pipeline` gives, the compiled files carry the commit and the template
release, `make kfp-score-local` scores as `make score` does, and `make kfp-run` refuses cleanly.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml

from .conftest import TEMPLATE_DIR, make, rendered_files, run
from .test_serving import emulated_image

PACKAGE = "credit_risk_model"
RUNTIME_SRC = TEMPLATE_DIR / "runtime" / "src"
PROJECT = "credit-risk-model"
DVC_STAGES = ("prepare", "validate", "train", "evaluate")
CLUSTER_ANSWERS = [
    {"stack_tier": tier, "orchestrator": orchestrator}
    for tier in ("scale-up", "enterprise")
    for orchestrator in ("kubeflow", "ci-runner")
]

# Compiles the runtime's pipelines for the rendered project in a process of its own (every
# render has the same package name) and prints what came back from
# kfp.components.load_component_from_file.
COMPILE = """
import json, sys
import yaml
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[4])
from kfp import compiler
from kfp.components import load_component_from_file
from mlops_stack_runtime.pipelines.scoring import build_scoring_pipeline
from mlops_stack_runtime.pipelines.training import PipelineProject, build_pipeline
params = yaml.safe_load(open(sys.argv[5], encoding="utf-8"))
project = PipelineProject(params["project"]["slug"], "Credit Risk Model", params["project"]["tier"])
out = {}
for build, path in ((build_pipeline, sys.argv[2]), (build_scoring_pipeline, sys.argv[3])):
    pipeline = build(
        "registry.example.com/ml/credit-risk-model-trainer:abc123",
        json.dumps({"project": {"slug": "credit-risk-model"}}),
        project,
        git_commit="abc123",
        template_release="1.2.3",
    )
    compiler.Compiler().compile(pipeline, path)
    loaded = load_component_from_file(path)
    tasks = sorted(loaded.pipeline_spec.root.dag.tasks)
    out[build.__name__] = {"name": loaded.name, "tasks": tasks}
print(json.dumps(out))
"""


@pytest.fixture(scope="module", params=CLUSTER_ANSWERS, ids=lambda a: "-".join(a.values()))
def compiled(request, render_once, tmp_path_factory) -> tuple[dict[str, str], Path, dict]:
    project = render_once(request.param)
    folder = tmp_path_factory.mktemp("kfp")
    output, scoring = folder / "pipeline.yaml", folder / "scoring-pipeline.yaml"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            COMPILE,
            str(project / "src"),
            str(output),
            str(scoring),
            str(RUNTIME_SRC),
            str(project / "params.yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    loaded = json.loads(done.stdout)
    return (
        request.param,
        project,
        {
            **loaded["build_pipeline"],
            "path": output,
            "scoring": {**loaded["build_scoring_pipeline"], "path": scoring},
        },
    )


def expected_stages(tier: str) -> set[str]:
    return {*DVC_STAGES, "promote"} | ({"model-card"} if tier == "enterprise" else set())


def test_the_pipeline_has_the_stages_the_tier_runs(compiled) -> None:
    answers, project, loaded = compiled
    assert loaded["name"] == "credit-risk-model-training"
    assert set(loaded["tasks"]) == expected_stages(answers["stack_tier"])
    # Every stage of dvc.yaml is a task: the pipeline mirrors `make pipeline`.
    dvc = yaml.safe_load((project / "dvc.yaml").read_text())
    assert set(dvc["stages"]) == set(DVC_STAGES)


def test_tasks_run_the_trainer_image_and_read_the_tracking_uri_from_a_secret(compiled) -> None:
    answers, _, loaded = compiled
    documents = list(yaml.safe_load_all(loaded["path"].read_text()))
    spec, platform = documents[0], documents[1]
    executors = spec["deploymentSpec"]["executors"]
    for executor in executors.values():
        container = executor["container"]
        assert container["image"] == "registry.example.com/ml/credit-risk-model-trainer:abc123"
        # The image has kfp: nothing is pip-installed when a task starts.
        assert "pip install" not in " ".join(container["command"])
    secrets = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    # The tasks that reach MLflow: train logs and registers, promote moves the aliases, and the
    # model card is logged with the version's run (where `fetch-model` finds it).
    tracked = {"exec-train", "exec-promote"}
    if answers["stack_tier"] == "enterprise":
        tracked.add("exec-model-card")
    assert set(secrets) == tracked
    for config in secrets.values():
        [secret] = config["secretAsEnv"]
        assert secret["secretName"] == "credit-risk-model-mlflow"
        [key] = secret["keyToEnv"]
        assert key == {"envVar": "MLFLOW_TRACKING_URI", "secretKey": "tracking-uri"}
    # The train task tags its registry version with the run's id, filled in by KFP itself.
    train_inputs = spec["root"]["dag"]["tasks"]["train"]["inputs"]["parameters"]
    assert train_inputs["kfp_run_id"]["runtimeValue"]["constant"] == "{{$.pipeline_job_uuid}}"
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert parameters["git_commit"]["defaultValue"] == "abc123"
    assert parameters["template_release"]["defaultValue"] == "1.2.3"


def test_the_scoring_pipeline_scores_in_the_trainer_image_with_the_registry(compiled) -> None:
    _, _, loaded = compiled
    scoring = loaded["scoring"]
    assert scoring["name"] == "credit-risk-model-scoring"
    assert scoring["tasks"] == ["score"]
    spec, platform = list(yaml.safe_load_all(scoring["path"].read_text()))
    [executor] = spec["deploymentSpec"]["executors"].values()
    assert executor["container"]["image"].endswith("credit-risk-model-trainer:abc123")
    # The registry's champion scores: the task reads the tracking URI from the secret.
    [secret] = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-score"][
        "secretAsEnv"
    ]
    assert secret["secretName"] == "credit-risk-model-mlflow"
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert "defaultValue" not in parameters["input_uri"], "the input is required"
    assert parameters["model_version"]["defaultValue"] == "champion"
    assert parameters["allow_rejects"]["defaultValue"] is False


def test_kfp_is_in_the_pipelines_group_only(compiled) -> None:
    answers, project, _ = compiled
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    groups = pyproject["dependency-groups"]

    def has_kfp(deps: list) -> bool:  # entries are requirements or {include-group = ...}
        return any(isinstance(d, str) and (d.startswith("kfp") or "[pipelines]" in d) for d in deps)

    assert {name for name, deps in groups.items() if has_kfp(deps)} == {"pipelines"}
    assert not has_kfp(pyproject["project"]["dependencies"])
    assert "pipelines" in pyproject["tool"]["uv"]["default-groups"]  # `make setup` syncs it
    makefile = (project / "Makefile").read_text()
    targets = (
        "kfp-compile",
        "kfp-local",
        "kfp-run",
        "kfp-schedule",
        "kfp-score",
        "kfp-score-local",
    )
    for target in targets:
        assert re.search(rf"^{target}:.*## ", makefile, re.MULTILINE), target
    retrain = re.search(r"^RETRAIN := (.*)$", makefile, re.MULTILINE)
    assert retrain
    assert ("kfp-run" in retrain.group(1)) == (answers["orchestrator"] == "kubeflow")


def test_startup_has_no_kubeflow_files_or_targets(copie_session) -> None:
    result = copie_session.copy(extra_answers={"stack_tier": "startup"})
    assert result.exit_code == 0, result.exception
    project = Path(result.project_dir)
    assert "orchestrator" not in result.answers
    assert not (project / "src" / PACKAGE / "pipelines").exists()
    for path in rendered_files(project):
        if path.name == ".copier-answers.yml":  # its _src_path may name anything
            continue
        if path.suffix in {".py", ".toml", ".yml", ".yaml", ".md"} or path.name in {
            "Makefile",
            "Dockerfile",
            "Jenkinsfile",
        }:
            text = path.read_text()
            assert not re.search(r"\bkfp|kubeflow", text, re.IGNORECASE), path


# --- slow: an enterprise render's own make targets ------------------------------------------


@pytest.fixture(scope="module")
def enterprise(copie_session) -> dict:
    """Enterprise + GitHub after `make setup pipeline kfp-local` (wall times kept)."""
    result = copie_session.copy(extra_answers={"stack_tier": "enterprise"})
    assert result.exit_code == 0, result.exception
    project = Path(result.project_dir)
    make(project, "setup")
    times = {}
    for target in ("pipeline", "kfp-local"):
        start = time.monotonic()
        done = make(project, target)
        times[target] = time.monotonic() - start
    print(f"wall time: {times}")
    return {"path": project, "times": times, "local": done.stdout}


@pytest.mark.slow
def test_kfp_local_gives_the_metrics_of_make_pipeline(enterprise) -> None:
    project = enterprise["path"]
    dvc = json.loads((project / "reports" / "metrics.json").read_text())
    local = json.loads((project / "build" / "kfp-local" / "metrics.json").read_text())
    assert set(local) == set(dvc)
    for name, value in dvc.items():
        assert local[name] == pytest.approx(value, abs=1e-9), name
    assert "metrics written to build/kfp-local/metrics.json" in enterprise["local"]
    # The model trained in a task names the commit the pipeline was built from, as with dvc.
    [record] = (project / "build" / "kfp-local").glob("*/train/model/models/model.json")
    dvc_record = json.loads((project / "models" / "model.json").read_text())
    assert json.loads(record.read_text())["git_commit"] == dvc_record["git_commit"]
    assert dvc_record["git_commit"]


@pytest.mark.slow
def test_kfp_compile_names_the_commit_and_the_template_release(enterprise) -> None:
    project = enterprise["path"]
    make(project, "kfp-compile")
    text = (project / "build" / "pipeline.yaml").read_text()
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()
    release = yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"]
    spec = next(yaml.safe_load_all(text))
    assert spec["pipelineInfo"]["name"] == "credit-risk-model-training"
    assert f"commit {commit}, template {release}" in spec["pipelineInfo"]["description"]
    image = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["image"]
    assert image == f"registry.example.com/ml/credit-risk-model-trainer:{commit}"
    scoring = next(yaml.safe_load_all((project / "build" / "scoring-pipeline.yaml").read_text()))
    assert scoring["pipelineInfo"]["name"] == "credit-risk-model-scoring"
    assert f"commit {commit}, template {release}" in scoring["pipelineInfo"]["description"]


@pytest.mark.slow
def test_kfp_score_local_scores_with_the_champion_as_make_score_does(enterprise, tmp_path) -> None:
    """The scoring pipeline on the local runner, on held-out rows with one broken: the same
    predictions and rejects as `make score` with the registry's champion."""
    project = enterprise["path"]
    held_out = (project / "data" / "validated" / "test.csv").read_text().splitlines()
    header, rows = held_out[0], held_out[1:31]
    columns = yaml.safe_load((project / "src" / PACKAGE / "data" / "columns.yaml").read_text())
    first = columns["features"][0]["name"]  # a model input, whatever the declaration
    broken = rows[6].split(",")
    broken[header.split(",").index(first)] = "[not a value]"
    source = tmp_path / "batch.csv"
    source.write_text("\n".join([header, *rows[:6], ",".join(broken), *rows[7:]]) + "\n")

    refused = make(project, "kfp-score-local", f"INPUT={source}", check=False)
    assert refused.returncode != 0, "a rejected row fails the run unless allowed"
    assert "1 of 30 rows" in refused.stdout + refused.stderr
    done = make(project, "kfp-score-local", f"INPUT={source}", "ALLOW_REJECTS=1")
    written = [
        Path(line.split(": ", 1)[1])
        for line in done.stdout.splitlines()
        if line.startswith("written: ")
    ]
    assert sorted(p.name for p in written) == ["predictions.csv", "predictions.rejects.csv"]
    expected = tmp_path / "expected.csv"
    make(
        project,
        "score",
        f"INPUT={source}",
        f"OUTPUT={expected}",
        "MODEL_VERSION=champion",
        "ALLOW_REJECTS=1",
    )
    folder = written[0].parent
    assert (folder / "predictions.csv").read_text() == expected.read_text()
    assert (folder / "predictions.rejects.csv").read_text() == (
        tmp_path / "expected.rejects.csv"
    ).read_text()


TAG_OF_VERSION = """
import sys
import mlflow
uri, name, version = sys.argv[1:]
print(mlflow.MlflowClient(uri).get_model_version(name, version).tags["pipeline_run_id"])
"""


@pytest.mark.slow
def test_fetch_model_brings_back_what_a_kubeflow_run_trained(enterprise, tmp_path) -> None:
    """CD's second half with `orchestrator: kubeflow` (`make kfp-train` after the run): the
    version the local run trained, found by its run id, comes into a checkout that never
    trained, byte for byte as the run's tasks wrote it, and release-check judges it."""
    project = enterprise["path"]
    [run_root] = (project / "build" / "kfp-local").glob(f"{PROJECT}-training-*")
    trained = run_root / "train" / "model" / "models"
    record = json.loads((trained / "model.json").read_text())
    tracking = f"sqlite:///{project / 'mlruns' / 'mlflow.db'}"
    kfp_run = subprocess.run(
        [
            str(project / ".venv" / "bin" / "python"),
            "-c",
            TAG_OF_VERSION,
            tracking,
            record["registered_model_name"],
            str(record["registered_model_version"]),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert kfp_run, "the train task tagged its version with the run's id"
    # A checkout without models/, reports/ or docs/: params.yaml alone, the registry of the run.
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "params.yaml").write_bytes((project / "params.yaml").read_bytes())
    env = {"PARAMS_FILE": str(checkout / "params.yaml"), "MLFLOW_TRACKING_URI": tracking}

    refused = make(project, "fetch-model", "KFP_RUN=no-such-run", check=False, **env)
    assert refused.returncode != 0
    assert "was trained by pipeline run no-such-run" in refused.stderr
    assert sorted(path.name for path in checkout.iterdir()) == ["params.yaml"]

    done = make(project, "fetch-model", f"KFP_RUN={kfp_run}", **env)
    assert f"fetched version {record['registered_model_version']}" in done.stdout
    for name in ("model.joblib", "model.onnx", "model.json"):
        assert (checkout / "models" / name).read_bytes() == (trained / name).read_bytes(), name
    [promotion] = run_root.glob("promote/promotion/reports/promotion.json")
    assert (checkout / "reports" / "promotion.json").read_bytes() == promotion.read_bytes()
    [card] = run_root.glob("model-card/card/docs/model_card.md")
    assert (checkout / "docs" / "model_card.md").read_bytes() == card.read_bytes()

    report = json.loads(promotion.read_text())
    check = run(
        [str(project / ".venv" / "bin" / PROJECT), "release-check"], project, check=False, **env
    )
    ships = report["champion_model_sha256"] == record["model_sha256"]
    assert check.returncode == (0 if ships else 3), check.stdout + check.stderr
    assert check.stdout.startswith("deploy: " if ships else "skip: ")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("host", ["", "closed"])
def test_kfp_run_refuses_cleanly_without_a_reachable_host(enterprise, host) -> None:
    url = f"http://127.0.0.1:{closed_port()}" if host else ""
    done = make(enterprise["path"], "kfp-run", check=False, KFP_HOST=url)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    if host:
        assert f"error: cannot reach Kubeflow Pipelines at {url}" in done.stderr
    else:
        assert "error: KFP_HOST is not set" in done.stderr


@pytest.mark.slow
def test_the_trainer_stage_has_the_package_kfp_and_the_training_set(enterprise, tmp_path) -> None:
    """`docker build --target trainer` emulated (tests/dockerfile.py): the image the tasks run in
    imports the pipeline module, kfp and MLflow; the server stage is left out."""
    project = enterprise["path"]
    image = emulated_image(project, tmp_path / "image", target="trainer")
    assert image.stage.name == "trainer"
    modules = [
        "kfp",
        "kfp.kubernetes",
        "mlflow",
        "fairlearn",
        "mlops_stack_runtime.pipelines.training",
        PACKAGE,
    ]
    probe = (
        "import importlib.util as u, json, sys; "
        "print(json.dumps({m: u.find_spec(m) is not None for m in sys.argv[1:]}))"
    )
    found = run(image.command(["python", "-c", probe, *modules]), image.workdir, **image.env)
    assert json.loads(found.stdout) == dict.fromkeys(modules, True)
    assert not (image.root / "app" / "models").exists(), "no model in the trainer image"
