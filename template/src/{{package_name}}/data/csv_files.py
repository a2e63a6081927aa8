"""Reading and writing the pipeline's CSV files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def read_frame(path: Path) -> pd.DataFrame:
    """Read a CSV written by an earlier stage; a missing file says which stage makes it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the earlier stages first (`dvc repro`)")
    return pd.read_csv(path)


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    """Write without the index so the file holds exactly the dataset's columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path
