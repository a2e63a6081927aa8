"""Models of each task on real public data, as training leaves them in a model folder.

scikit-learn's iris (a multi-class label with text classes: setosa, versicolor, virginica) and
diabetes (a regression label: disease progression a year on) data, each with its declaration, a
fitted pipeline trained as the runtime trains (classes as their indices, tasks.py), the pipeline
compiled to ONNX as the contract of serving/onnx_model.py says (ZipMap off, `probabilities` or
`value`, the graph metadata `task`, `classes`, `feature_names`), and a model folder holding
model.joblib, model.onnx and model.json with their sha256. The tests of serving, batch scoring
and drift share them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlops_stack_runtime.audit import ModelRecord, save_model, sha256_file, write_record
from mlops_stack_runtime.data.columns import (
    ColumnSpec,
    Declaration,
    LabelSpec,
    declaration_to_yaml,
    encode_label,
)
from mlops_stack_runtime.serving.onnx_model import (
    CLASSES_METADATA,
    FEATURE_NAMES_METADATA,
    PROBABILITIES_OUTPUT,
    TASK_METADATA,
    VALUE_OUTPUT,
)

SEED = 7


@dataclass(frozen=True)
class TaskData:
    """A dataset of one task: its declaration, and its rows split for training and testing."""

    declaration: Declaration
    train: pd.DataFrame
    test: pd.DataFrame

    @property
    def label(self) -> LabelSpec:
        return self.declaration.label

    @property
    def feature_names(self) -> list[str]:
        return list(self.declaration.feature_names)

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[self.feature_names]

    def driving_features(self) -> list[str]:
        """The features that move the label most (what a shifted batch shifts)."""
        return {"multiclass": ["petal_length", "petal_width"], "regression": ["bmi"]}[
            self.label.task
        ]


def _split(frame: pd.DataFrame, label: str, stratify: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = train_test_split(
        frame, test_size=0.3, random_state=SEED, stratify=frame[label] if stratify else None
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def iris() -> TaskData:
    """Iris species from flower measurements: three classes, as text."""
    bunch = load_iris(as_frame=True)
    frame = bunch.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    names = [str(name) for name in bunch.target_names]
    frame["species"] = [names[i] for i in bunch.target]
    frame = frame.drop(columns=["target"])
    features = tuple(
        ColumnSpec(name, "float", f"{name.replace('_', ' ')} in cm", min_value=0.0, max_value=20.0)
        for name in frame.columns
        if name != "species"
    )
    label = LabelSpec("species", "iris species", tuple(names), None, "multiclass")
    return TaskData(Declaration(features, label), *_split(frame, "species", stratify=True))


def diabetes() -> TaskData:
    """Disease progression one year on, from ten baseline measurements: a regression."""
    frame = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
    features = tuple(
        ColumnSpec(name, "float", f"baseline {name} (scaled)")
        for name in frame.columns
        if name != "progression"
    )
    label = LabelSpec(
        "progression", "disease progression one year after baseline", (), None, "regression"
    )
    return TaskData(Declaration(features, label), *_split(frame, "progression", stratify=False))


def fit(data: TaskData) -> Pipeline:
    """A pipeline fitted on the training rows, on the label as the runtime encodes it."""
    estimator: Any = (
        Ridge(alpha=1.0)
        if data.label.task == "regression"
        else LogisticRegression(max_iter=1000, random_state=SEED)
    )
    pipeline = Pipeline([("scale", StandardScaler()), ("model", estimator)])
    target = encode_label(data.train[data.label.name], data.label)
    return pipeline.fit(data.features(data.train), target)


def to_onnx_bytes(pipeline: Pipeline, data: TaskData) -> bytes:
    """The pipeline as the ONNX contract has it (serving/onnx_model.py)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    inputs = [(name, FloatTensorType([None, 1])) for name in data.feature_names]
    estimator = pipeline.steps[-1][1]
    if data.label.task == "regression":
        model = to_onnx(
            pipeline,
            initial_types=inputs,
            final_types=[(VALUE_OUTPUT, FloatTensorType([None, 1]))],
        )
    else:
        model = to_onnx(pipeline, initial_types=inputs, options={id(estimator): {"zipmap": False}})
        assert PROBABILITIES_OUTPUT in [output.name for output in model.graph.output]
    metadata = {
        FEATURE_NAMES_METADATA: json.dumps(data.feature_names),
        TASK_METADATA: data.label.task,
    }
    if data.label.task != "regression":
        metadata[CLASSES_METADATA] = json.dumps([int(c) for c in estimator.classes_])
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


def write_model_dir(
    folder: Path, pipeline: Pipeline, data: TaskData, onnx: bytes | None = None
) -> Path:
    """A model folder as training writes it: the pickle, the ONNX graph when given (then served
    by ONNX Runtime), and the record with their sha256."""
    save_model(pipeline, folder)
    inference: dict[str, Any] = {"runtime": "sklearn", "reason": "no ONNX model in this test"}
    onnx_file = onnx_sha256 = None
    if onnx is not None:
        (folder / "model.onnx").write_bytes(onnx)
        onnx_file, onnx_sha256 = "model.onnx", sha256_file(folder / "model.onnx")
        inference = {"runtime": "onnx", "reason": "accepted in this test"}
    record = ModelRecord(
        model_file="model.joblib",
        model_sha256=sha256_file(folder / "model.joblib"),
        training_data_sha256="0" * 64,
        test_data_sha256="0" * 64,
        git_commit=None,
        params={"project": {"slug": f"{data.label.task}-model"}, "model": {"threshold": 0.5}},
        metrics={},
        mlflow_run_id=None,
        registered_model_name=None,
        registered_model_version=None,
        sklearn_version=sklearn.__version__,
        python_version=sys.version.split()[0],
        feature_names=data.feature_names,
        created_at="2026-01-01T00:00:00+00:00",
        onnx_file=onnx_file,
        onnx_sha256=onnx_sha256,
        inference=inference,
    )
    write_record(record, folder)
    return folder


def write_declaration(data: TaskData, path: Path) -> Path:
    """The task's columns.yaml, for a process pointed at it with COLUMNS_FILE."""
    path.write_text(declaration_to_yaml(data.declaration), encoding="utf-8")
    return path


def expected(pipeline: Pipeline, data: TaskData, frame: pd.DataFrame) -> np.ndarray:
    """scikit-learn's own answer: the class probabilities, or the values."""
    features = data.features(frame)
    if data.label.task == "regression":
        return np.asarray(pipeline.predict(features), dtype=np.float64)
    return np.asarray(pipeline.predict_proba(features), dtype=np.float64)
