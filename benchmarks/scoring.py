"""`make score` on a large Parquet file next to a bare read + predict_proba loop, same run.

Renders the defaults (startup), runs `make setup` and `make pipeline` once, writes `--rows` rows
of the data source's current data as Parquet (`make batch`), then times, `--runs` times each:
- the `score` CLI end to end (interpreter, imports, model verification, row checks, output with
  carried columns, model version and input hash), at two chunk sizes, with its peak memory;
- the baseline: in the project's Python, `pandas.read_parquet` of the whole file and one
  `predict_proba` of the trained pipeline on it (no checks, no output), with its peak memory.
Rows per second are medians; the ratio is the CLI's throughput over the baseline's. The CLI's
peak memory is also measured on a file a quarter as long, at both chunk sizes: chunked scoring
should keep it flat in the file's size.

    uv run python benchmarks/scoring.py [--rows 1000000] [--runs 3] [--ref HEAD]

--ref renders the template at another git ref of this repository (a commit before a change): its
figures against the same baseline, to compare with the working tree's.
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
LEAKY_ENV = ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT")
LEAKY_ENV += ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")
COPY = [sys.executable, "-m", "copier", "copy", "-q", "--trust", "--defaults"]
SLUG = "credit-risk-model"

# Runs in the project's Python: the bare loop the CLI is measured against.
BASELINE = """
import sys, joblib, pandas
from pathlib import Path
pipeline = joblib.load(Path("models/model.joblib"))
frame = pandas.read_parquet(sys.argv[1])
names = list(pipeline.feature_names_in_)
pipeline.predict_proba(frame[names])
"""
# Peak resident memory of a command, from the kernel's accounting of the child (KiB on Linux).
PEAK = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in LEAKY_ENV}


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=environment(), capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def peak_mib(args: list[str], cwd: Path) -> float:
    """The peak resident memory (MiB) of one run of `args`."""
    return int(run([sys.executable, "-c", PEAK, *args], cwd).stdout.strip()) / 1024


def measured(args: list[str], cwd: Path, runs: int) -> tuple[float, float]:
    """Median seconds over `runs`, and the peak memory (MiB) of one more run."""
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        run(args, cwd)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), peak_mib(args, cwd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ref", default="HEAD", help="the template's git ref to render")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        run([*COPY, f"--vcs-ref={args.ref}", str(TEMPLATE_DIR), str(project)], Path(tmp))
        run(["make", "setup"], project)
        run(["make", "pipeline"], project)
        batch = "data/current/large.parquet"
        run(["make", "batch", f"CURRENT={batch}", f"ROWS={args.rows}", "SEED=7"], project)
        python = str(project / ".venv" / "bin" / "python")
        figures = {
            "bare read_parquet + predict_proba (baseline)": measured(
                [python, "-c", BASELINE, batch], project, args.runs
            )
        }

        def cli(source: str, chunk: int) -> list[str]:
            score = [str(project / ".venv" / "bin" / SLUG), "score", source, "build/scored.parquet"]
            return [*score, "--chunk-rows", str(chunk), "--no-progress"]

        for chunk in (10_000, 100_000):
            figures[f"score CLI, chunks of {chunk:,} rows"] = measured(
                cli(batch, chunk), project, args.runs
            )
        # Memory against file size: the same chunks on a file a quarter as long.
        quarter = max(1, args.rows // 4)
        small = "data/current/quarter.parquet"
        run(["make", "batch", f"CURRENT={small}", f"ROWS={quarter}", "SEED=7"], project)
        quarter_peaks = {chunk: peak_mib(cli(small, chunk), project) for chunk in (10_000, 100_000)}

    base_seconds = next(iter(figures.values()))[0]
    print(f"{args.rows:,} rows, median of {args.runs} run(s) each")
    print(f"{'':46}{'rows/s':>12}{'ratio':>8}{'peak MiB':>10}")
    for name, (seconds, peak) in figures.items():
        print(f"{name:46}{args.rows / seconds:12,.0f}{base_seconds / seconds:8.2f}{peak:10.0f}")
    print(
        f"\nPeak MiB of the score CLI, {quarter:,} rows next to {args.rows:,} (flat is the goal):"
    )
    for chunk, peak in quarter_peaks.items():
        full = figures[f"score CLI, chunks of {chunk:,} rows"][1]
        print(f"- chunks of {chunk:,}: {peak:.0f} -> {full:.0f} ({full / peak:.2f}x)")


if __name__ == "__main__":
    main()
