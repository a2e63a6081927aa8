"""The served model: loaded only after its sha256 matches the audit record, then predicted on.

Two runtimes serve the same model: ONNX Runtime runs models/model.onnx when training accepted it
(models/model.json `inference.runtime` is "onnx"), scikit-learn runs models/model.joblib
otherwise. INFERENCE_RUNTIME=sklearn keeps scikit-learn; INFERENCE_RUNTIME=onnx refuses to start
unless the ONNX model was accepted. On the ONNX path neither scikit-learn, joblib nor pandas is
imported, and the default image does not install them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from ..audit import (
    ONNX_SHA256_ENV,
    ModelRecord,
    decision_threshold,
    load_verified_model,
    load_verified_onnx,
    read_record,
    verify_artifact,
)
from ..data.columns import LABEL, ColumnSpec, LabelSpec
from ..errors import ArtifactIntegrityError, ServerSettingError
from ..project import current_project
from ..tasks import align_probabilities
from .batching import Columns, Prediction
from .onnx_model import OnnxModel
from .outputs import Outputs
from .validation import InputSchema

log = logging.getLogger(__name__)

# onnx | sklearn; unset or "auto": what models/model.json says.
INFERENCE_RUNTIME_ENV = "INFERENCE_RUNTIME"
RUNTIMES = ("onnx", "sklearn")


def requested_runtime() -> str | None:
    """INFERENCE_RUNTIME, checked: onnx, sklearn, or None (follow the record)."""
    value = os.environ.get(INFERENCE_RUNTIME_ENV, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in RUNTIMES:
        raise ServerSettingError(
            f"{INFERENCE_RUNTIME_ENV} must be one of onnx, sklearn or auto, got {value!r}"
        )
    return value


def choose_runtime(
    record: ModelRecord,
    requested: str | None,
    expected_sha256: str | None = None,
    expected_onnx_sha256: str | None = None,
) -> tuple[str, str]:
    """The runtime that serves `record`'s model, and why."""
    inference = record.inference if isinstance(record.inference, dict) else {}
    accepted = inference.get("runtime") == "onnx" and record.onnx_sha256 is not None
    if requested == "sklearn":
        return "sklearn", f"{INFERENCE_RUNTIME_ENV}=sklearn"
    if not accepted:
        why = inference.get("reason") or "the record has no ONNX model (trained before export)"
        if requested == "onnx":
            raise ArtifactIntegrityError(
                f"{INFERENCE_RUNTIME_ENV}=onnx, but training did not accept the ONNX model: {why}"
            )
        return "sklearn", why
    if expected_sha256 is not None and expected_onnx_sha256 is None:
        # The deployment pins model.joblib from outside the folder; the ONNX file is vouched for
        # only by the record inside it, so it is served only when pinned too.
        why = f"MODEL_SHA256 pins model.joblib only; set {ONNX_SHA256_ENV} to serve model.onnx"
        if requested == "onnx":
            raise ArtifactIntegrityError(f"{INFERENCE_RUNTIME_ENV}=onnx, but {why}")
        return "sklearn", why
    return "onnx", str(inference.get("reason") or "accepted at training")


