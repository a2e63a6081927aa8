"""Render speed: `copier copy` of the defaults (startup and enterprise) next to `copier --version`.

A render includes the post-copy task, which resolves uv.lock and makes the first commit; the
`--skip-tasks` case shows Copier's rendering alone.

Copier's own import is most of a render, so the baseline is `copier --version` measured in the
same run, alternating with the renders; the figures to quote are medians and their ratio to it.

    uv run python benchmarks/render.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
COPIER = [sys.executable, "-m", "copier"]

CASES: dict[str, list[str]] = {
    "copier --version (baseline)": [*COPIER, "--version"],
    "render startup defaults": [
        *COPIER, "copy", "--quiet", "--trust", "--defaults", "--vcs-ref=HEAD",
    ],
    # Copier's rendering alone: without the post-copy task (uv lock, git init, first commit).
    "render startup, --skip-tasks": [
        *COPIER, "copy", "--quiet", "--skip-tasks", "--defaults", "--vcs-ref=HEAD",
    ],
    "render enterprise defaults": [
        *COPIER, "copy", "--quiet", "--trust", "--defaults", "--vcs-ref=HEAD",
        "--data=stack_tier=enterprise",
    ],
}  # fmt: skip


def time_once(command: list[str], scratch: Path) -> float:
    renders = "copy" in command
    dst = scratch / "project"
    args = [*command, str(TEMPLATE_DIR), str(dst)] if renders else command
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    if renders:
        shutil.rmtree(dst)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    with tempfile.TemporaryDirectory() as scratch:
        for command in CASES.values():  # warm-up: file cache, .pyc
            time_once(command, Path(scratch))
        for _ in range(args.rounds):
            for name, command in CASES.items():
                samples[name].append(time_once(command, Path(scratch)))
    baseline = statistics.median(samples["copier --version (baseline)"])
    files = sum(1 for p in (TEMPLATE_DIR / "template").rglob("*") if p.is_file())
    print(f"{args.rounds} alternating rounds, {files} template files, medians:")
    print(f"{'case':32} {'median s':>9} {'min s':>7} {'max s':>7} {'x baseline':>11}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(
            f"{name:32} {median:9.3f} {min(values):7.3f} {max(values):7.3f}"
            f" {median / baseline:11.2f}"
        )


if __name__ == "__main__":
    main()
