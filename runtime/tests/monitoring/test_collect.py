from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlops_stack_runtime.data.columns import (
    FEATURE_NAMES,
    LABEL,
)
from mlops_stack_runtime.data.csv_files import (
    read_table,
)
from mlops_stack_runtime.data.sample import (
    generate_sample,
)
from mlops_stack_runtime.errors import (
    BatchError,
)
from mlops_stack_runtime.monitoring.collect import (
    collect,
)
from mlops_stack_runtime.serving.outputs import (
    Outputs,
)


def request_line(endpoint: str = "v1_predict", status: int = 200, **extra: Any) -> str:
    """An access-log line as serving/logs.py writes it."""
    entry = {
        "time": "2030-01-01T00:00:00.000Z",
        "level": "info",
        "logger": "mlops_stack_runtime.serving.access",
        "event": "request",
        "method": "POST",
        "path": "/v1/models/m:predict",
        "endpoint": endpoint,
        "status": status,
        "latency_ms": 1.2,
        "model": "m",
        "model_version": "3",
        "rows": 2,
        **extra,
    }
    return json.dumps(entry)


def rows(n: int) -> list[dict[str, Any]]:
    frame = generate_sample(n_rows=n, seed=1)[list(FEATURE_NAMES)]
    return json.loads(frame.to_json(orient="records"))


def test_logged_inputs_in_either_shape_become_a_batch(tmp_path: Path) -> None:
    by_row = rows(2)
    by_column = {name: [row[name] for row in rows(3)] for name in FEATURE_NAMES}
    log = tmp_path / "server.log"
    log.write_text(
        "\n".join(
            [
                "uvicorn starting (not JSON)",
                request_line(features=by_row),
                request_line("v2_infer", features=by_column),
                request_line(status=400, features=by_row),  # refused: not a prediction
                request_line(),  # a prediction without its inputs
                request_line("v2_model_metadata"),
            ]
        )
    )
    collected = collect([log], tmp_path / "batch.csv")
    assert (collected.rows, collected.predictions, collected.without_features) == (5, 3, 1)
    batch = read_table(collected.path)
    assert list(batch.columns) == [*FEATURE_NAMES, "time", "model_version"]
    for name in FEATURE_NAMES:
        logged = pd.Series([row[name] for row in by_row] + by_column[name], name=name)
        pd.testing.assert_series_equal(batch[name], logged, check_dtype=False)
    assert set(batch["model_version"]) == {3}


def test_logs_without_inputs_are_explained(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("\n".join([request_line(), request_line()]))
    with pytest.raises(BatchError, match=r"2 successful prediction.* none with a 'features' field"):
        collect([log], tmp_path / "batch.csv")
    log.write_text(request_line("v2_health_ready"))
    with pytest.raises(BatchError, match="no successful prediction among 1 log line"):
        collect([log], tmp_path / "batch.csv")
    with pytest.raises(BatchError, match="no such log file"):
        collect([tmp_path / "absent.log"], tmp_path / "batch.csv")
    assert not (tmp_path / "batch.csv").exists()


def test_inputs_of_another_shape_are_refused(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(request_line(features=f"{FEATURE_NAMES[0]}=41"))
    with pytest.raises(BatchError, match="neither a list of rows nor a mapping"):
        collect([log], tmp_path / "batch.csv")


def test_a_batch_named_parquet_is_written_as_parquet(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(request_line(features=rows(4)))
    as_csv = read_table(collect([log], tmp_path / "batch.csv").path)
    path = collect([log], tmp_path / "batch.parquet").path
    assert path.read_bytes()[:4] == b"PAR1"
    as_parquet = read_table(path)
    assert list(as_parquet.columns) == list(as_csv.columns)
    for name in FEATURE_NAMES:
        pd.testing.assert_series_equal(as_parquet[name], as_csv[name], check_dtype=False)


def test_a_batch_of_another_format_is_refused_before_reading_the_logs(tmp_path: Path) -> None:
    with pytest.raises(BatchError, match=r"a batch is a \.csv or \.parquet file .*'\.json'"):
        collect([tmp_path / "absent.log"], tmp_path / "batch.json")
    assert not (tmp_path / "batch.json").exists()


def test_logged_answers_are_kept_beside_the_inputs(tmp_path: Path) -> None:
    # The server logs what it answered with the inputs (LOG_FEATURES): binary, the probability
    # and the class, as the v2 outputs name them.
    names = Outputs(LABEL).names
    answered = {names[0]: [0.25, 0.75], names[1]: [0, 1]}
    log = tmp_path / "server.log"
    log.write_text(
        "\n".join(
            [
                request_line(features=rows(2), outputs=answered),
                request_line(features=rows(1)),  # an older line, without the answers
            ]
        )
    )
    batch = read_table(collect([log], tmp_path / "batch.parquet").path)
    assert list(batch.columns) == [*FEATURE_NAMES, *names, "time", "model_version"]
    assert batch[names[0]].tolist()[:2] == [0.25, 0.75]
    assert batch[names[1]].tolist()[:2] == [0, 1]
    assert batch[names[0]].isna().tolist()[2]
