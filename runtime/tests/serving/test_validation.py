"""serving/validation.py's own helpers and InputSchema on a schema of its own: the exact
messages a client reads in a 400, the columns handed to the model, the v2 metadata. Requests
through the server, against the trained model, are tests/serving/test_server.py's."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from mlops_stack_runtime.data.columns import ColumnSpec
from mlops_stack_runtime.serving.validation import (
    InputSchema,
    ParsedRequest,
    RequestError,
    shown,
    shown_names,
)

# One column of each kind the checks tell apart.
SPECS = (
    ColumnSpec("age", "int", "years", min_value=18, max_value=98),
    ColumnSpec("balance", "float", "in thousands", nullable=True, max_value=10.0),
    ColumnSpec("rate", "float", "percent", min_value=4.0),
    ColumnSpec("grade", "category", "a letter", categories=("a", "b", "c")),
    ColumnSpec("code", "category", "a coded answer", nullable=True, categories=("1", "2", "true")),
    ColumnSpec("note", "category", "free text"),
)
SCHEMA = InputSchema(SPECS)
OUTPUTS = ("score", "decision")
Change = Callable[[dict[str, Any]], Any]


def refusal(parse: Callable[[], ParsedRequest]) -> str:
    """The message of the 400 that `parse` raises."""
    with pytest.raises(RequestError) as raised:
        parse()
    assert raised.value.status == 400
    assert str(raised.value) == raised.value.message
    return raised.value.message


def v1_row(**values: Any) -> dict[str, Any]:
    """A valid v1 request of one row, with `values` in place of the example's."""
    return {"instances": [{**SCHEMA.example_record(), **values}]}


def v2_body(rows: int = 2) -> dict[str, Any]:
    """A valid v2 request of `rows` example rows, with the declared datatypes."""
    record = SCHEMA.example_record()
    return {
        "inputs": [
            {**item, "shape": [rows], "data": [record[item["name"]]] * rows}
            for item in SCHEMA.v2_metadata()
        ]
    }


