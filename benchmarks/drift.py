"""Drift check on 100,000 rows next to one `make pipeline`, in one fresh project on this machine.

Renders the defaults (startup), runs `make setup` and `make pipeline` once, then times
- `dvc repro --force` (what `make pipeline` runs, every stage forced: prepare, validate, train,
  evaluate on the 10,000 rows of params.yaml), `--pipeline-runs` times;
- the `drift` CLI end to end (interpreter, imports, registry, reference lookup, statistics,
  scoring, both reports) on a 100,000-row synthetic batch, unshifted and shifted (`SHIFT=1`);
- the same check in one process, phase by phase (imports and interpreter start excluded).
Each drift figure is the median of `--runs` runs.

    uv run python benchmarks/drift.py [--runs 5] [--rows 100000] [--pipeline-runs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
LEAKY_ENV = ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT")
COPY = [sys.executable, "-m", "copier", "copy", "-q", "--trust", "--defaults", "--vcs-ref=HEAD"]
SLUG = "credit-risk-model"

# Runs inside the project's venv: the phases of `run_drift`, timed separately, `runs` times.
PHASES = """
import json, statistics, sys, time
from pathlib import Path
from mlops_stack_runtime.config import load_config
from mlops_stack_runtime.monitoring.batch import quality_problems, read_batch, usable_features
from mlops_stack_runtime.monitoring.drift import compare, drift_settings, write_json_report
from mlops_stack_runtime.monitoring.html_report import write_html_report
from mlops_stack_runtime.monitoring.reference import find_reference

config = load_config()
settings = drift_settings(config)
batch, runs = Path(sys.argv[1]), int(sys.argv[2])
times = {{}}
def timed(name, call):
    start = time.perf_counter()
    result = call()
    times.setdefault(name, []).append(time.perf_counter() - start)
    return result
for _ in range(runs):
    current = timed("read and check the batch", lambda: usable_features(
        read_batch(batch), settings.min_rows, str(batch)))
    problems = timed("schema value checks", lambda: quality_problems(current))
    reference = timed("reference: registry, model, data by sha256", lambda: find_reference(config))
    report = timed("statistics and scoring", lambda: compare(
        reference, current, problems, settings, str(batch)))
    timed("reports: JSON and HTML", lambda: (
        write_json_report(report, config.paths.drift_report),
        write_html_report(report, config.paths.drift_html)))
print(json.dumps({{name: statistics.median(values) for name, values in times.items()}}))
"""


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in LEAKY_ENV}


def timed(args: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, env=environment(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode not in ok:
        raise SystemExit(f"{' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pipeline-runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        subprocess.run([*COPY, str(TEMPLATE_DIR), str(project)], check=True, capture_output=True)
        first_setup = timed(["make", "setup"], project)
        first_pipeline = timed(["make", "pipeline"], project)
        forced = [
            # As `make pipeline` runs it: uv puts the project's venv first on PATH for the stages.
            timed(["uv", "run", "--no-sync", "dvc", "repro", "--force"], project)
            for _ in range(args.pipeline_runs)
        ]
        batches = {}
        for name, shift in (("unshifted", "0"), ("shifted", "1")):
            batches[name] = f"data/current/{name}.csv"
            timed(
                [
                    "make",
                    "batch",
                    f"CURRENT={batches[name]}",
                    f"ROWS={args.rows}",
                    "SEED=7",
                    f"SHIFT={shift}",
                ],
                project,
            )
        cli = {
            name: statistics.median(
                timed([f".venv/bin/{SLUG}", "drift", path], project, ok=(0, 3))
                for _ in range(args.runs)
            )
            for name, path in batches.items()
        }
        phases_out = subprocess.run(
            [
                ".venv/bin/python",
                "-c",
                PHASES.format(),
                batches["shifted"],
                str(args.runs),
            ],
            cwd=project,
            env=environment(),
            capture_output=True,
            text=True,
            check=True,
        )
        phases = json.loads(phases_out.stdout.strip().splitlines()[-1])

    pipeline = statistics.median(forced)
    rows = [
        ("make setup (first, warm uv cache)", "", first_setup, 1),
        ("make pipeline (first run, all 4 stages)", "10,000", first_pipeline, 1),
        ("dvc repro --force (= make pipeline, forced)", "10,000", pipeline, args.pipeline_runs),
        ("drift CLI, unshifted batch (exit 0)", f"{args.rows:,}", cli["unshifted"], args.runs),
        ("drift CLI, shifted batch (exit 3)", f"{args.rows:,}", cli["shifted"], args.runs),
        *(
            (f"  in process: {name}", f"{args.rows:,}", value, args.runs)
            for name, value in phases.items()
        ),
        ("  in process: total", f"{args.rows:,}", sum(phases.values()), args.runs),
    ]
    print(f"Drift check vs. pipeline, one fresh default project, {os.cpu_count()} CPUs")
    print(f"{'measurement':52} {'rows':>8} {'median s':>9} {'runs':>5} {'x pipeline':>11}")
    for name, n_rows, seconds, runs in rows:
        print(f"{name:52} {n_rows:>8} {seconds:9.2f} {runs:5d} {seconds / pipeline:11.2f}")


if __name__ == "__main__":
    main()
