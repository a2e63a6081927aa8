"""The built-in data sources named by params.yaml `data.source`.

- `synthetic`: the credit example (synthetic.py), for a pipeline that runs before real data;
- `file`: a CSV or Parquet file, `data.path` (what `make use-data` sets up), read with the
  declared types so a category stays a category whatever its values look like;
- `sample`: rows generated from columns.yaml alone (sample.py), what the tests train on.

Any other name goes to source.py, the team's own loader (SQL, a warehouse, object storage).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..errors import DataSourceError
from ..project import current_project
from .columns import DECLARATION, LABEL, Declaration, apply_declared_types
from .sample import generate_sample
from .synthetic import generate

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

BUILTIN_SOURCES = ("synthetic", "file", "sample")
FILE_SUFFIXES = (".csv", ".parquet", ".pq")


def load_data(config: Config) -> pd.DataFrame:
    """The raw dataset named by params `data.source`, with the declared types."""
    source = config.data.source
    if source == "synthetic":
        frame = generate(n_rows=config.data.n_rows, seed=config.data.seed)
    elif source == "sample":
        frame = generate_sample(n_rows=config.data.n_rows, seed=config.data.seed)
    elif source == "file":
        if not config.data.path:
            raise DataSourceError("params.yaml: data.source is 'file' but data.path is not set")
        frame = read_data_file(config.root / config.data.path)
    else:
        # The team's own sources: <package>/data/source.py of the repository.
        frame = current_project().module("data.source").load_raw_data(config)
    return drop_unlabelled(apply_declared_types(frame))


def read_data_file(path: Path, declaration: Declaration | None = None) -> pd.DataFrame:
    """A CSV or Parquet file, category columns read as text (so "01" stays "01")."""
    declaration = declaration or DECLARATION
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise DataSourceError(f"{path}: a data file is .csv or .parquet, not '{path.suffix}'")
    if not path.is_file():
        raise DataSourceError(
            f"{path} not found: `make data` fetches it from the DVC remote (`dvc pull`)"
        )
    try:
        if path.suffix.lower() == ".csv":
            text_columns = {spec.name: str for spec in declaration.category_columns}
            frame = pd.read_csv(path, dtype=text_columns, low_memory=False)
        else:
            frame = pd.read_parquet(path)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise DataSourceError(f"{path} could not be read: {error}") from error
    return apply_declared_types(frame, declaration)


def drop_unlabelled(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows without a label cannot be trained or evaluated on: dropped, and the count logged."""
    if LABEL.name not in frame.columns:
        return frame  # the validate stage reports the missing column
    missing = frame[LABEL.name].isna()
    if missing.any():
        log.warning(
            "dropped %d row(s) without a value of the label '%s'", missing.sum(), LABEL.name
        )
        frame = frame.loc[~missing].reset_index(drop=True)
    return frame
