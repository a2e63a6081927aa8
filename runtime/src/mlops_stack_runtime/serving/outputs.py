"""The model's outputs, per task, named from the label (data/columns.py): what the v1 and v2
answers, the v2 model metadata and the batch-scoring columns hold.

- binary: `<label>_probability`, the probability of the label's positive value, and
  `predicted_class`, 1 where it is at least the threshold (as before tasks existed);
- multi-class: `predicted_<label>`, the most probable class as its text, and each class's
  probability: `<label>_probability_<class>` per class in v2 and in tables, one
  `<label>_probabilities` mapping {class: probability} per row in v1;
- regression: `predicted_<label>`, the value.

The predictions come in as (scores, decision) (serving/model.py `predict_checked`): scores one
per row (binary: the positive probability; regression: the value) or [rows, classes]
(multi-class, in `LabelSpec.classes` order); decision the class index (binary, multi-class) or
the value (regression). Only numpy is imported: the ONNX server's image has no pandas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.columns import LABEL, LabelSpec

# The binary label's predicted class (0/1) keeps the name it had before tasks existed.
CLASS_OUTPUT = "predicted_class"


def probability_name(label: LabelSpec) -> str:
    """Binary: the positive value's probability."""
    return f"{label.name}_probability"


def prediction_name(label: LabelSpec) -> str:
    """Multi-class and regression: the predicted class or value."""
    return f"predicted_{label.name}"


def class_probability_name(label: LabelSpec, value: str) -> str:
    """Multi-class: one class's probability (a v2 output, a table column)."""
    return f"{label.name}_probability_{value}"


def probabilities_name(label: LabelSpec) -> str:
    """Multi-class: the v1 answer's mapping {class: probability} of each row."""
    return f"{label.name}_probabilities"


@dataclass(frozen=True)
class Outputs:
    """The outputs of a model of `label`'s task."""

    label: LabelSpec
    # v2 output name -> datatype, in the order the answers and the metadata list them.
    datatypes: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        label = self.label
        if label.task == "binary":
            datatypes = {probability_name(label): "FP64", CLASS_OUTPUT: "INT64"}
        elif label.task == "multiclass":
            datatypes = {prediction_name(label): "BYTES"}
            datatypes.update({class_probability_name(label, c): "FP64" for c in label.classes})
        else:
            datatypes = {prediction_name(label): "FP64"}
        object.__setattr__(self, "datatypes", datatypes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.datatypes)

    def metadata(self) -> list[dict[str, Any]]:
        """The `outputs` of the v2 model metadata: one tensor of shape [-1] per output."""
        return [{"name": n, "datatype": t, "shape": [-1]} for n, t in self.datatypes.items()]

    def columns(self, scores: np.ndarray, decision: np.ndarray) -> dict[str, Any]:
        """Each output's values, one per row (the v2 tensors' data, the scored table's columns):
        numpy arrays, the multi-class prediction as an array of class texts."""
        label = self.label
        if label.task == "binary":
            return {probability_name(label): scores, CLASS_OUTPUT: decision}
        if label.task == "regression":
            return {prediction_name(label): scores}
        classes = np.asarray(label.classes, dtype=object)
        out: dict[str, Any] = {prediction_name(label): classes[decision]}
        for index, value in enumerate(label.classes):
            out[class_probability_name(label, value)] = np.ascontiguousarray(scores[:, index])
        return out

    def v1_predictions(self, scores: np.ndarray, decision: np.ndarray) -> list[dict[str, Any]]:
        """The v1 answer's `predictions`: one object per row."""
        label = self.label
        if label.task == "binary":
            probability, predicted = probability_name(label), CLASS_OUTPUT
            return [
                {probability: p, predicted: c}
                for p, c in zip(scores.tolist(), decision.tolist(), strict=True)
            ]
        if label.task == "regression":
            name = prediction_name(label)
            return [{name: value} for value in scores.tolist()]
        classes = label.classes
        predicted, probabilities = prediction_name(label), probabilities_name(label)
        return [
            {predicted: classes[c], probabilities: dict(zip(classes, row, strict=True))}
            for c, row in zip(decision.tolist(), scores.tolist(), strict=True)
        ]

    def v2_outputs(
        self, scores: np.ndarray, decision: np.ndarray, requested: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        """The v2 answer's `outputs`: the `requested` ones (all when empty), each [rows]."""
        values = self.columns(scores, decision)
        rows = len(decision)
        return [
            {
                "name": name,
                "datatype": self.datatypes[name],
                "shape": [rows],
                # orjson writes numeric arrays as they are; class texts go as a list.
                "data": values[name].tolist() if values[name].dtype == object else values[name],
            }
            for name in requested or self.names
        ]


# The declared label's outputs (data/columns.py), as the server and batch scoring name them.
OUTPUTS: dict[str, str] = Outputs(LABEL).datatypes
