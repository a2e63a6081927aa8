"""Drift monitoring and the retraining loop in rendered projects.

- startup (the shared default project): `make batch` with and without a shift, `make drift` and
  the CLI's exit codes (0, 3, 4), the reports, the fallback to models/model.json stated in the
  output, the reference found through DVC at a later commit, `make collect` from server logs,
  and `make monitor` re-running the pipeline on drift;
- enterprise (scale-up's `make retrain` runs in test_tiers.py), with a real `mlflow server` on
  127.0.0.1: `make monitor` on a
  shifted batch retrains, a clearly better challenger replaces a crippled champion, a crippled
  challenger is refused, every decision in the version tags; an unusable batch changes nothing;
- the CronJob manifests of deploy/k8s, through kubernetes-validate --strict.

The monitoring code's own tests are the runtime's (runtime/tests/monitoring/).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import make, run
from .test_serving import kustomize
from .test_tiers import REGISTRY_STATE, SLUG, Registry, mlflow_server, set_hyperparameters
from .validators import check_k8s_manifests

CLI = f".venv/bin/{SLUG}"
FEATURE_HEADER = (
    "age,annual_income,loan_amount,loan_term_months,credit_history_years,num_late_payments,"
    "employment_status,employment_years,purpose\n"
)
DRIFTED = {"annual_income", "loan_amount", "num_late_payments"}
# One depth-1 tree: far below the default model, still above the default metric gate.
CRIPPLED = {"n_estimators": 20, "learning_rate": 0.1, "max_depth": 1}


def write_batch(project: Path, name: str, shift: float = 0.0) -> Path:
    """A seeded synthetic batch through `make batch` (relative to the project)."""
    relative = f"data/current/{name}"
    make(project, "batch", f"CURRENT={relative}", "ROWS=2000", "SEED=7", f"SHIFT={shift}")
    return project / relative


def registry_state(project: Path, tracking_uri: str) -> Registry:
    """Aliases and version tags of the project's model, read with the project's MlflowClient."""
    out = run([".venv/bin/python", "-c", REGISTRY_STATE, tracking_uri, SLUG], project)
    state = json.loads(out.stdout.strip().splitlines()[-1])
    tags = {int(version): tags for version, tags in state["tags"].items()}
    return Registry(aliases=state["aliases"], tags=tags)


def drift(project: Path, batch: Path, **env: str):
    return run([CLI, "drift", str(batch)], project, check=False, **env)


# --- startup: the shared default project -------------------------------------------------------


@pytest.mark.slow
def test_startup_unshifted_batch_passes_and_shifted_batch_drifts_naming_the_features(
    default_project: Path, tmp_path: Path
) -> None:
    # An empty tracking store: no champion, so the local model must stand in, and say so.
    empty_store = f"sqlite:///{tmp_path / 'empty.db'}"
    same = drift(default_project, write_batch(default_project, "same.csv"))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "drifted features: 0 of 9" in same.stdout

    shifted_batch = write_batch(default_project, "shifted.csv", shift=1.0)
    shifted = drift(default_project, shifted_batch, MLFLOW_TRACKING_URI=empty_store)
    assert shifted.returncode == 3, shifted.stdout + shifted.stderr
    assert "reference: models/model.json, version 1 (no champion of 'credit-risk-model'" in (
        shifted.stdout
    )
    assert "training data: data/validated/train.csv of this checkout" in shifted.stdout
    for feature in DRIFTED:
        assert f"  {feature}: PSI " in shifted.stdout
    report = json.loads((default_project / "reports" / "drift.json").read_text())
    assert set(report["drifted_features"]) == DRIFTED
    income = next(f for f in report["features"] if f["name"] == "annual_income")
    assert income["psi"] > report["settings"]["psi_threshold"]
    page = (default_project / "reports" / "drift.html").read_text()
    assert page.count("data:image/png;base64,") == 10

    through_make = make(default_project, "drift", f"CURRENT={shifted_batch}", check=False)
    assert through_make.returncode != 0
    assert "DRIFT: 3 of 9 features drifted" in through_make.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "cannot be read"),
        ("age,purpose\n41,car\n", "model input column(s) missing"),
        (FEATURE_HEADER, "the batch is empty"),
    ],
)
def test_startup_malformed_or_empty_batch_exits_4_and_writes_no_report(
    default_project: Path, content: str, message: str
) -> None:
    reports = [default_project / "reports" / name for name in ("drift.json", "drift.html")]
    for report in reports:  # a refused batch must not leave an earlier run's verdict behind
        report.unlink(missing_ok=True)
    batch = default_project / "data" / "current" / "malformed.csv"
    batch.write_text(content)
    result = drift(default_project, batch)
    assert result.returncode == 4
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert [report.name for report in reports if report.exists()] == []


@pytest.mark.slow
def test_startup_reference_is_found_through_dvc_at_a_later_commit(
    default_project: Path, tmp_path: Path
) -> None:
    """The training data is gone from the checkout and the source no longer reproduces it: the
    commit holding dvc.lock after training does, from the DVC cache."""
    project = default_project
    run(["git", "add", "dvc.lock"], project)
    run(["git", "commit", "--quiet", "--allow-empty", "-m", "Pipeline outputs"], project)
    train_csv = project / "data" / "validated" / "train.csv"
    params = project / "params.yaml"
    kept_train, kept_params = tmp_path / "train.csv", params.read_text()
    train_csv.rename(kept_train)
    params.write_text(kept_params.replace("  seed: 42", "  seed: 4242", 1))
    try:
        result = drift(project, write_batch(project, "same.csv"))
    finally:
        kept_train.rename(train_csv)
        params.write_text(kept_params)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "training data: data/validated/train.csv of dvc.lock at commit " in result.stdout


@pytest.mark.slow
def test_startup_collect_turns_logged_inputs_into_a_batch_that_drifts(
    default_project: Path, tmp_path: Path
) -> None:
    shifted = write_batch(default_project, "to-log.csv", shift=1.0)
    frame = [json.loads(line) for line in _records(shifted)]
    log = tmp_path / "server.log"
    lines = ['{"event": "model loaded", "level": "info"}']
    for start in range(0, len(frame), 100):  # requests of 100 rows, inputs logged column-wise
        chunk = frame[start : start + 100]
        features = {name: [row[name] for row in chunk] for name in chunk[0]}
        lines.append(
            json.dumps(
                {
                    "time": "2030-01-01T00:00:00.000Z",
                    "event": "request",
                    "endpoint": "v2_infer",
                    "status": 200,
                    "model_version": "1",
                    "rows": len(chunk),
                    "features": features,
                }
            )
        )
    log.write_text("\n".join(lines) + "\n")
    collected = make(default_project, "collect", f"LOGS={log}", "CURRENT=data/current/logged.csv")
    assert "2000 rows from 20 logged prediction(s)" in collected.stdout
    result = drift(default_project, default_project / "data" / "current" / "logged.csv")
    assert result.returncode == 3, result.stdout + result.stderr

    without_inputs = tmp_path / "plain.log"
    without_inputs.write_text(
        json.dumps({"event": "request", "endpoint": "v1_predict", "status": 200})
    )
    refused = make(default_project, "collect", f"LOGS={without_inputs}", check=False)
    assert refused.returncode != 0
    assert "none with a 'features' field" in refused.stderr


def _value(text: str) -> float | int | str | None:
    """A CSV cell as the server would log it: a number, a category, or null."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _records(batch: Path) -> Iterator[str]:
    """The model inputs of each row of a batch file, as JSON objects."""
    with batch.open(newline="") as handle:
        for row in csv.DictReader(handle):
            inputs = {k: _value(v) for k, v in row.items() if k not in ("sex", "default")}
            yield json.dumps(inputs)


