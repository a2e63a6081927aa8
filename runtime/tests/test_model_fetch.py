"""`fetch-model` against a real MLflow registry (the session's throwaway sqlite store): a version
trained elsewhere (as in an orchestrated pipeline run) comes back into a project that never
trained it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pytest
from typer.testing import CliRunner

from mlops_stack_runtime import cli
from mlops_stack_runtime.audit import (
    PIPELINE_RUN_ID_ENV_VAR,
    PIPELINE_RUN_ID_TAG,
    read_record,
    sha256_file,
)
from mlops_stack_runtime.config import (
    Config,
)
from mlops_stack_runtime.errors import (
    PipelineError,
)
from mlops_stack_runtime.model_fetch import (
    FetchError,
    fetch_model,
)
from mlops_stack_runtime.promotion import (
    promote,
)
from mlops_stack_runtime.release import (
    check_release,
)
from mlops_stack_runtime.testing.fixtures import write_project
from mlops_stack_runtime.train import (
    train,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mlops_stack_runtime.testing.fixtures import MakeProject

NAME = "fetch-source"
PIPELINE_RUN = "8f0c2d1e-5b7a-4c39-9e61-2a4b6c8d0e1f"
MODEL_FILES = ("model.joblib", "model.onnx", "model.json")
ONNX_FILE, RECORD_FILE = MODEL_FILES[1:]
PROMOTION_FILE = "promotion.json"
MODEL_CARD_FILE = "model_card.md"


@pytest.fixture(scope="module")
def source(trained_project: Config, tmp_path_factory: pytest.TempPathFactory) -> Config:
    """A project trained "in an orchestrated pipeline run" (PIPELINE_RUN_ID set, as such a
    pipeline's train task sets it) and promoted: version 1 of NAME, the champion."""
    config = write_project(
        tmp_path_factory.mktemp("fetch") / "source", {"mlflow.registered_model": NAME}
    )
    shutil.copytree(trained_project.root / "data", config.root / "data")
    os.environ[PIPELINE_RUN_ID_ENV_VAR] = PIPELINE_RUN
    try:
        train(config)
    finally:
        del os.environ[PIPELINE_RUN_ID_ENV_VAR]
    assert promote(config).outcome == "promoted"
    return config


@pytest.fixture(autouse=True)
def working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory apart from the projects: a fetch writes nothing there."""
    folder = tmp_path / "working-directory"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def source_run_id(client: mlflow.MlflowClient) -> str:
    return str(client.get_model_version(NAME, "1").run_id)


def register_files(
    client: mlflow.MlflowClient,
    name: str,
    files: Mapping[str, bytes],
    tags: Mapping[str, str],
    folder: Path,
) -> str:
    """Version 1 of `name`, on a new run whose artifacts are `files`; the run's id. They are
    stored under `folder`: the store's default would be mlruns/ where the tests started."""
    folder.mkdir(parents=True)
    experiment = client.create_experiment(name, artifact_location=(folder / "runs").as_uri())
    run_id = client.create_run(experiment).info.run_id
    for file_name, content in files.items():
        (folder / file_name).write_bytes(content)
        client.log_artifact(run_id, str(folder / file_name))
    client.create_registered_model(name)
    client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id, tags=tags)
    return run_id


def model_files(
    source: Config, name: str, record: Mapping[str, Any], removed: tuple[str, ...] = ()
) -> dict[str, bytes]:
    """The source's model files, with a model.json naming version 1 of `name`, `record`'s
    fields set and `removed`'s left out (as in a record written before they existed)."""
    files = {file: (source.paths.models_dir / file).read_bytes() for file in MODEL_FILES}
    fields = json.loads(files[RECORD_FILE])
    fields.update(registered_model_name=name, registered_model_version=1, **record)
    for key in removed:
        del fields[key]
    return {**files, RECORD_FILE: json.dumps(fields).encode()}


def test_training_tags_the_version_with_the_pipeline_run(
    source: Config, mlflow_client: mlflow.MlflowClient
) -> None:
    assert mlflow_client.get_model_version(NAME, "1").tags[PIPELINE_RUN_ID_TAG] == PIPELINE_RUN


