"""A progress bar for long commands, shown on a terminal only (CI logs get the summary line)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def known_rows(path: Path) -> int | None:
    """Rows of a Parquet file from its footer; None for CSV (counting would read it twice)."""
    if path.suffix.lower() == ".csv" or not path.is_file():
        return None
    try:
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, ValueError):
        return None  # scoring reports the unreadable file


@contextmanager
def row_progress(path: Path, enabled: bool | None = None) -> Iterator[Callable[[int], None]]:
    """Yield a callback taking the rows done so far; a rich bar on stderr when enabled."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield lambda _rows: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task(f"scoring {path.name}", total=known_rows(path))
        yield lambda rows: bar.update(task, completed=rows)
