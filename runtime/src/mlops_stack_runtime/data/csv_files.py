"""Reading and writing the pipeline's CSV files, with the declared types on every read.

Batches of current data (`make batch`, `make collect`, `make drift`) may also be Parquet: the
functions named `*_table` pick the format by the file's suffix.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import pandas as pd

from ..errors import BatchError, StageInputError
from .columns import DECLARATION, apply_declared_types

# The formats of a batch, by suffix (lower case).
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def read_frame(path: Path, declared_columns: bool = True) -> pd.DataFrame:
    """Read a CSV written by an earlier stage; a missing file says which stage makes it.

    Category columns are read as text and only an empty field is missing, so a category "NA"
    or "01" reads back as it was written. With `declared_columns`, a file lacking a column of
    data/columns.yaml (written before the declaration changed) raises StageInputError; the
    validate stage reads the raw data without, so its schema report names what is missing.
    """
    if path.is_dir():
        raise StageInputError(f"{path} is a folder, not a CSV file: remove it, then `dvc repro`")
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the earlier stages first (`dvc repro`)")
    try:
        frame = parse_frame(path)
    except pd.errors.EmptyDataError as error:
        raise StageInputError(f"{path} is empty: `dvc repro` writes it again") from error
    # Parser errors and text that is not UTF-8 are ValueErrors; permissions are OSErrors.
    except (ValueError, OSError) as error:
        raise StageInputError(f"{path} cannot be read as CSV: {error}") from error
    if declared_columns:
        check_declared_columns(frame, str(path))
    return frame


def check_declared_columns(frame: pd.DataFrame, source: str) -> None:
    """StageInputError naming the columns of data/columns.yaml that `frame` lacks."""
    missing = [spec.name for spec in DECLARATION.all_columns if spec.name not in frame.columns]
    if missing:
        raise StageInputError(
            f"{source} lacks column(s) {', '.join(missing)} of data/columns.yaml: it was "
            "written before the declaration changed (`dvc repro` writes it again)"
        )


def parse_frame(source: Path | IO[bytes]) -> pd.DataFrame:
    """A CSV of this pipeline (a file or its bytes, e.g. from DVC) with the declared types."""
    text_columns = {spec.name: str for spec in DECLARATION.category_columns}
    frame = pd.read_csv(source, dtype=text_columns, keep_default_na=False, na_values=[""])
    return apply_declared_types(frame)


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    """Write without the index so the file holds exactly the dataset's columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def check_table_suffix(path: Path) -> None:
    """BatchError unless `path` names a format a batch can have; checked before any work."""
    if path.suffix.lower() not in TABLE_SUFFIXES:
        found = f"'{path.suffix}'" if path.suffix else "a name without one"
        raise BatchError(f"{path}: a batch is a .csv or .parquet file (by its suffix), not {found}")


def read_table(path: Path) -> pd.DataFrame:
    """A batch in CSV or Parquet, by its suffix, with the declared types."""
    check_table_suffix(path)
    if path.suffix.lower() == ".csv":
        return parse_frame(path)
    return apply_declared_types(pd.read_parquet(path))


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Write a batch as CSV or Parquet, by the suffix of `path`.

    The file appears whole or not at all: a frame Parquet cannot hold (a column mixing numbers
    and text) raises BatchError and leaves whatever was at `path` before.
    """
    check_table_suffix(path)
    if path.suffix.lower() == ".csv":
        return write_frame(frame, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        frame.to_parquet(partial, index=False)
    # pyarrow's conversion errors (ArrowInvalid, ArrowTypeError) are ValueError and TypeError.
    except (ValueError, TypeError) as error:
        partial.unlink(missing_ok=True)
        raise BatchError(f"{path}: the batch cannot be written as Parquet: {error}") from error
    partial.replace(path)
    return path
