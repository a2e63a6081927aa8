"""The team's own data sources: the one place to add one that is not built in.

Built in (the runtime's data/sources.py): `synthetic` (the example), `file` (a CSV or Parquet
file, what `make use-data` sets up) and `sample` (rows generated from columns.yaml). For anything
else, add a branch for a new `data.source` value in params.yaml (for example `warehouse`) that
returns a DataFrame with the columns of columns.yaml, e.g. `pd.read_sql(query, engine)` or
`pd.read_parquet("s3://bucket/table.parquet")`. Keep credentials out of params.yaml (read them
from the environment). Values are converted to the declared types after this returns, and the
validate stage checks the result against the schema, so a source that drifts fails loudly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_stack_runtime.errors import DataSourceError

if TYPE_CHECKING:
    import pandas as pd

    from mlops_stack_runtime.config import Config

KNOWN_SOURCES = ("synthetic", "file", "sample")


def load_raw_data(config: Config) -> pd.DataFrame:
    """The raw dataset of a `data.source` that is not built in."""
    source = config.data.source
    raise DataSourceError(
        f"unknown data source '{source}' (params.yaml data.source); known: "
        f"{', '.join(KNOWN_SOURCES)}. Add yours to load_raw_data in {__file__}"
    )