def tensor(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(item for item in body["inputs"] if item["name"] == name)


def parse_v2(body: Any) -> ParsedRequest:
    return SCHEMA.parse_v2(body, outputs=OUTPUTS)


# --- how client text and names are shown -----------------------------------------------------


@pytest.mark.parametrize(
    ("count", "suffix"),
    [(1, ""), (20, ""), (21, " and 1 more"), (45, " and 25 more")],
)
def test_at_most_twenty_names_are_listed_then_how_many_more(count: int, suffix: str) -> None:
    names = [f"c{i}" for i in range(count)]
    listed = ", ".join(f'"{name}"' for name in names[:20])
    assert shown_names(names) == listed + suffix


def test_client_text_is_quoted_kept_readable_and_cut_after_sixty_characters() -> None:
    assert shown("x" * 60) == '"' + "x" * 60 + '"'
    assert shown("x" * 61) == '"' + "x" * 60 + '"... (61 characters)'
    assert shown('café "ü"\n') == '"café \\"ü\\"\\n"'


# --- the schema's own description: an example row, the v2 metadata ------------------------------


def test_the_example_record_is_mid_range_and_the_first_category() -> None:
    record = SCHEMA.example_record()
    assert record == {
        "age": 58,  # (18 + 98) / 2, a whole number for an int column
        "balance": 5.0,  # no minimum: from 0 to the maximum 10
        "rate": 4.5,  # no maximum: from the minimum 4 to 5
        "grade": "a",
        "code": "1",
        "note": "unknown",  # free text: any string
    }
    assert type(record["age"]) is int and type(record["rate"]) is float
    assert SCHEMA.parse_v1({"instances": [record]}).n_rows == 1


def test_v2_metadata_declares_one_tensor_of_any_length_per_feature() -> None:
    assert SCHEMA.v2_metadata() == [
        {"name": "age", "datatype": "INT64", "shape": [-1]},
        {"name": "balance", "datatype": "FP64", "shape": [-1]},
        {"name": "rate", "datatype": "FP64", "shape": [-1]},
        {"name": "grade", "datatype": "BYTES", "shape": [-1]},
        {"name": "code", "datatype": "BYTES", "shape": [-1]},
        {"name": "note", "datatype": "BYTES", "shape": [-1]},
    ]


# --- categories: what the model receives -------------------------------------------------------


def test_categories_reach_the_model_as_text_with_nan_for_a_missing_value() -> None:
    """Declared strings as they are; numbers and booleans as their text ("1", "true"); null and
    NaN as the NaN a missing category reads as from the training CSV. Always an object column."""
    parsed = SCHEMA.parse_v1(
        {
            "instances": [
                {**SCHEMA.example_record(), "code": code, "note": note}
                for code, note in [(1, "x"), (1.0, "y"), (True, "z"), (None, "é"), (math.nan, "")]
            ]
        }
    )
    code = parsed.columns["code"]
    assert code.dtype == object
    assert code[:3].tolist() == ["1", "1", "true"]
    assert all(type(value) is float and math.isnan(value) for value in code[3:])
    for name, values in [("grade", ["a"] * 5), ("note", ["x", "y", "z", "é", ""])]:
        assert parsed.columns[name].dtype == object
        assert parsed.columns[name].tolist() == values


def test_a_free_text_category_takes_numbers_as_their_text() -> None:
    parsed = SCHEMA.parse_v1(v1_row(note=7))
    assert parsed.columns["note"].dtype == object
    assert parsed.columns["note"].tolist() == ["7"]


# --- v1: the whole message of each refusal -----------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param(
            {"grade": "café"},
            'instances[0].grade: "café" is not one of a, b, c',
            id="undeclared-category",
        ),
        pytest.param(
            {"code": 3},
            'instances[0].code: "3" is not one of 1, 2, true',
            id="undeclared-code",
        ),
        pytest.param(
            {"grade": 10**400},  # past any float: compared as its text, never as a number
            f'instances[0].grade: "{"1" + "0" * 59}"... (401 characters) is not one of a, b, c',
            id="huge-number-as-category",
        ),
        pytest.param(
            {"grade": "\x00a"},
            'instances[0].grade: "\\u0000a" holds a NUL character',
            id="nul-in-declared-category",
        ),
        pytest.param(
            {"note": "a\x00b"},
            'instances[0].note: "a\\u0000b" holds a NUL character',
            id="nul-in-free-text",
        ),
        pytest.param(
            {"grade": None},
            "instances[0].grade: a value is required (null is not allowed)",
            id="null-category",
        ),
        pytest.param(
            {"grade": ["a"]},
            "instances[0].grade: expected a string, got a list",
            id="category-as-list",
        ),
        pytest.param(
            {"note": ["a"]},
            "instances[0].note: expected a string, got a list",
            id="free-text-as-list",
        ),
        pytest.param(
            {"note": {}},
            "instances[0].note: expected a string, got an object",
            id="free-text-as-object",
        ),
        pytest.param(
            {"age": True},
            "instances[0].age: expected a whole number, got a boolean (true)",
            id="int-as-boolean",
        ),
        pytest.param(
            {"rate": False},
            "instances[0].rate: expected a number, got a boolean (false)",
            id="float-as-boolean",
        ),
        pytest.param(
            {"age": "41"},
            'instances[0].age: expected a whole number, got a string ("41")',
            id="int-as-string",
        ),
        pytest.param(
            {"age": [41]},
            "instances[0].age: expected a whole number, got a list",
            id="int-as-list",
        ),
        pytest.param(
            {"rate": {"value": 4}},
            "instances[0].rate: expected a number, got an object",
            id="float-as-object",
        ),
    ],
)
def test_v1_refusals_name_the_row_the_feature_and_what_was_sent(
    values: dict[str, Any], message: str
) -> None:
    assert refusal(lambda: SCHEMA.parse_v1(v1_row(**values))) == message


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param(
            {"instances": None},
            "'instances' must be a non-empty list with one object per row, got null",
            id="instances-null",
        ),
        pytest.param(
            {"instances": {"age": 41}},
            "'instances' must be a non-empty list with one object per row, got an object",
            id="instances-object",
        ),
        pytest.param(
            {"instances": []},
            "'instances' must be a non-empty list with one object per row, got an empty list",
            id="instances-empty",
        ),
        pytest.param(
            {"id": 5},
            "'id' must be a string, got 5",
            id="id-number",
        ),
        pytest.param(
            {"id": 1.5},
            "'id' must be a string, got 1.5",
            id="id-float",
        ),
    ],
)
def test_v1_body_refusals_say_what_was_sent(fields: dict[str, Any], message: str) -> None:
    body = {**v1_row(), **fields}
    assert refusal(lambda: SCHEMA.parse_v1(body)) == message


