"""`data`: make sure the `file` source's data is here before the pipeline runs (`dvc pull`).

The adopted file is tracked by DVC, not git, so a fresh clone (every CI job) lacks it until it is
pulled from the DVC remote. A local-folder remote exists only on the machine that made it: on CI
(env CI set) that fails early with what to do, instead of DVC's "missing data" mid-pipeline.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataSourceError

if TYPE_CHECKING:
    from ..config import Config


def fetch_data(config: Config) -> str:
    """Pull the data file when it is missing; return what was done, for the console."""
    if config.data.source != "file" or not config.data.path:
        return f"data.source is '{config.data.source}': no data file to fetch"
    path = config.root / config.data.path
    if path.is_file():
        return f"{config.data.path} is present"
    pointer = path.with_name(path.name + ".dvc")
    if not pointer.is_file():
        raise DataSourceError(
            f"{config.data.path} is missing and not tracked by DVC (no {pointer.name}): "
            "adopt it with `make use-data FILE=... LABEL=...`"
        )
    remote, url = default_remote(config.root)
    if os.environ.get("CI") and "://" not in url:
        raise DataSourceError(
            f"{config.data.path} must come from the DVC remote '{remote}', but it is a local "
            f"folder ({url}) that CI cannot reach: make it shared, e.g. `dvc remote modify "
            f"{remote} url s3://<bucket>/<path>` (or gs://, azure://), `dvc push`, and give CI "
            "the remote's credentials (README.md, 'How CI reaches the data')"
        )
    result = run_dvc(config.root, "pull", str(pointer.relative_to(config.root)))
    if result.returncode != 0 or not path.is_file():
        raise DataSourceError(
            f"`dvc pull` of {config.data.path} from remote '{remote}' ({url}) failed: "
            f"{(result.stderr or result.stdout).strip()} (credentials: README.md, "
            "'How CI reaches the data')"
        )
    return f"{config.data.path} pulled from remote '{remote}'"


def default_remote(root: Path) -> tuple[str, str]:
    """The default DVC remote's name and URL."""
    name = run_dvc(root, "remote", "default").stdout.strip()
    for line in run_dvc(root, "remote", "list").stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == name:
            return name, parts[1]
    raise DataSourceError("no default DVC remote: `dvc remote add -d storage <url>`")


def run_dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`dvc ARGS` in `root` with this interpreter's DVC, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
