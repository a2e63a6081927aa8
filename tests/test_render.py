"""Every answer combination renders: no leftover Jinja, the right files, config that matches the
answers, a first commit, and Python that passes the generated repo's own ruff configuration."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from .conftest import (
    ALL_COMBINATIONS,
    LEFTOVER_JINJA,
    combination_id,
    project_env,
    rendered_files,
)

RUFF = Path(sys.executable).with_name("ruff")
REMOTE_EXTRAS = {"local": None, "s3": "dvc[s3]", "gcs": "dvc[gcs]", "azure": "dvc[azure]"}


@pytest.fixture(scope="module", params=ALL_COMBINATIONS, ids=combination_id)
def rendered(request, render_once):
    return request.param, render_once(request.param)


def test_no_leftover_jinja(rendered):
    _, project = rendered
    leftovers = []
    for path in rendered_files(project):
        assert not path.name.endswith(".jinja"), f"unrendered template file {path}"
        text = path.read_text(errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if LEFTOVER_JINJA.search(line):
                leftovers.append(f"{path.relative_to(project)}:{number}: {line.strip()}")
    assert leftovers == []


# The last lines of the generated Makefile and README: a promise to every generated repository
# that these never change between releases, so what a team appends after them merges cleanly.
# Changing them breaks that promise for every repository already rendered.
MAKEFILE_TAIL = """
# --- Your additions --------------------------------------------------------------------------
# team.mk is yours: template updates never change it, and the template never writes below this
# block, so targets added in team.mk (or after these lines) merge without conflict.
-include team.mk
"""
README_TAIL = """
## Your additions

