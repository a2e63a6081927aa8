"""Post-copy task: make the rendered project a git repository with a first commit, DVC-ready,
with uv.lock in that commit so that the first CI run and the container build are reproducible.

Copier runs it on `copy` only (see `_tasks` in copier.yml), in the new project's folder. It is
idempotent: a second run finds the repository and the commit and changes nothing. A failing step
prints what failed and the commands to finish by hand; the rendered files are kept either way.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

FIRST_COMMIT_MESSAGE = "Initial commit from template"
DVC_FILES = (".dvc/config", ".dvc/.gitignore", ".dvcignore")


class StepFailedError(RuntimeError):
    """A setup step failed; the message says how to finish by hand."""


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)


def git_identity_args(cwd: Path, author_name: str, author_email: str) -> list[str]:
    """Use the user's git identity when configured, else the template answers for this commit."""
    args: list[str] = []
    if run(["git", "config", "user.name"], cwd).returncode != 0:
        args += ["-c", f"user.name={author_name}"]
    if run(["git", "config", "user.email"], cwd).returncode != 0:
        args += ["-c", f"user.email={author_email}"]
    return args


def ensure_git_repository(project: Path) -> bool:
    """`git init` unless the project folder is already a repository's top level."""
    if (project / ".git").exists():
        return False
    result = run(["git", "init", "--quiet", "--initial-branch=main"], project)
    if result.returncode != 0:
        raise StepFailedError(f"git init failed: {result.stderr.strip()}\nFinish by hand: git init")
    return True


def has_commit(project: Path) -> bool:
    return run(["git", "rev-parse", "--verify", "--quiet", "HEAD"], project).returncode == 0


def ensure_first_commit(project: Path, author_name: str, author_email: str) -> bool:
    """Commit the rendered files, unless the repository already has a commit."""
    if has_commit(project):
        return False
    identity = git_identity_args(project, author_name, author_email)
    steps = [
        ["git", "add", "--all"],
        [
            "git",
            *identity,
            "commit",
            "--quiet",
            "--no-verify",
            "-m",
            "Initial commit from template",
        ],
    ]
    for step in steps:
        result = run(step, project)
        if result.returncode != 0:
            raise StepFailedError(
                f"`{' '.join(step)}` failed: {result.stderr.strip() or result.stdout.strip()}\n"
                'Finish by hand: git add --all && git commit -m "Initial commit from template"'
            )
    return True


def ensure_lock_file(project: Path) -> bool:
    """Resolve uv.lock now, so the first commit pins every dependency.

    Not fatal: without uv or a network the project is still usable, and `make setup` writes the
    lock file later (commit it then). Returns whether it wrote the lock file.
    """
    if (project / "uv.lock").exists():
        return False
    uv = shutil.which("uv")
    if uv is None:
        print("post-copy: no uv; `make setup` will write uv.lock: commit it.", file=sys.stderr)
        return False
    try:
        result = subprocess.run(
            [uv, "lock", "--quiet"], cwd=project, capture_output=True, text=True, timeout=600
        )
    except subprocess.TimeoutExpired:
        result = None
    if result is None or result.returncode != 0:
        reason = "timed out" if result is None else result.stderr.strip().splitlines()[-1:]
        print(
            f"post-copy: `uv lock` failed ({reason}); run `make setup` and commit uv.lock.",
            file=sys.stderr,
        )
        return False
    return True


def check_dvc_initialised(project: Path) -> None:
    """The template renders what `dvc init` writes (.dvc/config with the remote, .dvcignore).

    Copier's Python has no DVC, and `dvc init` would overwrite the rendered remote, so this only
    checks the files; `make setup` installs DVC itself.
    """
    missing = [name for name in DVC_FILES if not (project / name).exists()]
    if missing:
        raise StepFailedError(
            f"DVC files missing: {', '.join(missing)}\n"
            "Finish by hand: make setup && uv run dvc init"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--author-name", required=True)
    parser.add_argument("--author-email", required=True)
    parser.add_argument("--project", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    project: Path = args.project.resolve()

    if shutil.which("git") is None:
        print(
            "post-copy: git is not installed; run `git init` and commit by hand.", file=sys.stderr
        )
        return 1
    try:
        check_dvc_initialised(project)
        created = ensure_git_repository(project)
        locked = not has_commit(project) and ensure_lock_file(project)
        committed = ensure_first_commit(project, args.author_name, args.author_email)
    except StepFailedError as error:
        print(f"post-copy: {error}", file=sys.stderr)
        return 1
    steps = ((created, "git init"), (locked, "uv.lock"), (committed, "first commit"))
    done = [msg for flag, msg in steps if flag]
    print(f"post-copy: {', '.join(done) if done else 'nothing to do (already initialised)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
