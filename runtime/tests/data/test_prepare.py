from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import pytest

from mlops_stack_runtime.data.columns import (
    ColumnSpec,
)
from mlops_stack_runtime.data.csv_files import (
    read_frame,
    read_table,
)
from mlops_stack_runtime.data.prepare import (
    prepare,
    write_batch,
)
from mlops_stack_runtime.data.sample import (
    generate_sample,
)
from mlops_stack_runtime.errors import (
    BatchError,
    DataSourceError,
)
from mlops_stack_runtime.testing.declared import (
    case,
    is_category,
    is_numeric,
)

from credit_risk_model.data import (
    source as source_module,
)

if TYPE_CHECKING:
    from mlops_stack_runtime.testing.fixtures import MakeProject


def test_prepare_writes_the_raw_data(make_project: MakeProject) -> None:
    config = make_project({"data.n_rows": 300})
    path = prepare(config)
    assert path == config.root / "data" / "raw" / "credit.csv"
    expected = generate_sample(n_rows=300, seed=config.data.seed)
    pd.testing.assert_frame_equal(read_frame(path), expected, check_dtype=False)


def test_prepare_twice_writes_identical_files(make_project: MakeProject) -> None:
    config = make_project()
    first = prepare(config).read_bytes()
    assert prepare(config).read_bytes() == first


@pytest.mark.parametrize(
    "spec",
    [
        case(is_numeric, "numeric feature", id="numeric"),
        case(is_category, "category feature", id="category"),
    ],
)
def test_a_batch_goes_to_its_own_file_and_the_sample_one_can_shift(
    make_project: MakeProject, spec: ColumnSpec
) -> None:
    config = make_project()
    output = config.root / "data" / "current" / "batch.csv"
    same = read_frame(write_batch(config, output, n_rows=500, seed=3))
    shifted = read_frame(write_batch(config, output, shift=1.0, n_rows=500, seed=3))
    assert not config.paths.raw_data.exists()
    assert len(shifted) == 500
    column, reference = shifted[spec.name], same[spec.name]
    if spec.kind == "category":
        # A shifted population makes the first category common.
        first = spec.categories[0]
        assert (column == first).mean() > (reference == first).mean() + 0.1
    else:
        # A shifted population has larger numbers, by a good part of the reference's spread.
        assert column.mean() > reference.mean() + 0.75 * reference.std()


def test_a_real_source_gives_its_data_as_it_is(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_project({"data.source": "warehouse"})
    with pytest.raises(DataSourceError, match="synthetic and sample sources only"):
        write_batch(config, config.root / "batch.csv", shift=0.5)
    table = generate_sample(n_rows=120, seed=1)
    monkeypatch.setattr(source_module, "load_raw_data", lambda _: table)
    batch = read_frame(write_batch(config, config.root / "batch.csv"))
    pd.testing.assert_frame_equal(batch, table, check_dtype=False)


def test_a_batch_is_csv_or_parquet_by_its_suffix(make_project: MakeProject) -> None:
    config = make_project()
    as_csv = read_frame(write_batch(config, config.root / "batch.csv", n_rows=200, seed=3))
    path = write_batch(config, config.root / "batch.parquet", n_rows=200, seed=3)
    assert path.read_bytes()[:4] == b"PAR1"
    pd.testing.assert_frame_equal(read_table(path), as_csv, check_dtype=False)
    with pytest.raises(BatchError, match=r"a batch is a \.csv or \.parquet file"):
        write_batch(config, config.root / "batch.txt", n_rows=200)
    assert not (config.root / "batch.txt").exists()
