"""A fleet of repositories moved to the next release: `make fleet-update` next to one by one.

Builds a throwaway template repository with two releases (0.1.0: the working tree with the first
line of params.yaml and features.py worded differently; 0.2.0: the working tree), renders `--repos`
repositories at 0.1.0 with varied answers (tier, CI provider, DVC remote; the copy's tasks run,
so each has its first commit and uv.lock), commits a team edit in each, and copies the fleet
three times. Then, in the same run:
- `make fleet-update REPOS=<glob>` over the first copy (wall time, `--jobs` at once);
- `make template-update` in each repository of the second copy, one after another (total and
  the per-repository median);
- a bare `copier update --trust --defaults --conflict inline` in each of the third (median): the
  floor, without the checks, the report and its two renders, or the lock refresh.

    uv run python benchmarks/fleet.py [--repos 20] [--jobs 2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
SOURCES = ("copier.yml", "hooks", "includes", "template", "runtime")
LEAKY_ENV = ("VIRTUAL_ENV", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")
REWORDED = ("template/params.yaml.jinja", "template/src/{{package_name}}/features.py")
TIERS = ("startup", "scale-up", "enterprise")
PROVIDERS = ("github", "gitlab", "jenkins")
REMOTES = ("local", "s3", "gcs", "azure")


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in LEAKY_ENV}
    identity = {"NAME": "Fleet Benchmark", "EMAIL": "bench@example.com"}
    for role, (key, value) in itertools.product(("AUTHOR", "COMMITTER"), identity.items()):
        clean.setdefault(f"GIT_{role}_{key}", value)
    uv = shutil.which("uv")
    if uv:
        clean["UV"] = uv
    return clean


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env())
    if check and result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return result


def timed(args: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    result = run(args, cwd, check=False)
    return time.perf_counter() - start, result


def build_releases(root: Path) -> Path:
    template = root / "template"
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *SOURCES],
        TEMPLATE_DIR,
    )
    for name in filter(None, listed.stdout.split("\0")):
        if (TEMPLATE_DIR / name).is_file():
            (template / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TEMPLATE_DIR / name, template / name)
    run(["git", "init", "--quiet", "--initial-branch=main"], template)
    current = {name: (template / name).read_text() for name in REWORDED}
    for name, text in current.items():
        (template / name).write_text(f"# Previous release.\n{text}")
    for tag, files in (("0.1.0", None), ("0.2.0", current)):
        for name, text in (files or {}).items():
            (template / name).write_text(text)
        run(["git", "add", "--all"], template)
        run(["git", "commit", "--quiet", "-m", f"Release {tag}"], template)
        run(["git", "tag", "-a", tag, "-m", tag], template)
    return template


def render_fleet(template: Path, fleet: Path, count: int) -> None:
    answers = itertools.cycle(itertools.product(TIERS, PROVIDERS, REMOTES))
    fleet.mkdir()
    for number in range(count):
        tier, provider, remote = next(answers)
        name = f"model-{number:02d}"
        data = {"project_name": f"Model {number:02d}", "stack_tier": tier, "ci_provider": provider}
        data["data_remote"] = remote
        args = [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", "--quiet"]
        args += ["--vcs-ref", "0.1.0", *(f"--data={k}={v}" for k, v in data.items())]
        run([*args, str(template), str(fleet / name)], fleet)
        params = fleet / name / "params.yaml"
        params.write_text(params.read_text().replace("n_estimators: 150", "n_estimators: 120"))
        run(["git", "commit", "--quiet", "-am", "Team: fewer trees"], fleet / name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as scratch:
        root = Path(scratch)
        template = build_releases(root)
        start = time.perf_counter()
        render_fleet(template, root / "fleet", args.repos)
        took = time.perf_counter() - start
        print(f"set-up: {args.repos} repositories rendered at 0.1.0 in {took:.0f} s")
        copies = {kind: root / kind for kind in ("fleet-update", "one-by-one", "bare-copier")}
        for target in copies.values():
            shutil.copytree(root / "fleet", target, symlinks=True)

        # The fleet comes from a throwaway copy with the two releases: named, or fleet refuses it.
        os.environ["FLEET_ALLOW_TEMPLATES"] = str(template)
        fleet_command = ["make", "--no-print-directory", "-C", str(TEMPLATE_DIR), "fleet-update"]
        fleet_command += [f"REPOS={copies['fleet-update']}/*", "FORMAT=json", f"JOBS={args.jobs}"]
        fleet_wall, result = timed(fleet_command, root)
        document = json.loads(result.stdout[result.stdout.index("{\n") :])

        one_by_one = []
        for repo in sorted(copies["one-by-one"].iterdir()):
            seconds, update = timed(["make", "--no-print-directory", "template-update"], repo)
            if update.returncode != 0:
                sys.exit(f"make template-update failed in {repo}:\n{update.stderr}")
            one_by_one.append(seconds)

        bare = []
        for repo in sorted(copies["bare-copier"].iterdir()):
            copier = [sys.executable, "-m", "copier", "update", "--trust", "--defaults"]
            seconds, update = timed([*copier, "--conflict", "inline"], repo)
            if update.returncode != 0:
                sys.exit(f"copier update failed in {repo}:\n{update.stderr}")
            bare.append(seconds)

    sequential = sum(one_by_one)
    print(f"fleet-update outcome: {document['summary']} (status {document['status']})")
    print(f"{'':44}{'wall s':>10}{'ratio':>10}")
    print(f"{'make template-update, one by one (baseline)':44}{sequential:10.1f}{1:10.2f}")
    label = f"make fleet-update, JOBS={args.jobs}"
    print(f"{label:44}{fleet_wall:10.1f}{fleet_wall / sequential:10.2f}")
    median_bare, median_make = statistics.median(bare), statistics.median(one_by_one)
    print(f"{'per repository, median':44}{'s':>10}{'ratio':>10}")
    print(f"{'bare copier update (baseline)':44}{median_bare:10.1f}{1:10.2f}")
    print(f"{'make template-update':44}{median_make:10.1f}{median_make / median_bare:10.2f}")
    return 0 if document["status"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
