"""The model server over real HTTP: both KServe protocols, bad input, limits, logs and metrics."""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from mlops_stack_runtime.config import (
    Config,
)
from mlops_stack_runtime.data.columns import (
    FEATURE_NAMES,
    FEATURES,
    LABEL,
    ColumnSpec,
)
from mlops_stack_runtime.serving.app import (
    create_app,
)
from mlops_stack_runtime.serving.batching import (
    DEFAULT_OFFLOAD_ROWS,
)
from mlops_stack_runtime.serving.logs import (
    JsonFormatter,
)
from mlops_stack_runtime.serving.model import (
    ServedModel,
)
from mlops_stack_runtime.testing.declared import (
    Predicate,
    above_max,
    below_min,
    both,
    first_feature,
    is_category,
    is_float,
    is_int,
    is_nullable,
    is_required,
    missing_reason,
    pick,
    undeclared_code,
)

from .conftest import (
    TEST_MAX_BODY_BYTES,
    RunningServer,
    metric_value,
    plain,
    records,
    running,
    v2_inputs,
)

PROBABILITY = f"{LABEL.name}_probability"
# A name that is not a feature of this dataset, whatever columns.yaml declares.
UNDECLARED = next(
    name
    for name in (f"undeclared_{i}" for i in range(len(FEATURE_NAMES) + 1))
    if name not in FEATURE_NAMES
)

if TYPE_CHECKING:
    from mlops_stack_runtime.testing.fixtures import MakeProject
# A valid text of a category, for the junk requests.
CATEGORY_TEXT = next((spec.categories[0] for spec in FEATURES if spec.categories), "x")


def v1_path(server: RunningServer, name: str | None = None) -> str:
    return f"/v1/models/{name or server.model.name}:predict"


def v2_path(server: RunningServer, name: str | None = None) -> str:
    return f"/v2/models/{name or server.model.name}/infer"


