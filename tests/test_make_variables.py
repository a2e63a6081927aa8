"""Make variables are data, never shell: every target that hands a variable to a command.

Each target of the generated Makefile that takes a value (INPUT, MODEL_VERSION, IMAGE, ENV, ...)
runs for real with that value holding shell code (`;`, `$(...)`, backticks, quotes, and
make's own `$(shell ...)`). The commands
it starts (the project's CLI through RUN, docker, kubectl, cosign, syft, the template tool) are
recorders on PATH or named by the Makefile's own tool variables: a recipe that let the shell
parse the value would create the canary file; one that quotes it passes the value, unchanged,
as one argument. A refused value (ENV, CANARY_PERCENT) is refused before any command runs.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from .conftest import make

ANSWERS = {"stack_tier": "enterprise", "ci_provider": "github", "data_remote": "s3"}
DIGEST = "sha256:" + "a" * 64

RECORDER = f"""#!{sys.executable}
import json, os, sys
name = os.path.basename(sys.argv[0])
with open(os.environ["RECORDER_LOG"], "a") as log:
    log.write(json.dumps([name, *sys.argv[1:]]) + "\\n")
if name == "docker" and sys.argv[1:2] == ["push"]:
    print("latest: digest: {DIGEST} size: 1234")
"""


@pytest.fixture(scope="module")
def project(copie_session) -> Path:
    """A render of its own: the targets write build/ and models/ into it."""
    result = copie_session.copy(extra_answers=ANSWERS)
    assert result.exit_code == 0, result.exception
    (result.project_dir / "uv.lock").touch(exist_ok=True)  # docker-build asks for one
    return Path(result.project_dir)


@pytest.fixture
def harness(project: Path, tmp_path: Path):
    """Recorders for every command a target starts, and a canary the hostile value would touch."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("docker", "kubectl", "cosign", "syft", "project-cli", "template-tool"):
        tool = bin_dir / name
        tool.write_text(RECORDER)
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.jsonl"
    canary = tmp_path / "canary"
    # Shell code four ways, and make's own: `$(shell ...)` would run if make expanded the value.
    hostile = (
        f"""v1; touch {canary} #$(touch {canary})`touch {canary}`'"$HOME$(shell touch {canary})"""
    )

    def run(*args: str, check: bool = True, **env: str):
        log.unlink(missing_ok=True)
        result = make(
            project,
            "--no-print-directory",
            *args,
            f"RUN={bin_dir / 'project-cli'}",
            f"UV={bin_dir / 'project-cli'}",
            f"COSIGN={bin_dir / 'cosign'}",
            f"SYFT={bin_dir / 'syft'}",
            f"TEMPLATE_PYTHON={bin_dir / 'template-tool'}",
            "RUNTIME_FOLDER=",  # rendered from this checkout: the image targets would refuse it
            check=check,
            PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            RECORDER_LOG=str(log),
            **env,
        )
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        assert not canary.exists(), f"`make {' '.join(args)}` ran the value as shell code"
        return result, calls

    return run, hostile


def _argv_holding(calls: list[list[str]], value: str) -> list[str]:
    """The one recorded command that received `value` as one whole argument."""
    holding = [call for call in calls if value in call[1:]]
    assert holding, f"no command received the value unchanged: {calls}"
    return holding[0]


# (target, variables the hostile value goes into, other variables the target needs)
CLI_TARGETS = [
    ("use-data", ("FILE", "LABEL", "TASK", "POSITIVE", "PROTECTED"), ()),
    ("fetch-model", ("MODEL_VERSION",), ()),
    ("fetch-model", ("KFP_RUN",), ()),
    ("kfp-compile", ("TRAINER_IMAGE",), ()),
    ("kfp-score", ("INPUT", "OUTPUT", "MODEL_VERSION"), ()),
    ("kfp-score-local", ("INPUT", "MODEL_VERSION"), ()),
    ("batch", ("CURRENT", "SHIFT", "ROWS", "SEED"), ()),
    ("drift", ("CURRENT",), ()),
    ("score", ("INPUT", "OUTPUT", "MODEL_VERSION"), ()),
    ("serve", ("HOST", "PORT"), ()),
    ("monitor", ("CURRENT",), ()),
    ("pin-images", ("MIRROR",), ()),
    ("template-check", ("FORMAT",), ()),
]


