"""The contract between a repository's own files and the runtime, as tests.

A generated repository collects these with one line (tests/test_contract.py:
`from mlops_stack_runtime.testing.contract import *`), so its `make test` checks what the team
owns against what the runtime expects, whatever data the declaration describes: params.yaml
loads; the declaration loads; rows generated from it pass its own validation; the model
definition (features.py) trains on them, and the model compiles to ONNX or the record says why
not; the model server, in process, answers a declared row over the v1 and v2 protocols.

The runtime's own behaviour is tested in the runtime's suite, not here: these take seconds.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..audit import read_record
from ..config import Config, load_config
from ..data.columns import FEATURE_NAMES, LABEL, PROBABILITY_NAME, TASKS, load_declaration
from ..data.schema import validate_frame
from ..serving.app import create_app
from ..serving.model import ServedModel
from ..serving.outputs import (
    CLASS_OUTPUT,
    OUTPUTS,
    class_probability_name,
    prediction_name,
    probabilities_name,
)
from .fixtures import SEED, repository_params

__all__ = [
    "test_params_yaml_loads",
    "test_rows_generated_from_the_declaration_pass_its_validation",
    "test_the_declaration_loads_and_declares_features_and_a_label",
    "test_the_model_definition_trains_and_compiles_or_says_why_not",
    "test_the_server_answers_a_declared_row_over_v1_and_v2",
]


async def call(app: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request to an ASGI app, in process: its status and JSON body."""
    payload = b"" if body is None else json.dumps(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    sent: list[dict[str, Any]] = []
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            return {"type": "http.disconnect"}
        received = True
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(content) if content else None


def plain(value: Any) -> Any:
    """A JSON value of a frame's cell (missing: null)."""
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def test_params_yaml_loads() -> None:
    config = load_config(repository_params())
    assert config.root == repository_params().parent
    assert config.data.source, "params.yaml names a data source"


def test_the_declaration_loads_and_declares_features_and_a_label() -> None:
    declaration = load_declaration()
    assert declaration.features, "columns.yaml declares no feature"
    label = declaration.label
    assert label.task in TASKS
    if label.task == "binary":
        assert len(label.values) == 2 and label.positive in label.values
    elif label.task == "multiclass":
        assert len(label.values) >= 3 and label.positive is None
    else:
        assert label.values == () and label.positive is None
    assert [spec.name for spec in declaration.features] == list(FEATURE_NAMES)


def test_rows_generated_from_the_declaration_pass_its_validation(raw_frame: pd.DataFrame) -> None:
    report = validate_frame(raw_frame)
    assert report.passed, report.to_text()
    labels = raw_frame[LABEL.name]
    assert labels.notna().all(), "every generated row has a label"
    if LABEL.is_classification:
        # Every class, so that a model trained on them learns each one.
        assert set(labels.astype(str)) == set(LABEL.values)
    else:
        values = pd.to_numeric(labels, errors="raise").to_numpy(dtype=float)
        assert np.isfinite(values).all() and values.std() > 0
        low, high = LABEL.min_value, LABEL.max_value
        assert low is None or values.min() >= low
        assert high is None or values.max() <= high


def test_the_model_definition_trains_and_compiles_or_says_why_not(
    trained_project: Config,
) -> None:
    models = trained_project.paths.models_dir
    record = read_record(models)
    assert record.inference is not None, "model.json records which runtime serves the model"
    runtime = record.inference["runtime"]
    assert runtime in ("onnx", "sklearn")
    if runtime == "onnx":
        assert Path(models / "model.onnx").stat().st_size > 0
    else:
        assert record.inference.get("reason"), "a model kept on scikit-learn records why"


def test_the_server_answers_a_declared_row_over_v1_and_v2(
    trained_project: Config, raw_frame: pd.DataFrame
) -> None:
    served = ServedModel.load(trained_project.paths.models_dir)
    app = create_app(served)
    row = {name: plain(raw_frame[name].iloc[SEED]) for name in FEATURE_NAMES}
    datatypes = {tensor["name"]: tensor["datatype"] for tensor in served.schema.v2_metadata()}

    v1_path, v2_path = f"/v1/models/{served.name}:predict", f"/v2/models/{served.name}/infer"
    with asyncio.Runner() as runner:  # one event loop, as one server process has
        v1 = runner.run(call(app, "POST", v1_path, {"instances": [row]}))
        inputs = [
            {"name": name, "shape": [1], "datatype": datatypes[name], "data": [row[name]]}
            for name in FEATURE_NAMES
        ]
        v2 = runner.run(call(app, "POST", v2_path, {"inputs": inputs}))
    status, body = v1
    assert status == 200, body
    (prediction,) = body["predictions"]
    answer = as_outputs(prediction)
    assert set(answer) == set(OUTPUTS), prediction
    assert_an_answer_of_the_task(answer)

    status, body = v2
    assert status == 200, body
    assert body["model_name"] == served.name
    assert {output["name"]: output["data"] for output in body["outputs"]} == {
        name: [value] for name, value in answer.items()
    }, "v1 and v2 give the same answer for the same row"


def as_outputs(prediction: dict[str, Any]) -> dict[str, Any]:
    """A v1 prediction by the v2 outputs' names: a multi-class row's mapping {class:
    probability} becomes one output per class (serving/outputs.py)."""
    if LABEL.task != "multiclass":
        return dict(prediction)
    probabilities = prediction[probabilities_name(LABEL)]
    assert list(probabilities) == list(LABEL.classes), probabilities
    return {
        prediction_name(LABEL): prediction[prediction_name(LABEL)],
        **{class_probability_name(LABEL, value): p for value, p in probabilities.items()},
    }


def assert_an_answer_of_the_task(answer: dict[str, Any]) -> None:
    """Binary: a probability and a 0/1 class; multi-class: one of the classes and probabilities
    summing to 1; regression: a finite number."""
    if LABEL.task == "binary":
        assert 0.0 <= answer[PROBABILITY_NAME] <= 1.0 and answer[CLASS_OUTPUT] in (0, 1), answer
    elif LABEL.task == "multiclass":
        assert answer[prediction_name(LABEL)] in LABEL.classes, answer
        probabilities = [answer[class_probability_name(LABEL, c)] for c in LABEL.classes]
        assert all(0.0 <= p <= 1.0 for p in probabilities) and math.isclose(
            sum(probabilities), 1.0, abs_tol=1e-4
        ), answer
    else:
        value = answer[prediction_name(LABEL)]
        assert isinstance(value, float) and math.isfinite(value), answer
