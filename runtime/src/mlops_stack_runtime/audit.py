"""The model's audit record (models/model.json) and integrity checks of the model file.

The record ties a model file to what produced it: its sha256, the data's sha256, the git commit,
the params, the task and model family, the held-out metrics, the MLflow run and registry version,
and library versions.
Whoever loads the model (evaluation, the model server) verifies the file against the record
first, so a model swapped or corrupted after training is refused instead of served.

The record sits beside the file it vouches for, so whoever can write the model folder can write
both. Deployed servers therefore also take the expected sha256 from outside the folder
(``expected_sha256``: the deploy step sets it from the registry's record), and the file must
match it before a byte is unpickled.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ArtifactIntegrityError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

MODEL_FILE_NAME = "model.joblib"
# The same pipeline compiled to ONNX (onnx_export.py); empty when the pipeline does not convert.
ONNX_FILE_NAME = "model.onnx"
RECORD_FILE_NAME = "model.json"
# The threshold of a record that names none (evaluation.DECISION_THRESHOLD).
DEFAULT_THRESHOLD = 0.5
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
# The variable through which a deployment gives the server the sha256 it expects.
MODEL_SHA256_ENV = "MODEL_SHA256"
# The sha256 model.onnx must have, from outside the model folder (like MODEL_SHA256).
ONNX_SHA256_ENV = "ONNX_SHA256"


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
    # The ONNX file beside the pickle (its sha256 vouches for it like model_sha256 for the pickle;
    # None when the pipeline did not convert) and which runtime serves the model, with why:
    # {"runtime": "onnx" | "sklearn", "reason": ..., "max_abs_diff": ..., "tolerance": ...}.
    # Records written before ONNX export lack them: scikit-learn serves those.
    onnx_file: str | None = None
    onnx_sha256: str | None = None
    inference: dict[str, Any] | None = None
    # The label's task (data/columns.yaml) and the model family (params model.estimator).
    # Records written before tasks lack them: binary, and the family is params model.classifier.
    task: str = "binary"
    estimator: str | None = None
    # The probability at or above which a binary model predicts the positive class, and how it
    # was set (params' number, or the objective it was chosen by: thresholds.py). Records made
    # before thresholds could be chosen lack them: decision_threshold reads their params.
    threshold: float | None = None
    threshold_rule: str | None = None


def model_path(model_dir: Path) -> Path:
    return Path(model_dir) / MODEL_FILE_NAME


def onnx_path(model_dir: Path) -> Path:
    return Path(model_dir) / ONNX_FILE_NAME


def record_path(model_dir: Path) -> Path:
    return Path(model_dir) / RECORD_FILE_NAME


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# The commit of code that runs without its repository, e.g. an orchestrated pipeline's task in a
# container image (the cluster tiers' pipelines/workspace.py sets it).
SOURCE_COMMIT_ENV_VAR = "SOURCE_COMMIT"


# The orchestrated pipeline run a train task belongs to (the cluster tiers' pipelines/workspace.py
# sets it): training tags the registry version with it, so `fetch-model --pipeline-run` finds the
# version a run trained.
PIPELINE_RUN_ID_ENV_VAR = "PIPELINE_RUN_ID"
PIPELINE_RUN_ID_TAG = "pipeline_run_id"


def pipeline_run_id() -> str | None:
    return os.environ.get(PIPELINE_RUN_ID_ENV_VAR) or None


def git_commit(folder: Path) -> str | None:
    """HEAD of the repository holding `folder`; outside git (or without git installed)
    $SOURCE_COMMIT when set, else None."""
    fallback = os.environ.get(SOURCE_COMMIT_ENV_VAR) or None
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
        return fallback
    return result.stdout.strip() if result.returncode == 0 else fallback


def save_model(model: Pipeline, model_dir: Path) -> Path:
    path = model_path(model_dir)
    import joblib  # not at the top: the ONNX server's image has no joblib

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
    except (OSError, UnicodeDecodeError) as error:
        raise ArtifactIntegrityError(f"{path} cannot be read: {error}") from error
    if not isinstance(content, dict):
        raise ArtifactIntegrityError(
            f"{path} must hold a JSON object, not {type(content).__name__}"
        )
    expected = {field.name for field in fields(ModelRecord)}
    required = {field.name for field in fields(ModelRecord) if field.default is MISSING}
    missing = sorted(required - set(content))
    if missing:
        raise ArtifactIntegrityError(f"{path} lacks {', '.join(missing)}")
    # Keys added by newer versions of the code are ignored rather than refused.
    return ModelRecord(**{name: content[name] for name in expected if name in content})


def check_sha256(value: str, source: str) -> str:
    """``value`` as a lowercase sha256 hex digest, or a refusal naming ``source``."""
    digest = value.strip().lower().removeprefix("sha256:")
    if not SHA256_PATTERN.match(digest):
        raise ArtifactIntegrityError(
            f"{source} must be a sha256 hex digest (64 hex digits), got {value.strip()[:80]!r}"
        )
    return digest


def verify_artifact(model_dir: Path, expected_sha256: str | None = None) -> ModelRecord:
    """The record of `model_dir`, after checking that the model file matches its sha256."""
    _, record = _verified_bytes(model_dir, expected_sha256)
    return record


def load_verified_model(
    model_dir: Path, expected_sha256: str | None = None
) -> tuple[Pipeline, ModelRecord]:
    """The fitted pipeline and its record; only a file whose sha256 matches is unpickled.

    A file that matches but cannot be unpickled (truncated, or written by an incompatible
    scikit-learn) is refused with the same error as a mismatch, never a traceback.
    """
    import joblib  # not at the top: the ONNX server's image has no joblib

    content, record = _verified_bytes(model_dir, expected_sha256)
    # Unpickle the very bytes that were hashed, so the file cannot change in between.
    try:
        return joblib.load(io.BytesIO(content)), record
    except Exception as error:  # unpickling runs arbitrary code paths: any failure is a refusal
        raise ArtifactIntegrityError(
            f"{model_path(model_dir)} matches its sha256 but cannot be loaded "
            f"({type(error).__name__}: {str(error)[:200]}); retrain the model with the "
            "libraries of this environment (`dvc repro`)"
        ) from error


def load_verified_onnx(
    model_dir: Path, record: ModelRecord, expected_sha256: str | None = None
) -> bytes:
    """The bytes of model.onnx, once they match the record's ``onnx_sha256`` (and
    ``expected_sha256``, the deployment's ONNX_SHA256, when given): checked like the pickle."""
    if record.onnx_sha256 is None:
        raise ArtifactIntegrityError(
            f"{record_path(model_dir)} records no ONNX model (the pipeline did not convert)"
        )
    return _checked_bytes(
        onnx_path(model_dir),
        recorded=(record.onnx_sha256, record_path(model_dir)),
        expected=expected_sha256,
        expected_label="the expected ONNX model sha256",
        expected_source="ONNX_SHA256",
    )


