"""The `kfp` commands as `make` runs them, on a user's mistake: one line naming it, no
traceback, the status of the same command without Kubeflow.

`make kfp-score-local` and `make kfp-local` run on the real kfp.local runner (each task a
subprocess of this environment): a task that fails as expected gives the task's own message, as
`make score` or `make pipeline` prints it, and their exit status. `make kfp-compile` refuses an
image or an estimator that cannot work before it writes anything; `make kfp-run` against a host
nobody answers says so in one line.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
import pytest
from typer.testing import CliRunner

from mlops_stack_runtime import exit_codes
from mlops_stack_runtime.audit import (
    read_record,
)
from mlops_stack_runtime.cli import (
    app,
)
from mlops_stack_runtime.config import (
    Config,
)
from mlops_stack_runtime.data.columns import (
    FEATURE_NAMES,
    FEATURES,
    ColumnSpec,
)
from mlops_stack_runtime.data.csv_files import (
    read_frame,
)
from mlops_stack_runtime.errors import (
    BatchError,
    DataSourceError,
    GateFailedError,
    RowsRejectedError,
)
from mlops_stack_runtime.pipelines.commands import (
    LOCAL_LOG_NAME,
    check_image,
)
from mlops_stack_runtime.pipelines.task_errors import (
    TASK_ERROR_FILE_ENV_VAR,
    TaskFailure,
    read_task_failure,
    reported_task_errors,
)
from mlops_stack_runtime.testing.declared import (
    is_category,
    is_numeric,
    unknown_category,
)
from mlops_stack_runtime.testing.fixtures import (
    train_project,
)

if TYPE_CHECKING:
    from mlops_stack_runtime.testing.fixtures import MakeProject

ROWS = 30
RUN_TIMEOUT = 600  # seconds: every task of a local run imports the ML stack afresh
UNKNOWN_ESTIMATOR = "gradient_boostin"
DIGEST = "sha256:" + "ab" * 32


def kfp(params: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`<cli> --params <params> kfp <args>` in a process of its own, as make runs it."""
    return subprocess.run(
        [sys.executable, "-m", "mlops_stack_runtime", "--params", str(params), "kfp", *args],
        capture_output=True,
        text=True,
        cwd=params.parent,
        check=False,
        timeout=RUN_TIMEOUT,
    )


class Streams(Protocol):
    """A finished command's output: a process's, or CliRunner's result."""

    stdout: Any
    stderr: Any


def one_error_line(result: Streams) -> str:
    """The only line on stderr (an `error: ` line); no traceback on either stream."""
    stdout, stderr = str(result.stdout), str(result.stderr)
    assert "Traceback" not in stdout + stderr, stdout + stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def bad_value(spec: ColumnSpec) -> object:
    """A value the declared feature refuses: text in a number column, an undeclared category."""
    if is_numeric(spec):
        return "not-a-number"
    assert is_category(spec) and spec.categories, f"{spec.name} refuses no value"
    return unknown_category(spec)


@pytest.fixture(scope="module")
def held_out(trained_project: Config) -> pd.DataFrame:
    return read_frame(trained_project.paths.test_data).head(ROWS).reset_index(drop=True)


def text_input(frame: pd.DataFrame, folder: Path) -> Path:
    path = folder / "batch.txt"
    frame.to_csv(path, index=False)
    return path


def missing_column(frame: pd.DataFrame, folder: Path) -> Path:
    path = folder / "lacking.csv"
    frame.drop(columns=[FEATURES[0].name]).to_csv(path, index=False)
    return path


def empty_file(frame: pd.DataFrame, folder: Path) -> Path:
    path = folder / "empty.csv"
    path.write_bytes(b"")
    return path


def absent_file(frame: pd.DataFrame, folder: Path) -> Path:
    return folder / "absent.csv"


def rejected_row(frame: pd.DataFrame, folder: Path) -> Path:
    path = folder / "rejected.csv"
    broken = frame.astype({name: object for name in FEATURE_NAMES})
    broken.loc[3, FEATURES[0].name] = bad_value(FEATURES[0])
    broken.to_csv(path, index=False)
    return path