The template never writes into this section or into `team.mk`, and nothing here or at the end
of the Makefile changes between releases: notes added below this paragraph and targets added to
`team.mk` (or after the Makefile's last line) merge without conflict on every update.
"""


def test_makefile_and_readme_end_with_the_tails_teams_append_after(rendered):
    _, project = rendered
    assert (project / "Makefile").read_text().endswith("\n" + MAKEFILE_TAIL)
    assert (project / "README.md").read_text().endswith("\n" + README_TAIL)
    assert (project / "team.mk").is_file()


def test_answers_file_matches_the_answers(rendered):
    answers, project = rendered
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    for key, value in answers.items():
        assert recorded[key] == value


def test_dvc_remote_follows_the_answer(rendered):
    answers, project = rendered
    config = (project / ".dvc" / "config").read_text()
    pyproject = (project / "pyproject.toml").read_text()
    remote = answers["data_remote"]
    if remote == "local":
        assert "url = ../../credit-risk-model-dvc-storage" in config
        assert '"dvc>=' in pyproject
    else:
        scheme = {"s3": "s3://", "gcs": "gs://", "azure": "azure://"}[remote]
        assert f"url = {scheme}credit-risk-model-dvc/storage" in config
        assert f'"{REMOTE_EXTRAS[remote]}>=' in pyproject
    assert "remote = storage" in config


def test_params_and_pipeline_are_consistent(rendered):
    answers, project = rendered
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["project"]["tier"] == answers["stack_tier"]
    assert params["gates"]["min_roc_auc"] == 0.75
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["prepare", "validate", "train", "evaluate"]
    for name, stage in stages.items():
        assert stage["cmd"] == f"python -m credit_risk_model {name}"
        for dep in stage["deps"]:
            produced = any(
                dep in (out if isinstance(out, str) else next(iter(out)))
                for other in stages.values()
                for out in other.get("outs", [])
            )
            assert produced or (project / dep).exists(), f"{name} depends on missing {dep}"
        for key in stage.get("params", []):
            node = params
            for part in key.split("."):
                assert part in node, f"{name} uses missing param {key}"
                node = node[part]


# The model families of params.yaml `model.estimator` (the runtime's estimators.py), and the
# ones installed by a dependency group of their own.
FAMILIES = (
    "gradient_boosting",
    "hist_gradient_boosting",
    "random_forest",
    "logistic_regression",
    "ridge",
    "lightgbm",
    "xgboost",
)
FAMILY_GROUPS = {"lightgbm": "lightgbm", "xgboost": "xgboost-cpu"}


def test_params_hold_the_settings_of_every_task(rendered):
    answers, project = rendered
    text = (project / "params.yaml").read_text()
    params = yaml.safe_load(text)
    model = params["model"]
    assert "classifier" not in model
    assert model["estimator"] == "gradient_boosting"
    assert tuple(model["hyperparameters"]) == FAMILIES
    # The comment on model.estimator names every family.
    comment = text[text.index("model:\n") : text.index("  estimator:")]
    assert all(family in comment for family in FAMILIES), comment
    assert "# Binary only: probability" in text
    gates = params["gates"]
    assert gates["min_roc_auc"] == 0.75
    assert gates["min_macro_f1"] == 0.4
    assert gates["min_r2"] == 0.1
    assert 0 <= gates["baseline_margin"] < 1
    assert params["data"]["max_classes"] == 50
    assert params["serving"]["onnx_relative_tolerance"] > 0
    if answers["stack_tier"] == "startup":
        assert "promotion" not in params
    else:
        assert params["promotion"] == {"min_improvement": 0.0, "min_relative_improvement": 0.0}
    fairness = gates.get("fairness")
    assert (fairness is not None) == (answers["stack_tier"] == "enterprise")
    if fairness is not None:
        assert fairness["max_mean_prediction_gap"] > 0
        assert fairness["max_mae_gap"] > 0
    declaration = yaml.safe_load(
        (project / "src" / "credit_risk_model" / "data" / "columns.yaml").read_text()
    )
    assert declaration["label"]["task"] == "binary"


def test_model_families_outside_scikit_learn_are_groups_of_their_own(rendered):
    _, project = rendered
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    groups = pyproject["dependency-groups"]
    for family in FAMILY_GROUPS:
        assert groups[family] == [f"mlops-stack-runtime[{family}]"]
        assert family not in pyproject["tool"]["uv"]["default-groups"]
    lock = project / "uv.lock"
    if lock.is_file():  # the post-copy `uv lock` (needs uv): every group is locked
        packages = {package["name"] for package in tomllib.loads(lock.read_text())["package"]}
        assert set(FAMILY_GROUPS.values()) <= packages


def test_ci_files_follow_the_provider(rendered):
    # The CI/CD files of every tier are checked in depth by test_ci_files.py.
    answers, project = rendered
    provider_files = {"github": ".github", "gitlab": ".gitlab-ci.yml", "jenkins": "Jenkinsfile"}
    for provider, path in provider_files.items():
        assert (project / path).exists() == (provider == answers["ci_provider"]), path
    workflow = project / ".github" / "workflows" / "ci.yml"
    if answers["ci_provider"] != "github":
        return
    ci = yaml.safe_load(workflow.read_text())
    steps = ci["jobs"]["ci"]["steps"]
    make_ci = [step for step in steps if step.get("run") == "make ci"]
    assert len(make_ci) == 1 and make_ci[0]["name"] == "Lint, test, run the pipeline", steps
    # A DVC remote in the cloud reaches CI as step environment: keys from secrets, the OIDC
    # role from (non-secret) variables.
    for value in make_ci[0].get("env", {}).values():
        assert value.startswith(("${{ secrets.", "${{ vars.")), value
    setup_uv = next(step for step in steps if step.get("uses", "").startswith("astral-sh/setup-uv"))
    assert setup_uv["with"]["python-version"] == "3.12"
    assert ci["permissions"] == {}
    oidc = {"id-token": "write"} if answers["data_remote"] != "local" else {}
    assert ci["jobs"]["ci"]["permissions"] == {"contents": "read", **oidc}


def test_python_parses_and_passes_the_generated_ruff_config(rendered):
    _, project = rendered
    for path in project.rglob("*.py"):
        ast.parse(path.read_text(), filename=str(path))
    for args in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        result = subprocess.run(
            [str(RUFF), *args], cwd=project, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_project_is_a_git_repository_with_a_clean_first_commit(rendered):
    _, project = rendered
    env = project_env()
    log = subprocess.run(
        ["git", "log", "--format=%s"], cwd=project, env=env, capture_output=True, text=True
    )
    assert log.stdout.splitlines() == ["Initial commit from template"]
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=project, env=env, capture_output=True, text=True
    )
    assert status.stdout == ""


def test_uv_is_pinned_to_one_version_and_ci_installs_exactly_the_lock(rendered):
    _, project = rendered
    makefile = (project / "Makefile").read_text()
    (version,) = re.findall(r"^UV_VERSION \?= (\S+)$", makefile, flags=re.MULTILINE)
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    # make setup and the Dockerfile install that uv only from wheels whose sha256 is pinned.
    pins = (project / "requirements-uv.txt").read_text()
    assert re.findall(r"^uv==(\S+) ", pins, flags=re.MULTILINE) == [version]
    assert len(re.findall(r"--hash=sha256:[0-9a-f]{64}", pins)) >= 4  # Linux and macOS wheels
    install = "--require-hashes --only-binary :all: --no-deps"
    assert f'{install} --target "$(UV_HOME)" --requirement requirements-uv.txt' in makefile
    dockerfile = (project / "Dockerfile").read_text()
    assert f"pip install --no-cache-dir {install}" in dockerfile
    assert "--requirement /tmp/requirements-uv.txt" in dockerfile
    assert all("--locked" in line for line in dockerfile.splitlines() if "uv sync" in line)
    for workflow in sorted((project / ".github" / "workflows").glob("*.yml")):
        for name, job in yaml.safe_load(workflow.read_text())["jobs"].items():
            for step in job.get("steps", []):
                if step.get("uses", "").startswith("astral-sh/setup-uv@"):
                    assert step["with"]["version"] == version, f"{workflow.name} {name}"

    def setup_commands(**env: str) -> str:
        result = subprocess.run(
            ["make", "-n", "setup", "UV=uv"],
            cwd=project,
            env={k: v for k, v in os.environ.items() if k != "CI"} | env,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    # On CI, exactly uv.lock (when the copy could write one: the post-copy `uv lock`).
    locked = (project / "uv.lock").is_file()
    assert ("uv sync --locked" in setup_commands(CI="true")) == locked
    assert "--locked" not in setup_commands(), "locally, a changed pyproject.toml re-resolves"