@pytest.mark.slow
def test_startup_monitor_reruns_the_pipeline_on_drift_only(default_project: Path) -> None:
    quiet = make(default_project, "monitor")  # the source's current data: the same population
    assert "no drift: the model stays as it is" in quiet.stdout
    assert "Running stage" not in quiet.stdout + quiet.stderr

    shifted = write_batch(default_project, "shifted.csv", shift=1.0)
    loop = make(default_project, "monitor", f"CURRENT={shifted}")
    output = loop.stdout + loop.stderr
    assert "drift found: retraining" in output
    assert "Running stage 'prepare'" in output  # the data source reloaded
    # The source gave the same data: nothing downstream re-ran, the project is as it was.
    assert "Running stage 'train'" not in output
    again = make(default_project, "pipeline")
    assert "Data and pipelines are up to date." in again.stdout + again.stderr


# --- the cluster tiers: the loop against a tracking server -------------------------------------


@pytest.mark.slow
class TestMonitorAndRetrainOnATrackingServer:
    """`make monitor` on a shifted batch retrains; promotion decides who is champion.

    Enterprise only: its retrain is scale-up's plus the fairness stage of dvc.yaml, and
    test_tiers.py runs scale-up's `make retrain` and promotion against a tracking server.
    """

    @pytest.fixture(scope="class", params=["enterprise"])
    @classmethod
    def served(cls, request, copie_session, tmp_path_factory) -> Iterator[dict[str, Any]]:
        # A local DVC remote: the retrain on drift then pushes nowhere it cannot reach. The
        # retrain runs here (ci-runner); with kubeflow it is `make kfp-run` (tests/test_kfp.py).
        answers = {"stack_tier": request.param, "data_remote": "local", "orchestrator": "ci-runner"}
        result = copie_session.copy(extra_answers=answers)
        assert result.exit_code == 0, result.exception
        project = result.project_dir
        make(project, "setup")
        store = tmp_path_factory.mktemp(f"mlflow-drift-{request.param}")
        with mlflow_server(project, store) as url:
            # The first champion is a crippled model, so that the retrain can clearly beat it.
            set_hyperparameters(project, CRIPPLED)
            make(project, "pipeline", "promote", MLFLOW_TRACKING_URI=url)
            yield {"tier": request.param, "path": project, "uri": url}

    def test_the_crippled_first_model_is_the_champion(self, served: dict[str, Any]) -> None:
        state = registry_state(served["path"], served["uri"])
        assert state.aliases["champion"] == 1

    def test_an_unusable_batch_changes_nothing_in_the_registry(
        self, served: dict[str, Any]
    ) -> None:
        project, uri = served["path"], served["uri"]
        before = registry_state(project, uri)
        empty = project / "data" / "current" / "empty.csv"
        empty.parent.mkdir(parents=True, exist_ok=True)
        empty.write_text("age,annual_income\n")
        result = make(project, "monitor", f"CURRENT={empty}", check=False, MLFLOW_TRACKING_URI=uri)
        assert result.returncode != 0
        assert "model input column(s) missing" in result.stderr
        assert "retraining" not in result.stdout
        assert registry_state(project, uri) == before

    def test_drift_retrains_and_a_clearly_better_challenger_becomes_champion(
        self, served: dict[str, Any]
    ) -> None:
        project, uri = served["path"], served["uri"]
        set_hyperparameters(project, {"n_estimators": 150, "learning_rate": 0.1, "max_depth": 3})
        shifted = write_batch(project, "shifted.csv", shift=1.0)
        loop = make(project, "monitor", f"CURRENT={shifted}", MLFLOW_TRACKING_URI=uri)
        output = loop.stdout + loop.stderr
        assert f"reference: champion version 1 of '{SLUG}'" in output
        assert "drift found: retraining" in output
        assert "Running stage 'train'" in output
        assert "promoted: version 2 is the champion now" in output
        state = registry_state(project, uri)
        assert state.aliases == {"champion": 2, "challenger": 2}
        tags = state.tags[2]
        assert tags["promotion.decision"] == "promoted"
        assert tags["promotion.champion_before"] == "1"
        assert float(tags["promotion.challenger_roc_auc"]) > float(
            tags["promotion.champion_roc_auc"]
        )
        assert tags["promotion.decided_at"] and tags["promotion.test_data_sha256"]
        assert state.tags[1]["promotion.replaced_by"] == "2"
        drift_report = json.loads((project / "reports" / "drift.json").read_text())
        assert set(drift_report["drifted_features"]) == DRIFTED

    def test_drift_retrains_and_a_crippled_challenger_is_refused(
        self, served: dict[str, Any]
    ) -> None:
        project, uri = served["path"], served["uri"]
        set_hyperparameters(project, CRIPPLED | {"n_estimators": 10})
        shifted = project / "data" / "current" / "shifted.csv"
        loop = make(project, "monitor", f"CURRENT={shifted}", MLFLOW_TRACKING_URI=uri)
        output = loop.stdout + loop.stderr
        assert f"reference: champion version 2 of '{SLUG}'" in output
        assert "kept champion version 2" in output
        state = registry_state(project, uri)
        assert state.aliases == {"champion": 2, "challenger": 3}
        assert state.tags[3]["promotion.decision"] == "kept_champion"
        assert state.tags[3]["promotion.reason"].startswith("challenger does not beat")