@pytest.mark.separate_process
@pytest.mark.parametrize(
    ("write_input", "status"),
    [
        (text_input, exit_codes.BATCH_ERROR),
        (missing_column, exit_codes.BATCH_ERROR),
        (empty_file, exit_codes.BATCH_ERROR),
        (absent_file, exit_codes.BATCH_ERROR),
        (rejected_row, exit_codes.ROWS_REJECTED),
    ],
    ids=["txt-input", "missing-column", "empty-file", "absent-file", "rejected-rows"],
)
def test_kfp_score_local_reports_the_task_error_as_make_score_does(
    trained_project: Config, held_out: pd.DataFrame, tmp_path: Path, write_input, status: int
) -> None:
    source = write_input(held_out, tmp_path)
    version = str(read_record(trained_project.paths.models_dir).registered_model_version)
    params = trained_project.params_file
    pipeline_root = tmp_path / "kfp-local-score"

    # `make score` on the same file with the same registered version: its status and line.
    direct = CliRunner().invoke(
        app,
        [
            "--params",
            str(params),
            "score",
            str(source),
            str(tmp_path / "out.csv"),
            "--version",
            version,
        ],
    )
    assert direct.exit_code == status, direct.output

    result = kfp(
        params,
        "local-score",
        "--input",
        str(source),
        "--model-version",
        version,
        "--pipeline-root",
        str(pipeline_root),
    )
    assert result.returncode == status, result.stdout + result.stderr
    line = one_error_line(result)
    if status == exit_codes.ROWS_REJECTED:
        # `make score` writes the rejects beside OUTPUT; the task keeps them in its output.
        assert direct.stderr.startswith("1 row(s) rejected"), direct.stderr
        assert line.startswith(f"error: 1 of {ROWS} rows of {source} were rejected"), line
    else:
        assert line == direct.stderr.strip(), (line, direct.stderr)
    if not source.exists():  # refused before the run: no pipeline root, no log
        assert not pipeline_root.exists()
        return
    # The runner's own report and the task's output are in the run's log, which the task
    # ended without a traceback too.
    log = (pipeline_root / LOCAL_LOG_NAME).read_text(encoding="utf-8")
    assert line in log
    assert "finished with status" in log
    assert "Traceback" not in log


@pytest.mark.separate_process
def test_kfp_local_reports_a_failing_gate_as_make_pipeline_does(
    make_project: MakeProject, tmp_path: Path
) -> None:
    # A gate no model reaches on this data: evaluate fails, as `make pipeline` does.
    overrides = {"gates.min_roc_auc": 0.999}
    direct_project = train_project(tmp_path / "direct", overrides)
    direct = CliRunner().invoke(app, ["--params", str(direct_project.params_file), "evaluate"])
    assert direct.exit_code == exit_codes.FAILED, direct.output
    expected = direct.stderr.splitlines()[0]
    assert expected.startswith("error: quality gate failed: roc_auc"), direct.stderr

    config = make_project(overrides)
    pipeline_root = tmp_path / "kfp-local"
    result = kfp(config.params_file, "local", "--pipeline-root", str(pipeline_root))
    assert result.returncode == exit_codes.FAILED, result.stdout + result.stderr
    assert one_error_line(result) == expected
    assert not (pipeline_root / "metrics.json").exists()
    log = (pipeline_root / LOCAL_LOG_NAME).read_text(encoding="utf-8")
    assert "Task 'evaluate' finished with status FAILURE" in re.sub(r"\x1b\[[0-9;]*m", "", log)
    assert "Traceback" not in log


@pytest.mark.separate_process
def test_kfp_local_refuses_an_unknown_estimator_before_any_task_runs(
    make_project: MakeProject, tmp_path: Path
) -> None:
    config = make_project({"model.estimator": UNKNOWN_ESTIMATOR})
    pipeline_root = tmp_path / "kfp-local"
    result = kfp(config.params_file, "local", "--pipeline-root", str(pipeline_root))
    assert result.returncode == exit_codes.FAILED, result.stdout + result.stderr
    line = one_error_line(result)
    assert line.startswith(f"error: params.yaml: unknown model.estimator '{UNKNOWN_ESTIMATOR}'")
    assert "choose one of gradient_boosting" in line
    assert not pipeline_root.exists()


def compile_in(config: Config, tmp_path: Path, *image: str) -> tuple[Any, list[Path]]:
    """`kfp compile` (in this process) into tmp_path/build; its result and the files written."""
    build = tmp_path / "build"
    result = CliRunner().invoke(
        app,
        [
            *("--params", str(config.params_file), "kfp", "compile", *image),
            *("--output", str(build / "pipeline.yaml")),
            *("--scoring-output", str(build / "scoring-pipeline.yaml")),
        ],
        env={"TRAINER_IMAGE": None},
    )
    written = sorted(build.rglob("*")) if build.exists() else []
    return result, written