def test_the_version_a_pipeline_run_trained_comes_back_byte_for_byte(
    source: Config, make_project: MakeProject
) -> None:
    target = make_project({"mlflow.registered_model": NAME})

    fetched = fetch_model(target, pipeline_run=PIPELINE_RUN)

    assert fetched.version == 1
    assert contents(target.paths.models_dir) == {
        name: (source.paths.models_dir / name).read_bytes() for name in MODEL_FILES
    }
    assert target.paths.promotion_report.read_bytes() == source.paths.promotion_report.read_bytes()
    assert fetched.written == [target.paths.models_dir / name for name in MODEL_FILES] + [
        target.paths.promotion_report
    ]
    # Only the pipeline's model-card task logs a card with the run.
    assert fetched.absent == [target.paths.model_card]
    assert not target.paths.model_card.exists()
    assert check_release(target).deploy


@pytest.mark.parametrize("version", ["champion", "challenger", "1"])
def test_an_alias_or_a_number_names_the_version(
    source: Config, make_project: MakeProject, version: str
) -> None:
    target = make_project({"mlflow.registered_model": NAME})

    fetched = fetch_model(target, version=version)

    assert fetched.version == 1
    assert read_record(target.paths.models_dir).model_sha256 == fetched.model_sha256


@pytest.mark.parametrize(
    ("version", "pipeline_run", "message"),
    [
        ("0", None, "not '0'"),
        ("latest", None, "not 'latest'"),
        (None, "x' or name != '", "is not a pipeline run id"),
        ("1", PIPELINE_RUN, "not both or neither"),
        (None, None, "not both or neither"),
        (None, "no-such-run", "was trained by pipeline run no-such-run"),
        ("7", None, "could not read version 7"),
    ],
)
def test_a_bad_request_is_refused_before_anything_is_written(
    source: Config,
    make_project: MakeProject,
    version: str | None,
    pipeline_run: str | None,
    message: str,
) -> None:
    target = make_project({"mlflow.registered_model": NAME})

    with pytest.raises(PipelineError, match=message):
        fetch_model(target, version=version, pipeline_run=pipeline_run)

    assert not target.paths.models_dir.exists()
    assert not target.paths.promotion_report.exists()


@pytest.mark.parametrize(
    ("version", "pipeline_run", "message"),
    [
        (
            "latest",
            None,
            "the model version is champion, challenger or a version number, not 'latest'",
        ),
        ("1", PIPELINE_RUN, "name one model version, or one pipeline run, not both or neither"),
        (
            None,
            "x' or name != '",
            "\"x' or name != '\" is not a pipeline run id (letters, digits, '-' and '_', at most "
            "128)",
        ),
        (
            None,
            "no-such-run",
            f"no version of '{NAME}' in the registry at {{registry}} was trained by pipeline run "
            f"no-such-run (tag {PIPELINE_RUN_ID_TAG}): did the run reach its train task, against "
            "this tracking server?",
        ),
    ],
)
def test_a_refused_request_reads_as_what_to_ask_for(
    source: Config,
    make_project: MakeProject,
    mlflow_tracking_uri: str,
    version: str | None,
    pipeline_run: str | None,
    message: str,
) -> None:
    target = make_project({"mlflow.registered_model": NAME})

    with pytest.raises(FetchError) as refused:
        fetch_model(target, version=version, pipeline_run=pipeline_run)

    assert str(refused.value) == message.format(registry=mlflow_tracking_uri)


@pytest.mark.parametrize(
    ("name", "on_the_run", "version", "message"),
    [
        (
            "fetch-unaliased",
            True,
            "champion",
            "no version of '{name}' holds the alias 'champion' yet",
        ),
        ("fetch-runless", False, "1", "version 1 of '{name}' names no MLflow run"),
        (
            "fetch-untagged",
            True,
            "1",
            "version 1 of '{name}' has no model_sha256 tag: nothing to check its files against",
        ),
    ],
)
def test_a_version_nothing_vouches_for_is_refused_with_the_reason(
    source: Config,
    make_project: MakeProject,
    mlflow_client: mlflow.MlflowClient,
    name: str,
    on_the_run: bool,
    version: str,
    message: str,
) -> None:
    # Registered by hand, untagged: on the source's run (whose files are all there) or on none.
    run_id = source_run_id(mlflow_client)
    mlflow_client.create_registered_model(name)
    mlflow_client.create_model_version(
        name, source=f"runs:/{run_id}/model", run_id=run_id if on_the_run else None
    )
    target = make_project({"mlflow.registered_model": name})

    with pytest.raises(FetchError) as refused:
        fetch_model(target, version=version)

    assert str(refused.value) == message.format(name=name)
    assert sorted(path.name for path in target.root.iterdir()) == ["params.yaml"]


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("model_sha256", "the fetched files do not match"),
        ("onnx_sha256", "does not match the version's onnx_sha256 tag"),
    ],
)
def test_files_that_do_not_match_the_registry_are_refused_and_nothing_changes(
    source: Config,
    copy_trained_project: MakeProject,
    mlflow_client: mlflow.MlflowClient,
    tmp_path: Path,
    tag: str,
    message: str,
) -> None:
    name = f"fetch-tampered-{tag}"
    train(copy_trained_project({"mlflow.registered_model": name}))
    mlflow_client.set_model_version_tag(name, "1", tag, "0" * 64)
    # A project that already holds a model (the source's) and a promotion report.
    target = write_project(tmp_path / "target", {"mlflow.registered_model": name})
    shutil.copytree(source.paths.models_dir, target.paths.models_dir)
    target.paths.promotion_report.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source.paths.promotion_report, target.paths.promotion_report)
    before = contents(target.paths.models_dir)

    with pytest.raises(FetchError, match=message):
        fetch_model(target, version="1")

    assert contents(target.paths.models_dir) == before
    assert not list(target.root.glob(".fetch-*"))
    assert target.paths.promotion_report.read_bytes() == source.paths.promotion_report.read_bytes()