# --- v2: the whole message of each refusal -----------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            lambda b: b.pop("inputs"),
            "missing field 'inputs': a list with one tensor per feature",
            id="no-inputs",
        ),
        pytest.param(
            lambda b: b.update(inputs=[]),
            "'inputs' must be a non-empty list with one tensor per feature",
            id="inputs-empty",
        ),
        pytest.param(
            lambda b: b.update(inputs={"age": [41]}),
            "'inputs' must be a non-empty list with one tensor per feature",
            id="inputs-object",
        ),
        pytest.param(
            lambda b: tensor(b, "rate").update(parameters={"binary_data_size": 16}),
            "input 'rate': binary tensor data is not supported; send the values in 'data' "
            "(kserve client: set_data_from_numpy(..., binary_data=False))",
            id="binary-data",
        ),
        pytest.param(
            lambda b: tensor(b, "age").update(datatype="BYTES"),
            "input 'age': datatype \"BYTES\" does not match the model's INT64",
            id="int-as-bytes",
        ),
        pytest.param(
            lambda b: tensor(b, "grade").update(datatype="FP64"),
            "input 'grade': datatype \"FP64\" does not match the model's BYTES",
            id="category-as-fp64",
        ),
        pytest.param(
            lambda b: tensor(b, "rate").update(datatype=64),
            "input 'rate': datatype 64 does not match the model's FP64",
            id="datatype-number",
        ),
        pytest.param(
            lambda b: tensor(b, "rate").update(datatype=None),
            "input 'rate': datatype null does not match the model's FP64",
            id="datatype-null",
        ),
        pytest.param(
            lambda b: tensor(b, "age").update(shape="2"),
            "input 'age': shape \"'2'\" is not [N] or [N, 1] with N >= 1 (one value per row)",
            id="shape-text",
        ),
        pytest.param(
            lambda b: tensor(b, "age").update(shape=[2, 2]),
            "input 'age': shape \"[2, 2]\" is not [N] or [N, 1] with N >= 1 (one value per row)",
            id="shape-2x2",
        ),
        pytest.param(
            lambda b: tensor(b, "age").update(data=5),
            "input 'age': 'data' must be a list, got 5",
            id="data-number",
        ),
        pytest.param(
            lambda b: tensor(b, "age").update(data="41"),
            "input 'age': 'data' must be a list, got a string (\"41\")",
            id="data-text",
        ),
        pytest.param(
            lambda b: tensor(b, "note").update(shape=[3], data=["x", "y", "z"]),
            "input 'note': shape [3] has 3 rows, but input 'age' has 2",
            id="rows-differ",
        ),
        pytest.param(
            lambda b: tensor(b, "grade")["data"].__setitem__(1, "d"),
            "input 'grade' data[1]: \"d\" is not one of a, b, c",
            id="undeclared-category",
        ),
        pytest.param(
            lambda b: b.update(outputs=[{"name": "score"}, {"name": "probability"}]),
            'unknown output "probability" (the model\'s outputs: score, decision)',
            id="unknown-output",
        ),
    ],
)
def test_v2_refusals_name_the_input_and_what_was_sent(change: Change, message: str) -> None:
    body = v2_body()
    change(body)
    assert refusal(lambda: parse_v2(body)) == message


