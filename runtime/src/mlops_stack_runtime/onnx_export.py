"""End of training: compile the fitted pipeline to ONNX, and gate it on parity with scikit-learn.

The compiled model (serving/onnx_model.py) is served only if, on every held-out row, it agrees
with scikit-learn, per task:
- binary: the positive class's probability is within params `serving.onnx_tolerance` and both
  predict the same class (a row whose probability sits within the tolerance of the threshold may
  go either way);
- multiclass: every class's probability is within the tolerance and both predict the same class
  (a row whose two most probable classes are within the tolerance of each other may go either
  way);
- regression: the value is within `serving.onnx_tolerance` plus `serving.onnx_relative_tolerance`
  times scikit-learn's value (numpy.isclose: absolute and relative tolerance together).
Otherwise, or when skl2onnx cannot convert the pipeline (a team's own estimator, say), the record
says why and scikit-learn serves: a log line, never an error.

The graph: one [rows, 1] input per fitted column (float32 for numbers, strings for categories);
classification, the output `probabilities` [rows, classes] (no ZipMap) in the order of the
metadata `classes` (the model's class indices, JSON); regression, the output `value` [rows, 1];
the metadata `task` (the label's) and `feature_names` (JSON). LightGBM and XGBoost compile with
onnxmltools' converters, registered into skl2onnx when those packages are installed.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.impute import SimpleImputer

from .config import DEFAULT_ONNX_RELATIVE_TOLERANCE
from .data.columns import FEATURES, LABEL
from .serving.onnx_model import (
    CLASSES_METADATA,
    FEATURE_NAMES_METADATA,
    MISSING_CATEGORY,
    TASK_METADATA,
    VALUE_OUTPUT,
    OnnxModel,
)

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from .data.columns import LabelSpec

log = logging.getLogger(__name__)

ONNX_RUNTIME, SKLEARN_RUNTIME = "onnx", "sklearn"
# skl2onnx's name for a regressor's output, renamed VALUE_OUTPUT.
SKL2ONNX_VALUE_OUTPUT = "variable"
# onnxmltools' tree converters write this version of the ai.onnx.ml domain, not newer.
ONNXMLTOOLS_ML_OPSET = 3
_BOOSTING_PACKAGES = ("lightgbm", "xgboost")


@dataclass(frozen=True)
class Export:
    """The ONNX bytes (None when the pipeline does not convert) and the record's `inference`."""

    content: bytes | None
    inference: dict[str, Any]

    @property
    def accepted(self) -> bool:
        return self.inference["runtime"] == ONNX_RUNTIME


