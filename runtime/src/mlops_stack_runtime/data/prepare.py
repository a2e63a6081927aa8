"""The `prepare` stage: fetch the raw data from the configured source into data/raw/.

`write_batch` fetches the same way into another file: a batch of current data for `drift`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataSourceError
from .csv_files import check_table_suffix, write_frame, write_table
from .sample import generate_sample
from .sources import load_data
from .synthetic import generate

if TYPE_CHECKING:
    from ..config import Config


def prepare(config: Config) -> Path:
    """Write the raw dataset and return its path."""
    return write_frame(load_data(config), config.paths.raw_data)


def write_batch(
    config: Config,
    output: Path,
    shift: float = 0.0,
    n_rows: int | None = None,
    seed: int | None = None,
) -> Path:
    """Write the data source's current data to `output` (CSV or Parquet), for a drift check.

    With the synthetic and sample sources, `shift`, `n_rows` and `seed` simulate another
    population (synthetic.generate, sample.generate_sample), so the monitoring loop can be shown
    and tested without real traffic.
    A real source gives its current data as it is, and refuses them.
    """
    check_table_suffix(output)
    if config.data.source in ("synthetic", "sample"):
        make = generate if config.data.source == "synthetic" else generate_sample
        frame = make(
            n_rows=config.data.n_rows if n_rows is None else n_rows,
            seed=config.data.seed if seed is None else seed,
            shift=shift,
        )
    elif shift or n_rows is not None or seed is not None:
        raise DataSourceError(
            "--shift, --rows and --seed simulate a batch with the synthetic and sample sources "
            "only; "
            f"data.source is '{config.data.source}', whose current data is taken as it is"
        )
    else:
        frame = load_data(config)
    return write_table(frame, output)