def expected(served: ServedModel, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """In-process predictions of the same pipeline on the same rows."""
    return (
        served.pipeline.predict_proba(frame)[:, 1],
        served.pipeline.predict(frame),
    )


def assert_healthy(server: RunningServer) -> None:
    assert server.get("/v2/health/ready").status == 200


# --- health and metadata -------------------------------------------------------------------------
def test_liveness_and_readiness(server: RunningServer) -> None:
    assert server.get("/").json() == {"status": "alive"}
    assert server.get("/v2/health/live").json() == {"live": True}
    assert server.get("/v2/health/ready").json() == {"ready": True}
    name = server.model.name
    assert server.get(f"/v2/models/{name}/ready").json() == {"name": name, "ready": True}
    assert server.get(f"/v1/models/{name}").json() == {"name": name, "ready": True}
    assert server.get("/v1/models").json() == {"models": [name]}


def test_model_name_is_the_project_slug(server: RunningServer, trained_project: Config) -> None:
    assert server.model.name == trained_project.project.slug
    assert server.get("/v2").json()["name"] == trained_project.project.slug


def test_v2_metadata_describes_the_training_schema(server: RunningServer) -> None:
    metadata = server.get(f"/v2/models/{server.model.name}").json()
    datatypes = {"int": "INT64", "float": "FP64", "category": "BYTES"}
    assert metadata["name"] == server.model.name
    assert metadata["versions"] == [server.model.version]
    assert metadata["inputs"] == [
        {"name": spec.name, "datatype": datatypes[spec.kind], "shape": [-1]} for spec in FEATURES
    ]
    assert [output["name"] for output in metadata["outputs"]] == [PROBABILITY, "predicted_class"]


# --- inference -----------------------------------------------------------------------------------
def test_v1_predictions_match_the_model(server: RunningServer, test_rows: pd.DataFrame) -> None:
    if any(spec.nullable for spec in FEATURES):
        assert test_rows.isna().any().any(), "the rows should include missing values"
    reply = server.post_json(v1_path(server), {"instances": records(test_rows)})
    assert reply.status == 200, reply.body
    predictions = reply.json()["predictions"]
    probability, predicted = expected(server.model, test_rows)
    assert len(predictions) == len(test_rows)
    np.testing.assert_allclose([p[PROBABILITY] for p in predictions], probability, rtol=1e-12)
    assert [p["predicted_class"] for p in predictions] == predicted.tolist()


def test_the_server_runs_onnx_and_answers_as_scikit_learn_within_the_tolerance(
    server: RunningServer, test_rows: pd.DataFrame, trained_project: Config
) -> None:
    assert server.model.runtime == "onnx", "training accepted the ONNX model (models/model.json)"
    sklearn_model = ServedModel.load(trained_project.paths.models_dir, runtime="sklearn")
    probability, predicted = expected(sklearn_model, test_rows)
    tolerance = trained_project.onnx_tolerance
    v1 = server.post_json(v1_path(server), {"instances": records(test_rows)})
    predictions = v1.json()["predictions"]
    np.testing.assert_allclose([p[PROBABILITY] for p in predictions], probability, atol=tolerance)
    assert [p["predicted_class"] for p in predictions] == predicted.tolist()
    v2 = server.post_json(v2_path(server), {"inputs": v2_inputs(test_rows, server.model)})
    outputs = {output["name"]: output["data"] for output in v2.json()["outputs"]}
    np.testing.assert_allclose(outputs[PROBABILITY], probability, atol=tolerance)


def test_v2_predictions_match_the_model(server: RunningServer, test_rows: pd.DataFrame) -> None:
    payload = {"id": "req-1", "inputs": v2_inputs(test_rows, server.model)}
    reply = server.post_json(v2_path(server), payload)
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body["model_name"] == server.model.name
    assert body["model_version"] == server.model.version
    assert body["id"] == "req-1"
    outputs = {output["name"]: output for output in body["outputs"]}
    probability, predicted = expected(server.model, test_rows)
    assert outputs[PROBABILITY]["datatype"] == "FP64"
    assert outputs[PROBABILITY]["shape"] == [len(test_rows)]
    np.testing.assert_allclose(outputs[PROBABILITY]["data"], probability, rtol=1e-12)
    assert outputs["predicted_class"]["datatype"] == "INT64"
    assert outputs["predicted_class"]["data"] == predicted.tolist()


def test_v2_returns_only_the_requested_outputs(
    server: RunningServer, test_rows: pd.DataFrame
) -> None:
    payload = {
        "inputs": v2_inputs(test_rows.head(3), server.model),
        "outputs": [{"name": "predicted_class"}],
    }
    body = server.post_json(v2_path(server), payload).json()
    assert [output["name"] for output in body["outputs"]] == ["predicted_class"]
    assert body["id"]  # generated when the request has none


def test_v2_accepts_n_by_1_tensors(server: RunningServer, test_rows: pd.DataFrame) -> None:
    rows = test_rows.head(4)
    inputs = v2_inputs(rows, server.model)
    for tensor in inputs[::2]:  # half nested [[v], ...], half flat with shape [N, 1]
        tensor["data"] = [[value] for value in tensor["data"]]
        tensor["shape"] = [len(rows), 1]
    for tensor in inputs[1::2]:
        tensor["shape"] = [len(rows), 1]
    reply = server.post_json(v2_path(server), {"inputs": inputs})
    assert reply.status == 200, reply.body
    outputs = {output["name"]: output["data"] for output in reply.json()["outputs"]}
    np.testing.assert_allclose(outputs[PROBABILITY], expected(server.model, rows)[0], rtol=1e-12)


def test_missing_values_are_accepted_where_the_schema_allows_them(
    server: RunningServer, test_rows: pd.DataFrame
) -> None:
    pick(is_nullable, "nullable feature")
    nullable = [spec.name for spec in FEATURES if spec.nullable]
    frame = test_rows.head(2).copy()
    frame[nullable] = np.nan
    instances = records(frame)
    numeric = [spec.name for spec in FEATURES if spec.nullable and spec.kind != "category"]
    for name in numeric:
        instances[1][name] = math.nan  # written as NaN, which the server reads as missing
    reply = server.post_json(v1_path(server), {"instances": instances})
    assert reply.status == 200, reply.body
    got = [p[PROBABILITY] for p in reply.json()["predictions"]]
    np.testing.assert_allclose(got, expected(server.model, frame)[0], rtol=1e-12)


def test_concurrent_requests_each_get_their_own_predictions(
    server: RunningServer, test_rows: pd.DataFrame
) -> None:
    """Requests that share a micro-batch must not get each other's rows back."""
    chunks = [test_rows.iloc[i : i + 1 + i % 3] for i in range(0, 32)]

    def call(chunk: pd.DataFrame) -> list[float]:
        reply = server.post_json(v1_path(server), {"instances": records(chunk)})
        assert reply.status == 200, reply.body
        return [p[PROBABILITY] for p in reply.json()["predictions"]]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, chunks))
    for chunk, got in zip(chunks, results, strict=True):
        np.testing.assert_allclose(got, expected(server.model, chunk)[0], rtol=1e-12)