# --- deploy/k8s ---------------------------------------------------------------------------------


@pytest.fixture(
    scope="module",
    params=[
        {"stack_tier": "scale-up"},
        {"stack_tier": "enterprise", "data_remote": "gcs", "ci_provider": "gitlab"},
        {"stack_tier": "scale-up", "data_remote": "azure", "ci_provider": "jenkins"},
        {"stack_tier": "enterprise", "data_remote": "local"},
    ],
    ids=lambda answers: "-".join(answers.values()),
)
def k8s_project(request, render_once) -> tuple[dict[str, str], Path]:
    answers = {"k8s_namespace": "credit", **request.param}
    return answers, render_once(answers)


def test_cronjob_manifests_validate_strictly_and_run_make_monitor(k8s_project, tmp_path) -> None:
    answers, project = k8s_project
    folder = project / "deploy" / "k8s"
    check_k8s_manifests([folder / "cronjob.yaml", folder / "serviceaccount.yaml"])
    docs = strictly_valid_kustomize_output(folder, tmp_path)
    by_kind = {doc["kind"]: doc for doc in docs}
    assert set(by_kind) == {"ConfigMap", "CronJob", "ServiceAccount"}
    assert {doc["metadata"]["namespace"] for doc in docs} == {"credit-training"}

    cronjob = built_object(docs, "CronJob", f"{SLUG}-monitor")
    # The same schedule as the CI workflow, never two runs at once.
    assert cronjob["spec"]["schedule"] == "17 3 * * 1"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == by_kind["ServiceAccount"]["metadata"]["name"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["command"] == ["make", "LOCKED=1", "setup", "monitor"]
    assert container["workingDir"] == "/workspace/repo"
    clone = pod["initContainers"][0]["command"][-1]
    assert "git clone" in clone and "/workspace/repo" in clone

    # Secrets only by reference, and the right ones for the DVC remote.
    secrets = {
        entry["name"]: entry["valueFrom"]["secretKeyRef"]
        for spec in (container, pod["initContainers"][0])
        for entry in spec["env"]
        if "valueFrom" in entry
    }
    assert {ref["name"] for ref in secrets.values()} == {f"{SLUG}-retrain"}
    assert all(name == ref["key"] for name, ref in secrets.items())
    remote = {
        "s3": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
        "azure": {"AZURE_STORAGE_CONNECTION_STRING"},
        "gcs": set(),
        "local": set(),
    }[answers.get("data_remote", "s3")]
    # With the Kubeflow orchestrator, retraining on drift submits a pipeline run to KFP_HOST.
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    kfp = {"KFP_HOST"} if recorded["orchestrator"] == "kubeflow" else set()
    assert set(secrets) == {"GIT_REPOSITORY_URL", "MLFLOW_TRACKING_URI"} | remote | kfp
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert ("gcs-key" in volumes) == (answers.get("data_remote") == "gcs")
    for entry in container["env"]:
        assert "value" not in entry or "://" not in entry["value"], entry  # no inline URI

    readme = (folder / "README.md").read_text()
    assert f"create secret generic {SLUG}-retrain" in readme
    assert "kubectl apply -k deploy/k8s" in readme


def strictly_valid_kustomize_output(folder: Path, tmp_path: Path) -> list[dict[str, Any]]:
    """What `kubectl apply -k folder` would apply, checked strictly as one file."""
    docs = kustomize(folder)
    built = tmp_path / "built.yaml"
    built.write_text(yaml.safe_dump_all(docs))
    check_k8s_manifests(built)
    return docs


def built_object(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return found


def test_score_cronjob_validates_strictly_and_runs_make_score_daily(k8s_project, tmp_path) -> None:
    answers, project = k8s_project
    folder = project / "deploy" / "k8s"
    check_k8s_manifests([folder / "score-cronjob.yaml", folder / "score-configmap.yaml"])
    docs = strictly_valid_kustomize_output(folder, tmp_path)
    assert sorted((doc["kind"], doc["metadata"]["name"]) for doc in docs) == [
        ("ConfigMap", f"{SLUG}-score"),
        ("CronJob", f"{SLUG}-monitor"),
        ("CronJob", f"{SLUG}-score"),
        ("ServiceAccount", f"{SLUG}-retrain"),
    ]
    assert {doc["metadata"]["namespace"] for doc in docs} == {"credit-training"}

    cronjob = built_object(docs, "CronJob", f"{SLUG}-score")
    # Daily, never two runs on the same files, no blind retry.
    minute, hour, *every = cronjob["spec"]["schedule"].split()
    assert minute.isdigit() and hour.isdigit() and every == ["*", "*", "*"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == f"{SLUG}-retrain"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["workingDir"] == "/workspace/repo"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "limits" in container["resources"]
    clone = pod["initContainers"][0]["command"][-1]
    assert "git clone" in clone and "/workspace/repo" in clone
    # make's command-line variables (Makefile `:=`), filled in by Kubernetes from the ConfigMap.
    assert container["command"] == [
        "make",
        "LOCKED=1",
        "setup",
        "score",
        "INPUT=$(SCORE_INPUT)",
        "OUTPUT=$(SCORE_OUTPUT)",
        "MODEL_VERSION=$(MODEL_VERSION)",
        "ALLOW_REJECTS=$(ALLOW_REJECTS)",
    ]
    assert container["envFrom"] == [{"configMapRef": {"name": f"{SLUG}-score"}}]
    settings = built_object(docs, "ConfigMap", f"{SLUG}-score")["data"]
    assert settings["MODEL_VERSION"] == "champion"  # the champion by default
    assert settings["ALLOW_REJECTS"] == ""
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts["data"] == "/data"
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": f"{SLUG}-score-data"}
    for key in ("SCORE_INPUT", "SCORE_OUTPUT"):
        path = Path(settings[key])
        assert path.is_relative_to("/data") and path.suffix in {".csv", ".parquet"}, path

    # The Makefile target and its variables are the ones the job passes.
    makefile = (project / "Makefile").read_text()
    assert "\nscore:" in makefile
    for variable in ("INPUT", "OUTPUT", "MODEL_VERSION", "ALLOW_REJECTS"):
        assert f"\n{variable} :=" in makefile, variable

    # Secrets only by reference, from the monitoring job's secret.
    secrets = {
        entry["name"]: entry["valueFrom"]["secretKeyRef"]
        for spec in (container, pod["initContainers"][0])
        for entry in spec.get("env", [])
        if "valueFrom" in entry
    }
    assert {ref["name"] for ref in secrets.values()} == {f"{SLUG}-retrain"}
    assert {"GIT_REPOSITORY_URL", "MLFLOW_TRACKING_URI"} <= set(secrets)
    assert ("gcs-key" in volumes) == (answers.get("data_remote") == "gcs")
    annotation = cronjob["metadata"]["annotations"]["checkov.io/skip1"]
    assert annotation.startswith("CKV_K8S_35=") and len(annotation.split()) >= 5

    readme = (folder / "README.md").read_text()
    assert f"create job --from=cronjob/{SLUG}-score" in readme
    assert f"{SLUG}-score-data" in readme
    for key in settings:
        assert f"`{key}`" in readme, key