@pytest.mark.parametrize(
    "outputs",
    [5, "score", {}, {"name": "score"}, ["score"], [{"name": 1}], [{"output": "score"}]],
    ids=["number", "text", "empty-object", "object", "names", "name-not-text", "no-name"],
)
def test_v2_outputs_must_be_a_list_of_named_objects(outputs: Any) -> None:
    body = {**v2_body(), "outputs": outputs}
    assert refusal(lambda: parse_v2(body)) == "'outputs' must be a list of objects with a 'name'"


def test_a_v2_body_that_is_not_an_object_is_refused_with_an_example() -> None:
    assert refusal(lambda: parse_v2([v2_body()])) == (
        'the request body must be a JSON object like {"inputs": [{"name", "datatype", '
        '"shape", "data"}, ...]}'
    )


def test_v2_returns_the_checked_columns_and_the_outputs_asked_for() -> None:
    body = {**v2_body(3), "id": "r-1", "outputs": [{"name": "decision"}]}
    tensor(body, "code").update(datatype="INT64", data=[2, None, 1])
    parsed = parse_v2(body)
    assert (parsed.n_rows, parsed.request_id, parsed.outputs) == (3, "r-1", ("decision",))
    assert parsed.columns["age"].dtype == np.int64
    assert parsed.columns["age"].tolist() == [58, 58, 58]
    assert parsed.columns["code"][[0, 2]].tolist() == ["2", "1"]
    assert math.isnan(parsed.columns["code"][1])
    assert parse_v2(v2_body()).outputs == ()


# --- columns a deployment ignores (params serving.ignore_columns) ------------------------------

IGNORING = InputSchema(SPECS, ignored=("applicant_id", "defaulted", "age"))


def test_ignored_columns_are_dropped_and_never_hide_a_feature() -> None:
    """A row as exported (an id and the label beside the features) is scored; `age`, a feature,
    cannot be ignored: it is still required and checked."""
    assert IGNORING.ignored == frozenset({"applicant_id", "defaulted"})
    row = {**SCHEMA.example_record(), "applicant_id": "A-17", "defaulted": "yes"}
    parsed = IGNORING.parse_v1({"instances": [row, row]})
    assert parsed.n_rows == 2 and set(parsed.columns) == {spec.name for spec in SPECS}
    without_age = {key: value for key, value in row.items() if key != "age"}
    assert refusal(lambda: IGNORING.parse_v1({"instances": [row, without_age]})) == (
        "instances[1]: missing feature 'age' (the model's features: age, balance, rate, "
        "grade, code, note)"
    )
    # Other extra columns are still refused, all of them at once, the ignored ones not listed.
    extra = {**row, "branch": 3, "channel": "web"}
    assert refusal(lambda: IGNORING.parse_v1({"instances": [extra]})) == (
        'instances[0]: unknown features "branch", "channel" (the model\'s features: age, '
        "balance, rate, grade, code, note)"
    )
    # Without the setting, the same row is refused naming the two columns.
    assert refusal(lambda: SCHEMA.parse_v1({"instances": [row]})).startswith(
        'instances[0]: unknown features "applicant_id", "defaulted"'
    )


def test_ignored_v2_inputs_are_dropped() -> None:
    body = v2_body(rows=2)
    body["inputs"].append(
        {"name": "defaulted", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}
    )
    parsed = IGNORING.parse_v2(body, outputs=OUTPUTS)
    assert set(parsed.columns) == {spec.name for spec in SPECS} and parsed.n_rows == 2
    body["inputs"].append({"name": "branch", "datatype": "INT64", "shape": [2], "data": [1, 2]})
    assert refusal(lambda: IGNORING.parse_v2(body, outputs=OUTPUTS)).startswith(
        'unknown input "branch" (the model\'s inputs: '
    )