@dataclass(frozen=True)
class ServedModel:
    """A verified model with what the endpoints report about it."""

    name: str
    version: str
    pipeline: Any  # a scikit-learn pipeline, or an OnnxModel
    record: ModelRecord
    schema: InputSchema
    runtime: str = "sklearn"  # onnx | sklearn
    # The declared label: the task the model must fit, the names of its outputs.
    label: LabelSpec = LABEL

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        schema: InputSchema | None = None,
        expected_sha256: str | None = None,
        runtime: str | None = None,
        expected_onnx_sha256: str | None = None,
        label: LabelSpec | None = None,
    ) -> ServedModel:
        """Verify models/model.joblib (and models/model.onnx when it serves) against
        models/model.json, then load the model of the runtime chosen (``choose_runtime``).

        ``runtime`` (onnx | sklearn) defaults to INFERENCE_RUNTIME, ``expected_onnx_sha256``
        to ONNX_SHA256. ``expected_sha256`` (the deployment's MODEL_SHA256) must match the
        file too. Raises ArtifactIntegrityError (a clear message, no traceback needed) when the
        artifact is missing, differs from its record or the expected sha256, cannot be loaded,
        or does not take the inputs the schema declares, or does not fit ``label``'s task (the
        declared label by default).
        """
        recorded = read_record(Path(model_dir))
        schema = schema or InputSchema(ignored=ignored_columns(recorded))
        label = label or LABEL
        if runtime is None:
            runtime = requested_runtime()
        if expected_onnx_sha256 is None:
            expected_onnx_sha256 = os.environ.get(ONNX_SHA256_ENV, "").strip() or None
        # Which file serves is the record's to say; each path checks its files before loading.
        chosen, why = choose_runtime(recorded, runtime, expected_sha256, expected_onnx_sha256)
        if chosen == "onnx":
            # model.joblib against the record (and MODEL_SHA256), without unpickling it.
            record = verify_artifact(Path(model_dir), expected_sha256)
            content = load_verified_onnx(Path(model_dir), record, expected_onnx_sha256)
            try:
                pipeline: Any = OnnxModel(content)
            except Exception as error:
                raise ArtifactIntegrityError(
                    f"{Path(model_dir) / str(record.onnx_file)} matches its sha256 but cannot be "
                    f"loaded by ONNX Runtime ({type(error).__name__}: {str(error)[:200]})"
                ) from error
        else:
            _require_sklearn(why)
            pipeline, record = load_verified_model(Path(model_dir), expected_sha256)
            _warn_on_sklearn_version(record)
        log.info("model runtime", extra={"runtime": chosen, "reason": why})
        expected = getattr(pipeline, "feature_names_in_", None)
        if expected is not None and set(expected) != set(schema.names):
            raise ArtifactIntegrityError(
                f"the model in {model_dir} was trained on features {list(expected)}, but "
                f"data/columns.py declares {list(schema.names)}: retrain the model"
            )
        check_task(pipeline, label, model_dir)
        model = cls(
            name=model_name(record),
            version=model_version(record),
            pipeline=pipeline,
            record=record,
            schema=schema,
            runtime=chosen,
            label=label,
        )
        # One prediction before serving: a model that cannot score a valid row fails here, not
        # on the first request, and the first request does not pay for lazy initialisation.
        try:
            model.predict(schema.parse_v1({"instances": [schema.example_record()]}).columns)
        except Exception as error:
            raise ArtifactIntegrityError(
                f"the model in {model_dir} failed on a valid example row: {error}"
            ) from error
        return model

    def predict(self, columns: Columns) -> Prediction:
        """The scores and the decision per row, as `predict_checked` gives them."""
        return predict_checked(
            self.pipeline, columns, self.schema.names, self.threshold, self.label
        )

    @property
    def features(self) -> tuple[ColumnSpec, ...]:
        """The declared inputs the server checks requests against."""
        return self.schema.features

    @cached_property
    def outputs(self) -> Outputs:
        """The names and types of what the server answers for this model's task."""
        return Outputs(self.label)

    @property
    def feature_order(self) -> tuple[str, ...]:
        """The columns the pipeline was fitted on, in that order."""
        return fitted_feature_order(self.pipeline, self.schema.names)

    @property
    def threshold(self) -> float:
        """The threshold the model was trained to decide at (audit.decision_threshold: the
        recorded one, else params `model.threshold` as recorded, else 0.5)."""
        return decision_threshold(self.record)


def check_task(pipeline: Any, label: LabelSpec, model_dir: str | Path) -> None:
    """ArtifactIntegrityError unless `pipeline` predicts what `label`'s task needs: binary, a
    classifier of two classes with predict_proba; multi-class, a classifier with predict_proba
    whose classes are indices of the label's classes; regression, a model that predicts values
    (not a classifier)."""
    exported = getattr(pipeline, "task", None)  # an ONNX graph says the task it was written for
    if exported is not None and exported != label.task:
        raise ArtifactIntegrityError(
            f"the ONNX model in {model_dir} was exported for a {exported} label, but "
            f"data/columns.yaml declares '{label.name}' {label.task}: retrain the model"
        )
    classifier = hasattr(pipeline, "predict_proba") and exported != "regression"
    if label.task == "regression":
        if classifier or not hasattr(pipeline, "predict"):
            raise ArtifactIntegrityError(
                f"the model in {model_dir} is not a regressor with predict, but "
                f"data/columns.yaml declares '{label.name}' a regression label: retrain the model"
            )
        return
    classes = list(getattr(pipeline, "classes_", []))
    if label.task == "binary":
        if len(classes) != 2 or not classifier:
            raise ArtifactIntegrityError(
                f"the model in {model_dir} is not a binary classifier with predict_proba"
            )
        return
    indices = range(len(label.classes))
    fits = (
        len(classes) >= 2
        and all(isinstance(c, int | np.integer) and int(c) in indices for c in classes)
        and len(set(classes)) == len(classes)
    )
    if not classifier or not fits:
        raise ArtifactIntegrityError(
            f"the model in {model_dir} is not a classifier with predict_proba over class indices "
            f"of '{label.name}' ({len(label.classes)} classes: {', '.join(label.classes)}); "
            f"its classes are {', '.join(map(str, classes[:10])) or 'none'}: retrain the model"
        )