@pytest.mark.parametrize(("target", "names", "extra"), CLI_TARGETS)
def test_a_value_reaches_the_command_as_one_argument(harness, target, names, extra) -> None:
    run, hostile = harness
    _, calls = run(target, *extra, *(f"{name}={hostile}" for name in names))
    argv = _argv_holding(calls, hostile)
    assert argv.count(hostile) == len(names), argv


def test_use_data_passes_the_task_only_when_given(harness) -> None:
    run, _ = harness
    _, calls = run("use-data", "FILE=data.csv", "LABEL=y", "TASK=regression")
    (argv,) = calls
    assert argv[argv.index("--task") + 1] == "regression"
    _, calls = run("use-data", "FILE=data.csv", "LABEL=y")
    (argv,) = calls
    assert "--task" not in argv


@pytest.fixture
def estimator(project: Path):
    """Sets params.yaml's model.estimator line to the text given; the original comes back after."""
    params = project / "params.yaml"
    original = params.read_text()
    (line,) = [line for line in original.splitlines() if line.startswith("  estimator:")]

    def set_to(text: str) -> None:
        params.write_text(original.replace(line, f"  estimator: {text}"))

    yield set_to
    params.write_text(original)


@pytest.mark.parametrize(
    ("text", "group"),
    [
        ("gradient_boosting", None),
        ("lightgbm   # LightGBM", "lightgbm"),
        ('"xgboost"', "xgboost"),
        ("'lightgbm'", "lightgbm"),
        ("ridge", None),
        ("lightgbm_custom", None),
    ],
)
def test_setup_installs_the_group_of_the_model_family(harness, estimator, text, group) -> None:
    run, _ = harness
    estimator(text)
    _, calls = run("setup")
    (argv,) = calls
    assert argv[1] == "sync"
    groups = [argv[i + 1] for i, word in enumerate(argv) if word == "--group"]
    assert groups == ([group] if group else [])


def test_the_model_family_in_params_is_never_run(harness, estimator) -> None:
    run, hostile = harness
    for text in (hostile, f'"{hostile}"', "$(shell touch canary)", "`id`"):
        estimator(text)
        _, calls = run("setup")
        (argv,) = calls
        assert "--group" not in argv
    # A group named on the command line is not taken either: only params.yaml says it.
    estimator("gradient_boosting")
    _, calls = run("setup", f"ESTIMATOR_GROUP={hostile}", "MODEL_FAMILY_GROUPS=x")
    (argv,) = calls
    assert "--group" not in argv


def test_images_carry_the_model_family_where_it_is_unpickled_or_fitted(
    harness, project: Path, estimator
) -> None:
    run, _ = harness
    for name in ("model.joblib", "model.onnx", "model.json"):
        (project / "models").mkdir(exist_ok=True)
        (project / "models" / name).touch(exist_ok=True)
    estimator("xgboost")
    _, calls = run("docker-build", "INFERENCE_RUNTIME=sklearn")
    (argv,) = calls
    assert "MODEL_GROUP=xgboost" in argv and "INFERENCE_RUNTIME=sklearn" in argv
    _, calls = run("docker-build", "INFERENCE_RUNTIME=onnx")  # ONNX Runtime needs no xgboost
    (argv,) = calls
    assert not any(word.startswith("MODEL_GROUP") for word in argv)
    _, calls = run("docker-build-trainer")
    (argv,) = calls
    assert "MODEL_GROUP=xgboost" in argv
    estimator("random_forest")
    _, calls = run("docker-build-trainer")
    (argv,) = calls
    assert not any(word.startswith("MODEL_GROUP") for word in argv)


def test_collect_splits_its_list_of_logs_but_never_runs_it(harness) -> None:
    run, hostile = harness
    _, calls = run("collect", f"LOGS={hostile}", f"CURRENT={hostile}")
    (argv,) = calls
    assert argv[argv.index("--output") + 1] == hostile
    assert "v1;" in argv  # the words of the list, as words


