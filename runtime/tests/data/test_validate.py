from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from mlops_stack_runtime.data.csv_files import (
    read_frame,
)
from mlops_stack_runtime.data.prepare import (
    prepare,
)
from mlops_stack_runtime.data.validate import (
    validate,
)
from mlops_stack_runtime.errors import (
    DataValidationError,
)
from mlops_stack_runtime.testing.declared import (
    is_bounded,
    out_of_range,
    pick,
    range_check,
)

if TYPE_CHECKING:
    from mlops_stack_runtime.testing.fixtures import MakeProject


def test_good_data_is_split_into_train_and_test(make_project: MakeProject) -> None:
    config = make_project()
    prepare(config)
    report = validate(config)
    assert report.passed
    paths = config.paths
    train, test = pd.read_csv(paths.train_data), pd.read_csv(paths.test_data)
    assert len(train) + len(test) == config.data.n_rows
    assert len(test) == pytest.approx(config.data.test_size * config.data.n_rows, abs=1)
    assert json.loads(paths.validation_report.read_text())["passed"] is True


def test_bad_data_fails_with_a_report_and_no_split(make_project: MakeProject) -> None:
    config = make_project()
    paths = config.paths
    prepare(config)
    validate(config)  # a good run first: its splits must not survive a bad run
    spec = pick(is_bounded, "numeric feature with a min or a max")
    raw = read_frame(paths.raw_data)
    raw.loc[0, spec.name] = out_of_range(spec)
    raw.to_csv(paths.raw_data, index=False)

    with pytest.raises(
        DataValidationError, match=re.escape(f"{spec.name}: check {range_check(spec)}")
    ):
        validate(config)

    report = json.loads(paths.validation_report.read_text())
    assert report["passed"] is False
    assert [failure["column"] for failure in report["failures"]] == [spec.name]
    assert not paths.train_data.exists()
    assert not paths.test_data.exists()


def test_missing_raw_data_says_what_to_run(make_project: MakeProject) -> None:
    with pytest.raises(FileNotFoundError, match="run the earlier stages"):
        validate(make_project())


def test_the_split_of_params_is_the_one_made(make_project: MakeProject) -> None:
    """params `data.split` reaches the stage: a time split holds out the latest rows of a
    column only the raw data have; without that column it is named, and no stale split stays."""
    config = make_project({"data.split": {"kind": "time", "time_column": "received"}})
    paths = config.paths
    prepare(config)
    raw = read_frame(paths.raw_data)
    raw.assign(received=range(len(raw))).to_csv(paths.raw_data, index=False)
    validate(config)
    train, test = pd.read_csv(paths.train_data), pd.read_csv(paths.test_data)
    assert train["received"].max() < test["received"].min()
    assert len(test) == pytest.approx(config.data.test_size * len(raw), abs=1)

    raw.to_csv(paths.raw_data, index=False)
    with pytest.raises(
        DataValidationError, match=re.escape("data.split.time_column is 'received'")
    ):
        validate(config)
    assert not paths.train_data.exists() and not paths.test_data.exists()


def test_the_checks_before_training_are_reported(make_project: MakeProject) -> None:
    """The stage passes, and says what deserves a look: here an application id repeated over
    rows, which only a grouped split keeps on one side."""
    config = make_project()
    paths = config.paths
    prepare(config)
    raw = read_frame(paths.raw_data)
    raw.assign(application_id=[index // 3 for index in range(len(raw))]).to_csv(
        paths.raw_data, index=False
    )
    report = validate(config)
    assert report.passed
    (warning,) = report.warnings
    assert warning.startswith("application_id: rows repeat its values")
    assert warning.endswith(
        "set data.split to {kind: group, group_by: application_id} in params.yaml"
    )
    assert json.loads(paths.validation_report.read_text())["warnings"] == [warning]
    assert report.to_text().splitlines()[1:] == [
        "before trusting the model, look at:",
        f"  - {warning}",
    ]
