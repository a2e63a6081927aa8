"""The CI/CD files of every answer combination (tier x CI provider x data remote).

Each rendered CI file passes its real validators (GitHub: actionlint, SchemaStore schema, zizmor;
GitLab: SchemaStore schema and a stages/needs/extends check; Jenkins: tree-sitter-groovy and the
declarative structure), carries the jobs of its tier and nothing more, calls only Makefile targets
that exist, uses the answered Python version and takes secrets only by reference.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from .ci_runner import gitlab_jobs as all_gitlab_jobs
from .ci_runner import jenkins_steps
from .conftest import ALL_COMBINATIONS, combination_id
from .validators import (
    called_make_targets,
    check_dvc_dag,
    check_github_workflows,
    check_gitlab_ci,
    check_jenkinsfile,
    make_invocations,
    make_targets,
    run_builtin_schema,
    run_shellcheck,
    zizmor_findings,
)

DEFAULT_PYTHON = "3.12"
TEMPLATE_ROOT = Path(__file__).resolve().parents[1]


def _template_pins() -> set[str]:
    """The pins rendered repos start with, read by the generated repo's own pin tool."""
    spec = importlib.util.spec_from_file_location(
        "pin_images", TEMPLATE_ROOT / "runtime/src/mlops_stack_runtime/tools/pin_images.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    pins = module.pins_in([TEMPLATE_ROOT / "includes" / "images.jinja"])
    return {f"{image.ref}@{digest}" for image, digests in pins.items() for digest in digests}


TEMPLATE_PINS = _template_pins()
# name:tag@sha256:<64 hex>: the tag for people and Dependabot/Renovate, the digest for the pull.
PINNED_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_][A-Za-z0-9_.-]*@sha256:[0-9a-f]{64}")
APPROVERS = "ml-release-approvers"

# Every CI file any provider could leave behind, relative to the project.
CI_PATHS = (".github", ".gitlab-ci.yml", "Jenkinsfile")

# Answers beyond the 36 combinations: another Python, a custom tracking-secret name, the
# providers' own registries, custom approvers and the orchestrator other than the tier's default.
VARIANTS: list[dict[str, str]] = [
    {
        "stack_tier": "enterprise",
        "ci_provider": "github",
        "data_remote": "gcs",
        "python_version": "3.11",
        "mlflow_tracking_secret": "PROD_MLFLOW_URI",
        "container_image": "ghcr.io/acme/credit-risk-model",
        "production_approvers": "alice,ml-leads",
    },
    {
        "stack_tier": "scale-up",
        "ci_provider": "gitlab",
        "data_remote": "azure",
        "python_version": "3.13",
        "mlflow_tracking_secret": "PROD_MLFLOW_URI",
        "container_image": "registry.gitlab.com/acme/credit-risk-model",
        "orchestrator": "kubeflow",
    },
    {
        "stack_tier": "enterprise",
        "ci_provider": "jenkins",
        "data_remote": "s3",
        "python_version": "3.11",
        "mlflow_tracking_secret": "PROD_MLFLOW_URI",
        "production_approvers": "alice,ml-leads",
        "orchestrator": "ci-runner",
    },
]


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def variant_id(answers: Mapping[str, str]) -> str:
    if "python_version" not in answers:
        return combination_id(answers)
    return f"variant-{answers['ci_provider']}-{answers['stack_tier']}-py{answers['python_version']}"


def _render(render_once, answers: Mapping[str, str]) -> tuple[dict[str, str], Path]:
    """Rendered once per session (conftest.render_once): these tests only read the project."""
    return dict(answers), render_once(answers)


@pytest.fixture(scope="module", params=ALL_COMBINATIONS + VARIANTS, ids=variant_id)
def rendered(request, render_once) -> tuple[dict[str, str], Path]:
    """The 36 combinations, then the variants."""
    return _render(render_once, request.param)


def _of(provider: str) -> list[dict[str, str]]:
    return [a for a in ALL_COMBINATIONS + VARIANTS if a["ci_provider"] == provider]


@pytest.fixture(scope="module", params=_of("github"), ids=variant_id)
def github(request, render_once) -> tuple[dict[str, str], Path]:
    return _render(render_once, request.param)


@pytest.fixture(scope="module", params=_of("gitlab"), ids=variant_id)
def gitlab(request, render_once) -> tuple[dict[str, str], Path]:
    return _render(render_once, request.param)


@pytest.fixture(scope="module", params=_of("jenkins"), ids=variant_id)
def jenkins(request, render_once) -> tuple[dict[str, str], Path]:
    return _render(render_once, request.param)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def answer(answers: Mapping[str, str], key: str) -> str:
    defaults = {
        "python_version": DEFAULT_PYTHON,
        "mlflow_tracking_secret": "MLFLOW_TRACKING_URI",
        "container_image": "registry.example.com/ml/credit-risk-model",
        "production_approvers": APPROVERS,
        "orchestrator": "kubeflow" if answers.get("stack_tier") == "enterprise" else "ci-runner",
    }
    return answers.get(key, defaults.get(key, ""))


def cluster(answers: Mapping[str, str]) -> bool:
    return answers["stack_tier"] != "startup"


def enterprise(answers: Mapping[str, str]) -> bool:
    return answers["stack_tier"] == "enterprise"


def ci_files(project: Path) -> list[Path]:
    """The CI files present in a rendered project."""
    files: list[Path] = []
    workflows = project / ".github" / "workflows"
    if workflows.is_dir():
        files += sorted(p for p in workflows.iterdir() if p.suffix in (".yml", ".yaml"))
    for name in (".gitlab-ci.yml", "Jenkinsfile"):
        if (project / name).is_file():
            files.append(project / name)
    return files


def expected_ci_files(answers: Mapping[str, str]) -> set[str]:
    provider = answers["ci_provider"]
    if provider == "github":
        names = ["ci.yml", "cd.yml"] if cluster(answers) else ["ci.yml"]
        names += ["retrain.yml", "template-update.yml"]
        return {f".github/workflows/{n}" for n in names}
    return {".gitlab-ci.yml" if provider == "gitlab" else "Jenkinsfile"}


