"""The MLflow model registry as promotion and `fetch-model` use it: versions, aliases, tags,
loading a version, and the files of the run that trained a version.

MLflow's errors become PipelineError naming what failed and where, so `promote` ends with one
readable line when the registry is unreachable or lacks the model. Credentials in the tracking
URI never reach a message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import tracking
from .errors import PipelineError

if TYPE_CHECKING:
    from .config import Config

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: int
    tags: Mapping[str, str]
    # The MLflow run that logged the version (its files: model.joblib, model.onnx, model.json).
    run_id: str | None = None


class Registry:
    """The registry of the tracking store that `config` points to (MLFLOW_TRACKING_URI wins)."""

    def __init__(self, config: Config) -> None:
        import mlflow

        self._uri = tracking.connect(config)
        self._client = mlflow.MlflowClient(self._uri)

    @property
    def location(self) -> str:
        return tracking.redacted(self._uri)

    def version(self, name: str, version: int) -> RegisteredVersion:
        with self._errors(f"read version {version} of '{name}'"):
            found = self._client.get_model_version(name, str(version))
        return _registered(found)

    def tagged(self, name: str, key: str, value: str) -> list[RegisteredVersion]:
        """The versions of `name` whose tag `key` is `value` (the caller checks both: they go
        into MLflow's filter string)."""
        with self._errors(f"search the versions of '{name}' tagged {key}={value}"):
            found = self._client.search_model_versions(
                f"name = '{name}' and tags.{key} = '{value}'"
            )
        return sorted((_registered(item) for item in found), key=lambda item: item.version)

    def aliased(self, name: str, alias: str) -> RegisteredVersion | None:
        """The version holding `alias`, None when no version holds it."""
        with self._errors(f"read the aliases of '{name}'"):
            aliases = self._client.get_registered_model(name).aliases
        return self.version(name, int(aliases[alias])) if alias in aliases else None

    def load_model(self, name: str, version: int) -> Any:
        import mlflow.sklearn

        # A download progress bar only clutters CI logs; an explicit setting still wins.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        with self._errors(f"load version {version} of '{name}'"):
            return mlflow.sklearn.load_model(f"models:/{name}/{version}")

    def set_alias(self, name: str, alias: str, version: int) -> None:
        with self._errors(f"set alias '{alias}' of '{name}' to version {version}"):
            self._client.set_registered_model_alias(name, alias, str(version))

    def set_tags(self, name: str, version: int, tags: Mapping[str, str]) -> None:
        with self._errors(f"tag version {version} of '{name}'"):
            for key, value in tags.items():
                self._client.set_model_version_tag(name, str(version), key, value)

    def log_run_file(self, run_id: str, path: Path) -> None:
        """Add `path` to the artifacts of the (finished) run `run_id`, at the top level."""
        with self._errors(f"log {path.name} to run {run_id}"):
            self._client.log_artifact(run_id, str(path))

    def download_run_file(self, run_id: str, name: str, folder: Path) -> Path | None:
        """The top-level artifact `name` of run `run_id`, downloaded into `folder`; None when
        the run has no such artifact."""
        with self._errors(f"list the artifacts of run {run_id}"):
            listed = {Path(item.path).name for item in self._client.list_artifacts(run_id)}
        if name not in listed:
            return None
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        with self._errors(f"download {name} of run {run_id}"):
            return Path(self._client.download_artifacts(run_id, name, str(folder)))

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        from mlflow.exceptions import MlflowException

        try:
            yield
        except (MlflowException, OSError) as error:
            detail = tracking.error_detail(error, self._uri)
            raise PipelineError(
                f"MLflow registry at {self.location}: could not {action}: {detail}. "
                "Train and promote against the same tracking store (MLFLOW_TRACKING_URI)."
            ) from error


def _registered(found: Any) -> RegisteredVersion:
    return RegisteredVersion(
        name=found.name, version=int(found.version), tags=dict(found.tags), run_id=found.run_id
    )