# --- bad input: 400 with a message that names the field ------------------------------------------
Change = Callable[[dict[str, Any]], Any]


def on(predicate: Predicate, what: str, make: Callable[[str], Change], id: str) -> Any:
    """A case `(change, field)` on the first feature of the kind: `make(name)` gives the change.

    Skipped, with the reason, when columns.yaml declares no such feature.
    """
    spec = first_feature(predicate)
    name = None if spec is None else spec.name
    return pytest.param(
        None if name is None else make(name),
        name,
        id=id,
        marks=pytest.mark.skipif(spec is None, reason=missing_reason(what)),
    )


def has_min(spec: ColumnSpec) -> bool:
    return spec.min_value is not None


def has_max(spec: ColumnSpec) -> bool:
    return spec.max_value is not None


def valid_instance(server: RunningServer) -> dict[str, Any]:
    return server.model.schema.example_record()


def v1_cases() -> list[Any]:
    """(change to a valid instance, the field the error must name)."""
    first = FEATURES[0].name
    category = first_feature(is_category)
    code = None if category is None else undeclared_code(category)
    int_min, int_max = first_feature(both(is_int, has_min)), first_feature(both(is_int, has_max))
    low = None if int_min is None else below_min(int_min)
    high = None if int_max is None else above_max(int_max)
    return [
        pytest.param(lambda r: r.pop(first), first, id="missing-feature"),
        pytest.param(lambda r: r.update({UNDECLARED: 1}), UNDECLARED, id="unknown-feature"),
        on(is_int, "int feature", lambda n: lambda r: r.update({n: "41"}), id="int-as-string"),
        on(is_int, "int feature", lambda n: lambda r: r.update({n: True}), id="int-as-boolean"),
        on(
            is_int,
            "int feature",
            lambda n: lambda r: r.update({n: r[n] + 0.5}),
            id="int-with-fraction",
        ),
        on(is_int, "int feature", lambda n: lambda r: r.update({n: [r[n]]}), id="int-as-list"),
        on(
            both(is_int, has_min),
            "int feature with a min",
            lambda n: lambda r: r.update({n: low}),
            id="below-min",
        ),
        on(
            both(is_int, has_max),
            "int feature with a max",
            lambda n: lambda r: r.update({n: high}),
            id="above-max",
        ),
        on(
            both(is_float, is_required),
            "non-nullable float feature",
            lambda n: lambda r: r.update({n: math.nan}),
            id="nan-not-allowed",
        ),
        on(
            both(is_float, is_required),
            "non-nullable float feature",
            lambda n: lambda r: r.update({n: None}),
            id="null-not-allowed",
        ),
        on(
            both(is_float, is_required),
            "non-nullable float feature",
            lambda n: lambda r: r.update({n: math.inf}),
            id="infinity",
        ),
        on(
            both(is_float, is_nullable),
            "nullable float feature",
            lambda n: lambda r: r.update({n: -math.inf}),
            id="inf-in-nullable",
        ),
        on(
            is_category,
            "category feature",
            lambda n: lambda r: r.update({n: "no-such"}),
            id="unknown-category",
        ),
        # A number is read as an integer code ("1"): refused when no category has that code.
        on(
            is_category,
            "category feature",
            lambda n: lambda r: r.update({n: code}),
            id="category-as-undeclared-number",
        ),
        on(
            is_category,
            "category feature",
            lambda n: lambda r: r.update({n: [r[n]]}),
            id="category-as-list",
        ),
        # The compiled model's marker of a missing category: no client text may pass for it.
        on(
            is_category,
            "category feature",
            lambda n: lambda r: r.update({n: "\x00missing"}),
            id="category-with-nul",
        ),
        on(
            both(is_category, is_required),
            "non-nullable category feature",
            lambda n: lambda r: r.update({n: None}),
            id="null-category",
        ),
    ]


