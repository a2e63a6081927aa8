"""`collect`: turn the model server's JSON request logs into a batch of current data.

The server writes one JSON object per line (serving/logs.py). A line of a successful prediction
(`event` "request", `endpoint` v1_predict or v2_infer, `status` 200) that carries the request's
inputs in a `features` field becomes rows of the batch; `features` holds either one object per
row (`[{"<feature>": 41, ...}, ...]`) or one list per input (`{"<feature>": [41, 35], ...}`).
The batch keeps the line's `time` and `model_version` beside the inputs, and what the server
answered when the line holds it (`outputs`, one list per output of the label's task: binary
`<label>_probability` and `predicted_class`; multi-class `predicted_<label>` and
`<label>_probability_<class>`; regression `predicted_<label>`; serving/outputs.py), as columns
of those names. Lines without `features` are counted: a server that does not log its inputs
cannot be monitored from its logs, and `collect` says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..data.columns import DECLARATION, Declaration
from ..data.csv_files import check_table_suffix, write_table
from ..errors import BatchError
from ..serving.outputs import Outputs

FEATURES_FIELD = "features"
OUTPUTS_FIELD = "outputs"
PREDICTION_ENDPOINTS = frozenset({"v1_predict", "v2_infer"})
CONTEXT_FIELDS = ("time", "model_version")


@dataclass(frozen=True)
class Collected:
    path: Path
    rows: int
    lines: int
    predictions: int
    without_features: int


def collect(
    logs: Iterable[Path], output: Path, declaration: Declaration | None = None
) -> Collected:
    """Write the inputs (and answers) logged by successful predictions in `logs` to `output`
    (CSV or Parquet); the columns are `declaration`'s (data/columns.yaml by default)."""
    declaration = declaration or DECLARATION
    features = list(declaration.feature_names)
    # The label's outputs, in the order the batch's columns give them.
    output_names = Outputs(declaration.label).names
    check_table_suffix(output)
    lines = predictions = without_features = 0
    frames: list[pd.DataFrame] = []
    for entry in _entries(logs):
        lines += 1
        if not _is_prediction(entry):
            continue
        predictions += 1
        if FEATURES_FIELD not in entry:
            without_features += 1
            continue
        frame = _rows(entry[FEATURES_FIELD], entry, features)
        answered = entry.get(OUTPUTS_FIELD)
        if isinstance(answered, dict):
            for name in output_names:
                values = answered.get(name)
                if isinstance(values, list) and len(values) == len(frame):
                    frame[name] = values
        for name in CONTEXT_FIELDS:
            frame[name] = entry.get(name)
        frames.append(frame)
    if not frames:
        detail = (
            f"{predictions} successful prediction(s) in {lines} log line(s), none with a "
            f"'{FEATURES_FIELD}' field: the server must log each request's inputs"
            if predictions
            else f"no successful prediction among {lines} log line(s)"
        )
        raise BatchError(f"nothing to collect: {detail}")
    batch = pd.concat(frames, ignore_index=True)
    outputs = [name for name in output_names if name in batch.columns]
    write_table(batch[[*features, *outputs, *CONTEXT_FIELDS]], output)
    return Collected(output, len(batch), lines, predictions, without_features)


def _entries(logs: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Every JSON object of the files, one per line; other lines (plain text) are skipped."""
    for path in logs:
        if not path.is_file():
            raise BatchError(f"{path}: no such log file")
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    yield entry


def _is_prediction(entry: Mapping[str, Any]) -> bool:
    return (
        entry.get("event") == "request"
        and entry.get("endpoint") in PREDICTION_ENDPOINTS
        and entry.get("status") == 200
    )


def _rows(features: Any, entry: Mapping[str, Any], names: list[str]) -> pd.DataFrame:
    try:
        if isinstance(features, list):
            frame = pd.DataFrame.from_records(features)
        elif isinstance(features, dict):
            frame = pd.DataFrame(features)
        else:
            raise TypeError(f"'{FEATURES_FIELD}' is a {type(features).__name__}")
    except (TypeError, ValueError) as error:
        raise BatchError(
            f"log line of {entry.get('time', 'unknown time')}: '{FEATURES_FIELD}' is neither a "
            f"list of rows nor a mapping of equal-length columns ({error})"
        ) from error
    return frame.reindex(columns=names)