@pytest.mark.parametrize(
    ("image", "named"),
    [
        ([], "TRAINER_IMAGE (--image) is empty"),
        (["--image", ""], "TRAINER_IMAGE (--image) is empty"),
        (["--image", "  "], "TRAINER_IMAGE (--image) is empty"),
        (["--image", "Registry.example.com/ML/trainer:1.0"], "is not an image reference"),
        (["--image", "registry.example.com/ml/trainer:"], "is not an image reference"),
        (["--image", "registry.example.com/ml/trainer@sha256:abc"], "is not an image reference"),
        (["--image", "registry.example.com/ml/trainer:1.0 --x"], "is not an image reference"),
    ],
    ids=["none", "empty", "blank", "upper-case", "empty-tag", "short-digest", "space"],
)
def test_kfp_compile_refuses_a_bad_trainer_image_writing_nothing(
    make_project: MakeProject, tmp_path: Path, image: list[str], named: str
) -> None:
    result, written = compile_in(make_project(), tmp_path, *image)
    assert result.exit_code == exit_codes.FAILED, result.output
    assert named in one_error_line(result)
    assert written == []


def test_kfp_compile_refuses_an_unknown_estimator_writing_nothing(
    make_project: MakeProject, tmp_path: Path
) -> None:
    config = make_project({"model.estimator": UNKNOWN_ESTIMATOR})
    result, written = compile_in(config, tmp_path, "--image", "registry.example.com/ml/t:1.0")
    assert result.exit_code == exit_codes.FAILED, result.output
    assert f"unknown model.estimator '{UNKNOWN_ESTIMATOR}'" in one_error_line(result)
    assert written == []


def test_kfp_compile_writes_both_pipelines_for_a_pinned_image(
    make_project: MakeProject, tmp_path: Path
) -> None:
    image = f"registry.example.com:5000/ml/credit-trainer:1.0@{DIGEST}"
    result, written = compile_in(make_project(), tmp_path, "--image", image)
    assert result.exit_code == 0, result.output
    assert [path.name for path in written] == ["pipeline.yaml", "scoring-pipeline.yaml"]
    assert image in written[0].read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "image",
    [
        "local",
        "trainer:1.0",
        "registry.example.com/ml/credit-risk-model-trainer:0123abc",
        f"registry.example.com/ml/credit-risk-model-trainer@{DIGEST}",
        f"localhost:5000/team/model-trainer:v1.2.3@{DIGEST}",
    ],
)
def test_image_references_the_makefile_writes_are_accepted(image: str) -> None:
    assert check_image(image) == image


@pytest.mark.separate_process
def test_kfp_run_against_an_unreachable_host_says_so_in_one_line(
    make_project: MakeProject, tmp_path: Path
) -> None:
    """No FutureWarning of the KFP client before the error: one line."""
    package = tmp_path / "pipeline.yaml"
    package.write_text("{}\n", encoding="utf-8")
    with socket.socket() as probe:  # a port nobody listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = make_project()
    result = kfp(
        config.params_file,
        "run",
        "--host",
        f"http://127.0.0.1:{port}",
        "--package",
        str(package),
        "--run-id-file",
        str(tmp_path / "run-id"),
    )
    assert result.returncode == exit_codes.FAILED, result.stdout + result.stderr
    line = one_error_line(result)
    assert line.startswith(f"error: cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}")
    assert "Warning" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("error", "scoring", "status"),
    [
        (RowsRejectedError("3 of 9 rows were rejected"), True, exit_codes.ROWS_REJECTED),
        (BatchError("batch.txt: not '.txt'"), True, exit_codes.BATCH_ERROR),
        (DataSourceError("no data"), True, exit_codes.FAILED),
        (BatchError("a batch error in a training stage"), False, exit_codes.FAILED),
        (GateFailedError("quality gate failed: x\nheld-out metrics:\n  x 0.5"), False, 1),
    ],
    ids=["rejected", "unusable-file", "scoring-other", "training-batch", "gate"],
)
def test_a_task_ends_with_one_line_and_its_command_status(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
    scoring: bool,
    status: int,
) -> None:
    record = tmp_path / "failure.json"
    monkeypatch.setenv(TASK_ERROR_FILE_ENV_VAR, str(record))
    with pytest.raises(SystemExit) as ended, reported_task_errors(scoring=scoring):
        raise error
    assert ended.value.code == status
    assert capsys.readouterr().err == f"error: {error}\n"  # the pod's log: the whole message
    # What the local command prints: the first line, which names the failure.
    first = str(error).splitlines()[0]
    assert read_task_failure(record) == TaskFailure(first, status)


def test_a_task_failure_without_a_record_is_none_and_a_bug_keeps_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert read_task_failure(tmp_path / "absent.json") is None
    (tmp_path / "torn.json").write_text('{"message": "x"', encoding="utf-8")
    assert read_task_failure(tmp_path / "torn.json") is None
    monkeypatch.setenv(TASK_ERROR_FILE_ENV_VAR, str(tmp_path / "failure.json"))
    with pytest.raises(KeyError), reported_task_errors(scoring=True):
        raise KeyError("a bug")
    assert not (tmp_path / "failure.json").exists()