def register_converters() -> list[str]:
    """Register onnxmltools' LightGBM and XGBoost converters into skl2onnx, for the packages
    that import; the names of the estimators registered."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    registered: list[str] = []
    try:
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    except ImportError:
        pass
    else:
        update_registered_converter(
            LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options=classifier_options,
        )
        update_registered_converter(
            LGBMRegressor,
            "LightGbmLGBMRegressor",
            calculate_linear_regressor_output_shapes,
            convert_lightgbm,
            options={"split": None},
        )
        registered += ["LGBMClassifier", "LGBMRegressor"]
    try:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier, XGBRegressor
    except ImportError:
        pass
    else:
        update_registered_converter(
            XGBClassifier,
            "XGBoostXGBClassifier",
            calculate_linear_classifier_output_shapes,
            convert_xgboost,
            options=classifier_options,
        )
        update_registered_converter(
            XGBRegressor,
            "XGBoostXGBRegressor",
            calculate_linear_regressor_output_shapes,
            convert_xgboost,
        )
        registered += ["XGBClassifier", "XGBRegressor"]
    return registered


def convert(
    pipeline: Pipeline, label: LabelSpec = LABEL, text_columns: frozenset[str] | None = None
) -> bytes:
    """The fitted pipeline as an ONNX graph (module docstring). `text_columns`: the inputs fed
    as strings (the declared category features unless given)."""
    from skl2onnx import get_latest_tested_opset_version, to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    text = (
        text_columns
        if text_columns is not None
        else frozenset(spec.name for spec in FEATURES if spec.kind == "category")
    )
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
    estimator = compiled.steps[-1][1] if hasattr(compiled, "steps") else compiled
    target_opset: dict[str, int] | None = None
    if type(estimator).__module__.split(".")[0] in _BOOSTING_PACKAGES:
        register_converters()
        target_opset = {"": get_latest_tested_opset_version(), "ai.onnx.ml": ONNXMLTOOLS_ML_OPSET}
    options = {id(estimator): {"zipmap": False}} if label.is_classification else None
    model = to_onnx(
        compiled, initial_types=initial_types, options=options, target_opset=target_opset
    )
    if not label.is_classification:
        _rename_output(model, SKL2ONNX_VALUE_OUTPUT, VALUE_OUTPUT)
    # The graph's inputs follow `order`; their names may not be the columns' (see
    # FEATURE_NAMES_METADATA), so the columns are recorded in the graph itself.
    metadata = {FEATURE_NAMES_METADATA: json.dumps(order), TASK_METADATA: label.task}
    if label.is_classification:
        classes = np.asarray(getattr(compiled, "classes_", range(len(label.classes))))
        metadata[CLASSES_METADATA] = json.dumps([int(value) for value in classes])
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


def _rename_output(model: Any, old: str, new: str) -> None:
    for node in model.graph.node:
        node.output[:] = [new if name == old else name for name in node.output]
    for output in model.graph.output:
        if output.name == old:
            output.name = new


def onnx_scores(content: bytes, features: pd.DataFrame, label: LabelSpec = LABEL) -> np.ndarray:
    """What the compiled model gives for `features`, read as serving reads it (OnnxModel):
    classification, [rows, model classes] probabilities; regression, the value per row."""
    model = OnnxModel(content)
    result = model.predict_proba(features) if label.is_classification else model.predict(features)
    return np.asarray(result, dtype=np.float64)


def export(
    pipeline: Pipeline,
    features: pd.DataFrame,
    threshold: float,
    tolerance: float,
    relative_tolerance: float = DEFAULT_ONNX_RELATIVE_TOLERANCE,
    label: LabelSpec = LABEL,
    text_columns: frozenset[str] | None = None,
) -> Export:
    """Convert `pipeline` and compare it with scikit-learn on `features` (the held-out set)."""
    try:
        content = convert(pipeline, label, text_columns)
        actual = onnx_scores(content, features, label)
    except Exception as error:  # skl2onnx raises many types for what it cannot convert
        reason = (
            f"skl2onnx cannot convert this pipeline ({type(error).__name__}: "
            f"{str(error).strip()[:300]})"
        )
        log.warning("ONNX export refused, scikit-learn serves: %s", reason)
        return Export(None, {"runtime": SKLEARN_RUNTIME, "reason": reason, "tolerance": tolerance})
    if label.is_classification:
        expected = np.asarray(pipeline.predict_proba(features), dtype=np.float64)
    else:
        expected = np.asarray(pipeline.predict(features), dtype=np.float64).reshape(-1)
    parity = _PARITY[label.task](expected, actual, threshold, tolerance, relative_tolerance)
    inference: dict[str, Any] = {
        "max_abs_diff": parity.max_abs_diff,
        "tolerance": tolerance,
        **({"relative_tolerance": relative_tolerance} if label.task == "regression" else {}),
        "rows_compared": len(expected),
        **({"classes_differing": parity.differing} if label.is_classification else {}),
        **({"values_differing": parity.differing} if label.task == "regression" else {}),
    }
    if parity.refusal is not None:
        log.warning("ONNX export refused, scikit-learn serves: %s", parity.refusal)
        return Export(content, {"runtime": SKLEARN_RUNTIME, "reason": parity.refusal, **inference})
    reason = (
        f"matches scikit-learn on {len(expected)} held-out rows within {parity.within} "
        f"(max abs diff {parity.max_abs_diff:.3g})"
    )
    log.info("ONNX export accepted: %s", reason)
    return Export(content, {"runtime": ONNX_RUNTIME, "reason": reason, **inference})


@dataclass(frozen=True)
class Parity:
    max_abs_diff: float
    differing: int  # rows whose class (classification) or value (regression) disagrees
    refusal: str | None
    within: str  # the tolerance, as the acceptance names it


def _binary_parity(
    expected: np.ndarray, actual: np.ndarray, threshold: float, tolerance: float, _: float
) -> Parity:
    expected, actual = expected[:, 1], actual[:, 1]
    difference = np.abs(actual - expected)
    max_abs_diff = float(difference.max()) if len(difference) else 0.0
    # A class may differ only where scikit-learn's probability is within the tolerance of the
    # threshold; anywhere else a flipped class is a disagreement.
    flipped = ((actual >= threshold) != (expected >= threshold)) & (
        np.abs(expected - threshold) > tolerance
    )
    refusal: str | None = None
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
    return Parity(max_abs_diff, int(flipped.sum()), refusal, f"{tolerance:g}")


def _multiclass_parity(
    expected: np.ndarray, actual: np.ndarray, _: float, tolerance: float, __: float
) -> Parity:
    difference = np.abs(actual - expected) if actual.shape == expected.shape else None
    if difference is None:
        return Parity(
            float("inf"),
            len(expected),
            f"ONNX gives {actual.shape[1]} class probabilities per row, scikit-learn "
            f"{expected.shape[1]}",
            f"{tolerance:g}",
        )
    max_abs_diff = float(difference.max()) if difference.size else 0.0
    # A class may differ only where scikit-learn's two most probable classes are within the
    # tolerance of each other.
    top_two = np.sort(expected, axis=1)[:, -2:] if expected.shape[1] > 1 else expected
    clear = (top_two[:, -1] - top_two[:, 0]) > tolerance
    flipped = (np.argmax(actual, axis=1) != np.argmax(expected, axis=1)) & clear
    refusal: str | None = None
    if not np.isfinite(actual).all() or max_abs_diff > tolerance:
        refusal = (
            f"ONNX class probabilities differ from scikit-learn's by up to {max_abs_diff:.3g} on "
            f"the held-out set, over serving.onnx_tolerance {tolerance:g}"
        )
    elif flipped.any():
        refusal = (
            f"ONNX predicts another class than scikit-learn on {int(flipped.sum())} held-out "
            "row(s) where one class is clearly the most probable"
        )
    return Parity(max_abs_diff, int(flipped.sum()), refusal, f"{tolerance:g}")


def _regression_parity(
    expected: np.ndarray, actual: np.ndarray, _: float, tolerance: float, relative: float
) -> Parity:
    difference = np.abs(actual - expected)
    max_abs_diff = float(difference.max()) if len(difference) else 0.0
    allowed = tolerance + relative * np.abs(expected)
    outside = ~(difference <= allowed)  # NaN counts as outside
    refusal: str | None = None
    if outside.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            excess = np.where(np.isfinite(difference), difference / allowed, np.inf)
        worst = int(np.nanargmax(excess))
        refusal = (
            f"ONNX values differ from scikit-learn's on {int(outside.sum())} held-out row(s), "
            f"up to {difference[worst]:.3g} (on {expected[worst]:.6g}), over "
            f"serving.onnx_tolerance {tolerance:g} + serving.onnx_relative_tolerance "
            f"{relative:g} x |value|"
        )
    return Parity(
        max_abs_diff,
        int(outside.sum()),
        refusal,
        f"{tolerance:g} + {relative:g} x |value|",
    )


_PARITY = {
    "binary": _binary_parity,
    "multiclass": _multiclass_parity,
    "regression": _regression_parity,
}


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
