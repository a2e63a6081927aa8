"""`make kfp-local` next to `make pipeline` on the same data and seed, same run.

Renders the enterprise defaults (orchestrator kubeflow) and runs `make setup` once, unless
`--project` names such a render. Then, alternating in every round:
- `make pipeline` with every stage run: `dvc repro --force` (prepare, validate, train, evaluate,
  fairness, model card), in the project's environment;
- `make kfp-local`: the same stages as a Kubeflow pipeline on the KFP SDK's local runner, each
  task a subprocess (no Docker) in a workspace rebuilt from its input artifacts.
Wall times are medians over the rounds; the ratio is kfp-local's over the pipeline's. Each round
also checks that both wrote the same metrics (the benchmark fails otherwise).

    uv run python benchmarks/kfp_local.py [--rounds 3] [--project DIR]
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
LEAKY_ENV += ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")
COPY = [sys.executable, "-m", "copier", "copy", "-q", "--trust", "--defaults", "--vcs-ref=HEAD"]


def project_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in LEAKY_ENV}


def sh(command: list[str], cwd: Path) -> str:
    result = subprocess.run(
        command, cwd=cwd, env=project_env(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"`{' '.join(command)}` failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    sh(command, cwd)
    return time.perf_counter() - start


def render(scratch: Path) -> Path:
    project = scratch / "project"
    print(f"rendering the enterprise defaults into {project}, then make setup ...", flush=True)
    sh([*COPY, "--data=stack_tier=enterprise", str(TEMPLATE_DIR), str(project)], scratch)
    sh(["make", "setup"], project)
    return project


def same_metrics(project: Path) -> dict[str, float]:
    dvc = json.loads((project / "reports" / "metrics.json").read_text())
    local = json.loads((project / "build" / "kfp-local" / "metrics.json").read_text())
    differing = {
        name: (value, local.get(name))
        for name, value in dvc.items()
        if not isinstance(local.get(name), int | float) or abs(local[name] - value) > 1e-9
    }
    if differing or set(local) != set(dvc):
        sys.exit(f"kfp-local and make pipeline disagree: {differing or (set(local) ^ set(dvc))}")
    return dvc


CASES = {
    # `make pipeline`'s command, forced; the stages' `python -m` is the project's environment's.
    "make pipeline (dvc repro --force: every stage)": [
        "bash",
        "-c",
        'PATH="$PWD/.venv/bin:$PATH" exec dvc repro --force',
    ],
    "make kfp-local (KFP local runner, subprocesses)": ["make", "-s", "kfp-local"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--project", type=Path, help="an enterprise render after `make setup`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kfp-bench-") as scratch:
        project = args.project.resolve() if args.project else render(Path(scratch))
        samples: dict[str, list[float]] = {name: [] for name in CASES}
        metrics: dict[str, float] = {}
        for round_number in range(1, args.rounds + 1):
            for name, command in CASES.items():
                samples[name].append(timed(command, project))
            metrics = same_metrics(project)
            figures = ", ".join(f"{samples[name][-1]:.1f} s" for name in CASES)
            print(f"round {round_number}/{args.rounds}: {figures}", flush=True)
    pipeline, local = (statistics.median(values) for values in samples.values())
    print(f"\nMedians of {args.rounds} alternating round(s), {os.cpu_count()} CPUs:\n")
    print("| run | median s | min s | max s |")
    print("|---|---:|---:|---:|")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {min(values):.1f} | {max(values):.1f} |")
    print(f"\nkfp-local / pipeline: {local / pipeline:.2f}x")
    print("Same metrics in every round: " + ", ".join(f"{k} {v:.6f}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()
