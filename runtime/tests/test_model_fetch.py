"""`fetch-model` against a real MLflow registry (the session's throwaway sqlite store): a version
trained elsewhere (as in an orchestrated pipeline run) comes back into a project that never
trained it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pytest

from mlops_stack_runtime.audit import (
    PIPELINE_RUN_ID_ENV_VAR,
    PIPELINE_RUN_ID_TAG,
    read_record,
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
    from mlops_stack_runtime.testing.fixtures import MakeProject

NAME = "fetch-source"
PIPELINE_RUN = "8f0c2d1e-5b7a-4c39-9e61-2a4b6c8d0e1f"
MODEL_FILES = ("model.joblib", "model.onnx", "model.json")


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


def contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


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

    with pytest.raises(FetchError, match=r"holds no model\.joblib.*train it again"):
        fetch_model(target, version="1")
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