def test_a_version_whose_run_lacks_the_files_is_refused_with_the_reason(
    make_project: MakeProject, mlflow_client: mlflow.MlflowClient
) -> None:
    # What a version trained before training logged its files looks like: a run without them.
    name = "fetch-older"
    experiment = mlflow_client.create_experiment(name)
    run = mlflow_client.create_run(experiment)
    mlflow_client.create_registered_model(name)
    mlflow_client.create_model_version(
        name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
    )
    target = make_project({"mlflow.registered_model": name})

    with pytest.raises(FetchError) as refused:
        fetch_model(target, version="1")

    assert str(refused.value) == (
        f"version 1 of '{name}': its run {run.info.run_id} holds no model.joblib. Versions "
        "trained before the deployable files were logged with the run cannot be fetched: train "
        "it again"
    )
    assert not target.paths.models_dir.exists()
    assert sorted(path.name for path in target.root.iterdir()) == ["params.yaml"]


def test_a_version_whose_run_describes_another_version_is_refused(
    copy_trained_project: MakeProject, mlflow_client: mlflow.MlflowClient, tmp_path: Path
) -> None:
    # Version 1 of `name` is trained; version 2 of it, and version 1 of `other`, are registered
    # on the same run with the same sha256 tags: the files match, but the record is version 1's.
    name, other = "fetch-renumbered", "fetch-renamed"
    train(copy_trained_project({"mlflow.registered_model": name}))
    trained = mlflow_client.get_model_version(name, "1")
    mlflow_client.create_registered_model(other)
    for registered in (name, other):
        copy = mlflow_client.create_model_version(
            registered, source=str(trained.source), run_id=trained.run_id
        )
        for key in ("model_sha256", "onnx_sha256"):
            mlflow_client.set_model_version_tag(registered, copy.version, key, trained.tags[key])
    cases = [(name, "2", f"version 2 of '{name}'"), (other, "1", f"version 1 of '{other}'")]
    for registered, version, where in cases:
        target = write_project(tmp_path / registered, {"mlflow.registered_model": registered})

        with pytest.raises(FetchError) as refused:
            fetch_model(target, version=version)

        assert str(refused.value) == (
            f"{where}: its run's model.json describes version 1 of '{name}'"
        )
        assert not target.paths.models_dir.exists()
        assert not target.paths.promotion_report.exists()


def test_the_command_names_the_version_its_runtime_and_each_file_written(
    source: Config, make_project: MakeProject
) -> None:
    target = make_project({"mlflow.registered_model": NAME})

    result = CliRunner().invoke(
        cli.app, ["--params", str(target.params_file), "fetch-model", "--version", "champion"]
    )

    assert result.exit_code == 0, result.output
    sha256 = read_record(source.paths.models_dir).model_sha256
    assert result.stdout.splitlines() == [
        f"fetched version 1 (sha256 {sha256[:12]}, served by onnx)",
        *(f"written: {target.paths.models_dir / name}" for name in MODEL_FILES),
        f"written: {target.paths.promotion_report}",
    ]


MODEL_CARD = b"# Model card\n"


