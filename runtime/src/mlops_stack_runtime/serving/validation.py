"""Request validation, derived from the column specs in data/columns.py.

The specs that build the training schema (types, nullability, ranges, categories) are read here
too, so a request is held to the same rules as the training data, and a column is declared once.
Checks run on plain lists and numpy arrays: at the sizes of a request this is much cheaper than a
DataFrame validator, and every error names the field and the row.

Two request shapes are accepted:
- KServe v1: ``{"instances": [{"<feature>": 41, "<category>": "a", ...}, ...]}``, one object
  per row;
- KServe v2 (Open Inference Protocol): ``{"inputs": [{"name": "<feature>", "datatype": "INT64",
  "shape": [2], "data": [41, 35]}, ...]}``, one tensor per feature, all with the same rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.columns import FEATURES, PROBABILITY_NAME, ColumnSpec, canonical_text
from .outputs import CLASS_OUTPUT as CLASS_OUTPUT
from .outputs import OUTPUTS as OUTPUTS

# The binary label's outputs (outputs.py names every task's): `<label>_probability` is the
# probability of the label's positive value (columns.yaml), `predicted_class` 1 where it is at
# least the threshold.
PROBABILITY_OUTPUT = PROBABILITY_NAME

# v2 datatypes declared for each kind of column, and the ones accepted from clients.
_INT_DATATYPES = frozenset(
    {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
)
_FLOAT_DATATYPES = frozenset({"FP16", "FP32", "FP64"})
DATATYPES: dict[str, str] = {"int": "INT64", "float": "FP64", "category": "BYTES"}
_ACCEPTED_DATATYPES: dict[str, frozenset[str]] = {
    "int": _INT_DATATYPES | _FLOAT_DATATYPES,  # 41.0 is a whole number; 41.5 is refused below
    "float": _INT_DATATYPES | _FLOAT_DATATYPES,
    # An integer-coded or true/false category may come as numbers; it is compared as text.
    "category": frozenset({"BYTES", "BOOL"}) | _INT_DATATYPES,
}
# Longest client text quoted back in an error message, and longest v2 request id echoed.
_SHOWN_CHARS = 60
# Names listed in one message (unknown columns of a row): the rest are counted.
_LISTED_NAMES = 20
MAX_ID_CHARS = 256
# Integers beyond this lose precision as floats; no real feature gets near it.
_MAX_EXACT_INT = 2**53
_NoneType = type(None)


class RequestError(ValueError):
    """A request the server refuses; ``status`` is the HTTP status, the message names the field."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ParsedRequest:
    """Validated model inputs: one array per feature, all with ``n_rows`` values."""

    columns: dict[str, np.ndarray]
    n_rows: int
    request_id: str | None = None
    # The v2 outputs asked for; empty: all of them.
    outputs: tuple[str, ...] = ()


Where = Callable[[int], str]


def _in_instances(name: str) -> Where:
    """Where row i of feature `name` is in a v1 request."""
    return lambda i: f"instances[{i}].{name}"


def _in_input(name: str) -> Where:
    """Where row i of feature `name` is in a v2 request."""
    return lambda i: f"input '{name}' data[{i}]"


def shown(text: str) -> str:
    """Client text as it is safe to put in a message or a log: quoted, escaped, cut short."""
    quoted = json.dumps(text[:_SHOWN_CHARS], ensure_ascii=False)
    return quoted if len(text) <= _SHOWN_CHARS else f"{quoted}... ({len(text)} characters)"


def shown_names(names: Sequence[str]) -> str:
    """Client names in one message, each as shown(): at most _LISTED_NAMES, then how many more."""
    listed = ", ".join(shown(name) for name in names[:_LISTED_NAMES])
    more = len(names) - _LISTED_NAMES
    return f"{listed} and {more} more" if more > 0 else listed


def _plural(word: str, count: int) -> str:
    return word if count == 1 else f"{word}s"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({shown(value)})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return repr(value)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _plainly_valid(spec: ColumnSpec, values: list[Any], kinds: set[type]) -> bool:
    """Whether every value is a present, finite, in-range number (a whole one for an int column),
    checked on the Python values: at request sizes numpy's per-call cost is the larger one. False
    sends the column through `_check_numeric`'s full checks, which name the offending row."""
    if not values or not kinds <= {int, float}:
        return False
    has_floats = float in kinds
    if has_floats and any(value != value for value in values):  # NaN
        return False
    low, high = min(values), max(values)
    # Infinity and integers past 2**53 (which lose precision as floats) fail this bound too.
    if low < -_MAX_EXACT_INT or high > _MAX_EXACT_INT:
        return False
    if spec.min_value is not None and low < spec.min_value:
        return False
    if spec.max_value is not None and high > spec.max_value:
        return False
    if spec.kind == "int" and has_floats:
        return all(value.is_integer() for value in values if type(value) is float)
    return True