def test_template_update_passes_each_answer_as_one_argument(harness) -> None:
    run, hostile = harness
    _, calls = run("template-update", "DATA=a=1 b=$(id) c=`id`;x", f"FORMAT={hostile}")
    (argv,) = calls
    assert argv[argv.index("--format") + 1] == hostile
    assert [argv[i + 1] for i, word in enumerate(argv) if word == "--data"] == [
        "a=1",
        "b=$(id)",
        "c=`id`;x",
    ]


@pytest.mark.parametrize(
    "targets", [("docker-build",), ("docker-run",), ("docker-build-trainer",)], ids=str
)
def test_image_names_reach_docker_as_data(harness, project: Path, targets) -> None:
    run, hostile = harness
    for name in ("model.joblib", "model.onnx", "model.json"):
        (project / "models").mkdir(exist_ok=True)
        (project / "models" / name).touch(exist_ok=True)
    _, calls = run(*targets, f"IMAGE={hostile}", f"TAG={hostile}", f"HOST={hostile}")
    (argv,) = calls
    assert argv[0] == "docker"
    assert any(hostile in word for word in argv), argv


def test_pushes_record_the_digest_and_signing_takes_the_image_as_data(harness, project) -> None:
    run, hostile = harness
    _, calls = run("docker-push", "docker-push-trainer", f"IMAGE={hostile}", f"TAG={hostile}")
    assert [call[:2] for call in calls] == [["docker", "push"], ["docker", "push"]]
    assert calls[0][2] == f"{hostile}:{hostile}"
    assert calls[1][2] == f"{hostile}-trainer:{hostile}"
    assert (project / "build" / "image-digest").read_text().strip() == DIGEST
    assert (project / "build" / "trainer-image-digest").read_text().strip() == DIGEST

    key = f"{hostile}.key"
    _, calls = run(
        "sign-image",
        "sign-trainer-image",
        "verify-image",
        f"IMAGE={hostile}",
        f"COSIGN_KEY={key}",
        f"COSIGN_PUBLIC_KEY={key}",
    )
    tools = [call[0] for call in calls]
    assert tools == ["syft", "cosign", "cosign", "cosign", "cosign", "cosign"], calls
    assert f"registry:{hostile}@{DIGEST}" in calls[0], calls[0]  # the pushed image, by digest
    for call in calls[1:]:
        assert call[-1] in {f"{hostile}@{DIGEST}", f"{hostile}-trainer@{DIGEST}"}, call
        assert call[call.index("--key") + 1] == key
    _, calls = run(
        "cosign-login", f"IMAGE={hostile}/model", REGISTRY_USERNAME="u", REGISTRY_PASSWORD="p"
    )
    assert calls[0][1:3] == ["login", hostile.split("/")[0]]  # the registry: up to the first /


@pytest.mark.parametrize("variable", ["ENV", "CANARY_PERCENT"])
def test_deploy_refuses_a_value_it_does_not_know_before_anything_runs(
    harness, project, variable
) -> None:
    run, hostile = harness
    (project / "build").mkdir(exist_ok=True)
    (project / "build" / "image-digest").write_text(DIGEST + "\n")
    result, calls = run(
        "deploy", f"{variable}={hostile}", "COSIGN_PUBLIC_KEY=cosign.pub", check=False
    )
    assert result.returncode == 2
    assert f"{variable} must be" in result.stderr and hostile in result.stderr
    assert all(call[0] == "cosign" for call in calls), "nothing but the signature check ran"


def test_deploy_passes_the_image_and_canary_step_as_data(harness, project) -> None:
    run, hostile = harness
    (project / "build").mkdir(exist_ok=True)
    (project / "build" / "image-digest").write_text(DIGEST + "\n")
    _, calls = run(
        "deploy",
        "ENV=production",
        "CANARY_PERCENT=10",
        f"IMAGE={hostile}",
        "COSIGN_PUBLIC_KEY=cosign.pub",
    )
    pin = next(call for call in calls if "pin-image" in call)
    assert pin[pin.index("--image") + 1] == hostile
    assert pin[pin.index("--canary-percent") + 1] == "10"
    assert ["kubectl", "kustomize", "deploy/kserve/production"] in calls
