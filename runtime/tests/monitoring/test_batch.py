from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_stack_runtime.data.columns import (
    FEATURE_NAMES,
    PROTECTED_ATTRIBUTE,
)
from mlops_stack_runtime.data.sample import (
    generate_sample,
)
from mlops_stack_runtime.errors import (
    BatchError,
)
from mlops_stack_runtime.monitoring.batch import (
    quality_problems,
    read_batch,
    usable_features,
)
from mlops_stack_runtime.testing.declared import (
    both,
    first_feature,
    is_bounded,
    is_category,
    is_int,
    is_numeric,
    is_required,
    out_of_range,
    pick,
    range_check,
    unknown_category,
)


@pytest.fixture
def batch() -> pd.DataFrame:
    return generate_sample(n_rows=200, seed=5)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_csv_and_parquet_batches_are_read(batch: pd.DataFrame, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"batch{suffix}"
    if suffix == ".csv":
        batch.to_csv(path, index=False)
    else:
        batch.to_parquet(path, index=False)
    features = usable_features(read_batch(path), min_rows=100, source=str(path))
    assert list(features.columns) == list(FEATURE_NAMES)  # label and protected attribute dropped
    assert len(batch.columns) == len(FEATURE_NAMES) + 1 + (PROTECTED_ATTRIBUTE is not None)
    assert len(features) == 200
    assert quality_problems(features) == []


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("batch.json", "{}", "a batch is a .csv or .parquet file"),
        ("batch.csv", "", "cannot be read"),
        ("batch.parquet", "not parquet", "cannot be read"),
    ],
)
def test_an_unreadable_batch_is_a_batch_error(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(BatchError, match=message):
        read_batch(path)
    with pytest.raises(BatchError, match="no such file"):
        read_batch(tmp_path / "absent.csv")


def test_a_missing_input_column_is_named(batch: pd.DataFrame) -> None:
    # The last feature and the first, named in the declared order.
    missing = list(dict.fromkeys([FEATURE_NAMES[0], FEATURE_NAMES[-1]]))
    with pytest.raises(BatchError, match=re.escape(f"missing: {', '.join(missing)} (")):
        usable_features(batch.drop(columns=missing[::-1]), 100, "b.csv")


def test_an_empty_or_too_small_batch_is_refused(batch: pd.DataFrame) -> None:
    with pytest.raises(BatchError, match="the batch is empty; drift needs at least 100"):
        usable_features(batch.head(0), 100, "b.csv")
    with pytest.raises(BatchError, match="has 99 rows"):
        usable_features(batch.head(99), 100, "b.csv")


def test_text_in_a_numeric_column_is_named_with_examples(batch: pd.DataFrame) -> None:
    name = pick(is_numeric, "numeric feature").name
    batch[name] = batch[name].astype(object)
    batch.loc[3, name] = "forty"
    with pytest.raises(
        BatchError, match=re.escape(f"not numbers in numeric column(s): {name} (forty)")
    ):
        usable_features(batch, 100, "b.csv")


def test_whole_floats_are_integers_again(batch: pd.DataFrame) -> None:
    name = pick(is_int, "int feature").name
    batch[name] = batch[name].astype(float)
    features = usable_features(batch, 100, "b.csv")
    assert features[name].dtype == np.int64
    assert quality_problems(features) == []


def test_new_categories_nulls_and_out_of_range_values_are_quality_problems(
    batch: pd.DataFrame,
) -> None:
    category = pick(is_category, "category feature")
    bounded = pick(is_bounded, "numeric feature with a min or a max")
    # A null where the schema allows none, in another column; an int column at best, where the
    # null also turns the numbers into floats and only the null must be reported.
    others = both(is_required, lambda spec: spec.name not in (category.name, bounded.name))
    required = first_feature(both(others, is_int)) or pick(
        others, "non-nullable feature besides a category and a bounded one"
    )
    new = unknown_category(category)
    batch.loc[0, category.name] = new
    batch.loc[1, required.name] = np.nan
    batch.loc[2, bounded.name] = out_of_range(bounded)
    problems = quality_problems(usable_features(batch, 100, "b.csv"))
    found = {(problem.column, problem.check.split("(")[0]) for problem in problems}
    assert found == {
        (category.name, "isin"),
        (required.name, "not_nullable"),
        (bounded.name, range_check(bounded).split("(")[0]),
    }
    unknown = next(p for p in problems if p.column == category.name)
    assert unknown.examples == (new,)
    assert f"{category.name}: isin" in unknown.describe()
