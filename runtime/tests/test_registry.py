from __future__ import annotations

import mlflow
import numpy as np
import pytest

from mlops_stack_runtime.audit import (
    load_verified_model,
    read_record,
)
from mlops_stack_runtime.config import (
    Config,
)
from mlops_stack_runtime.data.columns import (
    FEATURE_NAMES,
)
from mlops_stack_runtime.data.csv_files import (
    read_frame,
)
from mlops_stack_runtime.errors import (
    ArtifactIntegrityError,
    PipelineError,
)
from mlops_stack_runtime.registry import (
    Registry,
)
from mlops_stack_runtime.tracking import (
    sqlite_database,
)


def test_a_registered_version_is_read_with_its_tags(trained_project: Config) -> None:
    record = read_record(trained_project.paths.models_dir)
    name, version = str(record.registered_model_name), int(record.registered_model_version or 0)
    registry = Registry(trained_project)
    found = registry.version(name, version)
    assert (found.name, found.version) == (name, version)
    assert found.tags["model_sha256"] == record.model_sha256
    assert registry.aliased(name, "no-such-alias") is None


def test_a_missing_model_names_the_store_and_the_model(
    trained_project: Config, mlflow_tracking_uri: str
) -> None:
    registry = Registry(trained_project)
    assert str(sqlite_database(mlflow_tracking_uri)) in registry.location
    with pytest.raises(PipelineError) as raised:
        registry.version("no-such-model", 1)
    message = str(raised.value)
    assert message.startswith(f"MLflow registry at {registry.location}: ")
    assert "could not read version 1 of 'no-such-model'" in message
    assert "MLFLOW_TRACKING_URI" in message


# --- loading a version: verified before anything is unpickled ------------------------------------
def test_a_verified_version_is_the_pipeline_its_run_logged(trained_project: Config) -> None:
    record = read_record(trained_project.paths.models_dir)
    registry = Registry(trained_project)
    registered = registry.version(
        str(record.registered_model_name), int(record.registered_model_version or 0)
    )
    local, _ = load_verified_model(trained_project.paths.models_dir)
    rows = read_frame(trained_project.paths.test_data)[list(FEATURE_NAMES)]

    pipeline = registry.load_verified_model(registered)

    np.testing.assert_array_equal(pipeline.predict_proba(rows), local.predict_proba(rows))


def borrowed_version(client: mlflow.MlflowClient, name: str, run_id: str, sha256: str) -> int:
    """Version 1 of `name`, registered by hand (not by `train`) from the run `run_id`."""
    client.create_registered_model(name)
    version = client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id)
    client.set_model_version_tag(name, version.version, "model_sha256", sha256)
    return int(version.version)


def test_a_version_whose_run_describes_another_version_is_refused(
    trained_project: Config, mlflow_client: mlflow.MlflowClient
) -> None:
    record = read_record(trained_project.paths.models_dir)
    assert record.mlflow_run_id is not None
    name = "registry-borrowed-run"
    version = borrowed_version(mlflow_client, name, record.mlflow_run_id, record.model_sha256)
    registry = Registry(trained_project)

    with pytest.raises(ArtifactIntegrityError) as raised:
        registry.load_verified_model(registry.version(name, version))

    message = str(raised.value)
    assert message.startswith(f"version 1 of '{name}' (registry at {registry.location}): ")
    assert (
        f"describes version {record.registered_model_version} of "
        f"'{record.registered_model_name}'" in message
    )


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("ab" * 32, r"its run \S+ holds no model\.joblib .*retrain and register it"),
        ("not-a-digest", "model_sha256 tag of version 1 .* must be a sha256 hex digest"),
    ],
)
def test_a_version_nothing_can_check_is_refused(
    trained_project: Config, mlflow_client: mlflow.MlflowClient, tag: str, message: str
) -> None:
    # A run without the model files, as versions trained before they were logged have.
    name = f"registry-unverifiable-{len(tag)}"
    run = mlflow_client.create_run(mlflow_client.create_experiment(name))
    version = borrowed_version(mlflow_client, name, run.info.run_id, tag)
    registry = Registry(trained_project)

    with pytest.raises(ArtifactIntegrityError, match=message):
        registry.load_verified_model(registry.version(name, version))
