from __future__ import annotations

import pytest

from mlops_stack_runtime.audit import (
    read_record,
)
from mlops_stack_runtime.config import (
    Config,
)
from mlops_stack_runtime.errors import (
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