def load_workflow(path: Path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def workflow_steps(workflow: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield name, step


def gitlab_jobs(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The config and its visible jobs with `extends:` resolved (tests/ci_runner.py's, without
    the hidden `.templates`)."""
    config, jobs = all_gitlab_jobs(path)
    return config, {k: v for k, v in jobs.items() if not k.startswith(".")}


def is_manual(job: Mapping[str, Any]) -> bool:
    rules = job.get("rules", [])
    return job.get("when") == "manual" or any(r.get("when") == "manual" for r in rules)


def ci_make_commands(project: Path) -> set[str]:
    """Every make invocation of the CI files, as 'make <targets> <VAR=value>...'."""
    commands = set()
    for path in ci_files(project):
        for inv in make_invocations(path.read_text()):
            words = [*inv.targets, *(f"{k}={v}" for k, v in inv.variables.items())]
            commands.add(" ".join(["make", *words]))
    return commands


def readme_ci_section(project: Path) -> str:
    text = (project / "README.md").read_text()
    match = re.search(r"^## CI/CD\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## CI/CD' section"
    return match.group(1)


# --------------------------------------------------------------------------------------------
# Files and validators
# --------------------------------------------------------------------------------------------


# The DVC remote's credentials each provider's CI references: every tier's CI pulls an adopted
# data file (`make data`). GitLab project variables reach every job without a reference.
DVC_REMOTE_SECRETS = {
    "github": {
        "s3": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
        "gcs": {"GCP_SERVICE_ACCOUNT_KEY"},
        "azure": {"AZURE_STORAGE_CONNECTION_STRING"},
    },
    "jenkins": {"s3": {"dvc-remote-aws"}, "gcs": {"dvc-remote-gcs"}, "azure": {"dvc-remote-azure"}},
}
# The read identity of the DVC remote: what pull/merge requests (and the startup tier, which never
# writes) reach it with, on GitHub and GitLab (README.md, "Credentials").
READ_OIDC_VARIABLES = {
    "s3": {"AWS_ROLE_ARN": "AWS_READ_ROLE_ARN"},
    "gcs": {
        "GCP_WORKLOAD_IDENTITY_PROVIDER": "GCP_WORKLOAD_IDENTITY_PROVIDER",
        "GCP_SERVICE_ACCOUNT": "GCP_READ_SERVICE_ACCOUNT",
    },
    "azure": {
        "AZURE_CLIENT_ID": "AZURE_READ_CLIENT_ID",
        "AZURE_TENANT_ID": "AZURE_TENANT_ID",
        "AZURE_STORAGE_ACCOUNT": "AZURE_STORAGE_ACCOUNT",
    },
}
# What the README names for GitLab, where the file references none of them.
GITLAB_REMOTE_VARIABLES = {
    "s3": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
    "gcs": {"GOOGLE_APPLICATION_CREDENTIALS"},
    "azure": {"AZURE_STORAGE_CONNECTION_STRING"},
}


# Jobs whose make targets reach the DVC remote (`make data`, `make push`), per provider.
REMOTE_JOBS = {"github": {"ci", "train", "retrain"}, "gitlab": {"pipeline", "train", "retrain"}}
# OIDC for the DVC remote: the variables that switch it on, and the token's audience.
OIDC_VARIABLES = {
    "s3": {"AWS_ROLE_ARN"},
    "gcs": {"GCP_WORKLOAD_IDENTITY_PROVIDER", "GCP_SERVICE_ACCOUNT"},
    "azure": {"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_STORAGE_ACCOUNT"},
}
# A step whose make command reaches the DVC remote (through `make data` or `make push`).
REMOTE_MAKE_COMMAND = re.compile(r"^make (ci|pipeline|push|monitor)\b", re.M)
OIDC_AUDIENCES = {
    "s3": "sts.amazonaws.com",
    "gcs": "https://iam.googleapis.com/$GCP_WORKLOAD_IDENTITY_PROVIDER",
    "azure": "api://AzureADTokenExchange",
}


def remote_secrets(answers: Mapping[str, str]) -> set[str]:
    names = set(DVC_REMOTE_SECRETS.get(answers["ci_provider"], {}).get(answers["data_remote"], ()))
    if answers["ci_provider"] == "jenkins" and names:
        # Jenkins: a read-only credential where branches and pull requests run (`-read`), the
        # write one only in the stages of main, which the startup tier does not have.
        read = {f"{name}-read" for name in names}
        return read | names if cluster(answers) else read
    return names


def test_only_the_chosen_providers_ci_files_exist(rendered):
    answers, project = rendered
    present = {str(p.relative_to(project)) for p in ci_files(project)}
    assert present == expected_ci_files(answers)
    others = {"github": ".github", "gitlab": ".gitlab-ci.yml", "jenkins": "Jenkinsfile"}
    for provider, path in others.items():
        if provider != answers["ci_provider"]:
            assert not (project / path).exists(), f"{path} rendered for {answers['ci_provider']}"


def test_ci_files_pass_their_validators(rendered):
    answers, project_dir = rendered
    files = ci_files(project_dir)
    provider = answers["ci_provider"]
    if provider == "github":
        # actionlint with shellcheck on every run: script, schema, zizmor high
        check_github_workflows(files, shellcheck=True)
    elif provider == "gitlab":
        pipeline = check_gitlab_ci(project_dir / ".gitlab-ci.yml")  # schema, stages, needs
        _, jobs = gitlab_jobs(project_dir / ".gitlab-ci.yml")
        # One shell per job runs before_script, script and after_script: check them together,
        # in the shell of the job's image (Alpine's docker images have no bash).
        for shell in ("sh", "bash"):
            scripts = {
                f".gitlab-ci.yml job {name}": "\n".join(lines)
                for name, lines in pipeline.scripts.items()
                if lines
                and (str(jobs[name].get("image", "")).startswith("docker:")) == (shell == "sh")
            }
            if scripts:
                run_shellcheck(scripts, shell=shell)
    else:
        pipeline = check_jenkinsfile(project_dir / "Jenkinsfile")  # parse + declarative structure
        # `sh` steps run with /bin/sh unless they start with a shebang.
        run_shellcheck(
            {f"Jenkinsfile sh step {n}": text for n, text in enumerate(pipeline.sh_commands, 1)}
        )


def test_every_make_target_called_by_ci_exists_in_the_makefile(rendered):
    _, project_dir = rendered
    called: set[str] = set()
    for path in ci_files(project_dir):
        called |= called_make_targets(path.read_text(), include_other_makefiles=False)
    assert called, "the CI files call no make target"
    missing = sorted(called - make_targets(project_dir / "Makefile"))
    assert missing == [], f"CI calls make targets the Makefile does not define: {missing}"


def test_ci_runs_the_tiers_make_commands_on_every_provider(rendered):
    answers, project = rendered
    commands = ci_make_commands(project)
    provider = answers["ci_provider"]
    ci = {"make setup", "make ci"} if provider == "github" else {"make setup", "make lint"}
    ci.add("make audit")  # known vulnerabilities in uv.lock, on every tier
    ci |= {"make test", "make pipeline"} if provider != "github" else set()
    cd = {
        "make pipeline",
        "make promote",
        "make docker-build docker-push",
        "make deploy ENV=staging",
        "make deploy ENV=production",
    }
    canary = {"make deploy ENV=production CANARY_PERCENT=10", "make model-card"}
    push = {"make push"}
    expected = set(ci) | {"make monitor"}  # the schedule: drift check, retraining on drift
    kubeflow = cluster(answers) and answer(answers, "orchestrator") == "kubeflow"
    if kubeflow:
        # CD trains on the cluster and fetches what the run trained (the pipeline registers,
        # promotes and, on enterprise, writes the model card): no runner-side training.
        cd = (cd - {"make pipeline", "make promote"}) | {"make kfp-train"}
        canary = canary - {"make model-card"}
    if cluster(answers):
        expected |= cd
        if answers["data_remote"] != "local" and not kubeflow:
            expected |= push
    if enterprise(answers):
        expected |= canary
        # Signing after the push; the deploys verify (`make deploy` runs verify-image).
        expected |= {
            "github": {"make sign-image"},
            "gitlab": {"make cosign-login sign-image", "make cosign-login"},
            "jenkins": {"make sign-image", "make cosign-login"},
        }[provider]
    if provider == "github" and cluster(answers):
        expected.add("make lint test kfp-compile")  # cd.yml's checks job
    if provider != "github" and cluster(answers):
        expected.add("make kfp-compile")  # beside lint (GitHub's `make ci` runs it)
    if kubeflow:
        # The Kubeflow pipeline's image, pushed before CD's run and for scheduled retraining.
        expected.add("make docker-build-trainer docker-push-trainer")
        if enterprise(answers):  # signed like the server image
            expected.add(
                "make cosign-login sign-trainer-image"
                if provider == "gitlab"
                else "make sign-trainer-image"
            )
    # Template updates: GitHub and GitLab propose them, Jenkins reports them.
    if provider == "jenkins":
        expected.add("make template-check FORMAT=json STRICT=1")
    else:
        expected |= {"make template-check FORMAT=json", "make template-update"}
    assert commands == expected


# --------------------------------------------------------------------------------------------
# GitHub Actions
# --------------------------------------------------------------------------------------------

PINNED_USES = re.compile(r"^\s*(?:-\s*)?uses:\s*(?P<ref>\S+)\s+#\s*v\d+(?:\.\d+)*\s*$")


def test_github_actions_are_pinned_by_commit_sha_with_a_version_comment(github):
    _, project_dir = github
    for path in ci_files(project_dir):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not re.match(r"^\s*(?:-\s*)?uses:", line):
                continue
            match = PINNED_USES.match(line)
            assert match, f"{path.name}:{number}: `uses:` without a `# vX.Y.Z` comment: {line}"
            ref = match.group("ref")
            assert ref.startswith("./") or re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), (
                f"{path.name}:{number}: not pinned by a 40-hex commit SHA: {ref}"
            )


def test_github_least_privilege_concurrency_and_no_persisted_credentials(github):
    answers, project_dir = github
    ghcr = answer(answers, "container_image").startswith("ghcr.io/")
    kubeflow = cluster(answers) and answer(answers, "orchestrator") == "kubeflow"
    # With Kubeflow, CD's train job only submits the run and fetches from MLflow.
    remote_jobs = REMOTE_JOBS["github"] - ({"train"} if kubeflow else set())
    for path in ci_files(project_dir):
        workflow = load_workflow(path)
        assert workflow["permissions"] == {}, path.name
        assert "group" in workflow["concurrency"], path.name
        for name, job in workflow["jobs"].items():
            expected = {"contents": "read"}
            if name in ("build", "trainer-image") and ghcr:
                expected["packages"] = "write"
            if name in ("build", "trainer-image") and enterprise(answers):
                expected["id-token"] = "write"  # keyless signing (Sigstore)
            if name.startswith("deploy-") and enterprise(answers) and ghcr:
                expected["packages"] = "read"  # cosign reads the signature
            if name in remote_jobs and answers["data_remote"] != "local":
                expected["id-token"] = "write"  # OIDC for the DVC remote
            if path.name == "template-update.yml" and name == "propose":
                # pushes its branch and opens the pull request; runs no code of the template
                expected = {"contents": "write", "pull-requests": "write"}
            assert job["permissions"] == expected, f"{path.name}: job {name}"
            assert "timeout-minutes" in job, f"{path.name}: job {name}"
        for name, step in workflow_steps(workflow):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, f"{path.name}: {name}"


def test_github_jobs_and_triggers_follow_the_tier(github):
    answers, project = github
    workflows = project / ".github" / "workflows"
    ci = load_workflow(workflows / "ci.yml")
    assert list(ci["jobs"]) == ["ci"]
    steps = {step.get("name"): step.get("run") for step in ci["jobs"]["ci"]["steps"]}
    assert steps["Lint, test, run the pipeline"] == "make ci"
    upload = next(s for _, s in workflow_steps(ci) if "upload-artifact" in s.get("uses", ""))
    # enterprise's `make ci` writes the model card too: it is kept beside the reports.
    kept = upload["with"]["path"].split()
    assert kept == (["reports/", "docs/model_card.md"] if enterprise(answers) else ["reports/"])
    # Every tier's schedule: a drift check, retraining on drift, the reports kept.
    retrain = load_workflow(workflows / "retrain.yml")
    assert set(retrain["on"]) == {"schedule", "workflow_dispatch"}
    assert retrain["on"]["schedule"][0]["cron"]
    steps = retrain["jobs"]["retrain"]["steps"]
    assert "make monitor" in [s.get("run") for s in steps]
    uploads = [s["with"]["path"] for s in steps if "upload-artifact" in s.get("uses", "")]
    assert uploads and uploads[0].startswith("reports/")
    if not cluster(answers):
        assert set(ci["on"]) == {"push", "pull_request"}
        assert ci["on"]["push"] == {"branches": ["main"]}
        return
    assert set(ci["on"]) == {"pull_request"}  # on main, cd.yml runs lint, test and training

    cd = load_workflow(workflows / "cd.yml")
    assert cd["on"]["push"] == {"branches": ["main"]}
    assert cd["concurrency"]["cancel-in-progress"] is False
    production = ["deploy-production-canary", "deploy-production"]
    kubeflow = answer(answers, "orchestrator") == "kubeflow"
    # With Kubeflow the cluster pulls the trainer image of the commit before the run starts.
    expected_jobs = ["checks", *(["trainer-image"] if kubeflow else []), "train", "build"]
    expected_jobs += ["deploy-staging", *(production if enterprise(answers) else production[1:])]
    assert list(cd["jobs"]) == expected_jobs
    for before, after in itertools.pairwise(expected_jobs):
        assert cd["jobs"][after]["needs"] == before  # a chain: nothing deploys untested
    jobs = cd["jobs"]
    assert jobs["deploy-staging"]["environment"] == "staging"
    for name in production if enterprise(answers) else ["deploy-production"]:
        # On enterprise the environment's required reviewers gate these jobs.
        assert jobs[name]["environment"] == "production"
    runs = {name: [s.get("run") for s in job["steps"]] for name, job in jobs.items()}
    if kubeflow:
        # The run trains, registers, promotes (and writes the card); the job fetches what it made.
        assert "make kfp-train" in runs["train"]
        assert not {"make pipeline", "make promote", "make model-card"} & set(runs["train"])
        trainer_runs = runs["trainer-image"]
        push = trainer_runs.index("make docker-build-trainer docker-push-trainer")
        if enterprise(answers):
            assert trainer_runs[push + 1] == "make sign-trainer-image"
        assert "make docker-build-trainer docker-push-trainer" not in runs["build"]
        [submit] = [s for s in jobs["train"]["steps"] if s.get("run") == "make kfp-train"]
        assert submit["env"]["KFP_HOST"] == "${{ secrets.KFP_HOST }}"
    else:
        assert ("make model-card" in runs["train"]) == enterprise(answers)
    if enterprise(answers):
        assert "make deploy ENV=production CANARY_PERCENT=10" in runs["deploy-production-canary"]
        uploads = [s["with"] for s in jobs["train"]["steps"] if "upload" in s.get("uses", "")]
        assert any(u["path"] == "docs/model_card.md" for u in uploads)

    # CD and retraining never promote at the same time.
    group = jobs["train"]["concurrency"]["group"]
    assert retrain["jobs"]["retrain"]["concurrency"]["group"] == group


def test_github_python_version_comes_from_the_answer(github):
    answers, project_dir = github
    versions = {
        step["with"]["python-version"]
        for path in ci_files(project_dir)
        for _, step in workflow_steps(load_workflow(path))
        if step.get("uses", "").startswith("astral-sh/setup-uv@")
    }
    assert versions == {answer(answers, "python_version")}


# Secrets, (non-secret) variables and the job's own identity.
GITHUB_EXPRESSION = re.compile(
    r"^\$\{\{ (?:(?:secrets|vars)\.[A-Z][A-Z0-9_]*|github\.actor|github\.token"
    r"|needs\.[a-z-]+\.outputs\.[a-z_]+) \}\}$"
)


def test_github_secrets_only_by_reference(github):
    answers, project_dir = github
    names = set()
    for path in ci_files(project_dir):
        workflow = load_workflow(path)
        envs = [job.get("env", {}) for job in workflow["jobs"].values()]
        envs += [step.get("env", {}) for _, step in workflow_steps(workflow)]
        for env in envs:
            for key, value in env.items():
                assert GITHUB_EXPRESSION.match(str(value)), f"{path.name}: {key}={value!r}"
        text = path.read_text()
        if path.name == "template-update.yml":  # its optional tokens, github.token as fallback
            assert set(re.findall(r"secrets\.([A-Za-z0-9_]+)", text)) == {
                "TEMPLATE_UPDATE_TOKEN",
                "TEMPLATE_READ_TOKEN",
            }
            assert "github.token" in text
        else:
            names |= set(re.findall(r"secrets\.([A-Za-z0-9_]+)", text))
        # Expressions never reach a shell script (template injection).
        for _, step in workflow_steps(workflow):
            assert "${{" not in str(step.get("run", "")), f"{path.name}: {step}"
    if cluster(answers):
        assert answer(answers, "mlflow_tracking_secret") in names
        assert "MLFLOW_TRACKING_URI" not in names - {answer(answers, "mlflow_tracking_secret")}
    else:
        assert names == remote_secrets(answers)
    # Secrets reach steps, never whole jobs, and only jobs that run in an environment (zizmor's
    # secrets-outside-env): the environment can hold them and guard them.
    for path in ci_files(project_dir):
        for name, job in load_workflow(path)["jobs"].items():
            assert "secrets." not in str(job.get("env", {})), f"{path.name} {name}: job-level"
            if "secrets." in str(job.get("steps", [])):
                assert job.get("environment"), (
                    f"{path.name} {name} uses secrets outside an environment"
                )


# --------------------------------------------------------------------------------------------
# GitLab CI
# --------------------------------------------------------------------------------------------


GITLAB_STAGES = ["lint", "test", "train", "build", "deploy-staging", "deploy-production"]


def test_gitlab_jobs_stages_and_rules_follow_the_tier(gitlab):
    answers, project = gitlab
    info = check_gitlab_ci(project / ".gitlab-ci.yml", schema=False)
    config, jobs = gitlab_jobs(project / ".gitlab-ci.yml")
    expected_jobs = {"lint", "test", "audit", "pipeline", "retrain"}
    expected_jobs |= {"template-update", "template-update-mr"}
    kubeflow = cluster(answers) and answer(answers, "orchestrator") == "kubeflow"
    if cluster(answers):
        expected_jobs |= {"train", "build-image", "deploy-staging", "deploy-production"}
    if kubeflow:
        expected_jobs.add("build-trainer-image")
    if enterprise(answers):
        expected_jobs |= {"deploy-production-canary", "sign-image"}
    if kubeflow and enterprise(answers):
        expected_jobs.add("sign-trainer-image")
    assert set(info.jobs) == expected_jobs
    stages = GITLAB_STAGES if cluster(answers) else GITLAB_STAGES[:3]
    if kubeflow:  # the trainer image is pushed before the cluster runs the pipeline
        stages = [*stages[:2], "trainer-image", *stages[2:]]
    assert info.stages == stages
    assert set(info.job_stages.values()) == set(info.stages)  # no empty stage

    rules = config["workflow"]["rules"]
    assert {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'} in rules
    assert {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"} in rules
    schedule = '$CI_PIPELINE_SOURCE == "schedule"'
    for name, job in jobs.items():
        if name == "retrain":  # with template-update, the only jobs of a scheduled pipeline
            main = "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
            assert job["rules"] == [{"if": f"{schedule} && {main}"}]
        elif name.startswith("template-update"):  # schedules of the protected default branch
            main = "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
            assert job["rules"] == [{"if": f'{schedule} && {main} && $TEMPLATE_UPDATE != "false"'}]
        else:
            assert {"if": schedule, "when": "never"} in job["rules"] or all(
                r.get("if") == '$CI_PIPELINE_SOURCE == "merge_request_event"' for r in job["rules"]
            ), f"job {name} would run on schedules"

    assert info.scripts["retrain"] == ["make setup", "make monitor"]
    assert "reports/" in jobs["retrain"]["artifacts"]["paths"]
    manual = {name for name, job in jobs.items() if is_manual(job)}
    environments = {name: job.get("environment", {}).get("name") for name, job in jobs.items()}
    # The template update's token is scoped to the environment of the job that pushes.
    assert environments.pop("template-update-mr") == "template-update"
    assert jobs["template-update-mr"]["environment"]["action"] == "access"
    if not cluster(answers):
        assert manual == set() and set(environments.values()) == {None}
        return
    # Credentials scoped to environments reach only the jobs of those environments.
    assert environments["train"] == environments["retrain"] == "training"
    registry_env = (
        None
        if answer(answers, "container_image").startswith("registry.gitlab.com/")
        else "registry"
    )
    for name in ("build-image", "build-trainer-image", "sign-image", "sign-trainer-image"):
        if name in jobs:
            assert environments[name] == registry_env, name
    production = {"deploy-production-canary", "deploy-production"}
    assert manual == (production if enterprise(answers) else set())
    for name in manual:
        assert jobs[name]["allow_failure"] is False  # the pipeline waits for the approval
    assert environments["deploy-staging"] == "staging"
    assert {environments[n] for n in production & set(jobs)} == {"production"}
    if kubeflow:
        assert info.needs["build-trainer-image"] == ["lint", "test"]
        signed = ["sign-trainer-image"] if enterprise(answers) else []
        assert info.needs["train"] == ["build-trainer-image", *signed]
        trainer = info.scripts["build-trainer-image"]
        assert "make docker-build-trainer docker-push-trainer" in trainer
        assert info.scripts["train"] == ["make setup", "make kfp-train"]
        assert "dvc.lock" not in jobs["train"]["artifacts"]["paths"]
    else:
        assert info.needs["train"] == ["lint", "test"]
        assert info.scripts["train"][:2] == ["make setup", "make pipeline"]
    build = [line for line in info.scripts["build-image"] if line.startswith("make ")]
    assert build == ["make docker-build docker-push"]
    assert "build-image" in info.needs["deploy-staging"]
    if enterprise(answers):
        assert "deploy-staging" in info.needs["deploy-production-canary"]
        assert "deploy-production-canary" in info.needs["deploy-production"]
        assert info.scripts["deploy-production-canary"][-1] == (
            "make deploy ENV=production CANARY_PERCENT=10"
        )
        assert "docs/model_card.md" in jobs["train"]["artifacts"]["paths"]
    else:
        assert "deploy-staging" in info.needs["deploy-production"]
    assert "docker:" in jobs["build-image"]["services"][0]
    assert jobs["train"]["resource_group"] == jobs["retrain"]["resource_group"]


def test_gitlab_python_image_uv_cache_and_artifacts(gitlab):
    answers, project_dir = gitlab
    config, jobs = gitlab_jobs(project_dir / ".gitlab-ci.yml")
    python = answer(answers, "python_version")
    assert config["variables"]["UV_PYTHON"] == python
    assert config["variables"]["UV_CACHE_DIR"].startswith("$CI_PROJECT_DIR/")
    cache_dir = config["variables"]["UV_CACHE_DIR"].removeprefix("$CI_PROJECT_DIR/")
    for name, job in jobs.items():
        if name in ("build-image", "build-trainer-image"):
            assert PINNED_IMAGE.fullmatch(job["image"]), job["image"]
            assert job["image"].startswith("docker:")
            continue
        assert PINNED_IMAGE.fullmatch(job["image"]), (name, job["image"])
        assert job["image"].startswith(f"python:{python}-bookworm@"), name
        assert job["cache"]["key"]["files"] == ["uv.lock", "pyproject.toml"], name
        assert job["cache"]["paths"] == [f"{cache_dir}/"], name
    assert set(jobs["pipeline"]["artifacts"]["paths"]) >= {"reports/", "models/"}


def test_gitlab_secrets_only_by_reference(gitlab):
    answers, project_dir = gitlab
    config, jobs = gitlab_jobs(project_dir / ".gitlab-ci.yml")
    secret_name = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|CREDENTIALS|KUBECONFIG|TRACKING_URI")
    for scope, variables in [("top", config["variables"])] + [
        (name, job.get("variables", {})) for name, job in jobs.items()
    ]:
        for key, value in variables.items():
            if secret_name.search(key):
                assert re.fullmatch(r"\$[A-Z][A-Z0-9_]*", str(value)), f"{scope}: {key}={value}"
    text = (project_dir / ".gitlab-ci.yml").read_text()
    secret = answer(answers, "mlflow_tracking_secret")
    if cluster(answers) and secret != "MLFLOW_TRACKING_URI":
        assert jobs["train"]["variables"]["MLFLOW_TRACKING_URI"] == f"${secret}"
        assert jobs["retrain"]["variables"]["MLFLOW_TRACKING_URI"] == f"${secret}"
    if answer(answers, "container_image").startswith("registry.gitlab.com/"):
        assert "$CI_REGISTRY_PASSWORD" in text
        assert not re.search(r"(?<!CI_)REGISTRY_PASSWORD", text)


# --------------------------------------------------------------------------------------------
# Jenkins
# --------------------------------------------------------------------------------------------


def test_jenkins_stages_approval_and_schedule_follow_the_tier(jenkins):
    answers, project_dir = jenkins
    path = project_dir / "Jenkinsfile"
    info = check_jenkinsfile(path)
    text = path.read_text()
    expected = ["Setup", "Lint", "Test", "Audit", "Pipeline"]
    kubeflow = cluster(answers) and answer(answers, "orchestrator") == "kubeflow"
    if cluster(answers):
        expected += ["Trainer image"] if kubeflow else []
        expected += ["Train", "Build image", "Deploy staging"]
        expected += ["Deploy production canary"] if enterprise(answers) else []
        expected += ["Deploy production"]
    expected += ["Monitor", "Template check"]
    assert info.stage_names == expected
    assert info.agent == "any"
    approvers = answer(answers, "production_approvers")
    if enterprise(answers):
        assert info.input_submitters == {
            "Deploy production canary": approvers,
            "Deploy production": approvers,
        }
        assert info.stage("Deploy production canary").sh == (
            "make cosign-login",
            "make deploy ENV=production CANARY_PERCENT=10",
        )
        build = info.stage("Build image").sh
        assert build.index("make sign-image") == build.index("make docker-build docker-push") + 1
        # On Kubeflow the pipeline's own task writes the card, and kfp-train fetches it.
        assert ("make model-card" in info.stage("Train").sh) != kubeflow
    else:
        assert not info.has_input_with_submitter
        assert "input(" not in text
    # The monitoring schedule: a cron trigger on main only, and a stage gated on the timer.
    assert info.has_cron_trigger
    assert 'cron(env.BRANCH_NAME == "main" ? "H 3 * * 1" : "")' in text
    assert info.stage("Monitor").has_when and info.stage("Monitor").sh == ("make monitor",)
    monitor_block = text[text.index("stage('Monitor')") :]
    assert "triggeredBy 'TimerTrigger'" in monitor_block.split("steps")[0]
    for name in ("Lint", "Test", "Pipeline"):
        assert info.stage(name).has_when, name  # not on the timer
    if cluster(answers):
        for name in ("Train", "Build image", "Deploy staging", "Deploy production"):
            assert info.stage(name).has_when, name  # main only, not on the timer
    if kubeflow:
        assert info.stage("Trainer image").has_when
        assert "make docker-build-trainer docker-push-trainer" in info.stage("Trainer image").sh
        # The run's image by the digest the Trainer image stage pushed (and, enterprise, signed).
        assert info.stage("Train").sh == (
            f'TRAINER_IMAGE="{answer(answers, "container_image")}-trainer@'
            '$(cat build/trainer-image-digest)"; export TRAINER_IMAGE; make kfp-train',
        )
        trainer = info.stage("Trainer image").sh
        push = trainer.index("make docker-build-trainer docker-push-trainer")
        assert ("make sign-trainer-image" in trainer[push:]) == enterprise(answers)
        assert "make docker-build-trainer docker-push-trainer" not in info.stage("Build image").sh
    assert "archiveArtifacts artifacts: 'reports/**'" in text
    assert ("docs/model_card.md" in text) == enterprise(answers)
    assert f"UV_PYTHON = '{answer(answers, 'python_version')}'" in text


def test_jenkins_credentials_only_by_id(jenkins):
    answers, project_dir = jenkins
    text = (project_dir / "Jenkinsfile").read_text()
    ids = set(re.findall(r"credentials\('([^']+)'\)", text))
    ids |= set(re.findall(r"credentialsId: '([^']+)'", text))
    if not cluster(answers):
        assert ids == remote_secrets(answers)
        assert ("withCredentials" in text) == bool(ids)
        return
    expected = {
        answer(answers, "mlflow_tracking_secret"),
        "registry-credentials",
        "kubeconfig-staging",
        "kubeconfig-production",
    }
    expected |= remote_secrets(answers)  # dvc-remote-<cloud> and dvc-remote-<cloud>-read
    if enterprise(answers):  # no OIDC identity on Jenkins: cosign signs with a key pair
        expected |= {"cosign-key", "cosign-password", "cosign-public-key"}
    if cluster(answers) and answer(answers, "orchestrator") == "kubeflow":
        expected.add("kfp-host")  # Train and Monitor submit Kubeflow pipeline runs
    assert ids == expected
    # Every environment assignment but the Python version, CI and the build's own Docker
    # configuration folder binds a credential by ID.
    for name, value in re.findall(r"^\s*([A-Z][A-Z0-9_]*)\s*=\s*(.+?)\s*$", text, re.MULTILINE):
        if name == "DOCKER_CONFIG":
            assert value == '"${env.WORKSPACE}@tmp/docker-config"', value
        elif name not in ("UV_PYTHON", "CI"):
            assert re.fullmatch(r"credentials\('[^']+'\)", value), f"{name} = {value}"
    assert text.count("MLFLOW_TRACKING_URI = credentials(") == 2  # Train and Monitor
    # Secrets expand in the shell, never through Groovy string interpolation.
    for command in re.findall(r'\bsh\s+"([^"]*)"', text):
        assert "$" not in command, command


# --------------------------------------------------------------------------------------------
# Every provider: secrets documented, nothing secret inline
# --------------------------------------------------------------------------------------------

CREDENTIAL_LITERALS = re.compile(
    r"AKIA[0-9A-Z]{16}|-----BEGIN|ghp_[A-Za-z0-9]{20,}|glpat-|AccountKey=|"
    r"\"private_key\"|(?:password|token|secret)\s*[:=]\s*['\"][^'\"$]{6,}",
    re.IGNORECASE,
)


def test_no_credential_literal_in_ci_files(rendered):
    _, project_dir = rendered
    for path in ci_files(project_dir):
        found = CREDENTIAL_LITERALS.findall(path.read_text())
        assert found == [], f"{path.name}: {found}"


def referenced_secrets(answers: Mapping[str, str], project: Path) -> set[str]:
    """Names a user must create: secrets, variables or credential IDs the CI files read."""
    provider = answers["ci_provider"]
    names: set[str] = set()
    for path in ci_files(project):
        text = path.read_text()
        if provider == "github":
            names |= set(re.findall(r"secrets\.([A-Za-z0-9_]+)", text)) - {"GITHUB_TOKEN"}
        elif provider == "gitlab":
            config = yaml.safe_load(text)
            defined = set(config.get("variables", {}))
            for body in config.values():
                if isinstance(body, dict) and isinstance(body.get("variables"), dict):
                    defined |= set(body["variables"])
            refs = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))
            names |= {n for n in refs if not n.startswith("CI_") and n not in defined}
        else:
            names |= set(re.findall(r"credentials\('([^']+)'\)", text))
            names |= set(re.findall(r"credentialsId: '([^']+)'", text))
    return names


def test_readme_documents_every_secret_the_ci_reads(rendered):
    answers, project_dir = rendered
    section = readme_ci_section(project_dir)
    names = referenced_secrets(answers, project_dir)
    # The template-update job's token and switch are documented in "## Template updates".
    updates = re.search(
        r"^## Template updates\n(.*?)(?=^## |\Z)",
        (project_dir / "README.md").read_text(),
        re.M | re.S,
    )
    assert updates, "README.md has no '## Template updates' section"
    for name in {n for n in names if n.startswith("TEMPLATE_")}:
        assert f"`{name}`" in updates.group(1), f"'Template updates' does not document {name}"
        names.discard(name)
    # The OIDC variables of the DVC remote are documented under "### Credentials" (checked by
    # test_oidc_is_the_default_way_to_the_dvc_remote_where_the_provider_has_it).
    names -= OIDC_VARIABLES.get(answers["data_remote"], set())
    names -= set(READ_OIDC_VARIABLES.get(answers["data_remote"], {}).values())
    if answers["ci_provider"] == "gitlab" and cluster(answers):
        # Read by the tools themselves, not by the file: still documented by name.
        names |= {"KUBECONFIG", answer(answers, "mlflow_tracking_secret")}
        remote = {"s3": "AWS_SECRET_ACCESS_KEY", "gcs": "GOOGLE_APPLICATION_CREDENTIALS"}
        remote["azure"] = "AZURE_STORAGE_CONNECTION_STRING"
        if answers["data_remote"] in remote:
            names.add(remote[answers["data_remote"]])
    if cluster(answers) and answer(answers, "orchestrator") == "kubeflow":
        # Scheduled retraining submits to Kubeflow Pipelines (`make kfp-run`); GitLab's variable
        # is read by the tool, not by the file.
        kfp_host = "kfp-host" if answers["ci_provider"] == "jenkins" else "KFP_HOST"
        assert answers["ci_provider"] == "gitlab" or kfp_host in names
        names.add(kfp_host)
    if cluster(answers):
        assert answer(answers, "mlflow_tracking_secret") in names
        assert remote_secrets(answers) <= names
    else:
        assert names == remote_secrets(answers)
        if answers["data_remote"] == "local":
            assert "none, the" in section
        elif answers["ci_provider"] == "gitlab":
            names = GITLAB_REMOTE_VARIABLES[answers["data_remote"]]
    for name in names:
        assert f"`{name}`" in section, f"README's CI/CD section does not document {name}"
    dvc_names = ("AWS_ACCESS_KEY_ID", "GOOGLE_APPLICATION_CREDENTIALS", "GCP_SERVICE_ACCOUNT_KEY")
    if answers["data_remote"] == "local":
        assert not any(n in section for n in (*dvc_names, "AZURE_STORAGE_CONNECTION_STRING"))


def test_oidc_is_the_default_way_to_the_dvc_remote_where_the_provider_has_it(rendered):
    answers, project = rendered
    remote, provider = answers["data_remote"], answers["ci_provider"]
    makefile = (project / "Makefile").read_text()
    readme = (project / "README.md").read_text()
    if remote == "local":
        assert "cloud-credentials" not in makefile and "### Credentials" not in readme
        return
    assert "python -m mlops_stack_runtime.tools.cloud_credentials" in makefile
    # The targets that reach the remote mint the token first, whatever runs them.
    for target in ("data", "push"):
        assert re.search(rf"^{target}: \$\(CLOUD_CREDENTIALS\) ##", makefile, re.M), target
    credentials = re.search(r"^### Credentials\n(.*?)(?=^## )", readme, re.M | re.S)
    assert credentials, "README.md has no '### Credentials' section"
    if provider == "jenkins":
        assert "no OIDC identity" in credentials.group(1)
        return
    read_variables = READ_OIDC_VARIABLES[remote]
    # Two identities: read (pull/merge requests; all of the startup tier, which never writes)
    # and, on cluster tiers, write (the training jobs of main).
    documented = set(read_variables.values()) | (
        OIDC_VARIABLES[remote] if cluster(answers) else set()
    )
    for name in documented:
        assert f"`{name}`" in credentials.group(1), f"Credentials does not document {name}"
    # With the Kubeflow orchestrator CD's train job only submits the run and fetches its model
    # from MLflow: it never reaches the DVC remote.
    kubeflow = cluster(answers) and answer(answers, "orchestrator") == "kubeflow"
    remote_jobs = REMOTE_JOBS[provider] - ({"train"} if kubeflow else set())
    if provider == "github":
        for path in ci_files(project):
            workflow = load_workflow(path)
            for name, job in workflow["jobs"].items():
                reaching = [
                    step
                    for step in job.get("steps", [])
                    if REMOTE_MAKE_COMMAND.search(str(step.get("run", "")))
                ]
                assert bool(reaching) == (name in remote_jobs), f"{path.name}: {name}"
                if not reaching:
                    continue
                assert job["permissions"].get("id-token") == "write", f"{path.name}: {name}"
                # The read identity where nothing writes: pull requests (ci.yml, which runs in no
                # environment and gets no secret) and the startup tier's retraining.
                reads = path.name == "ci.yml" or not cluster(answers)
                if path.name == "ci.yml":
                    assert "environment" not in job, "pull requests get no environment"
                    assert "secrets." not in path.read_text(), "pull requests get no secret"
                for step in reaching:
                    env = step.get("env", {})
                    for variable in OIDC_VARIABLES[remote]:
                        source = read_variables.get(variable, variable) if reads else variable
                        assert env.get(variable) == f"${{{{ vars.{source} }}}}", (
                            f"{path.name} {name}: {step['name']} lacks {variable}"
                        )
        if remote == "gcs":  # the key file is the fallback only
            key_steps = [
                step
                for path in ci_files(project)
                for _, step in workflow_steps(load_workflow(path))
                if "GCP_SERVICE_ACCOUNT_KEY" in str(step.get("env", {}))
            ]
            assert key_steps
            for step in key_steps:
                assert step["if"] == "${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER == '' }}"
    else:
        _, jobs = gitlab_jobs(project / ".gitlab-ci.yml")
        present = remote_jobs & set(jobs)
        assert present >= {"pipeline", "retrain"}
        # Merge requests (and the startup tier, which never writes) take the read identity.
        reading = {"pipeline"} | (set() if cluster(answers) else {"retrain"})
        for name in present:
            tokens = jobs[name].get("id_tokens", {})
            assert tokens == {"OIDC_ID_TOKEN": {"aud": OIDC_AUDIENCES[remote]}}, name
            variables = jobs[name].get("variables", {})
            for variable, source in read_variables.items():
                if variable != source:
                    expected = f"${source}" if name in reading else None
                    assert variables.get(variable) == expected, (name, variable)
        for name, job in jobs.items():
            if name not in remote_jobs and "OIDC_ID_TOKEN" in str(job):
                pytest.fail(f"{name} gets the remote's ID token without reaching the remote")


def test_readme_names_only_make_targets_the_makefile_has(rendered):
    _, project = rendered
    readme = (project / "README.md").read_text()
    targets = make_targets(project / "Makefile")
    named = set(re.findall(r"`make ([a-z][a-z-]*)", readme))
    assert named, "README.md names no make target"
    assert named <= set(targets), f"README.md names missing targets: {named - set(targets)}"


def test_readme_explains_the_approval_only_on_enterprise(rendered):
    answers, project_dir = rendered
    section = readme_ci_section(project_dir)
    assert ("**Production approval.**" in section) == enterprise(answers)
    if enterprise(answers):
        assert answer(answers, "production_approvers") in section
        where = {
            "github": "Required reviewers",
            "gitlab": "Protected environments",
            "jenkins": "`submitter`",
        }[answers["ci_provider"]]
        assert where in section


def monitor_retraining(project: Path) -> list[str] | None:
    """The make targets `make monitor` runs on drift (the Makefile's RETRAIN), None where it runs
    no make target (the startup tier reloads the data and runs `dvc repro` itself)."""
    makefile = (project / "Makefile").read_text()
    match = re.search(r"^RETRAIN := (.*)$", makefile, re.MULTILINE)
    assert match, "the Makefile has no RETRAIN"
    words = match.group(1).split()
    if words[0] != "$(MAKE)":
        assert "dvc repro" in match.group(1), match.group(1)
        return None
    return [word for word in words[1:] if not word.startswith("-")]


def test_readme_says_what_make_monitor_runs_on_drift(rendered):
    """The monitor row, the Retraining paragraph and the `make retrain` lines name what the
    Makefile's monitor target runs on drift, per tier, orchestrator and data remote."""
    _, project = rendered
    readme = (project / "README.md").read_text()
    runs = monitor_retraining(project)
    row = re.search(r"^\| `make monitor` \|.*?, and on drift (.*) \|$", readme, re.MULTILINE)
    assert row, "README.md has no `make monitor` row saying what runs on drift"
    assert re.findall(r"`make ([a-z][a-z-]*)`", row.group(1)) == (runs or []), row.group(1)
    assert ("`dvc repro`" in row.group(1)) == (runs is None), row.group(1)

    paragraph = re.search(
        r"^\*\*Retraining\.\*\* `make monitor` runs the check and, on exit code 3 only, (.*?)"
        r"(?=^\*\*|\Z)",
        readme,
        re.MULTILINE | re.DOTALL,
    )
    assert paragraph, "README.md has no Retraining paragraph"
    first = re.match(r"`make ([a-z][a-z-]*)`", paragraph.group(1))
    assert (first and first.group(1)) == (runs and runs[0]), paragraph.group(1)[:200]
    assert ("`make push`" in paragraph.group(1)) == ("push" in (runs or [])), paragraph.group(1)
    # `make retrain` is said to be what monitor runs only where it is.
    retrains = "retrain" in (runs or [])
    assert ("(what `make monitor` runs on drift)" in readme) == retrains
    assert ("`make monitor` runs it on drift" in readme) == retrains


def test_readme_scores_with_the_champion_only_where_the_tier_promotes_one(rendered):
    _, project = rendered
    readme = (project / "README.md").read_text()
    promotes = "promote" in make_targets(project / "Makefile")
    assert ("MODEL_VERSION=champion" in readme) == promotes
    example = re.search(r"^make score .* MODEL_VERSION=(\S+)", readme, re.MULTILINE)
    assert example, "README.md has no `make score` example with MODEL_VERSION"
    assert example.group(1) == ("champion" if promotes else "1")


def template_readme_gitlab_stages() -> list[str]:
    """The GitLab stages the template's own README.md lists (CI providers)."""
    text = (TEMPLATE_ROOT / "README.md").read_text()
    match = re.search(r"`\.gitlab-ci\.yml`: stages ([a-z-]+(?:,\s+[a-z-]+)*)", text)
    assert match, "README.md no longer lists the GitLab stages"
    return re.split(r",\s+", match.group(1))  # the list may wrap


def test_template_readme_lists_the_gitlab_stages_of_the_renders(gitlab):
    """Every render's stages, in order, among README.md's list; all of them with Kubeflow on a
    cluster tier (the widest pipeline: the trainer image's stage too)."""
    answers, project = gitlab
    listed = template_readme_gitlab_stages()
    stages = gitlab_jobs(project / ".gitlab-ci.yml")[0]["stages"]
    assert [stage for stage in listed if stage in stages] == stages, (listed, stages)
    if cluster(answers) and answer(answers, "orchestrator") == "kubeflow":
        assert stages == listed


# --------------------------------------------------------------------------------------------
# Least privilege: which job holds which credential, on which ref (security review)
# --------------------------------------------------------------------------------------------

# Commands that push, sign, promote or deploy (or retrain, which promotes): default branch only.
PRIVILEGED = re.compile(
    r"\bmake\b[^\n]*\b(docker-push|docker-push-trainer|sign-image|sign-trainer-image|promote"
    r"|deploy|push|kfp-train|monitor)\b|\bgit\b[^\n]*\bpush\b"
)
MAIN_ONLY_WHEN = re.compile(r"^when \{ (?:allOf \{ )?branch 'main'")


def readme_section(project: Path, title: str) -> str:
    text = (project / "README.md").read_text()
    match = re.search(rf"^## {title}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def test_github_pull_requests_read_the_remote_with_no_secret_and_no_environment(github):
    """ci.yml runs on pull requests: no environment (its ID token's subject is the pull
    request, which only the read role trusts), no secret, the read identity's variables; the
    README's recipe has a read role for pull requests and, on cluster tiers, a write role
    trusted for the `training` environment only."""
    answers, project = github
    ci = load_workflow(project / ".github" / "workflows" / "ci.yml")
    (job,) = ci["jobs"].values()
    assert "environment" not in job
    assert "secrets." not in (project / ".github" / "workflows" / "ci.yml").read_text()
    if answers["data_remote"] == "local":
        return
    credentials = readme_section(project, "Data remote")
    assert "`repo:<owner>/<repo>:pull_request`" in credentials
    assert "read-only on the bucket" in credentials
    if cluster(answers):
        assert "`repo:<owner>/<repo>:environment:training`" in credentials
        assert "environment:data" not in credentials, "no role trusts an environment of PRs"
    else:
        assert "No job of this tier writes" in credentials
    if answers["data_remote"] == "s3":
        assert "`s3:ListBucket` and `s3:GetObject` only" in credentials
        assert ("`s3:PutObject`" in credentials) == cluster(answers)


def test_gitlab_merge_requests_read_the_remote_with_the_read_identity(gitlab):
    answers, project = gitlab
    if answers["data_remote"] == "local":
        return
    _, jobs = gitlab_jobs(project / ".gitlab-ci.yml")
    reads = READ_OIDC_VARIABLES[answers["data_remote"]]
    variable, source = next((v, s) for v, s in reads.items() if v != s)
    assert jobs["pipeline"]["variables"][variable] == f"${source}"
    credentials = readme_section(project, "Data remote")
    assert "`project_path:<group>/<project>:ref_type:branch:ref:*`" in credentials
    if cluster(answers):
        assert "`project_path:<group>/<project>:ref_type:branch:ref:main`" in credentials
        assert variable not in jobs["train"].get("variables", {})


def test_github_cd_and_retraining_run_for_main_only_behind_main_only_environments(github):
    """cd.yml can be started by hand: every job checks the ref. And the README sets every
    environment the workflows name to deployment branch `main`."""
    answers, project = github
    workflows = project / ".github" / "workflows"
    if cluster(answers):
        cd = load_workflow(workflows / "cd.yml")
        assert "workflow_dispatch" in cd["on"]
        for name, job in cd["jobs"].items():
            assert job.get("if") == "github.ref == 'refs/heads/main'", f"cd.yml job {name}"
        retrain = load_workflow(workflows / "retrain.yml")["jobs"]["retrain"]
        assert retrain.get("if") == "github.ref == 'refs/heads/main'"
    environments = {
        job["environment"]
        for path in ci_files(project)
        for job in load_workflow(path)["jobs"].values()
        if "environment" in job
    }
    security = readme_section(project, "Security")
    policy = re.search(r"^- Deployment branches.*?(?=^- )", security, re.MULTILINE | re.DOTALL)
    assert policy, "the Security section sets no deployment branches"
    for name in environments:
        assert f"`{name}`" in policy.group(0), f"no branch policy for the environment {name}"
    if enterprise(answers):
        assert "Required reviewers" in security


def test_gitlab_jobs_that_push_sign_promote_or_deploy_run_on_the_default_branch_only(gitlab):
    answers, project = gitlab
    _, jobs = gitlab_jobs(project / ".gitlab-ci.yml")
    privileged = [
        name for name, job in jobs.items() if PRIVILEGED.search("\n".join(job.get("script", [])))
    ]
    assert {"retrain", "template-update-mr"} <= set(privileged)
    if cluster(answers):
        assert {"train", "build-image", "deploy-staging", "deploy-production"} <= set(privileged)
    for name in privileged:
        running = [rule for rule in jobs[name]["rules"] if rule.get("when") != "never"]
        assert running, name
        for rule in running:
            assert "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" in rule.get("if", ""), (name, rule)
    security = readme_section(project, "Security")
    assert "Protected branches" in security and "Protected environments" in security


def test_jenkins_write_credentials_and_privileged_stages_are_main_only(jenkins):
    """Pull-request and branch builds get read-only credentials at most; everything that can
    write, sign, promote or deploy is bound and run under `when { branch 'main' }`."""
    answers, project = jenkins
    steps = jenkins_steps(project / "Jenkinsfile")
    read_only = {f"{i}-read" for ids in DVC_REMOTE_SECRETS["jenkins"].values() for i in ids}
    read_only.add("cosign-public-key")  # verifies; not secret
    for step in steps:
        main_only = bool(MAIN_ONLY_WHEN.match(step.when))
        writes = step.credentials - read_only
        assert main_only or not writes, f"{step.stage}: {step.command} with {sorted(writes)}"
        assert main_only or not PRIVILEGED.search(step.command), f"{step.stage}: {step.command}"
    pipeline = [s for s in steps if s.stage == "Pipeline"]
    assert pipeline and all(s.credentials <= read_only for s in pipeline)
    if answers["data_remote"] != "local":
        assert any(s.credentials & read_only for s in pipeline), "Pipeline reads the remote"
    security = readme_section(project, "Security")
    assert '"From users with Admin or Write permission"' in security


def test_the_trainer_image_is_pinned_by_digest_and_signed_on_enterprise(rendered):
    answers, project = rendered
    if not (cluster(answers) and answer(answers, "orchestrator") == "kubeflow"):
        return
    image = answer(answers, "container_image")
    provider = answers["ci_provider"]
    if provider == "github":
        jobs = load_workflow(project / ".github" / "workflows" / "cd.yml")["jobs"]
        trainer = jobs["trainer-image"]
        assert trainer["outputs"]["image"] == "${{ steps.trainer.outputs.image }}"
        runs = [step.get("run", "") for step in trainer["steps"]]
        (publish,) = [step for step in trainer["steps"] if step.get("id") == "trainer"]
        assert "build/trainer-image-digest" in publish["run"]
        assert f'echo "image={image}-trainer@${{digest}}" >> "$GITHUB_OUTPUT"' in publish["run"]
        push = runs.index("make docker-build-trainer docker-push-trainer")
        signed = "make sign-trainer-image" in runs[push : runs.index(publish["run"])]
        assert signed == enterprise(answers)
        (submit,) = [s for s in jobs["train"]["steps"] if s.get("run") == "make kfp-train"]
        assert submit["env"]["TRAINER_IMAGE"] == "${{ needs.trainer-image.outputs.image }}"
    elif provider == "gitlab":
        _, jobs = gitlab_jobs(project / ".gitlab-ci.yml")
        build = jobs["build-trainer-image"]
        assert build["artifacts"]["reports"]["dotenv"] == "build/trainer-image.env"
        assert "build/trainer-image-digest" in build["artifacts"]["paths"]
        line = f'echo "TRAINER_IMAGE={image}-trainer@${{digest}}" > build/trainer-image.env'
        assert line in build["script"]
        needs = jobs["train"]["needs"]
        assert "build-trainer-image" in needs  # its dotenv report: TRAINER_IMAGE
        if enterprise(answers):
            sign = jobs["sign-trainer-image"]
            assert sign["needs"] == ["build-trainer-image"]
            assert sign["script"] == ["make cosign-login sign-trainer-image"]
            assert sign["id_tokens"] == {"SIGSTORE_ID_TOKEN": {"aud": "sigstore"}}
            assert "sign-trainer-image" in needs
    else:
        text = (project / "Jenkinsfile").read_text()
        assert "archiveArtifacts artifacts: 'build/trainer-image-digest'" in text
        # The Train stage's command is held by test_jenkins_stages_approval_and_schedule...


def test_gitlab_template_update_token_reaches_only_the_job_that_pushes(gitlab):
    _, project = gitlab
    _, jobs = gitlab_jobs(project / ".gitlab-ci.yml")
    reads_token = re.compile(r"\$\{?TEMPLATE_UPDATE_TOKEN")
    users = [n for n, job in jobs.items() if reads_token.search(str(job.get("script", [])))]
    assert users == ["template-update-mr"]
    assert jobs["template-update-mr"]["environment"]["name"] == "template-update"
    assert "make" not in str(jobs["template-update-mr"]["script"]), "no code of the repository"
    assert jobs["template-update-mr"]["before_script"] == []
    # The job that runs the template's code drops every variable it does not need first.
    script = jobs["template-update"]["script"]
    drop = next(i for i, line in enumerate(script) if "compgen -e" in line)
    update = next(i for i, line in enumerate(script) if line == "make template-update")
    assert drop < update
    updates = readme_section(project, "Template updates")
    assert "**masked, protected and scoped to the environment `template-update`**" in updates


def test_jenkins_registry_logins_leave_nothing_on_the_agent(jenkins):
    answers, project = jenkins
    text = (project / "Jenkinsfile").read_text()
    steps = jenkins_steps(project / "Jenkinsfile")
    logins = [s for s in steps if "docker login" in s.command or "cosign-login" in s.command]
    if not cluster(answers):
        assert logins == [] and "DOCKER_CONFIG" not in text
        return
    assert logins
    # The whole pipeline's environment: docker and cosign write their logins there, outside the
    # workspace (the Docker build context), and the build removes it at its end.
    environment = text[text.index("  environment {") : text.index("  stages {")]
    assert 'DOCKER_CONFIG = "${env.WORKSPACE}@tmp/docker-config"' in environment
    assert [s.command for s in steps if s.stage == "post"] == ['rm -rf "$DOCKER_CONFIG"']


def test_readme_security_section_names_every_credential_the_ci_reads(rendered):
    answers, project = rendered
    security = readme_section(project, "Security")
    names = referenced_secrets(answers, project) - {"TEMPLATE_UPDATE"}  # a switch, not a secret
    # The OIDC variables name identities, not credentials ("Credentials" documents them).
    names -= OIDC_VARIABLES.get(answers["data_remote"], set())
    if answers["ci_provider"] == "github":
        names.add("GITHUB_TOKEN")
    elif answers["ci_provider"] == "gitlab":
        names.add("CI_JOB_TOKEN")
    for name in names:
        assert f"`{name}`" in security, f"the Security section does not name {name}"
    # What each can do, and where it is bound or received.
    header = (
        "| credential ID | bound in | can do |"
        if answers["ci_provider"] == "jenkins"
        else ("| credential | received by | can do |")
    )
    assert header in security
    assert "Settings to apply" in security


# --------------------------------------------------------------------------------------------
# Once: zizmor at every severity, and dvc dag
# --------------------------------------------------------------------------------------------


def _image_refs(node: Any) -> Iterator[str]:
    """Every `image:` value (and GitLab `services:` entry) in a YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                yield value
            elif key == "image" and isinstance(value, dict) and "name" in value:
                yield value["name"]
            elif key == "services" and isinstance(value, list):
                yield from (s if isinstance(s, str) else s["name"] for s in value)
            else:
                yield from _image_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _image_refs(item)


def test_every_image_is_pinned_by_digest_to_a_pin_the_template_records(rendered):
    answers, project = rendered
    dockerfile = (project / "Dockerfile").read_text()
    refs = re.findall(r"^FROM (\S+)", dockerfile, flags=re.MULTILINE)
    # Stages that build on earlier ones (server and trainer on runtime, trainer-build on build).
    stages = set(re.findall(r"^FROM \S+ AS (\S+)", dockerfile, flags=re.MULTILINE))
    refs = [ref for ref in refs if ref not in stages]
    yaml_files = sorted(project.glob("deploy/**/*.yaml"))
    if answers["ci_provider"] == "gitlab":
        yaml_files.append(project / ".gitlab-ci.yml")
    for path in yaml_files:
        for document in yaml.safe_load_all(path.read_text()):
            refs += list(_image_refs(document))
    own_image = answer(answers, "container_image") + "@sha256:"
    pinned = [ref for ref in refs if not ref.startswith(own_image)]  # set at deploy (pin-image)
    assert len(pinned) >= 2, refs
    recorded = set(TEMPLATE_PINS)
    for ref in pinned:
        assert PINNED_IMAGE.fullmatch(ref), f"{ref} is not pinned by digest"
        assert ref in recorded, f"{ref} is not a pin of includes/images.jinja"


def test_dependency_updates_are_configured_for_the_provider(rendered):
    answers, project = rendered
    if answers["ci_provider"] == "github":
        config_path = project / ".github" / "dependabot.yml"
        assert not (project / "renovate.json").exists()
        run_builtin_schema("vendor.dependabot", config_path)
        config = yaml.safe_load(config_path.read_text())
        ecosystems = {u["package-ecosystem"]: u for u in config["updates"]}
        assert set(ecosystems) == {"uv", "github-actions", "docker"}
        docker = ecosystems["docker"]
        directories = docker.get("directories", [docker.get("directory")])
        expected = ["/", "/deploy/k8s"] if cluster(answers) else ["/"]
        assert directories == expected, "the Dockerfile and, on cluster tiers, the CronJob"
    else:
        config_path = project / "renovate.json"
        assert not (project / ".github").exists()
        run_builtin_schema("vendor.renovate", config_path)
        config = json.loads(config_path.read_text())
        assert "docker:pinDigests" in config["extends"]
        assert config["lockFileMaintenance"]["enabled"] is True, "uv.lock refreshed too"
        pattern = config["kubernetes"]["managerFilePatterns"][0].strip("/")
        for manifest in project.glob("deploy/**/*.yaml"):
            assert re.search(pattern, str(manifest.relative_to(project))), manifest


def test_zizmor_auditor_reports_nothing_on_any_github_render(render_once):
    """Every severity, the auditor persona (the strictest), every GitHub combination."""
    files: list[Path] = []
    for answers in ALL_COMBINATIONS + VARIANTS:
        if answers["ci_provider"] == "github":
            _, project = _render(render_once, answers)
            files += ci_files(project)
    findings = zizmor_findings(files, persona="auditor")
    assert findings == [], "\n".join(f"{f.severity} {f.ident} {f.path}:{f.line}" for f in findings)


def _dvc_command() -> Sequence[str]:
    if exe := shutil.which("dvc"):
        return [exe]
    if uv := shutil.which("uv"):
        argv = [uv, "tool", "run", "--from", "dvc>=3.50", "dvc"]
        proc = subprocess.run([*argv, "--version"], capture_output=True, timeout=600, check=False)
        if proc.returncode == 0:
            return argv
    pytest.skip("dvc is not available (not installed and not installable with uv)")


def test_dvc_dag_of_a_rendered_project(render_once):
    # dvc.yaml differs between answers only by the package name: one project is enough.
    _, project = _render(render_once, ALL_COMBINATIONS[-1])
    dag = check_dvc_dag(project, _dvc_command())
    assert set(dag.stages) == {"prepare", "validate", "train", "evaluate"}
    assert ("prepare", "validate") in dag.edges and ("train", "evaluate") in dag.edges
