"""Each tier's generated repo runs its tier features for real, once per tier and CI provider.

- startup + GitHub: the shared default project (test_generated_repo.py runs its `make ci`); its
  Makefile has no tier targets, and the same package still promotes in the embedded store.
- scale-up + GitLab, enterprise + Jenkins: `make setup`, then a real `mlflow server` on 127.0.0.1
  (from the project's own venv), `make lint pipeline promote` against it, the champion checked on
  the server; a crippled model is trained and kept out of `champion`, with the reason in its tags;
  `make retrain` reloads the data and promotes. Enterprise also: the fairness report and gate, and
  `make model-card`.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from .conftest import make, project_env, run
from .validators import check_kserve_manifest, shared_schema_path
from .validators import make_targets as makefile_targets

pytestmark = pytest.mark.slow

SLUG = "credit-risk-model"
# Still above the default metric gate (0.75), clearly below the default model (~0.86 ROC AUC).
CRIPPLED_HYPERPARAMETERS = {"n_estimators": 20, "learning_rate": 0.1, "max_depth": 1}
SERVER_START_TIMEOUT = 180

REGISTRY_STATE = """
import json, sys
import mlflow
client = mlflow.MlflowClient(sys.argv[1])
model = client.get_registered_model(sys.argv[2])
versions = client.search_model_versions(f"name='{sys.argv[2]}'")
print(json.dumps({
    "aliases": {alias: int(version) for alias, version in model.aliases.items()},
    "tags": {int(v.version): dict(v.tags) for v in versions},
}))
"""


@dataclass(frozen=True)
class Registry:
    aliases: dict[str, int]
    tags: dict[int, dict[str, str]]


def registry_state(project: Path, tracking_uri: str) -> Registry:
    """Aliases and version tags of the project's model, read with the project's own MlflowClient."""
    out = run([".venv/bin/python", "-c", REGISTRY_STATE, tracking_uri, SLUG], project)
    state = json.loads(out.stdout.strip().splitlines()[-1])
    tags = {int(version): tags for version, tags in state["tags"].items()}
    return Registry(aliases=state["aliases"], tags=tags)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def mlflow_server(project: Path, store: Path) -> Iterator[str]:
    """A tracking server with its own sqlite store and artifact folder; stopped on exit."""
    url = f"http://127.0.0.1:{free_port()}"
    log_path = store / "server.log"
    command = [
        str(project / ".venv" / "bin" / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        url.rsplit(":", 1)[1],
        "--backend-store-uri",
        f"sqlite:///{store / 'mlflow.db'}",
        "--artifacts-destination",
        (store / "artifacts").as_uri(),
        "--workers",
        "1",
    ]
    # No background job runner: promotion needs none, and it forks a dozen processes.
    env = project_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    with log_path.open("w") as log:
        # Its own process group, so that stopping it also stops the workers it forks.
        server = subprocess.Popen(
            command,
            cwd=store,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start:\n{log_path.read_text()[-4000:]}")
            time.sleep(1)
        yield url
    finally:
        _stop(server)


def _stop(server: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def set_hyperparameters(project: Path, hyperparameters: dict[str, Any]) -> None:
    params_file = project / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["model"]["hyperparameters"][params["model"]["estimator"]] = hyperparameters
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))


def make_targets(project: Path) -> set[str]:
    listed = make(project, "help").stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


# --- startup + GitHub -------------------------------------------------------------------------


def test_startup_has_no_tier_targets_or_sections(default_project: Path) -> None:
    targets = make_targets(default_project)
    assert {"setup", "lint", "test", "pipeline", "ci"} <= targets
    # `make help` lists only commented targets: ask make's database for every defined one.
    defined = makefile_targets(default_project / "Makefile", use_make=True)
    assert targets <= defined
    assert not {"promote", "retrain", "model-card", "deploy"} & defined
    params = yaml.safe_load((default_project / "params.yaml").read_text())
    assert "fairness" not in params["gates"]
    assert not {"promotion", "governance"} & set(params)
    assert "fairlearn" not in (default_project / "pyproject.toml").read_text()
    assert not (default_project / "reports" / "fairness.json").exists()


def test_startup_package_promotes_and_writes_a_card_in_the_embedded_store(
    default_project: Path,
) -> None:
    cli = str(default_project / ".venv" / "bin" / SLUG)
    promoted = run([cli, "promote"], default_project)
    assert "promoted: version 1 is the champion now" in promoted.stdout
    store = f"sqlite:///{default_project / 'mlruns' / 'mlflow.db'}"
    assert registry_state(default_project, store).aliases["champion"] == 1

    run([cli, "model-card"], default_project)
    card = (default_project / "docs" / "model_card.md").read_text()
    metrics = json.loads((default_project / "reports" / "metrics.json").read_text())
    assert f"| roc_auc | {metrics['roc_auc']:.4f} |" in card
    assert "Not measured: this project has no fairness gate" in card


# --- scale-up + GitLab, enterprise + Jenkins ---------------------------------------------------


@dataclass(frozen=True)
class ServedProject:
    path: Path
    tracking_uri: str
    # Output of the first `make lint pipeline promote`, and the audit record it left.
    first_run: str
    first_record: dict[str, Any]


class ClusterTier:
    """Checks every tier with a tracking server shares; subclasses name the answers."""

    ANSWERS: ClassVar[dict[str, str]]

    @pytest.fixture(scope="class")
    @classmethod
    def served(cls, copie_session, tmp_path_factory) -> Iterator[ServedProject]:
        result = copie_session.copy(extra_answers=cls.ANSWERS)
        assert result.exit_code == 0, result.exception
        project = result.project_dir
        make(project, "setup")
        store = tmp_path_factory.mktemp(f"mlflow-{cls.ANSWERS['stack_tier']}")
        with mlflow_server(project, store) as url:
            # The generated tests of these answers run in test_use_data.py (same tier and
            # provider, adopted data) and test_generated_repo.py: here lint and the pipeline.
            first = make(project, "lint", "pipeline", "promote", MLFLOW_TRACKING_URI=url)
            record = json.loads((project / "models" / "model.json").read_text())
            yield ServedProject(project, url, first.stdout + first.stderr, record)

    def test_makefile_has_the_tier_targets(self, served: ServedProject) -> None:
        expected = {"promote", "retrain"} | (
            {"model-card"} if self.ANSWERS["stack_tier"] == "enterprise" else set()
        )
        targets = make_targets(served.path)
        assert expected <= targets
        if self.ANSWERS["stack_tier"] != "enterprise":
            assert "model-card" not in targets

    def test_first_model_is_the_champion_on_the_server(self, served: ServedProject) -> None:
        assert "promoted: version 1 is the champion now" in served.first_run
        registry = registry_state(served.path, served.tracking_uri)
        assert registry.aliases["champion"] == 1
        assert served.first_record["registered_model_version"] == 1
        first = registry.tags[1]
        assert first["model_sha256"] == served.first_record["model_sha256"]
        assert first["promotion.decision"] == "promoted"
        assert first["promotion.champion_before"] == "none"
        report = json.loads((served.path / "reports" / "promotion.json").read_text())
        assert report["registered_model"] == SLUG
        # The champion's artifact is in models/: `make deploy` would ship it.
        release = run([f".venv/bin/{SLUG}", "release-check"], served.path)
        assert release.stdout.startswith("deploy: models/ holds the champion's artifact (version 1")

    def test_a_worse_model_keeps_the_champion_and_says_why(self, served: ServedProject) -> None:
        set_hyperparameters(served.path, CRIPPLED_HYPERPARAMETERS)
        second = make(served.path, "pipeline", "promote", MLFLOW_TRACKING_URI=served.tracking_uri)
        output = second.stdout + second.stderr
        assert "Running stage 'train'" in output
        assert "kept champion version 1" in output

        registry = registry_state(served.path, served.tracking_uri)
        assert registry.aliases == {"champion": 1, "challenger": 2}
        tags = registry.tags[2]
        assert tags["promotion.decision"] == "kept_champion"
        assert tags["promotion.reason"].startswith("challenger does not beat the champion")
        challenger, champion = (
            float(tags["promotion.challenger_roc_auc"]),
            float(tags["promotion.champion_roc_auc"]),
        )
        assert 0.75 <= challenger < champion
        assert f"{challenger:.4f}" in tags["promotion.reason"]
        test_data = (served.path / "data" / "validated" / "test.csv").read_bytes()
        assert tags["promotion.test_data_sha256"] == hashlib.sha256(test_data).hexdigest()
        # models/ now holds the refused challenger: `make deploy` must not ship it.
        release = run([f".venv/bin/{SLUG}", "release-check"], served.path, check=False)
        assert release.returncode == 3, release.stdout + release.stderr
        assert "skip: models/ holds version 2, not the champion (version 1)" in release.stdout

        # Scheduled retraining: the data source is reloaded even though nothing changed, the
        # same data skips training, and the challenger is judged again.
        retrain = make(served.path, "retrain", MLFLOW_TRACKING_URI=served.tracking_uri)
        output = retrain.stdout + retrain.stderr
        assert "Running stage 'prepare'" in output
        assert "Running stage 'train'" not in output
        assert "kept champion version 1" in output
        assert registry_state(served.path, served.tracking_uri).aliases["champion"] == 1

    def test_pin_image_writes_a_valid_pinned_inference_service(self, served: ServedProject) -> None:
        manifest = served.path / "deploy" / "kserve" / "base" / "inferenceservice.yaml"
        digest = "sha256:" + "0123456789abcdef" * 4
        image = f"registry.example.com/ml/{SLUG}"
        command = [f".venv/bin/{SLUG}", "pin-image", f"--image={image}", f"--digest={digest}"]
        pinned = subprocess.run(
            [*command, "--canary-percent=10"],
            cwd=served.path,
            input=manifest.read_text(),
            capture_output=True,
            text=True,
            check=True,
            env=project_env(),
        ).stdout
        service = yaml.safe_load(pinned)
        predictor = service["spec"]["predictor"]
        assert predictor["containers"][0]["image"] == f"{image}@{digest}"
        assert predictor["canaryTrafficPercent"] == 10
        schema = shared_schema_path()
        if schema is None:
            pytest.skip("../shared/schemas not present: strict InferenceService check skipped")
        pinned_file = served.path / "build" / "pinned.yaml"
        pinned_file.parent.mkdir(exist_ok=True)
        pinned_file.write_text(pinned)
        assert check_kserve_manifest(pinned_file, schema) == [SLUG]


class TestScaleUpOnGitLab(ClusterTier):
    ANSWERS: ClassVar[dict[str, str]] = {"stack_tier": "scale-up", "ci_provider": "gitlab"}

    def test_no_fairness_gate_or_model_card(self, served: ServedProject) -> None:
        assert "fairness" not in served.first_run
        assert not (served.path / "reports" / "fairness.json").exists()
        assert "fairlearn" not in (served.path / "pyproject.toml").read_text()


class TestEnterpriseOnJenkins(ClusterTier):
    ANSWERS: ClassVar[dict[str, str]] = {"stack_tier": "enterprise", "ci_provider": "jenkins"}

    def test_fairness_report_exists_and_the_gate_passed(self, served: ServedProject) -> None:
        for gate in ("demographic_parity_difference", "equalized_odds_difference"):
            assert f"gate passed: {gate} " in served.first_run
        report = json.loads((served.path / "reports" / "fairness.json").read_text())
        assert set(report["by_group"]) == {"female", "male"}
        assert (
            sum(group["count"] for group in report["by_group"].values())
            == (report["overall"]["count"])
        )
        params = yaml.safe_load((served.path / "params.yaml").read_text())
        limits = params["gates"]["fairness"]
        assert (
            report["demographic_parity_difference"] <= limits["max_demographic_parity_difference"]
        )
        assert report["equalized_odds_difference"] <= limits["max_equalized_odds_difference"]
        metrics = run([".venv/bin/dvc", "metrics", "show", "--json"], served.path).stdout
        assert "reports/fairness.json" in metrics

    def test_model_card_holds_the_metrics(self, served: ServedProject) -> None:
        make(served.path, "model-card")
        card = (served.path / "docs" / "model_card.md").read_text()
        metrics = json.loads((served.path / "reports" / "metrics.json").read_text())
        record = json.loads((served.path / "models" / "model.json").read_text())
        fairness = json.loads((served.path / "reports" / "fairness.json").read_text())
        for name, value in metrics.items():
            assert f"| {name} | {value:.4f} |" in card
        assert record["model_sha256"] in card
        assert f"version {record['registered_model_version']}" in card.splitlines()[0]
        assert f"| {fairness['demographic_parity_difference']:.4f} |" in card
        assert "approval by ml-release-approvers" in card
