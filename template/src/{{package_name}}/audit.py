"""The model's audit record (models/model.json) and integrity checks of the model file.

The record ties a model file to what produced it: its sha256, the data's sha256, the git commit,
the params, the held-out metrics, the MLflow run and registry version, and library versions.
Whoever loads the model (evaluation, the model server) verifies the file against the record
first, so a model swapped or corrupted after training is refused instead of served.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib

from .errors import ArtifactIntegrityError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

MODEL_FILE_NAME = "model.joblib"
RECORD_FILE_NAME = "model.json"


@dataclass(frozen=True)
class ModelRecord:
    model_file: str
    model_sha256: str
    training_data_sha256: str
    test_data_sha256: str
    git_commit: str | None
    params: dict[str, Any]
    metrics: dict[str, float]
    mlflow_run_id: str | None
    registered_model_name: str | None
    registered_model_version: int | None
    sklearn_version: str
    python_version: str
    feature_names: list[str]
    created_at: str


def model_path(model_dir: Path) -> Path:
    return Path(model_dir) / MODEL_FILE_NAME


def record_path(model_dir: Path) -> Path:
    return Path(model_dir) / RECORD_FILE_NAME


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit(folder: Path) -> str | None:
    """HEAD of the repository holding `folder`; None outside git or without git installed."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def save_model(model: Pipeline, model_dir: Path) -> Path:
    path = model_path(model_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path


def write_record(record: ModelRecord, model_dir: Path) -> Path:
    path = record_path(model_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    return path


def read_record(model_dir: Path) -> ModelRecord:
    path = record_path(model_dir)
    if not path.is_file():
        raise ArtifactIntegrityError(f"{path} not found: train a model first (`dvc repro`)")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ArtifactIntegrityError(f"{path} is not valid JSON: {error}") from error
    expected = {field.name for field in fields(ModelRecord)}
    missing = sorted(expected - set(content))
    if missing:
        raise ArtifactIntegrityError(f"{path} lacks {', '.join(missing)}")
    # Keys added by newer versions of the code are ignored rather than refused.
    return ModelRecord(**{name: content[name] for name in expected})


def verify_artifact(model_dir: Path) -> ModelRecord:
    """The record of `model_dir`, after checking that the model file matches its sha256."""
    _, record = _verified_bytes(model_dir)
    return record


def load_verified_model(model_dir: Path) -> tuple[Pipeline, ModelRecord]:
    """The fitted pipeline and its record; only a file whose sha256 matches is unpickled."""
    content, record = _verified_bytes(model_dir)
    # Unpickle the very bytes that were hashed, so the file cannot change in between.
    return joblib.load(io.BytesIO(content)), record


def _verified_bytes(model_dir: Path) -> tuple[bytes, ModelRecord]:
    record = read_record(model_dir)
    path = model_path(model_dir)
    if not path.is_file():
        raise ArtifactIntegrityError(f"{path} not found (`dvc pull` or `dvc repro` restores it)")
    content = path.read_bytes()
    actual = hashlib.sha256(content).hexdigest()
    if actual != record.model_sha256:
        raise ArtifactIntegrityError(
            f"{path} has sha256 {actual}, but {record_path(model_dir)} records "
            f"{record.model_sha256}: the model file changed after training; refusing to load it"
        )
    return content, record