@pytest.mark.parametrize(("change", "field"), v1_cases())
def test_v1_bad_instance_is_400_naming_the_field(
    server: RunningServer, change: Any, field: str
) -> None:
    instance = valid_instance(server)
    change(instance)
    reply = server.post_json(v1_path(server), {"instances": [valid_instance(server), instance]})
    assert reply.status == 400, reply.body
    message = reply.json()["error"]
    assert field in message
    assert "instances[1]" in message
    assert_healthy(server)


def test_v1_a_row_as_exported_is_one_400_naming_every_extra_and_missing_column(
    server: RunningServer,
) -> None:
    """An id, the label and the protected attribute beside the features, one feature renamed:
    every name in the one answer, so the caller fixes the row in one round trip."""
    instance = valid_instance(server)
    renamed = FEATURE_NAMES[-1]
    instance["row_id"] = 7
    instance["outcome"] = 1
    instance["group"] = "a"
    instance[f"{renamed}_v2"] = instance.pop(renamed)
    reply = server.post_json(v1_path(server), {"instances": [instance]})
    assert reply.status == 400, reply.body
    message = reply.json()["error"]
    assert message.startswith(
        f'instances[0]: unknown features "row_id", "outcome", "group", "{renamed}_v2"; '
        f"missing feature '{renamed}' (the model's features: "
    ), message

    many = {**valid_instance(server), **{f"extra_{i:02d}": i for i in range(25)}}
    reply = server.post_json(v1_path(server), {"instances": [many]})
    assert reply.status == 400, reply.body
    message = reply.json()["error"]
    assert '"extra_00"' in message and '"extra_19"' in message and "extra_20" not in message
    assert "and 5 more" in message
    assert_healthy(server)


def test_v2_every_unknown_input_is_named_in_one_400(server: RunningServer) -> None:
    payload = v2_payload(server)
    first = payload["inputs"][0]
    payload["inputs"] += [{**first, "name": "row_id"}, {**first, "name": "outcome"}]
    reply = server.post_json(v2_path(server), payload)
    assert reply.status == 400, reply.body
    assert reply.json()["error"].startswith('unknown inputs "row_id", "outcome" (the model')
    assert_healthy(server)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        pytest.param({}, "instances", id="no-instances"),
        pytest.param({"instances": []}, "instances", id="empty"),
        pytest.param({"instances": {FEATURE_NAMES[0]: 1}}, "instances", id="not-a-list"),
        pytest.param({"instances": [[1, 2, 3]]}, "instances[0]", id="row-as-list"),
        pytest.param({"instance": []}, "instance", id="typo"),
        pytest.param([1, 2], "JSON object", id="body-is-a-list"),
    ],
)
def test_v1_bad_shape_is_400(server: RunningServer, payload: Any, field: str) -> None:
    reply = server.post_json(v1_path(server), payload)
    assert reply.status == 400, reply.body
    assert field in reply.json()["error"]


def v2_payload(server: RunningServer, rows: int = 2) -> dict[str, Any]:
    frame = pd.DataFrame([valid_instance(server)] * rows)
    return {"inputs": v2_inputs(frame, server.model)}


def tensor(payload: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in payload["inputs"] if t["name"] == name)


