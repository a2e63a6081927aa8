"""Wall time of a fresh project's first run: `make setup lint test pipeline`, warm uv cache.

Each round renders the defaults into a new folder and times every target; a warm-up round fills
uv's cache first. The baseline, measured in the same rounds, is `uv sync` into a second fresh
project: the part of `make setup` that is uv's work, so the ratio shows what the repo's own steps
cost on top of installing its dependencies.

    uv run python benchmarks/generated_repo.py [--rounds 3]
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
TARGETS = ("setup", "lint", "test", "pipeline")
LEAKY_ENV = ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI", "PYTHONPATH")


COPY = [sys.executable, "-m", "copier", "copy", "-q", "--trust", "--defaults", "--vcs-ref=HEAD"]


def render(dst: Path) -> None:
    subprocess.run(
        [*COPY, str(TEMPLATE_DIR), str(dst)],
        check=True,
        capture_output=True,
    )


def timed(args: list[str], cwd: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_ENV}
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def one_round(scratch: Path, index: int) -> dict[str, float]:
    project = scratch / f"project-{index}"
    render(project)
    times = {target: timed(["make", target], project) for target in TARGETS}
    times["total"] = sum(times[t] for t in TARGETS)
    baseline_project = scratch / f"baseline-{index}"
    render(baseline_project)
    times["baseline: uv sync"] = timed(["uv", "sync", "--quiet"], baseline_project)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        one_round(scratch, -1)  # warm-up: fills uv's cache
        rounds = [one_round(scratch, i) for i in range(args.rounds)]
    names = [*TARGETS, "total", "baseline: uv sync"]
    baseline = statistics.median(r["baseline: uv sync"] for r in rounds)
    print(f"make setup lint test pipeline, fresh project, warm uv cache, {args.rounds} rounds:")
    print(f"{'step':20} {'median s':>9} {'min s':>7} {'max s':>7} {'x uv sync':>10}")
    for name in names:
        values = [r[name] for r in rounds]
        median = statistics.median(values)
        print(
            f"{name:20} {median:9.2f} {min(values):7.2f} {max(values):7.2f}"
            f" {median / baseline:10.2f}"
        )


if __name__ == "__main__":
    main()
