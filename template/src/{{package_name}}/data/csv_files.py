"""Reading and writing the pipeline's CSV files, with the declared types on every read."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import pandas as pd

from .columns import DECLARATION, apply_declared_types


def read_frame(path: Path) -> pd.DataFrame:
    """Read a CSV written by an earlier stage; a missing file says which stage makes it.

    Category columns are read as text and only an empty field is missing, so a category "NA"
    or "01" reads back as it was written.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the earlier stages first (`dvc repro`)")
    return parse_frame(path)


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
