"""The server for every task: a multi-class (iris, text classes) and a regression (diabetes) model
answer v1 and v2 with the outputs named from their label, over real HTTP and once from the real
server process; scikit-learn and ONNX Runtime give the same answers; a model that does not fit
the declared task is refused before serving.

The binary case is the rest of this folder's tests (the credit example's declaration).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_stack_runtime.data.columns import LabelSpec
from mlops_stack_runtime.data.csv_files import read_table
from mlops_stack_runtime.errors import ArtifactIntegrityError
from mlops_stack_runtime.monitoring.collect import collect
from mlops_stack_runtime.serving.app import create_app
from mlops_stack_runtime.serving.batching import MicroBatcher
from mlops_stack_runtime.serving.logs import JsonFormatter
from mlops_stack_runtime.serving.model import ServedModel
from mlops_stack_runtime.serving.validation import InputSchema

from . import task_models
from .conftest import (
    START_TIMEOUT,
    RunningServer,
    command_line,
    free_port,
    running,
    server_env,
    wait_ready,
)
from .task_models import TaskData

TASKS = {"multiclass": task_models.iris, "regression": task_models.diabetes}
RUNTIMES = ("sklearn", "onnx")
ROWS = 12


@pytest.fixture(scope="module", params=list(TASKS))
def task(request: pytest.FixtureRequest) -> TaskData:
    return TASKS[request.param]()


@pytest.fixture(scope="module")
def fitted(task: TaskData) -> Any:
    return task_models.fit(task)


@pytest.fixture(scope="module")
def model_dir(task: TaskData, fitted: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp(f"{task.label.task}-model")
    return task_models.write_model_dir(
        folder, fitted, task, task_models.to_onnx_bytes(fitted, task)
    )


def load(model_dir: Path, task: TaskData, runtime: str) -> ServedModel:
    return ServedModel.load(
        model_dir, InputSchema(task.declaration.features), runtime=runtime, label=task.label
    )


@pytest.fixture(scope="module", params=RUNTIMES)
def served(request: pytest.FixtureRequest, model_dir: Path, task: TaskData) -> ServedModel:
    return load(model_dir, task, request.param)


@pytest.fixture(scope="module")
def server(served: ServedModel) -> Iterator[RunningServer]:
    with running(create_app(served), served) as running_server:
        yield running_server


def rows(task: TaskData) -> pd.DataFrame:
    return task.features(task.test).head(ROWS)


def v1_body(frame: pd.DataFrame) -> dict[str, Any]:
    return {"instances": frame.to_dict("records")}


def v2_body(frame: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    inputs = [
        {"name": name, "datatype": "FP64", "shape": [len(frame)], "data": frame[name].tolist()}
        for name in frame.columns
    ]
    return {"inputs": inputs, **extra}


def tolerance(served: ServedModel) -> float:
    # ONNX Runtime computes in float32.
    return 1e-4 if served.runtime == "onnx" else 1e-12


def test_v1_answers_the_tasks_outputs_named_from_the_label(
    server: RunningServer, task: TaskData, fitted: Any
) -> None:
    frame = rows(task)
    reply = server.post_json(f"/v1/models/{server.model.name}:predict", v1_body(frame))
    assert reply.status == 200, reply.body
    predictions = reply.json()["predictions"]
    assert len(predictions) == len(frame)
    label = task.label
    wanted = task_models.expected(fitted, task, frame)
    if label.task == "regression":
        assert all(set(p) == {f"predicted_{label.name}"} for p in predictions)
        values = [p[f"predicted_{label.name}"] for p in predictions]
        np.testing.assert_allclose(values, wanted, rtol=tolerance(server.model))
        return
    for prediction, probabilities in zip(predictions, wanted, strict=True):
        assert set(prediction) == {f"predicted_{label.name}", f"{label.name}_probabilities"}
        mapping = prediction[f"{label.name}_probabilities"]
        assert list(mapping) == list(label.classes)
        np.testing.assert_allclose(
            list(mapping.values()), probabilities, atol=tolerance(server.model)
        )
        # The class, as its text: the most probable one.
        assert prediction[f"predicted_{label.name}"] == label.classes[int(np.argmax(probabilities))]
    # Real rows of three species: the answers are not all one class.
    assert len({p[f"predicted_{label.name}"] for p in predictions}) > 1


def test_v2_answers_the_same_as_v1_with_typed_outputs_and_metadata(
    server: RunningServer, task: TaskData
) -> None:
    frame = rows(task)
    name, label = server.model.name, task.label
    v1 = server.post_json(f"/v1/models/{name}:predict", v1_body(frame)).json()["predictions"]
    reply = server.post_json(f"/v2/models/{name}/infer", v2_body(frame, id="row-check"))
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body["id"] == "row-check"
    outputs = {output["name"]: output for output in body["outputs"]}
    predicted = f"predicted_{label.name}"
    assert all(output["shape"] == [len(frame)] for output in outputs.values())
    if label.task == "regression":
        assert list(outputs) == [predicted]
        assert outputs[predicted]["datatype"] == "FP64"
        assert outputs[predicted]["data"] == [p[predicted] for p in v1]
    else:
        per_class = [f"{label.name}_probability_{value}" for value in label.classes]
        assert list(outputs) == [predicted, *per_class]
        assert outputs[predicted]["datatype"] == "BYTES"
        assert outputs[predicted]["data"] == [p[predicted] for p in v1]
        for value, output_name in zip(label.classes, per_class, strict=True):
            assert outputs[output_name]["datatype"] == "FP64"
            wanted = [p[f"{label.name}_probabilities"][value] for p in v1]
            assert outputs[output_name]["data"] == wanted
    metadata = server.get(f"/v2/models/{name}").json()
    assert metadata["outputs"] == [
        {"name": n, "datatype": o["datatype"], "shape": [-1]} for n, o in outputs.items()
    ]
    assert [i["name"] for i in metadata["inputs"]] == task.feature_names


def test_v2_returns_the_requested_outputs_and_refuses_unknown_ones(
    server: RunningServer, task: TaskData
) -> None:
    frame, name = rows(task), server.model.name
    predicted = f"predicted_{task.label.name}"
    reply = server.post_json(
        f"/v2/models/{name}/infer", v2_body(frame, outputs=[{"name": predicted}])
    )
    assert [output["name"] for output in reply.json()["outputs"]] == [predicted]
    # The binary output's name is not this model's.
    reply = server.post_json(
        f"/v2/models/{name}/infer", v2_body(frame, outputs=[{"name": "predicted_class"}])
    )
    assert reply.status == 400
    assert "unknown output" in reply.json()["error"]
    assert predicted in reply.json()["error"]


def test_malformed_requests_are_still_refused_naming_the_field(
    server: RunningServer, task: TaskData
) -> None:
    frame, name = rows(task), server.model.name
    first = task.feature_names[0]
    missing = v1_body(frame.drop(columns=[first]))
    reply = server.post_json(f"/v1/models/{name}:predict", missing)
    assert reply.status == 400
    assert f"missing feature '{first}'" in reply.json()["error"]
    wrong = v1_body(frame)
    wrong["instances"][1][first] = "tall"
    reply = server.post_json(f"/v1/models/{name}:predict", wrong)
    assert reply.status == 400
    assert f"instances[1].{first}" in reply.json()["error"]
    reply = server.request("POST", f"/v2/models/{name}/infer", "{not json")
    assert reply.status == 400


def test_logged_answers_are_collected_as_the_tasks_columns(
    served: ServedModel,
    task: TaskData,
    access_log: Callable[[str, int], list[logging.LogRecord]],
    tmp_path: Path,
) -> None:
    frame = rows(task)
    with running(create_app(served, log_features=True), served) as logging_server:
        path = f"/v1/models/{served.name}:predict"
        reply = logging_server.post_json(path, v1_body(frame))
        assert reply.status == 200, reply.body
        (logged,) = access_log(path, 1)
    line = JsonFormatter().format(logged)
    entry = json.loads(line)
    predicted = f"predicted_{task.label.name}"
    answers = reply.json()["predictions"]
    assert entry["outputs"][predicted] == [p[predicted] for p in answers]
    log = tmp_path / "server.log"
    log.write_text(line + "\n", encoding="utf-8")

    collected = collect([log], tmp_path / "batch.csv", task.declaration)

    batch = read_table(collected.path)
    names = list(served.outputs.names)
    assert list(batch.columns) == [*task.feature_names, *names, "time", "model_version"]
    assert batch[predicted].tolist() == [p[predicted] for p in answers]
    if task.label.task == "multiclass":
        for value in task.label.classes:
            wanted = [p[f"{task.label.name}_probabilities"][value] for p in answers]
            column = batch[f"{task.label.name}_probability_{value}"]
            np.testing.assert_allclose(column, wanted, rtol=1e-12)


def test_onnx_runtime_and_scikit_learn_agree(model_dir: Path, task: TaskData) -> None:
    sklearn, onnx = (load(model_dir, task, runtime) for runtime in RUNTIMES)
    assert (sklearn.runtime, onnx.runtime) == RUNTIMES
    frame = task.features(task.test)
    columns = {name: frame[name].to_numpy() for name in task.feature_names}
    onnx_scores, onnx_decision = onnx.predict(columns)
    sklearn_scores, sklearn_decision = sklearn.predict(columns)
    assert onnx_scores.shape == sklearn_scores.shape
    if task.label.task == "regression":
        np.testing.assert_allclose(onnx_scores, sklearn_scores, rtol=1e-5, atol=1e-3)
    else:
        assert onnx_scores.shape == (len(frame), len(task.label.classes))
        np.testing.assert_allclose(onnx_scores, sklearn_scores, atol=1e-5)
        np.testing.assert_array_equal(onnx_decision, sklearn_decision)


def test_the_micro_batcher_splits_each_tasks_scores_by_request(
    served: ServedModel, task: TaskData
) -> None:
    frame = task.features(task.test)
    parts = [frame.iloc[:3], frame.iloc[3:10], frame.iloc[10:11]]

    def columns(part: pd.DataFrame) -> dict[str, np.ndarray]:
        return {name: part[name].to_numpy() for name in task.feature_names}

    async def together() -> list[tuple[np.ndarray, np.ndarray]]:
        batcher = MicroBatcher(served.predict)
        try:
            return await asyncio.gather(*(batcher.predict(columns(p), len(p)) for p in parts))
        finally:
            await batcher.close()

    answers = asyncio.run(together())
    for part, (scores, decision) in zip(parts, answers, strict=True):
        alone_scores, alone_decision = served.predict(columns(part))
        assert scores.shape == alone_scores.shape
        # ONNX Runtime's float32 sums may differ in the last bits between batch sizes.
        np.testing.assert_allclose(scores, alone_scores, atol=tolerance(served))
        np.testing.assert_array_equal(decision, alone_decision)


def test_a_model_that_does_not_fit_the_declared_task_is_refused(
    model_dir: Path, task: TaskData, tmp_path: Path
) -> None:
    other = task_models.diabetes() if task.label.task == "multiclass" else task_models.iris()
    for runtime in RUNTIMES:
        # This task's model, declared as the other task's label (its own features).
        with pytest.raises(ArtifactIntegrityError) as refused:
            ServedModel.load(
                model_dir,
                InputSchema(task.declaration.features),
                runtime=runtime,
                label=other.label,
            )
        assert f"'{other.label.name}'" in str(refused.value)
    # A binary label for a three-class model, or for a regressor: refused too.
    binary = LabelSpec(task.label.name, "two values", ("no", "yes"), "yes", "binary")
    with pytest.raises(ArtifactIntegrityError, match="not a binary classifier"):
        ServedModel.load(
            model_dir, InputSchema(task.declaration.features), runtime="sklearn", label=binary
        )


def test_a_multiclass_label_refuses_a_model_with_more_classes_than_it_declares(
    tmp_path: Path,
) -> None:
    iris = task_models.iris()
    fitted = task_models.fit(iris)
    schema = InputSchema(iris.declaration.features)
    # Class indices 0..2 fit the label's three classes; a model that learnt index 3 does not.
    fitted.steps[-1][1].classes_ = np.array([0, 1, 3])
    folder = task_models.write_model_dir(tmp_path / "model", fitted, iris)
    with pytest.raises(ArtifactIntegrityError, match="class indices of 'species'"):
        ServedModel.load(folder, schema, label=iris.label)
    # A fourth class in the declaration makes index 3 one of its classes.
    four = replace(iris.label, values=(*iris.label.values, "hybrid"))
    assert ServedModel.load(folder, schema, label=four).label == four


def test_the_server_process_serves_a_multiclass_model_declared_in_columns_file(
    tmp_path: Path,
) -> None:
    iris = task_models.iris()
    fitted = task_models.fit(iris)
    folder = task_models.write_model_dir(
        tmp_path / "model", fitted, iris, task_models.to_onnx_bytes(fitted, iris)
    )
    declaration = task_models.write_declaration(iris, tmp_path / "columns.yaml")
    port = free_port()
    process = subprocess.Popen(
        [*command_line("-m", SERVING_MODULE, "--port", str(port)), "--model-dir", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=server_env(COLUMNS_FILE=str(declaration)),
    )
    frame = rows(iris)
    try:
        wait_ready(process, port)
        name = "multiclass-model"
        answers = {}
        for path, body in (
            (f"/v1/models/{name}:predict", v1_body(frame)),
            (f"/v2/models/{name}/infer", v2_body(frame)),
        ):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=START_TIMEOUT)
            connection.request("POST", path, json.dumps(body))
            response = connection.getresponse()
            answers[path] = (response.status, json.loads(response.read()))
            connection.close()
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    (v1_status, v1), (v2_status, v2) = answers.values()
    assert (v1_status, v2_status) == (200, 200), answers
    wanted = [
        iris.label.classes[i] for i in np.argmax(task_models.expected(fitted, iris, frame), axis=1)
    ]
    assert [p["predicted_species"] for p in v1["predictions"]] == wanted
    outputs = {output["name"]: output["data"] for output in v2["outputs"]}
    assert outputs["predicted_species"] == wanted
    assert set(outputs) == {"predicted_species"} | {
        f"species_probability_{value}" for value in iris.label.classes
    }
    assert '"runtime": "onnx"' in output or '"runtime":"onnx"' in output


SERVING_MODULE = ServedModel.__module__.rpartition(".")[0]