def _verified_bytes(
    model_dir: Path, expected_sha256: str | None = None
) -> tuple[bytes, ModelRecord]:
    record = read_record(model_dir)
    content = _checked_bytes(
        model_path(model_dir),
        recorded=(record.model_sha256, record_path(model_dir)),
        expected=expected_sha256,
        expected_label="the expected model sha256",
        expected_source="MODEL_SHA256, set from the registry's record",
    )
    return content, record


def _checked_bytes(
    path: Path,
    recorded: tuple[str, Path],
    expected: str | None,
    expected_label: str,
    expected_source: str,
) -> bytes:
    """`path`'s bytes once their sha256 matches the deployment's `expected` (when given) and
    the `recorded` (sha256, record file) pair; ArtifactIntegrityError naming the mismatch."""
    if not path.is_file():
        raise ArtifactIntegrityError(f"{path} not found (`dvc pull` or `dvc repro` restores it)")
    try:
        content = path.read_bytes()
    except OSError as error:
        raise ArtifactIntegrityError(f"{path} cannot be read: {error}") from error
    actual = hashlib.sha256(content).hexdigest()
    if expected is not None:
        wanted = check_sha256(expected, expected_label)
        if actual != wanted:
            raise ArtifactIntegrityError(
                f"{path} has sha256 {actual}, but the deployment expects {wanted} "
                f"({expected_source}): refusing to load it"
            )
    recorded_sha256, record_file = recorded
    if actual != recorded_sha256:
        raise ArtifactIntegrityError(
            f"{path} has sha256 {actual}, but {record_file} records "
            f"{recorded_sha256}: the model file changed after training; refusing to load it"
        )
    return content


def decision_threshold(record: ModelRecord) -> float:
    """The threshold the model decides at: the one its training recorded; for older records
    params `model.threshold` as recorded; 0.5 when neither is a number."""
    if isinstance(record.threshold, int | float) and not isinstance(record.threshold, bool):
        return float(record.threshold)
    model = record.params.get("model") if isinstance(record.params, dict) else None
    value = model.get("threshold") if isinstance(model, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return DEFAULT_THRESHOLD