def v2_cases() -> list[Any]:
    first, last = FEATURES[0].name, FEATURES[-1].name
    return [
        pytest.param(lambda p: p.pop("inputs"), "inputs", id="no-inputs"),
        pytest.param(lambda p: p.update(inputs={}), "inputs", id="inputs-not-a-list"),
        pytest.param(lambda p: p["inputs"].pop(0), first, id="missing-input"),
        pytest.param(
            lambda p: p["inputs"].append({**p["inputs"][0], "name": UNDECLARED}),
            UNDECLARED,
            id="unknown-input",
        ),
        pytest.param(lambda p: p["inputs"].append(p["inputs"][0]), first, id="duplicate-input"),
        pytest.param(lambda p: tensor(p, first).pop("datatype"), first, id="no-datatype"),
        pytest.param(lambda p: tensor(p, first).update(shape=[3]), first, id="shape-vs-data"),
        pytest.param(lambda p: tensor(p, first).update(shape=[2, 2]), first, id="shape-2x2"),
        pytest.param(lambda p: tensor(p, first).update(shape="2"), first, id="shape-not-a-list"),
        pytest.param(lambda p: tensor(p, first).update(data=5), first, id="data-not-a-list"),
        pytest.param(
            lambda p: tensor(p, last).update(shape=[3], data=[*tensor(p, last)["data"], None]),
            last,
            id="rows-differ",
        ),
        pytest.param(
            lambda p: tensor(p, first).update(parameters={"binary_data_size": 16}),
            first,
            id="binary-data",
        ),
        pytest.param(
            lambda p: p.update(outputs=[{"name": "no_such_output"}]),
            "no_such_output",
            id="unknown-output",
        ),
        # Integer datatypes are integer codes of a category; floats are not.
        on(
            is_category,
            "category feature",
            lambda n: lambda p: tensor(p, n).update(datatype="FP64"),
            id="category-fp64",
        ),
        on(
            is_int,
            "int feature",
            lambda n: lambda p: tensor(p, n).update(datatype="BYTES"),
            id="int-as-bytes",
        ),
        on(
            is_float,
            "float feature",
            lambda n: lambda p: tensor(p, n).update(datatype="BYTES"),
            id="float-as-bytes",
        ),
        on(
            is_int,
            "int feature",
            lambda n: lambda p: tensor(p, n)["data"].__setitem__(1, "x"),
            id="bad-value",
        ),
        on(
            both(is_float, is_required),
            "non-nullable float feature",
            lambda n: lambda p: tensor(p, n)["data"].__setitem__(0, math.nan),
            id="nan",
        ),
    ]


@pytest.mark.parametrize(("change", "field"), v2_cases())
def test_v2_bad_request_is_400_naming_the_field(
    server: RunningServer, change: Any, field: str
) -> None:
    payload = v2_payload(server)
    change(payload)
    reply = server.post_json(v2_path(server), payload)
    assert reply.status == 400, reply.body
    assert field in reply.json()["error"]
    assert_healthy(server)


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"not json", b'{"instances": [}', b'{"id": "\xff"}', b"[" * 5000 + b"]" * 5000],
    ids=["empty", "truncated", "text", "broken", "not-utf8", "deeply-nested"],
)
@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_malformed_json_is_400(server: RunningServer, body: bytes, protocol: str) -> None:
    path = v1_path(server) if protocol == "v1" else v2_path(server)
    reply = server.request("POST", path, body)
    assert reply.status == 400, reply.body
    assert "JSON" in reply.json()["error"]


def test_random_json_never_gets_a_5xx(server: RunningServer) -> None:
    """Seeded junk in every position of both request shapes: always a 4xx, never a crash."""
    generator = random.Random(1234)
    names = [*FEATURE_NAMES, "instances", "inputs", "name", "shape", "data", "datatype"]

    def junk(depth: int = 0) -> Any:
        choice = generator.randrange(9 if depth < 3 else 6)
        leaves: list[Any] = [
            None,
            generator.choice([True, False]),
            generator.randint(-(10**30), 10**30),
            generator.choice([0.5, -1e308, 1e308, 3.0]),
            generator.choice(["", "x", "INT64", "BYTES", "FP64", CATEGORY_TEXT]),
            generator.choice([0, 1, 2, -1]),
        ]
        if choice < 6:
            return leaves[choice]
        if choice < 8:
            return [junk(depth + 1) for _ in range(generator.randrange(4))]
        return {generator.choice(names): junk(depth + 1) for _ in range(generator.randrange(4))}

    base_v1 = {"instances": [valid_instance(server)]}
    base_v2 = v2_payload(server, rows=1)
    for _ in range(150):
        v1 = json.loads(json.dumps(base_v1))
        v1["instances"][0][generator.choice(FEATURE_NAMES)] = junk()
        v2 = json.loads(json.dumps(base_v2))
        target = generator.choice(v2["inputs"])
        target[generator.choice(["shape", "data", "datatype", "name"])] = junk()
        for path, payload in ((v1_path(server), v1), (v2_path(server), v2)):
            reply = server.post_json(path, payload)
            assert reply.status in (200, 400), (reply.status, reply.body, payload)
    assert_healthy(server)


