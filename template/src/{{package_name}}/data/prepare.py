"""The `prepare` stage: fetch the raw data from the configured source into data/raw/."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .csv_files import write_frame
from .source import load_raw_data

if TYPE_CHECKING:
    from ..config import Config


def prepare(config: Config) -> Path:
    """Write the raw dataset and return its path."""
    return write_frame(load_raw_data(config), config.paths.raw_data)