@pytest.mark.parametrize(
    ("case", "record", "removed", "onnx", "onnx_tag"),
    [
        # The pipeline did not convert: train writes an empty model.onnx and no sha256 of it.
        (
            "unconverted",
            {"onnx_sha256": None, "inference": {"runtime": "sklearn", "reason": "no converter"}},
            (),
            b"",
            {"onnx_sha256": "none"},
        ),
        # A record and tags that name no ONNX model (as before the ONNX export): nothing to
        # check model.onnx against, and no runtime named, so scikit-learn serves.
        ("pre-onnx", {}, ("onnx_file", "onnx_sha256", "inference"), None, {}),
    ],
)
def test_a_version_scikit_learn_serves_replaces_the_model_a_project_holds(
    source: Config,
    make_project: MakeProject,
    mlflow_client: mlflow.MlflowClient,
    tmp_path: Path,
    working_directory: Path,
    case: str,
    record: dict[str, Any],
    removed: tuple[str, ...],
    onnx: bytes | None,
    onnx_tag: dict[str, str],
) -> None:
    name = f"fetch-{case}"
    files = {**model_files(source, name, record, removed), MODEL_CARD_FILE: MODEL_CARD}
    if onnx is not None:
        files[ONNX_FILE] = onnx
    model_sha256 = read_record(source.paths.models_dir).model_sha256
    register_files(
        mlflow_client, name, files, {"model_sha256": model_sha256, **onnx_tag}, tmp_path / "run"
    )
    # A project holding a model already, and the folders of its reports and its card.
    target = make_project({"mlflow.registered_model": name})
    shutil.copytree(source.paths.models_dir, target.paths.models_dir)
    target.paths.promotion_report.parent.mkdir()
    target.paths.model_card.parent.mkdir()

    fetched = fetch_model(target, version="1")

    assert (fetched.version, fetched.model_sha256, fetched.runtime) == (1, model_sha256, "sklearn")
    assert contents(target.paths.models_dir) == {file: files[file] for file in MODEL_FILES}
    assert target.paths.model_card.read_bytes() == MODEL_CARD
    assert fetched.written == [target.paths.models_dir / file for file in MODEL_FILES] + [
        target.paths.model_card
    ]
    assert fetched.absent == [target.paths.promotion_report]
    assert not target.paths.promotion_report.exists()
    assert not list(target.root.glob(".fetch-*"))
    assert not list(working_directory.iterdir())


def test_a_model_onnx_that_its_record_does_not_describe_is_refused(
    source: Config, make_project: MakeProject, mlflow_client: mlflow.MlflowClient, tmp_path: Path
) -> None:
    # No onnx_sha256 tag vouches for model.onnx: the record's sha256 of it still must hold.
    name = "fetch-onnx-record"
    recorded = "0" * 64
    files = model_files(source, name, {"onnx_sha256": recorded})
    model_sha256 = read_record(source.paths.models_dir).model_sha256
    register_files(mlflow_client, name, files, {"model_sha256": model_sha256}, tmp_path / "run")
    target = make_project({"mlflow.registered_model": name})

    with pytest.raises(FetchError) as refused:
        fetch_model(target, version="1")

    actual = sha256_file(source.paths.models_dir / ONNX_FILE)
    assert str(refused.value) == (
        f"version 1 of '{name}': the fetched model.onnx (sha256 {actual}) does not match "
        f"model.json ({recorded})"
    )
    assert sorted(path.name for path in target.root.iterdir()) == ["params.yaml"]


def test_a_promotion_report_promote_did_not_write_is_refused_and_nothing_changes(
    source: Config, make_project: MakeProject, mlflow_client: mlflow.MlflowClient, tmp_path: Path
) -> None:
    name = "fetch-bad-report"
    files = {**model_files(source, name, {}), PROMOTION_FILE: b"[]"}
    tags = mlflow_client.get_model_version(NAME, "1").tags
    register_files(
        mlflow_client,
        name,
        files,
        {key: tags[key] for key in ("model_sha256", "onnx_sha256")},
        tmp_path / "run",
    )
    target = make_project({"mlflow.registered_model": name})

    with pytest.raises(FetchError) as refused:
        fetch_model(target, version="1")

    # The report as staged beside models/, in the folder the refusal removes.
    staged = re.escape(str(target.root)) + r"/\.fetch-\w+/promotion\.json"
    assert re.fullmatch(
        rf"version 1's {staged} must hold a JSON object, not list: `make promote` writes it "
        "again",
        str(refused.value),
    ), str(refused.value)
    assert sorted(path.name for path in target.root.iterdir()) == ["params.yaml"]