# --- hostile text: encodings, lone surrogates, long or control characters ------------------------
SURROGATE = "\\ud800"  # a JSON escape of a lone UTF-16 surrogate, as a client may send it


def raw_v1(server: RunningServer, replace: tuple[str, str], extra: str = "") -> bytes:
    """The valid v1 body as text, with one piece replaced, so escapes reach the server as sent."""
    text = json.dumps({"instances": [valid_instance(server)]})
    assert replace[0] in text
    return (text.replace(replace[0], replace[1], 1)[:-1] + extra + "}").encode()


def surrogate_bodies(server: RunningServer) -> dict[str, tuple[str, bytes]]:
    first = json.dumps(FEATURES[0].name)
    v2 = json.dumps(v2_payload(server, rows=1))
    datatype = json.dumps(tensor(v2_payload(server, rows=1), FEATURES[0].name)["datatype"])
    outputs = ', "outputs": [{"name": "x' + SURROGATE + '"}]'
    bodies = {
        "v1 record key": (v1_path(server), raw_v1(server, (first, '"a' + SURROGATE + '"'))),
        "v1 id": (v1_path(server), raw_v1(server, ("}]", "}]"), ', "id": "' + SURROGATE + '"')),
        "v2 input name": (v2_path(server), v2.replace(first, '"' + SURROGATE + '"', 1).encode()),
        "v2 datatype": (v2_path(server), v2.replace(datatype, '"' + SURROGATE + '"', 1).encode()),
        "v2 output name": (v2_path(server), (v2[:-1] + outputs + "}").encode()),
        "v2 id": (v2_path(server), (v2[:-1] + ', "id": "' + SURROGATE + 'x"}').encode()),
    }
    category = first_feature(is_category)
    if category is not None:
        key = json.dumps(category.name)
        value = json.dumps(valid_instance(server)[category.name])
        hostile = (f"{key}: {value}", f'{key}: "{SURROGATE}"')
        bodies["v1 category value"] = (v1_path(server), raw_v1(server, hostile))
    return bodies


def test_lone_surrogates_are_400_and_every_request_is_logged(
    server: RunningServer, access_log: Callable[[str, int], list[logging.LogRecord]]
) -> None:
    bodies = surrogate_bodies(server)
    for where, (path, body) in bodies.items():
        reply = server.request("POST", path, body)
        assert reply.status == 400, (where, reply.status, reply.body)
        assert "surrogate" in reply.json()["error"], where
    for path in {path for path, _ in bodies.values()}:
        count = sum(1 for p, _ in bodies.values() if p == path)
        logged = access_log(path, count)
        assert [getattr(record, "status", None) for record in logged] == [400] * count
        for record in logged:
            json.loads(JsonFormatter().format(record))
    assert_healthy(server)


def test_a_utf8_byte_order_mark_and_a_form_content_type_are_read_as_json(
    server: RunningServer,
) -> None:
    body = json.dumps({"instances": [valid_instance(server)]}).encode()
    assert server.request("POST", v1_path(server), b"\xef\xbb\xbf" + body).status == 200
    form = {"Content-Type": "application/x-www-form-urlencoded"}  # what `curl -d` sends
    assert server.request("POST", v1_path(server), body, form).status == 200
    utf8 = {"Content-Type": "application/json; charset=UTF-8"}
    assert server.request("POST", v1_path(server), body, utf8).status == 200


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "utf-32-be"])
def test_utf16_and_utf32_bodies_are_415(server: RunningServer, encoding: str) -> None:
    body = json.dumps({"instances": [valid_instance(server)]}).encode(encoding)
    reply = server.request("POST", v1_path(server), body)
    assert reply.status == 415, reply.body
    assert "UTF-8" in reply.json()["error"]


def test_a_charset_other_than_utf8_is_415(server: RunningServer) -> None:
    body = json.dumps({"instances": [valid_instance(server)]})
    headers = {"Content-Type": "application/json; charset=latin-1"}
    reply = server.request("POST", v1_path(server), body, headers)
    assert reply.status == 415
    assert '"latin-1"' in reply.json()["error"]


