"""The pipeline compiled to ONNX (models/model.onnx), run with ONNX Runtime.

One scikit-learn `predict_proba` (or a regressor's `predict`) costs milliseconds whatever the
number of rows, almost all of it per-step input checks; the compiled graph scores a row in tens of
microseconds. Training exports it (onnx_export.py) only when it agrees with scikit-learn on the
held-out set, and records the choice in models/model.json. Only numpy and onnxruntime are
imported here.

The graph has one input per feature, shaped [rows, 1], in the fitted column order: numbers as
float32, categories as strings. Text tensors have no NaN, so a missing category is sent as
MISSING_CATEGORY, which the compiled imputer replaces as scikit-learn's replaces NaN; request
validation refuses text holding a NUL character, so no client value can pass for it.

The graph's metadata says the label's task (`task`) and, for a classifier, the class index of
each column of its `probabilities` output (`classes`, JSON); a regressor's output is `value`
[rows, 1]. A graph written before tasks existed has neither: it is a binary classifier of
classes 0 and 1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

# What a missing category becomes in the graph's string input (no category can be this text).
MISSING_CATEGORY = "\x00missing"
# Output holding the class probabilities, [rows, classes] (the export disables skl2onnx's ZipMap).
PROBABILITIES_OUTPUT = "probabilities"
# A regressor's output, [rows, 1].
VALUE_OUTPUT = "value"
# Metadata of the graph: the label's task, and the class index of each probabilities column.
TASK_METADATA = "task"
CLASSES_METADATA = "classes"
STRING_TENSOR = "tensor(string)"
# Metadata of the graph: the column of each input, in input order, as JSON (skl2onnx rewrites
# input names that are not identifiers, e.g. "mean radius" becomes "mean_radius").
FEATURE_NAMES_METADATA = "feature_names"


def _text(value: Any) -> str:
    if value is None or (type(value) is float and math.isnan(value)):
        return MISSING_CATEGORY
    return value if type(value) is str else str(value)


def onnx_inputs(
    columns: dict[str, np.ndarray] | Any,
    text_inputs: Sequence[tuple[str, str]],
    number_inputs: Sequence[tuple[str, str]],
) -> dict[str, np.ndarray]:
    """The graph's feeds from checked columns (a dict of arrays or a DataFrame), given
    (graph input, column) pairs."""
    feeds: dict[str, np.ndarray] = {}
    for name, column in number_inputs:
        feeds[name] = np.asarray(columns[column], dtype=np.float32).reshape(-1, 1)
    for name, column in text_inputs:
        values = np.asarray(columns[column], dtype=object).tolist()
        texts = [value if type(value) is str else _text(value) for value in values]
        feeds[name] = np.array(texts, dtype=object).reshape(-1, 1)
    return feeds


class OnnxModel:
    """A verified model.onnx in an ONNX Runtime session: a classifier's probabilities of the
    classes per row, or a regressor's values."""

    # The classifier's class indices, in the order of its probabilities' columns.
    classes_: np.ndarray

    def __init__(self, content: bytes) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One request at a time per process (the micro-batcher serialises calls); more threads
        # than that contend with the event loop and the other workers for the cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            content, sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = self.session.get_inputs()
        metadata = self.session.get_modelmeta().custom_metadata_map
        named = metadata.get(FEATURE_NAMES_METADATA)
        names = json.loads(named) if named else [node.name for node in inputs]
        if len(names) != len(inputs):
            raise ValueError(f"the ONNX model has {len(inputs)} inputs for {len(names)} columns")
        self.feature_names_in_ = np.array(names, dtype=object)
        pairs = list(zip(inputs, names, strict=True))
        self.text_inputs = tuple((n.name, c) for n, c in pairs if n.type == STRING_TENSOR)
        self.number_inputs = tuple((n.name, c) for n, c in pairs if n.type != STRING_TENSOR)
        # The task the graph was written for (serving/model.py checks it against the label).
        self.task: str = metadata.get(TASK_METADATA) or "binary"
        self.output = VALUE_OUTPUT if self.task == "regression" else PROBABILITIES_OUTPUT
        outputs = [node.name for node in self.session.get_outputs()]
        if self.output not in outputs:
            raise ValueError(f"the ONNX model has no '{self.output}' output ({outputs})")
        if self.task != "regression":
            classes = metadata.get(CLASSES_METADATA)
            self.classes_ = np.array(json.loads(classes) if classes else [0, 1], dtype=np.int64)

    def _run(self, columns: dict[str, np.ndarray] | Any) -> np.ndarray:
        feeds = onnx_inputs(columns, self.text_inputs, self.number_inputs)
        (result,) = self.session.run([self.output], feeds)
        return np.asarray(result)

    def predict_proba(self, columns: dict[str, np.ndarray] | Any) -> np.ndarray:
        """A classifier's probabilities, one column per class of `classes_`."""
        if self.task == "regression":
            raise TypeError("the ONNX model is a regressor: it has no class probabilities")
        return self._run(columns)

    def predict(self, columns: dict[str, np.ndarray] | Any) -> np.ndarray:
        """A regressor's value per row; a classifier's more probable class per row
        (scikit-learn's `predict`: a tie is the first class)."""
        if self.task == "regression":
            return self._run(columns).reshape(-1)
        return self.classes_[np.argmax(self._run(columns), axis=1)]