def predict_checked(
    pipeline: Any,
    columns: Columns,
    declared: Sequence[str],
    threshold: float,
    label: LabelSpec | None = None,
) -> Prediction:
    """(scores, decision) per row for `label`'s task (the declared label by default): binary,
    the positive class's probability and the class at `threshold`; multi-class, the [rows,
    classes] probabilities in `label.classes` order and the most probable class's index;
    regression, the value twice.

    `columns` were checked (finite, in range) by the validation module. The frame has the
    columns the pipeline was fitted on, in that order (`declared` when it does not record them).
    """
    label = label or LABEL
    method = "predict" if label.task == "regression" else "predict_proba"
    if isinstance(pipeline, OnnxModel):
        result = getattr(pipeline, method)(columns)
    else:
        import pandas as pd
        import sklearn

        order = fitted_feature_order(pipeline, declared)
        frame = pd.DataFrame({name: columns[name] for name in order}, copy=False)
        with sklearn.config_context(assume_finite=True):
            result = getattr(pipeline, method)(frame)
    if label.task == "binary":
        positive = result[:, 1].astype(np.float64)
        return positive, (positive >= threshold).astype(np.int64)
    if label.task == "regression":
        values = np.asarray(result, dtype=np.float64).reshape(-1)
        return values, values
    proba = np.asarray(result, dtype=np.float64)
    classes = getattr(pipeline, "classes_", None)
    if classes is None or not np.array_equal(classes, np.arange(len(label.classes))):
        # A class missing from the training data has no column: it scores 0.
        proba = align_probabilities(proba, classes, label)
    return proba, np.argmax(proba, axis=1).astype(np.int64)


def fitted_feature_order(pipeline: Any, declared: Sequence[str]) -> tuple[str, ...]:
    """The pipeline's fitted column order (`declared` when the pipeline does not record it)."""
    names = getattr(pipeline, "feature_names_in_", None)
    return tuple(names) if names is not None else tuple(declared)


def _require_sklearn(why: str) -> None:
    """A clear refusal where the environment was built for the ONNX path only (the image's
    default): the pickle needs scikit-learn, joblib and pandas."""
    missing = [name for name in ("sklearn", "joblib", "pandas") if find_spec(name) is None]
    if missing:
        raise ServerSettingError(
            f"scikit-learn serves this model ({why}), but this environment lacks "
            f"{', '.join(missing)}: build the image with --build-arg INFERENCE_RUNTIME=sklearn "
            "(`make docker-build` picks it from models/model.json), or serve a model whose ONNX "
            "export training accepted"
        )


def _warn_on_sklearn_version(record: ModelRecord) -> None:
    import sklearn

    if record.sklearn_version != sklearn.__version__:
        log.warning(
            "scikit-learn version differs from training",
            extra={"trained_with": record.sklearn_version, "serving_with": sklearn.__version__},
        )


def model_name(record: ModelRecord) -> str:
    """The name in the URLs: params.yaml's ``project.slug`` as recorded at training time."""
    project = record.params.get("project") if isinstance(record.params, dict) else None
    slug = project.get("slug") if isinstance(project, dict) else None
    return slug if isinstance(slug, str) and slug else current_project().distribution


def model_version(record: ModelRecord) -> str:
    """The MLflow registry version when the model was registered, else its sha256 prefix."""
    if record.registered_model_version is not None:
        return str(record.registered_model_version)
    return record.model_sha256[:12]


def ignored_columns(record: ModelRecord) -> tuple[str, ...]:
    """params `serving.ignore_columns` as recorded at training time: columns a request may
    carry besides the features, which the server drops (none for older records)."""
    serving = record.params.get("serving") if isinstance(record.params, dict) else None
    names = serving.get("ignore_columns") if isinstance(serving, dict) else None
    if not isinstance(names, list | tuple):
        return ()
    return tuple(str(name) for name in names if isinstance(name, str) and name)