def test_client_text_in_messages_is_escaped_and_cut_short(server: RunningServer) -> None:
    hostile = "x\n\t\u202e\x1b[31m" + "y" * 10_000
    instance = {**valid_instance(server), hostile: 1}
    reply = server.post_json(v1_path(server), {"instances": [instance]})
    assert reply.status == 400
    message = reply.json()["error"]
    assert "y" * 61 not in message, "the 10,000 characters are cut"
    assert len(message) < 400 + len(", ".join(FEATURE_NAMES)), message
    assert "\n" not in message and "\x1b" not in message and "\t" not in message
    assert "characters)" in message  # says that it was cut
    path = "/v1/models/" + "z" * 5000 + ":predict"
    reply = server.request("POST", path, json.dumps({"instances": [valid_instance(server)]}))
    assert reply.status == 404
    assert len(reply.json()["error"]) < 400


def test_a_v2_id_is_echoed_up_to_its_limit(server: RunningServer) -> None:
    payload = {**v2_payload(server, rows=1), "id": "é" * 256}
    reply = server.post_json(v2_path(server), payload)
    assert reply.status == 200
    assert reply.json()["id"] == "é" * 256
    reply = server.post_json(v2_path(server), {**payload, "id": "a" * 257})
    assert reply.status == 400
    assert "'id'" in reply.json()["error"] and "256" in reply.json()["error"]


def test_the_log_formatter_never_loses_a_line() -> None:
    record = logging.makeLogRecord({"name": "t", "levelname": "INFO", "msg": "event %s %s"})
    record.args = ("only-one",)  # a bad %-format
    record.__dict__.update(
        text="a\ud800b", big=10**40, mapping={1: "non-string key"}, nan=float("nan")
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["big"] == 10**40
    assert entry["text"] == "a\ud800b"
    assert entry["event"] == "event %s %s"


# --- limits and inference off the event loop ----------------------------------------------------
def test_more_rows_than_allowed_is_413_naming_the_limit(served_model: ServedModel) -> None:
    app = create_app(served_model, max_rows=3)
    with running(app, served_model) as limited:
        instance = valid_instance(limited)
        assert limited.post_json(v1_path(limited), {"instances": [instance] * 3}).status == 200
        reply = limited.post_json(v1_path(limited), {"instances": [instance] * 4})
        assert reply.status == 413
        assert "4 rows" in reply.json()["error"] and "limit of 3" in reply.json()["error"]
        reply = limited.post_json(v2_path(limited), v2_payload(limited, rows=4))
        assert reply.status == 413
        assert "MAX_ROWS" in reply.json()["error"]


class GatedModel(ServedModel):
    """The trained model, whose predictions wait until the test opens the gate."""

    gate: ClassVar[threading.Event] = threading.Event()

    def predict(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        assert self.gate.wait(60), "the test never opened the gate"
        return super().predict(columns)


def test_health_answers_while_a_prediction_runs(served_model: ServedModel) -> None:
    gated = GatedModel(**{f.name: getattr(served_model, f.name) for f in fields(served_model)})
    GatedModel.gate = threading.Event()
    with running(create_app(gated), gated) as server, ThreadPoolExecutor(1) as pool:
        # Large enough to be scored off the event loop; smaller batches run on it (milliseconds).
        body = {"instances": [valid_instance(server)] * DEFAULT_OFFLOAD_ROWS}
        pending = pool.submit(server.post_json, v1_path(server), body)
        try:
            time.sleep(0.2)  # the prediction is now waiting at the gate
            assert not pending.done()
            # Were the prediction on the event loop, these would wait for it (and time out).
            for path in ("/v2/health/live", "/v2/health/ready", "/"):
                assert server.request("GET", path, timeout=5).status == 200
        finally:
            GatedModel.gate.set()
        reply = pending.result(timeout=60)
    assert reply.status == 200
    assert len(reply.json()["predictions"]) == DEFAULT_OFFLOAD_ROWS


# --- other statuses ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/models/other-model:predict"),
        ("POST", "/v2/models/other-model/infer"),
        ("GET", "/v2/models/other-model"),
        ("GET", "/v2/models/other-model/ready"),
        ("GET", "/v1/models/other-model"),
    ],
)
def test_unknown_model_is_404(server: RunningServer, method: str, path: str) -> None:
    body = json.dumps({"instances": [valid_instance(server)]}) if method == "POST" else None
    reply = server.request(method, path, body)
    assert reply.status == 404
    assert "other-model" in reply.json()["error"]


