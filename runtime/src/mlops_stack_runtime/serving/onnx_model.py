"""The pipeline compiled to ONNX (models/model.onnx), run with ONNX Runtime.

One scikit-learn `predict_proba` costs milliseconds whatever the number of rows, almost all of it
per-step input checks; the compiled graph scores a row in tens of microseconds. Training exports it
(onnx_export.py) only when it agrees with scikit-learn on the held-out set, and records the choice
in models/model.json. Only numpy and onnxruntime are imported here.

The graph has one input per feature, shaped [rows, 1], in the fitted column order: numbers as
float32, categories as strings. Text tensors have no NaN, so a missing category is sent as
MISSING_CATEGORY, which the compiled imputer replaces as scikit-learn's replaces NaN; request
validation refuses text holding a NUL character, so no client value can pass for it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

# What a missing category becomes in the graph's string input (no category can be this text).
MISSING_CATEGORY = "\x00missing"
# Output holding the class probabilities, [rows, 2] (the export disables skl2onnx's ZipMap).
PROBABILITIES_OUTPUT = "probabilities"
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
    """A verified model.onnx in an ONNX Runtime session: probabilities of the classes per row."""

    classes_ = np.array([0, 1])

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
        metadata = self.session.get_modelmeta().custom_metadata_map.get(FEATURE_NAMES_METADATA)
        names = json.loads(metadata) if metadata else [node.name for node in inputs]
        if len(names) != len(inputs):
            raise ValueError(f"the ONNX model has {len(inputs)} inputs for {len(names)} columns")
        self.feature_names_in_ = np.array(names, dtype=object)
        pairs = list(zip(inputs, names, strict=True))
        self.text_inputs = tuple((n.name, c) for n, c in pairs if n.type == STRING_TENSOR)
        self.number_inputs = tuple((n.name, c) for n, c in pairs if n.type != STRING_TENSOR)
        outputs = [node.name for node in self.session.get_outputs()]
        if PROBABILITIES_OUTPUT not in outputs:
            raise ValueError(f"the ONNX model has no '{PROBABILITIES_OUTPUT}' output ({outputs})")

    def predict_proba(self, columns: dict[str, np.ndarray] | Any) -> np.ndarray:
        feeds = onnx_inputs(columns, self.text_inputs, self.number_inputs)
        (proba,) = self.session.run([PROBABILITIES_OUTPUT], feeds)
        return proba

    def predict(self, columns: dict[str, np.ndarray] | Any) -> np.ndarray:
        """The more probable class per row (scikit-learn's `predict`: a tie is class 0)."""
        return self.classes_[np.argmax(self.predict_proba(columns), axis=1)]
