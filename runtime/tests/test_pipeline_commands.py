"""pipelines/commands.py against a stand-in for kfp.Client: what `make kfp-run`, `make
kfp-schedule` and `make kfp-score` do with the answers of a Kubeflow Pipelines server; and how
the scoring task reaches its input and output (pipelines/workspace.py), through fsspec."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import fsspec
import pytest

from mlops_stack_runtime.errors import PipelineError
from mlops_stack_runtime.pipelines import commands
from mlops_stack_runtime.pipelines.commands import (
    KfpError,
    check_model_version,
    schedule,
    submit,
    template_release,
)
from mlops_stack_runtime.pipelines.remote_files import copy_out, fetch_input


class FakeClient:
    """The calls of kfp.Client that the commands make, with canned answers."""

    def __init__(self, state: str = "SUCCEEDED", tasks: list[tuple[str, str]] | None = None):
        self.state = state
        self.tasks = tasks or []
        self.calls: list[tuple[str, Any]] = []
        self.recurring = [SimpleNamespace(display_name="credit-weekly", recurring_run_id="old")]

    def create_run_from_pipeline_package(self, package: str, **kwargs: Any) -> SimpleNamespace:
        self.calls.append(("create_run", kwargs["experiment_name"]))
        self.arguments = kwargs["arguments"]
        return SimpleNamespace(run_id="run-1")

    def wait_for_run_completion(self, run_id: str, timeout: int) -> SimpleNamespace:
        details = [SimpleNamespace(display_name=n, state=s) for n, s in self.tasks]
        return SimpleNamespace(state=self.state, run_details=SimpleNamespace(task_details=details))

    def create_experiment(self, name: str) -> SimpleNamespace:
        return SimpleNamespace(experiment_id="exp-1")

    def list_recurring_runs(self, **kwargs: Any) -> SimpleNamespace:
        return SimpleNamespace(recurring_runs=self.recurring)

    def delete_recurring_run(self, recurring_run_id: str) -> None:
        self.calls.append(("delete", recurring_run_id))

    def create_recurring_run(self, experiment_id: str, name: str, **kwargs: Any) -> Any:
        self.calls.append(("schedule", (name, kwargs["cron_expression"])))
        return SimpleNamespace(recurring_run_id="new")


@pytest.fixture
def package(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text("{}\n")
    return path


def connect(monkeypatch: pytest.MonkeyPatch, client: FakeClient) -> None:
    monkeypatch.setattr(commands, "_client", lambda host: client)


def test_a_finished_run_returns_its_id(monkeypatch, package: Path) -> None:
    client = FakeClient()
    connect(monkeypatch, client)
    assert submit("http://kfp", package, "credit", timeout=60) == ("run-1", "SUCCEEDED")
    assert client.calls == [("create_run", "credit")]


def test_a_failed_run_names_the_failed_task(monkeypatch, package: Path) -> None:
    tasks = [("prepare", "SUCCEEDED"), ("evaluate", "FAILED"), ("promote", "SKIPPED")]
    connect(monkeypatch, FakeClient(state="FAILED", tasks=tasks))
    with pytest.raises(KfpError, match=r"run run-1 ended FAILED: task\(s\) evaluate failed"):
        submit("http://kfp", package, "credit", timeout=60)


def test_no_host_and_no_package_are_refused_before_any_call(tmp_path: Path, package) -> None:
    with pytest.raises(KfpError, match="KFP_HOST is not set"):
        submit(None, package, "credit", timeout=60)
    with pytest.raises(KfpError, match="make kfp-compile first"):
        submit("http://kfp", tmp_path / "missing.yaml", "credit", timeout=60)


def test_schedule_replaces_the_recurring_run_of_the_same_name(monkeypatch, package) -> None:
    client = FakeClient()
    connect(monkeypatch, client)
    assert schedule("http://kfp", package, "credit", commands.WEEKLY_CRON) == "new"
    assert client.calls == [("delete", "old"), ("schedule", ("credit-weekly", "0 17 3 * * 1"))]


def test_template_release_comes_from_the_answers_file(tmp_path: Path) -> None:
    assert template_release(tmp_path) == "unknown"
    (tmp_path / ".copier-answers.yml").write_text("_commit: 0.2.0\n_src_path: /t\n")
    assert template_release(tmp_path) == "0.2.0"


def test_a_scoring_run_is_submitted_with_its_arguments(monkeypatch, package: Path) -> None:
    client = FakeClient()
    connect(monkeypatch, client)
    arguments = {"input_uri": "s3://b/in.parquet", "model_version": "champion"}
    assert submit("http://kfp", package, "credit-scoring", 60, arguments)[1] == "SUCCEEDED"
    assert client.arguments == arguments
    assert client.calls == [("create_run", "credit-scoring")]


def test_kfp_run_writes_the_run_id_before_it_waits(
    monkeypatch: pytest.MonkeyPatch, package: Path, tmp_path: Path
) -> None:
    """`make kfp-train` fetches the version the run trained by this id; a failed run keeps it."""
    connect(monkeypatch, FakeClient(state="FAILED", tasks=[("train", "FAILED")]))
    run_id_file = tmp_path / "build" / "kfp-run-id"
    with pytest.raises(KfpError, match="run run-1 ended FAILED: task"):
        submit("http://kfp", package, "credit", 60, run_id_file=run_id_file)
    assert run_id_file.read_text() == "run-1\n"


def test_the_scoring_task_reads_and_writes_remote_uris_through_fsspec(tmp_path: Path) -> None:
    """fsspec's in-memory filesystem stands in for s3:// or gs://: same calls, no network."""
    with fsspec.open("memory://batches/in.csv", "wb") as remote:
        remote.write(b"a,b\n1,2\n")
    local = fetch_input("memory://batches/in.csv", tmp_path / "input")
    assert local == tmp_path / "input" / "in.csv"
    assert local.read_bytes() == b"a,b\n1,2\n"

    copy_out([local], "memory://scored/run-1/")
    with fsspec.open("memory://scored/run-1/in.csv", "rb") as copied:
        assert copied.read() == b"a,b\n1,2\n"


def test_the_scoring_task_names_an_input_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="is not a file this task can read"):
        fetch_input(str(tmp_path / "missing.csv"), tmp_path / "input")
    with pytest.raises(PipelineError, match="is not a file this task can read"):
        fetch_input(str(tmp_path), tmp_path / "input")  # a folder
    with pytest.raises(PipelineError, match=r"cannot read nosuchprotocol://b/in\.csv"):
        fetch_input("nosuchprotocol://b/in.csv", tmp_path / "input")


@pytest.mark.parametrize("version", ["abc", "0", "-1", "", "1.5", "Champion"])
def test_a_model_version_other_than_champion_or_a_number_is_refused(version: str) -> None:
    with pytest.raises(KfpError, match="'champion' or a version number"):
        check_model_version(version)
    assert check_model_version("champion") == "champion"
    assert check_model_version("12") == "12"