def test_unknown_path_is_404_and_wrong_method_405(server: RunningServer) -> None:
    assert server.get("/v3/models").status == 404
    assert server.get(v2_path(server)).status == 405


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_limit_is_413(server: RunningServer, chunked: bool) -> None:
    instance = valid_instance(server)
    count = TEST_MAX_BODY_BYTES // len(json.dumps(instance)) + 10
    body = json.dumps({"instances": [instance] * count})
    assert len(body) > TEST_MAX_BODY_BYTES
    reply = server.request("POST", v1_path(server), body, chunked=chunked)
    assert reply.status == 413
    assert str(TEST_MAX_BODY_BYTES) in reply.json()["error"]
    assert_healthy(server)


# --- logs and metrics ----------------------------------------------------------------------------
def test_every_request_is_logged_with_model_version_latency_and_status(
    server: RunningServer, access_log: Callable[[str, int], list[logging.LogRecord]]
) -> None:
    server.post_json(v1_path(server), {"instances": [valid_instance(server)]})
    server.post_json(v1_path(server), {"instances": "nope"})
    logged = access_log(v1_path(server), 2)
    assert [getattr(r, "status", None) for r in logged] == [200, 400]
    line = JsonFormatter().format(logged[-1])
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["event"] == "request"
    assert entry["model"] == server.model.name
    assert entry["model_version"] == server.model.version
    assert entry["status"] == 400
    assert entry["latency_ms"] >= 0
    assert "instances" in entry["error"]
    assert "features" not in json.loads(JsonFormatter().format(logged[0])), "inputs: opt-in"


def test_inputs_are_logged_when_asked_for_drift_monitoring(
    served_model: ServedModel,
    test_rows: pd.DataFrame,
    access_log: Callable[[str, int], list[logging.LogRecord]],
) -> None:
    rows = test_rows.head(5)
    app = create_app(served_model, log_features=True)
    with running(app, served_model) as logging_server:
        reply = logging_server.post_json(v1_path(logging_server), {"instances": records(rows)})
        assert reply.status == 200
        (logged,) = access_log(v1_path(logging_server), 1)
    entry = json.loads(JsonFormatter().format(logged))
    assert entry["rows"] == len(rows)
    assert entry["features"] == {name: [plain(v) for v in rows[name]] for name in FEATURE_NAMES}


def test_metrics_count_requests_on_their_own_port(server: RunningServer) -> None:
    sample = 'inference_requests_total{endpoint="v1_predict",status="200"}'
    before = metric_value(server.scrape(), sample)
    server.post_json(v1_path(server), {"instances": [valid_instance(server)]})
    text = server.scrape()
    assert metric_value(text, sample) == before + 1
    assert "inference_request_duration_seconds_bucket" in text
    assert "inference_rows_total" in text
    # The model's port has no /metrics: it is a 404 like any unknown path.
    reply = server.get("/metrics")
    assert reply.status == 404
    assert reply.json() == {"error": 'not found: GET "/metrics"'}


def test_the_model_s_ignore_columns_reach_the_request_schema(
    copy_trained_project: MakeProject,
) -> None:
    """params `serving.ignore_columns` as the record holds them: the loaded model's schema drops
    those columns (a feature among them excepted); a record without them ignores none."""
    config = copy_trained_project()
    record_file = config.paths.models_dir / "model.json"
    assert ServedModel.load(config.paths.models_dir, runtime="sklearn").schema.ignored == set()
    record = json.loads(record_file.read_text())
    feature = record["feature_names"][0]
    record["params"].setdefault("serving", {})["ignore_columns"] = ["row_id", feature]
    record_file.write_text(json.dumps(record))
    served = ServedModel.load(config.paths.models_dir, runtime="sklearn")
    assert served.schema.ignored == {"row_id"}
