"""Where the raw data comes from: the one function to change when plugging in real data.

To use your own data, add a branch for a new `data.source` value in params.yaml (for example
`warehouse`) that returns a DataFrame with the columns of columns.py, the protected attribute and
the label, e.g. `pd.read_sql(query, engine)` or `pd.read_parquet("s3://bucket/credit.parquet")`.
Keep credentials out of params.yaml (read them from the environment). The validate stage checks
whatever this returns against the schema, so a source that drifts from the contract fails loudly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import DataSourceError
from .synthetic import generate

if TYPE_CHECKING:
    import pandas as pd

    from ..config import Config

KNOWN_SOURCES = ("synthetic",)


def load_raw_data(config: Config) -> pd.DataFrame:
    """The raw dataset named by params `data.source`."""
    source = config.data.source
    if source == "synthetic":
        return generate(n_rows=config.data.n_rows, seed=config.data.seed)
    raise DataSourceError(
        f"unknown data source '{source}' (params.yaml data.source); known: "
        f"{', '.join(KNOWN_SOURCES)}. Add yours to load_raw_data in {__file__}"
    )
