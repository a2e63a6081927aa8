"""`make use-data` on a large CSV next to a plain `pandas.read_csv` of the same file, same run.

Renders the defaults (startup) into a temp folder, runs `make setup`, writes a CSV of `--rows`
rows (the synthetic credit example's columns: numbers with missing values, text categories, a
protected attribute and a 0/1 label), then alternates, `--runs` times each:
- the baseline: `pandas.read_csv` of the file in the project's interpreter (start and import
  included, as for the command);
- `use-data` through the CLI (inference, typed re-read and validation, `dvc add`, the writes),
  each run on a clean checkout of the rendered project (`git checkout . && git clean`).
Prints the medians and their ratio (after one warm-up run of each); the goal is at most 3x.

    uv run python benchmarks/use_data.py [--rows 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
# PYTHONDONTWRITEBYTECODE would make every run compile every imported module again: not what a
# user's machine does (a warm-up run below writes the bytecode).
LEAKY_ENV = (
    "VIRTUAL_ENV",
    "MLFLOW_TRACKING_URI",
    "PYTHONPATH",
    "UV_PROJECT_ENVIRONMENT",
    "PYTHONDONTWRITEBYTECODE",
)
COPY = [sys.executable, "-m", "copier", "copy", "-q", "--trust", "--defaults", "--vcs-ref=HEAD"]
SLUG = "credit-risk-model"
GOAL = 3.0

WRITE_CSV = """
import sys
from mlops_stack_runtime.data.synthetic import generate
generate(n_rows=int(sys.argv[2]), seed=1).to_csv(sys.argv[1], index=False)
"""
READ_CSV = "import sys, pandas as pd; pd.read_csv(sys.argv[1], low_memory=False)"


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in LEAKY_ENV}


def run(args: list[str], cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, env=env(), check=True, capture_output=True, text=True)


def timed(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    run(args, cwd)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder) / SLUG
        run([*COPY, str(TEMPLATE_DIR), str(project)], Path(folder))
        run(["make", "setup"], project)
        python = str(project / ".venv" / "bin" / "python")
        csv = Path(folder) / "export.csv"
        run([python, "-c", WRITE_CSV.format(), str(csv), str(options.rows)], project)
        size = csv.stat().st_size / 2**20
        adopt = [str(project / ".venv" / "bin" / SLUG), "use-data", str(csv), "--label", "default"]
        adopt += ["--protected", "sex"]

        def adopt_once() -> float:
            seconds = timed(adopt, project)
            run(["git", "checkout", "--", "."], project)  # back to the rendered project
            run(["git", "clean", "-fdq", "--", "data", "src"], project)
            return seconds

        adopt_once()  # warm-up: writes the bytecode of every module both commands import
        baseline, command = [], []
        for _ in range(options.runs):
            baseline.append(timed([python, "-c", READ_CSV, str(csv)], project))
            command.append(adopt_once())
        read, used = statistics.median(baseline), statistics.median(command)
        print(f"{options.rows:,} rows, {size:.0f} MiB CSV, medians of {options.runs} runs")
        print(f"  pandas.read_csv (baseline)  {read:7.2f} s")
        print(f"  use-data (CLI)              {used:7.2f} s   {used / read:.2f}x (goal <= {GOAL}x)")


if __name__ == "__main__":
    main()
