"""The MLflow model registry as promotion and `fetch-model` use it: versions, aliases, tags,
loading a version, and the files of the run that trained a version.

MLflow's errors become PipelineError naming what failed and where, so `promote` ends with one
readable line when the registry is unreachable or lacks the model. Credentials in the tracking
URI never reach a message.

Loading a version (`load_verified_model`: batch scoring by version, the champion promotion
compares with, the champion drift monitoring scores with) is verified like the model server's
load: the version's model.joblib, as its training run logged it, must match the version's
`model_sha256` tag (kept in the registry's database, apart from the artifact store) and its
model.json before a byte of it is unpickled. A version without the tag, or whose run lacks the
files, is refused: nothing vouches for it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import audit, tracking
from .errors import ArtifactIntegrityError, PipelineError

if TYPE_CHECKING:
    from .config import Config

CHAMPION = "champion"
CHALLENGER = "challenger"
# The tag `train` sets on every version: the sha256 of the model.joblib its run logged.
MODEL_SHA256_TAG = "model_sha256"
# How to get a version that can be verified, for the refusals' messages.
RETRAIN_HINT = (
    "retrain and register it the way `train` does (`make pipeline`, or the training pipeline), "
    "then promote the new version"
)


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: int
    tags: Mapping[str, str]
    # The MLflow run that logged the version (its files: model.joblib, model.onnx, model.json).
    run_id: str | None = None


# The registry version's tag holding the threshold its model decides at (train.py).
THRESHOLD_TAG = "decision_threshold"


def version_threshold(version: RegisteredVersion, fallback: float | None = None) -> float:
    """The threshold a registered version decides at: its `decision_threshold` tag; versions
    registered before the tag decide at `fallback` (params' number), else 0.5."""
    try:
        return float(version.tags[THRESHOLD_TAG])
    except (KeyError, TypeError, ValueError):
        return audit.DEFAULT_THRESHOLD if fallback is None else fallback


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

    def load_verified_model(self, registered: RegisteredVersion) -> Any:
        """The fitted pipeline of a registered version, unpickled only once its model.joblib
        matches the version's model_sha256 tag and its model.json (see the module docstring).

        ArtifactIntegrityError names the version, the file, the expected and actual sha256.
        """
        where = f"version {registered.version} of '{registered.name}' (registry at {self.location})"
        expected = tagged_model_sha256(registered, where)
        run_id = registered.run_id
        if not run_id:
            raise ArtifactIntegrityError(
                f"{where} names no MLflow run, so its model file cannot be checked against its "
                f"{MODEL_SHA256_TAG} tag: refusing to load it; {RETRAIN_HINT}"
            )
        # A private folder (mode 0700): nothing else writes between the check and the load.
        with tempfile.TemporaryDirectory(prefix="registry-model-") as folder:
            staging = Path(folder)
            for file_name in (audit.MODEL_FILE_NAME, audit.RECORD_FILE_NAME):
                if self.download_run_file(run_id, file_name, staging) is None:
                    raise ArtifactIntegrityError(
                        f"{where}: its run {run_id} holds no {file_name} (versions trained before "
                        "the model files were logged with their run), so nothing checks the "
                        f"registered model against its {MODEL_SHA256_TAG} tag: refusing to load "
                        f"it; {RETRAIN_HINT}"
                    )
            shown = f"runs:/{run_id}/{audit.MODEL_FILE_NAME}"
            actual = audit.sha256_file(audit.model_path(staging))
            if actual != expected:
                raise ArtifactIntegrityError(
                    f"{where}: {shown} has sha256 {actual}, but the version's "
                    f"{MODEL_SHA256_TAG} tag records {expected}: the model file changed after "
                    "it was registered; refusing to load it"
                )
            try:
                # The record's check too; only the very bytes hashed are unpickled.
                pipeline, record = audit.load_verified_model(staging, expected)
            except ArtifactIntegrityError as error:
                detail = str(error).replace(f"{staging}{os.sep}", f"runs:/{run_id}/")
                raise ArtifactIntegrityError(f"{where}: {detail}") from None
        if (
            record.registered_model_name != registered.name
            or record.registered_model_version != registered.version
        ):
            raise ArtifactIntegrityError(
                f"{where}: its run's {audit.RECORD_FILE_NAME} describes version "
                f"{record.registered_model_version} of '{record.registered_model_name}': "
                "refusing to use another version's model"
            )
        return pipeline

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


def tagged_model_sha256(registered: RegisteredVersion, where: str) -> str:
    """The version's model_sha256 tag as a sha256 digest; ArtifactIntegrityError when it has
    none (a version `train` did not register) or the tag is not a digest."""
    tagged = registered.tags.get(MODEL_SHA256_TAG, "").strip()
    if not tagged:
        raise ArtifactIntegrityError(
            f"{where} records no sha256 of its model (no {MODEL_SHA256_TAG} tag): nothing "
            f"vouches for its model file, so it is not loaded; {RETRAIN_HINT}"
        )
    return audit.check_sha256(tagged, f"the {MODEL_SHA256_TAG} tag of {where}")


def _registered(found: Any) -> RegisteredVersion:
    return RegisteredVersion(
        name=found.name, version=int(found.version), tags=dict(found.tags), run_id=found.run_id
    )
