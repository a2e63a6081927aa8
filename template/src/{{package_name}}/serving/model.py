"""The served model: loaded only after its sha256 matches the audit record, then predicted on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn

from .. import DISTRIBUTION_NAME
from ..audit import ModelRecord, load_verified_model
from ..errors import ArtifactIntegrityError
from .batching import Columns, Prediction
from .validation import InputSchema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """A verified model with what the endpoints report about it."""

    name: str
    version: str
    pipeline: Any
    record: ModelRecord
    schema: InputSchema

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        schema: InputSchema | None = None,
        expected_sha256: str | None = None,
    ) -> ServedModel:
        """Verify models/model.joblib against models/model.json, then load it.

        ``expected_sha256`` (the deployment's MODEL_SHA256) must match the file too. Raises
        ArtifactIntegrityError (a clear message, no traceback needed) when the artifact is
        missing, differs from its record or the expected sha256, cannot be unpickled, or does
        not take the inputs the schema declares.
        """
        schema = schema or InputSchema()
        pipeline, record = load_verified_model(Path(model_dir), expected_sha256)
        expected = getattr(pipeline, "feature_names_in_", None)
        if expected is not None and set(expected) != set(schema.names):
            raise ArtifactIntegrityError(
                f"the model in {model_dir} was trained on features {list(expected)}, but "
                f"data/columns.py declares {list(schema.names)}: retrain the model"
            )
        if record.sklearn_version != sklearn.__version__:
            log.warning(
                "scikit-learn version differs from training",
                extra={"trained_with": record.sklearn_version, "serving_with": sklearn.__version__},
            )
        classes = list(getattr(pipeline, "classes_", []))
        if len(classes) != 2 or not hasattr(pipeline, "predict_proba"):
            raise ArtifactIntegrityError(
                f"the model in {model_dir} is not a binary classifier with predict_proba"
            )
        model = cls(
            name=model_name(record),
            version=model_version(record),
            pipeline=pipeline,
            record=record,
            schema=schema,
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
        """Probability of the positive class and the predicted class, one of each per row."""
        # 1 means the label's positive value (columns.yaml), at the training threshold.
        return predict_checked(self.pipeline, columns, self.schema.names, self.threshold)

    @property
    def feature_order(self) -> tuple[str, ...]:
        """The columns the pipeline was fitted on, in that order."""
        return fitted_feature_order(self.pipeline, self.schema.names)

    @property
    def threshold(self) -> float:
        """params `model.threshold` as recorded at training time (0.5 for older records)."""
        model = self.record.params.get("model") if isinstance(self.record.params, dict) else None
        value = model.get("threshold") if isinstance(model, dict) else None
        return float(value) if isinstance(value, int | float) else 0.5


def predict_checked(
    pipeline: Any, columns: Columns, declared: Sequence[str], threshold: float
) -> Prediction:
    """`pipeline`'s probability of the positive class, and the class at `threshold`, per row.

    `columns` were checked (finite, in range) by the validation module. The frame has the
    columns the pipeline was fitted on, in that order (`declared` when it does not record them).
    """
    order = fitted_feature_order(pipeline, declared)
    frame = pd.DataFrame({name: columns[name] for name in order}, copy=False)
    with sklearn.config_context(assume_finite=True):
        proba = pipeline.predict_proba(frame)
    positive = proba[:, 1].astype(np.float64)
    return positive, (positive >= threshold).astype(np.int64)


def fitted_feature_order(pipeline: Any, declared: Sequence[str]) -> tuple[str, ...]:
    """The pipeline's fitted column order (`declared` when the pipeline does not record it)."""
    names = getattr(pipeline, "feature_names_in_", None)
    return tuple(names) if names is not None else tuple(declared)


def model_name(record: ModelRecord) -> str:
    """The name in the URLs: params.yaml's ``project.slug`` as recorded at training time."""
    project = record.params.get("project") if isinstance(record.params, dict) else None
    slug = project.get("slug") if isinstance(project, dict) else None
    return slug if isinstance(slug, str) and slug else DISTRIBUTION_NAME


def model_version(record: ModelRecord) -> str:
    """The MLflow registry version when the model was registered, else its sha256 prefix."""
    if record.registered_model_version is not None:
        return str(record.registered_model_version)
    return record.model_sha256[:12]