def _check_numeric(spec: ColumnSpec, values: list[Any], where: Where) -> np.ndarray:
    kinds = set(map(type, values))
    if _plainly_valid(spec, values, kinds):
        array = np.array(values, dtype=np.float64)
        if spec.kind == "int" and not spec.nullable:
            return array.astype(np.int64)  # the dtype a CSV column of whole numbers reads as
        return array
    if not kinds <= {int, float, _NoneType}:
        index = next(i for i, v in enumerate(values) if type(v) not in (int, float, _NoneType))
        expected = "a whole number" if spec.kind == "int" else "a number"
        raise RequestError(f"{where(index)}: expected {expected}, got {_describe(values[index])}")
    try:
        array = np.array(values, dtype=np.float64)  # null -> NaN
    except OverflowError:
        index = next(i for i, v in enumerate(values) if type(v) is int and abs(v) > _MAX_EXACT_INT)
        raise RequestError(f"{where(index)}: {values[index]} is out of range") from None
    missing = np.isnan(array)
    if not spec.nullable and missing.any():
        index = _first(missing)
        shown = "null" if values[index] is None else "NaN"
        raise RequestError(f"{where(index)}: a value is required ({shown} is not allowed)")
    infinite = np.isinf(array)
    if infinite.any():
        index = _first(infinite)
        raise RequestError(f"{where(index)}: must be a finite number, got {values[index]}")
    # NaN compares False, so missing values pass the range and whole-number checks.
    if spec.min_value is not None and (array < spec.min_value).any():
        index = _first(array < spec.min_value)
        raise RequestError(
            f"{where(index)}: {values[index]} is below the minimum {spec.min_value:g}"
        )
    if spec.max_value is not None and (array > spec.max_value).any():
        index = _first(array > spec.max_value)
        raise RequestError(
            f"{where(index)}: {values[index]} is above the maximum {spec.max_value:g}"
        )
    if spec.kind == "int":
        fractional = (array != np.floor(array)) & ~missing
        if fractional.any():
            index = _first(fractional)
            raise RequestError(f"{where(index)}: expected a whole number, got {values[index]}")
        if (np.abs(array) > _MAX_EXACT_INT).any():
            index = _first(np.abs(array) > _MAX_EXACT_INT)
            raise RequestError(f"{where(index)}: {values[index]} is out of range")
        if not spec.nullable:
            return array.astype(np.int64)  # the dtype a CSV column of whole numbers reads as
    return array


def _check_category(spec: ColumnSpec, values: list[Any], where: Where) -> np.ndarray:
    allowed = frozenset(spec.categories)
    try:
        all_known = (
            set(values) <= allowed
            if allowed
            else all(type(v) is str and "\x00" not in v for v in values)
        )
    except TypeError:  # an unhashable value (list, object): reported below
        all_known = False
    if all_known:
        return np.array(values, dtype=object)
    out: list[Any] = list(values)
    for index, value in enumerate(values):
        if type(value) in (int, float, bool) and not (type(value) is float and math.isnan(value)):
            # An integer-coded category (1) or a true/false one: compared as its text ("1").
            value = out[index] = canonical_text(value)
        if type(value) is str:
            if "\x00" in value:
                # No category holds one, and the compiled model's inputs use it to mark a
                # missing value (serving/onnx_model.py MISSING_CATEGORY).
                raise RequestError(f"{where(index)}: {shown(value)} holds a NUL character")
            if allowed and value not in allowed:
                raise RequestError(
                    f"{where(index)}: {shown(value)} is not one of {', '.join(spec.categories)}"
                )
        elif value is None or (type(value) is float and math.isnan(value)):
            if not spec.nullable:
                raise RequestError(f"{where(index)}: a value is required (null is not allowed)")
            out[index] = np.nan  # how a missing category reads from the training CSV
        else:
            raise RequestError(f"{where(index)}: expected a string, got {_describe(value)}")
    return np.array(out, dtype=object)


def check_column(spec: ColumnSpec, values: list[Any], where: Where) -> np.ndarray:
    """Check one feature's values against its spec; return them as the model's input column."""
    if spec.kind == "category":
        return _check_category(spec, values, where)
    return _check_numeric(spec, values, where)


def check_rows(n_rows: int, max_rows: int | None) -> None:
    """413 for a request with more rows than the server takes in one call."""
    if max_rows is not None and n_rows > max_rows:
        raise RequestError(
            f"the request has {n_rows} rows, over the limit of {max_rows} per request "
            "(MAX_ROWS); split it into smaller requests",
            413,
        )


