"""`fetch-model`: a registered version's deployable files, from its MLflow run into models/.

When an orchestrator trains the pipeline on a cluster, CD never has the files `make pipeline`
leaves in models/. Training logs model.joblib, model.onnx and model.json as artifacts of its
MLflow run, `promote` adds reports/promotion.json, and the orchestrated pipeline's model card
adds docs/model_card.md. This puts them back where `make pipeline` would have, for one registry
version named by number, by alias, or by the pipeline run that trained it (the version's
`pipeline_run_id` tag), so release-check, docker-build and deploy work unchanged.

Nothing is trusted on the way: the model file must match the version's `model_sha256` tag and its
record, model.onnx the `onnx_sha256` tag, and the record must name the version. The files are
staged beside models/ and moved in only once all of them pass, the record last, so a refused
fetch leaves the repository as it was.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .audit import (
    MODEL_FILE_NAME,
    ONNX_FILE_NAME,
    PIPELINE_RUN_ID_TAG,
    RECORD_FILE_NAME,
    ModelRecord,
    model_path,
    onnx_path,
    record_path,
    sha256_file,
    verify_artifact,
)
from .errors import ArtifactIntegrityError, PipelineError
from .promotion import read_promotion_report
from .registry import CHALLENGER, CHAMPION, RegisteredVersion, Registry

if TYPE_CHECKING:
    from .config import Config

ALIASES = (CHAMPION, CHALLENGER)
# An orchestrator's run id (a UUID, say); anything else never reaches MLflow's filter string.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
PROMOTION_FILE_NAME = "promotion.json"
MODEL_CARD_FILE_NAME = "model_card.md"


class FetchError(PipelineError):
    """The version cannot be found, or its files are missing or do not match the registry."""


@dataclass(frozen=True)
class FetchedModel:
    version: int
    model_sha256: str
    runtime: str
    # Repository files written, and the optional ones the run did not hold.
    written: list[Path]
    absent: list[Path]


def check_version(version: str) -> str:
    """`champion`, `challenger` or a version number, refused before the registry is asked."""
    if version in ALIASES or (version.isdigit() and int(version) > 0):
        return version
    raise FetchError(
        f"the model version is {', '.join(ALIASES)} or a version number, not {version!r}"
    )


def check_pipeline_run(run_id: str) -> str:
    if not RUN_ID_PATTERN.match(run_id):
        raise FetchError(
            f"{run_id!r} is not a pipeline run id (letters, digits, '-' and '_', at most 128)"
        )
    return run_id


def find_version(
    registry: Registry, name: str, version: str | None = None, pipeline_run: str | None = None
) -> RegisteredVersion:
    """The registry version named by `version` (number or alias) or trained by `pipeline_run`."""
    if (version is None) == (pipeline_run is None):
        raise FetchError("name one model version, or one pipeline run, not both or neither")
    if pipeline_run is not None:
        found = registry.tagged(name, PIPELINE_RUN_ID_TAG, check_pipeline_run(pipeline_run))
        if not found:
            raise FetchError(
                f"no version of '{name}' in the registry at {registry.location} was trained by "
                f"pipeline run {pipeline_run} (tag {PIPELINE_RUN_ID_TAG}): did the run reach its "
                "train task, against this tracking server?"
            )
        # One run trains one version; a retried train task may have registered another.
        return found[-1]
    if check_version(str(version)) in ALIASES:
        aliased = registry.aliased(name, str(version))
        if aliased is None:
            raise FetchError(f"no version of '{name}' holds the alias '{version}' yet")
        return aliased
    return registry.version(name, int(str(version)))


def fetch_model(
    config: Config, *, version: str | None = None, pipeline_run: str | None = None
) -> FetchedModel:
    """Write the files of one registry version into the repository (see the module docstring)."""
    name = config.mlflow.registered_model
    registry = Registry(config)
    registered = find_version(registry, name, version, pipeline_run)
    if not registered.run_id:
        raise FetchError(f"version {registered.version} of '{name}' names no MLflow run")
    paths = config.paths
    # Staged beside models/ (same filesystem, so each move is atomic), which is only created
    # once every file passed.
    with tempfile.TemporaryDirectory(dir=paths.models_dir.parent, prefix=".fetch-") as folder:
        staging = Path(folder)
        for file_name in (MODEL_FILE_NAME, ONNX_FILE_NAME, RECORD_FILE_NAME):
            if registry.download_run_file(registered.run_id, file_name, staging) is None:
                raise FetchError(
                    f"version {registered.version} of '{name}': its run {registered.run_id} "
                    f"holds no {file_name}. Versions trained before the deployable files were "
                    "logged with the run cannot be fetched: train it again"
                )
        record = _checked(staging, registered)
        optional = {
            PROMOTION_FILE_NAME: paths.promotion_report,
            MODEL_CARD_FILE_NAME: paths.model_card,
        }
        staged_optional = {
            target: registry.download_run_file(registered.run_id, file_name, staging)
            for file_name, target in optional.items()
        }
        promotion = staged_optional[paths.promotion_report]
        if promotion is not None:
            try:
                read_promotion_report(promotion)
            except ArtifactIntegrityError as error:
                raise FetchError(f"version {registered.version}'s {error}") from None
        # The record goes last, as in train: it seals the pair.
        paths.models_dir.mkdir(parents=True, exist_ok=True)
        model_path(staging).replace(model_path(paths.models_dir))
        onnx_path(staging).replace(onnx_path(paths.models_dir))
        record_path(staging).replace(record_path(paths.models_dir))
        written = [
            model_path(paths.models_dir),
            onnx_path(paths.models_dir),
            record_path(paths.models_dir),
        ]
        absent = []
        for target, staged in staged_optional.items():
            if staged is None:
                absent.append(target)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(staged, target)
            written.append(target)
    inference = record.inference if isinstance(record.inference, dict) else {}
    return FetchedModel(
        version=registered.version,
        model_sha256=record.model_sha256,
        runtime=str(inference.get("runtime", "sklearn")),
        written=written,
        absent=absent,
    )


def _checked(staging: Path, registered: RegisteredVersion) -> ModelRecord:
    """The staged record, once the files match it and the registry's tags for the version."""
    where = f"version {registered.version} of '{registered.name}'"
    tagged_sha256 = registered.tags.get("model_sha256")
    if not tagged_sha256:
        raise FetchError(f"{where} has no model_sha256 tag: nothing to check its files against")
    try:
        record = verify_artifact(staging, tagged_sha256)
    except ArtifactIntegrityError as error:
        raise FetchError(f"{where}: the fetched files do not match: {error}") from None
    if (
        record.registered_model_name != registered.name
        or record.registered_model_version != registered.version
    ):
        raise FetchError(
            f"{where}: its run's model.json describes version "
            f"{record.registered_model_version} of '{record.registered_model_name}'"
        )
    onnx_sha256 = sha256_file(onnx_path(staging))
    for expected, source in (
        (registered.tags.get("onnx_sha256", "none"), "the version's onnx_sha256 tag"),
        (record.onnx_sha256 or "none", "model.json"),
    ):
        if expected != "none" and onnx_sha256 != expected:
            raise FetchError(
                f"{where}: the fetched model.onnx (sha256 {onnx_sha256}) does not match "
                f"{source} ({expected})"
            )
    return record
