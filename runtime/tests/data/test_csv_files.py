from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import pytest

from mlops_stack_runtime.data.csv_files import (
    read_table,
    write_table,
)
from mlops_stack_runtime.data.sample import (
    generate_sample,
)
from mlops_stack_runtime.errors import (
    BatchError,
)

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".PQ"])
def test_a_table_reads_back_as_written_with_the_declared_types(tmp_path: Path, suffix: str) -> None:
    frame = generate_sample(n_rows=50, seed=2)
    path = write_table(frame, tmp_path / "nested" / f"batch{suffix}")
    assert path.is_file()
    assert (path.read_bytes()[:4] == b"PAR1") is (suffix != ".csv")
    pd.testing.assert_frame_equal(read_table(path), frame, check_dtype=False)


@pytest.mark.parametrize("name", ["batch.txt", "batch", "batch.csv.gz"])
def test_other_formats_are_refused_and_nothing_is_written(tmp_path: Path, name: str) -> None:
    frame = generate_sample(n_rows=5, seed=2)
    with pytest.raises(BatchError, match=r"a batch is a \.csv or \.parquet file"):
        write_table(frame, tmp_path / name)
    with pytest.raises(BatchError, match=r"a batch is a \.csv or \.parquet file"):
        read_table(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_a_frame_parquet_cannot_hold_leaves_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "batch.parquet"
    previous = write_table(generate_sample(n_rows=5, seed=2), path).read_bytes()
    mixed = pd.DataFrame({"column": [1, "one"]})  # numbers and text: no Parquet type holds both
    with pytest.raises(BatchError, match="cannot be written as Parquet"):
        write_table(mixed, path)
    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.parquet"]