def _object(payload: Any, example: str) -> dict[str, Any]:
    if type(payload) is not dict:
        raise RequestError(f"the request body must be a JSON object like {example}")
    return payload


def _request_id(payload: dict[str, Any]) -> str | None:
    request_id = payload.get("id")
    if request_id is not None and type(request_id) is not str:
        raise RequestError(f"'id' must be a string, got {_describe(request_id)}")
    if request_id is not None and len(request_id) > MAX_ID_CHARS:
        # Echoed in the answer: refused rather than cut, so the client's id always matches.
        raise RequestError(f"'id' is {len(request_id)} characters long, over {MAX_ID_CHARS}")
    return request_id


class InputSchema:
    """The model's inputs as the server sees them, built from a sequence of column specs."""

    def __init__(
        self, features: Sequence[ColumnSpec] = FEATURES, ignored: Sequence[str] = ()
    ) -> None:
        self.features: tuple[ColumnSpec, ...] = tuple(features)
        self.names: tuple[str, ...] = tuple(spec.name for spec in self.features)
        self._by_name = {spec.name: spec for spec in self.features}
        self._name_set = frozenset(self.names)
        self._expected = ", ".join(self.names)
        # Columns a request may carry and the server drops (params `serving.ignore_columns`:
        # an id, the label, the protected attribute of rows sent as exported); a feature is
        # never one of them.
        self.ignored: frozenset[str] = frozenset(ignored) - self._name_set

    def v2_metadata(self) -> list[dict[str, Any]]:
        """The ``inputs`` of the v2 model metadata: one tensor of shape [-1] per feature."""
        return [
            {"name": spec.name, "datatype": DATATYPES[spec.kind], "shape": [-1]}
            for spec in self.features
        ]

    def example_record(self) -> dict[str, Any]:
        """A valid row: mid-range numbers, the first category of each categorical feature."""
        record: dict[str, Any] = {}
        for spec in self.features:
            if spec.kind == "category":
                record[spec.name] = spec.categories[0] if spec.categories else "unknown"
                continue
            low = spec.min_value if spec.min_value is not None else 0.0
            high = spec.max_value if spec.max_value is not None else low + 1.0
            middle = (low + high) / 2
            record[spec.name] = round(middle) if spec.kind == "int" else float(middle)
        return record

    # --- KServe v1 ----------------------------------------------------------------------------
    def parse_v1(self, payload: Any, max_rows: int | None = None) -> ParsedRequest:
        body = _object(payload, '{"instances": [{...one object per row...}]}')
        unknown = [key for key in body if key not in ("instances", "parameters", "id")]
        if unknown:
            raise RequestError(
                f"unknown field {shown(unknown[0])} in the request body (expected 'instances')"
            )
        if "instances" not in body:
            raise RequestError("missing field 'instances': a list with one object per row")
        instances = body["instances"]
        if type(instances) is not list or not instances:
            raise RequestError(
                "'instances' must be a non-empty list with one object per row, "
                f"got {_describe(instances) if type(instances) is not list else 'an empty list'}"
            )
        check_rows(len(instances), max_rows)
        names, name_set = self.names, self._name_set
        for index, record in enumerate(instances):
            if type(record) is not dict:
                raise RequestError(
                    f"instances[{index}] must be an object of feature values "
                    f"({self._expected}), got {_describe(record)}"
                )
            if record.keys() != name_set:
                # Every column the row has that the model lacks, and every one it lacks, in one
                # answer: a row as exported (an id, the label...) is fixed in one round trip.
                unknown = [key for key in record if key not in name_set and key not in self.ignored]
                missing = [name for name in names if name not in record]
                if not unknown and not missing:
                    continue  # only ignored columns besides the features
                problems = []
                if unknown:
                    problems.append(
                        f"unknown {_plural('feature', len(unknown))} {shown_names(unknown)}"
                    )
                if missing:
                    listed = ", ".join(f"'{name}'" for name in missing)
                    problems.append(f"missing {_plural('feature', len(missing))} {listed}")
                raise RequestError(
                    f"instances[{index}]: {'; '.join(problems)} "
                    f"(the model's features: {self._expected})"
                )
        columns = {
            spec.name: check_column(
                spec,
                [record[spec.name] for record in instances],
                _in_instances(spec.name),
            )
            for spec in self.features
        }
        return ParsedRequest(columns, len(instances), _request_id(body))

    # --- KServe v2 (Open Inference Protocol) ----------------------------------------------------
    def parse_v2(
        self,
        payload: Any,
        max_rows: int | None = None,
        outputs: Sequence[str] = tuple(OUTPUTS),
    ) -> ParsedRequest:
        """The checked inputs of a v2 request; `outputs` are the names it may ask for."""
        body = _object(payload, '{"inputs": [{"name", "datatype", "shape", "data"}, ...]}')
        inputs = body.get("inputs")
        if inputs is None:
            raise RequestError("missing field 'inputs': a list with one tensor per feature")
        if type(inputs) is not list or not inputs:
            raise RequestError("'inputs' must be a non-empty list with one tensor per feature")
        unknown = [
            tensor["name"]
            for tensor in inputs
            if type(tensor) is dict
            and type(tensor.get("name")) is str
            and tensor["name"] not in self._by_name
            and tensor["name"] not in self.ignored
        ]
        if unknown:  # all of them in one answer
            raise RequestError(
                f"unknown {_plural('input', len(unknown))} {shown_names(unknown)} "
                f"(the model's inputs: {self._expected})"
            )
        tensors: dict[str, dict[str, Any]] = {}
        for index, tensor in enumerate(inputs):
            if type(tensor) is not dict:
                raise RequestError(
                    f"inputs[{index}] must be an object with name, datatype, shape and data"
                )
            name = tensor.get("name")
            if type(name) is not str:
                raise RequestError(f"inputs[{index}]: missing 'name'")
            if name in tensors:
                raise RequestError(f"input '{name}' is given twice")
            for key in ("datatype", "shape", "data"):
                if key not in tensor:
                    raise RequestError(f"input '{name}': missing '{key}'")
            parameters = tensor.get("parameters")
            if type(parameters) is dict and "binary_data_size" in parameters:
                raise RequestError(
                    f"input '{name}': binary tensor data is not supported; send the values in "
                    "'data' (kserve client: set_data_from_numpy(..., binary_data=False))"
                )
            tensors[name] = tensor
        missing = [name for name in self.names if name not in tensors]
        if missing:
            raise RequestError(
                f"missing input '{missing[0]}' (the model's inputs: {self._expected})"
            )

        n_rows: int | None = None
        columns: dict[str, np.ndarray] = {}
        for spec in self.features:
            name = spec.name
            tensor = tensors[name]
            datatype = tensor["datatype"]
            if type(datatype) is not str or datatype not in _ACCEPTED_DATATYPES[spec.kind]:
                given = shown(datatype) if type(datatype) is str else _describe(datatype)
                raise RequestError(
                    f"input '{name}': datatype {given} does not match the model's "
                    f"{DATATYPES[spec.kind]}"
                )
            rows = self._rows(name, tensor["shape"])
            check_rows(rows, max_rows)
            data = self._flat_data(name, tensor["data"], rows)
            if n_rows is None:
                n_rows = rows
            elif rows != n_rows:
                raise RequestError(
                    f"input '{name}': shape {tensor['shape']} has {rows} rows, "
                    f"but input '{self.names[0]}' has {n_rows}"
                )
            columns[name] = check_column(spec, data, _in_input(name))
        requested = self._requested_outputs(body.get("outputs"), outputs)
        assert n_rows is not None
        return ParsedRequest(columns, n_rows, _request_id(body), requested)

    @staticmethod
    def _rows(name: str, shape: Any) -> int:
        valid = (
            type(shape) is list
            and len(shape) in (1, 2)
            and all(type(dim) is int for dim in shape)
            and shape[0] >= 1
            and (len(shape) == 1 or shape[1] == 1)
        )
        if not valid:
            raise RequestError(
                f"input '{name}': shape {shown(repr(shape))} is not [N] or [N, 1] with N >= 1 "
                "(one value per row)"
            )
        return shape[0]

    @staticmethod
    def _flat_data(name: str, data: Any, rows: int) -> list[Any]:
        if type(data) is not list:
            raise RequestError(f"input '{name}': 'data' must be a list, got {_describe(data)}")
        # Nested row-major data ([[41], [35]]) is allowed for shape [N, 1].
        if data and type(data[0]) is list:
            if not all(type(row) is list and len(row) == 1 for row in data):
                raise RequestError(
                    f"input '{name}': nested 'data' must hold one value per row, like [[41], [35]]"
                )
            data = [row[0] for row in data]
        if len(data) != rows:
            raise RequestError(
                f"input '{name}': shape says {rows} rows but 'data' has {len(data)} values"
            )
        return data

    @staticmethod
    def _requested_outputs(outputs: Any, available: Sequence[str]) -> tuple[str, ...]:
        if outputs is None:
            return ()
        if type(outputs) is not list or not all(
            type(item) is dict and type(item.get("name")) is str for item in outputs
        ):
            raise RequestError("'outputs' must be a list of objects with a 'name'")
        names = tuple(item["name"] for item in outputs)
        for name in names:
            if name not in available:
                raise RequestError(
                    f"unknown output {shown(name)} (the model's outputs: {', '.join(available)})"
                )
        return names
