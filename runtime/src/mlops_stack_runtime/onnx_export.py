"""End of training: compile the fitted pipeline to ONNX, and gate it on parity with scikit-learn.

The compiled model (serving/onnx_model.py) is served only if, on every held-out row, its
probability of the positive class is within params `serving.onnx_tolerance` of scikit-learn's and
both predict the same class (a row whose probability sits within the tolerance of the threshold
may go either way). Otherwise, or when skl2onnx cannot convert the pipeline (a team's own
classifier, say), the record says why and scikit-learn serves: a log line, never an error.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.impute import SimpleImputer

from .data.columns import FEATURES
from .serving.onnx_model import FEATURE_NAMES_METADATA, MISSING_CATEGORY, OnnxModel

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

log = logging.getLogger(__name__)

ONNX_RUNTIME, SKLEARN_RUNTIME = "onnx", "sklearn"


@dataclass(frozen=True)
class Export:
    """The ONNX bytes (None when the pipeline does not convert) and the record's `inference`."""

    content: bytes | None
    inference: dict[str, Any]

    @property
    def accepted(self) -> bool:
        return self.inference["runtime"] == ONNX_RUNTIME


def convert(pipeline: Pipeline) -> bytes:
    """The fitted pipeline as an ONNX graph: one [rows, 1] input per fitted column (float32 for
    numbers, strings for categories), probabilities as a plain [rows, 2] tensor."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    text = {spec.name for spec in FEATURES if spec.kind == "category"}
    order = list(getattr(pipeline, "feature_names_in_", [spec.name for spec in FEATURES]))
    initial_types = [
        (name, StringTensorType([None, 1]) if name in text else FloatTensorType([None, 1]))
        for name in order
    ]
    compiled = copy.deepcopy(pipeline)
    # Text tensors have no NaN: a categorical imputer learnt on NaN is told that the marker
    # serving sends for a missing category is what it replaces (its learnt fill is unchanged).
    for step in _estimators(compiled):
        is_text = np.asarray(getattr(step, "statistics_", [])).dtype.kind == "O"
        if isinstance(step, SimpleImputer) and _is_nan(step.missing_values) and is_text:
            step.missing_values = MISSING_CATEGORY
    classifier = compiled.steps[-1][1] if hasattr(compiled, "steps") else compiled
    model = to_onnx(
        compiled, initial_types=initial_types, options={id(classifier): {"zipmap": False}}
    )
    # The graph's inputs follow `order`; their names may not be the columns' (see
    # FEATURE_NAMES_METADATA), so the columns are recorded in the graph itself.
    entry = model.metadata_props.add()
    entry.key, entry.value = FEATURE_NAMES_METADATA, json.dumps(order)
    return model.SerializeToString()


def export(
    pipeline: Pipeline, features: pd.DataFrame, threshold: float, tolerance: float
) -> Export:
    """Convert `pipeline` and compare it with scikit-learn on `features` (the held-out set)."""
    try:
        content = convert(pipeline)
        onnx_model = OnnxModel(content)
    except Exception as error:  # skl2onnx raises many types for what it cannot convert
        reason = (
            f"skl2onnx cannot convert this pipeline ({type(error).__name__}: "
            f"{str(error).strip()[:300]})"
        )
        log.warning("ONNX export refused, scikit-learn serves: %s", reason)
        return Export(None, {"runtime": SKLEARN_RUNTIME, "reason": reason, "tolerance": tolerance})

    expected = pipeline.predict_proba(features)[:, 1].astype(np.float64)
    actual = onnx_model.predict_proba(features)[:, 1].astype(np.float64)
    difference = np.abs(actual - expected)
    max_abs_diff = float(difference.max()) if len(difference) else 0.0
    # A class may differ only where scikit-learn's probability is within the tolerance of the
    # threshold; anywhere else a flipped class is a disagreement.
    flipped = ((actual >= threshold) != (expected >= threshold)) & (
        np.abs(expected - threshold) > tolerance
    )
    inference: dict[str, Any] = {
        "max_abs_diff": max_abs_diff,
        "tolerance": tolerance,
        "rows_compared": len(expected),
        "classes_differing": int(flipped.sum()),
    }
    refusal: str | None
    if not np.isfinite(actual).all() or max_abs_diff > tolerance:
        refusal = (
            f"ONNX probabilities differ from scikit-learn's by up to {max_abs_diff:.3g} on the "
            f"held-out set, over serving.onnx_tolerance {tolerance:g}"
        )
    elif flipped.any():
        refusal = (
            f"ONNX predicts another class than scikit-learn on {int(flipped.sum())} held-out "
            "row(s) away from the threshold"
        )
    else:
        refusal = None
    if refusal is not None:
        log.warning("ONNX export refused, scikit-learn serves: %s", refusal)
        return Export(content, {"runtime": SKLEARN_RUNTIME, "reason": refusal, **inference})
    reason = (
        f"matches scikit-learn on {len(expected)} held-out rows within {tolerance:g} "
        f"(max abs diff {max_abs_diff:.3g})"
    )
    log.info("ONNX export accepted: %s", reason)
    return Export(content, {"runtime": ONNX_RUNTIME, "reason": reason, **inference})


def _estimators(estimator: Any) -> list[Any]:
    """`estimator` and every estimator nested in it (pipelines, column transformers)."""
    found = [estimator]
    for _, step in getattr(estimator, "steps", []):
        found += _estimators(step)
    for _, step, _ in getattr(estimator, "transformers_", []):
        if not isinstance(step, str):
            found += _estimators(step)
    return found


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value
