"""Keep this repository on the template's latest release: `make template-update` / `template-check`.

    python tools/template_update.py update [--data KEY=VALUE ...] [--vcs-ref REF]
    python tools/template_update.py check [--format text|json] [--fail-if-available]
    python tools/template_update.py conflicts

`update` runs `copier update --conflict inline` non-interactively with the answers recorded in
.copier-answers.yml, then looks for what Copier leaves behind when your edits and the template's
touch the same lines: conflict markers (and unmerged files). Copier exits 0 in that case; this
script exits 1, lists the files and says how to finish, so that nothing (no CI job either) commits
half-merged code. It never commits. The scan also reports `.rej` files, which only a hand-run
`copier update --conflict rej` writes. `check` asks Copier whether a newer release exists
(`--format json` for fleet scripts).
`check --fail-if-available` exits 3 when an update is waiting (for CI jobs that flag it).
`conflicts` runs the conflict scan alone, to confirm none is left after resolving.
After an update that changed pyproject.toml (or left no uv.lock), `update` re-resolves uv.lock with
`uv lock` (pins kept where they still fit), so CI's `uv sync --locked` accepts the result.

`update` and `check` need Copier importable by the Python running this script; the Makefile runs
it with the pinned Copier in a throwaway uv environment. `conflicts` needs only git.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ANSWERS_FILE = ".copier-answers.yml"
UPDATE_AVAILABLE_EXIT = 3  # `check --fail-if-available`; 1 stays "the check itself failed"
# The lines git and Copier write around a conflict ("<<<<<<< before updating", ...).
MARKER_PREFIXES = (b"<<<<<<< ", b">>>>>>> ")
# A URL (https://, ssh://, file://, git+...), an scp-like `git@host:path` or a Copier shortcut.
REMOTE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://|[\w.-]+@[\w.-]+:|gh:|gl:|git\+)")

RESOLVE_HELP = """\
Nothing was committed. Resolve each file:
  - conflict markers: keep the right lines between `<<<<<<< before updating` (yours) and
    `>>>>>>> after updating` (the template's), delete the marker lines, then `git add <file>`;
  - rejected hunks (<file>.rej): apply them to <file> by hand, then delete the .rej file.
Then confirm none is left with `python tools/template_update.py conflicts`, run `make ci`,
review `git diff --staged` and commit.
To abandon the update instead: `git reset --hard HEAD && git clean -fd` (the tree was clean
before the update, so this drops only what the update changed)."""


class UpdateError(RuntimeError):
    """The update cannot start or did not finish; the message says what to do."""


@dataclass(frozen=True)
class Conflict:
    path: str
    reason: str


@dataclass(frozen=True)
class StatusEntry:
    code: str  # git's two-letter XY status
    path: str


def git(project: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=project, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise UpdateError(f"`git {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


def status(project: Path, *options: str) -> list[StatusEntry]:
    """`git status --porcelain` entries; for a rename, the new path."""
    fields = git(project, "status", "--porcelain=v1", "-z", *options).split("\0")
    entries: list[StatusEntry] = []
    index = 0
    while index < len(fields):
        field = fields[index]
        index += 1
        if not field:
            continue
        code, path = field[:2], field[3:]
        if "R" in code or "C" in code:
            index += 1  # the source path follows a rename or copy
        entries.append(StatusEntry(code, path))
    return entries


def has_marker_lines(path: Path) -> bool:
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return any(line.startswith(MARKER_PREFIXES) for line in data.splitlines())


def scan(project: Path) -> list[Conflict]:
    """What an update left unresolved: unmerged files, marker lines, `.rej` files.

    Only files that differ from HEAD are read: committed files are not the update's doing (and
    this very script holds the marker strings, though never at the start of a line).
    """
    found: dict[str, str] = {}
    for path in git(project, "diff", "--name-only", "-z", "--diff-filter=U").split("\0"):
        if path:
            found[path] = "unmerged (git marks it conflicted)"
    for entry in status(project, "--untracked-files=all"):
        if entry.path in found or entry.code.strip() == "D":
            continue
        if entry.path.endswith(".rej"):
            found[entry.path] = "rejected hunks"
        elif has_marker_lines(project / entry.path):
            found[entry.path] = "conflict markers"
    # A `*.rej` rule in .gitignore must not hide rejected hunks.
    for entry in status(project, "--ignored"):
        if entry.code == "!!" and entry.path.endswith(".rej"):
            found.setdefault(entry.path, "rejected hunks")
    return [Conflict(path, reason) for path, reason in sorted(found.items())]


def conflict_report(conflicts: list[Conflict]) -> str:
    width = max(len(c.path) for c in conflicts)
    lines = [f"Template update left {len(conflicts)} file(s) to resolve:"]
    lines += [f"  {c.path.ljust(width)}  {c.reason}" for c in conflicts]
    return "\n".join([*lines, RESOLVE_HELP])


def read_answers(project: Path) -> dict[str, Any]:
    path = project / ANSWERS_FILE
    if not path.is_file():
        raise UpdateError(
            f"no {ANSWERS_FILE}: this repository does not record the template it came from, so"
            " Copier cannot update it"
        )
    import yaml  # PyYAML: a dependency of Copier and of this project

    answers = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = [key for key in ("_src_path", "_commit") if not answers.get(key)]
    if missing:
        raise UpdateError(f"{ANSWERS_FILE} lacks {', '.join(missing)}; Copier cannot update")
    return answers


def check_template_reachable(src: str) -> None:
    """A local template path must exist here (CI runners and other machines rarely have it)."""
    if REMOTE.match(src) or Path(src).expanduser().is_dir():
        return
    raise UpdateError(
        f"the template recorded in {ANSWERS_FILE} (_src_path: {src}) is not a folder on this"
        " machine. Point `_src_path` at the template's git URL (edit the line, commit), then"
        " retry."
    )


def check_clean(project: Path) -> None:
    dirty = status(project, "--untracked-files=all")
    if dirty:
        listed = "\n".join(f"  {e.code} {e.path}" for e in dirty)
        raise UpdateError(
            f"the work tree has uncommitted changes; commit or stash them first (Copier merges the"
            f" template into committed files only):\n{listed}"
        )


def check_copier() -> None:
    if importlib.util.find_spec("copier") is None:
        raise UpdateError(
            f"Copier is not installed for {sys.executable}. Run `make template-update` or"
            " `make template-check`: they run this script with the pinned Copier."
        )


def copier(project: Path, *args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "copier", *args],
        cwd=project,
        capture_output=capture,
        text=True,
        check=False,
    )


def change_summary(project: Path) -> str:
    """What the update changed, with the removed files called out (an answer change removes a
    file even if you edited it; HEAD still has your version)."""
    entries = status(project, "--untracked-files=all")
    if not entries:
        return "Already on the template's latest release: nothing changed."
    removed = [e.path for e in entries if "D" in e.code]
    lines = [f"Template update applied: {len(entries)} file(s) changed. Review `git diff`,"]
    lines.append("run `make ci`, then commit (`git add -A && git commit`).")
    if removed:
        lines.append("Removed by the update (restore with `git checkout HEAD -- <file>`):")
        lines += [f"  {path}" for path in removed]
    return "\n".join(lines)


def relock(project: Path) -> str | None:
    """Re-resolve uv.lock when the update changed pyproject.toml or there is none; what happened."""
    changed = {entry.path for entry in status(project)}
    if "pyproject.toml" not in changed and (project / "uv.lock").exists():
        return None
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv or shutil.which(uv) is None:
        return "pyproject.toml changed: run `uv lock` (or `make setup`) and commit uv.lock."
    result = subprocess.run(
        [uv, "lock", "--quiet"], cwd=project, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no message"])[-1]
        return f"`uv lock` failed ({reason}): fix pyproject.toml, run `uv lock`, commit uv.lock."
    return "uv.lock re-resolved for the updated pyproject.toml (existing pins kept)."


def update(project: Path, data: list[str], vcs_ref: str | None) -> int:
    answers = read_answers(project)
    check_template_reachable(str(answers["_src_path"]))
    check_clean(project)
    check_copier()
    args = ["update", "--trust", "--defaults", "--conflict", "inline"]
    for item in data:
        args += ["--data", item]
    if vcs_ref:
        args += ["--vcs-ref", vcs_ref]
    result = copier(project, *args)
    conflicts = scan(project)
    if conflicts:
        print(conflict_report(conflicts), file=sys.stderr)
        return 1
    if result.returncode != 0:
        raise UpdateError(
            f"copier update exited {result.returncode} (its message is above). Undo partial"
            " changes with `git reset --hard HEAD && git clean -fd`."
        )
    lock_note = relock(project)
    print(change_summary(project))
    if lock_note:
        print(lock_note)
    return 0


def check_result(answers: dict[str, Any], copier_json: str) -> dict[str, Any]:
    """Copier's check-update answer, with what a fleet report needs to name the repository."""
    found = json.loads(copier_json)
    return {
        "project": answers.get("project_slug"),
        "template": answers["_src_path"],
        "current_version": found["current_version"],
        "latest_version": found["latest_version"],
        "update_available": bool(found["update_available"]),
    }


def check_text(result: dict[str, Any]) -> str:
    name = result["project"] or "this repository"
    current, latest = result["current_version"], result["latest_version"]
    if not result["update_available"]:
        return f"{name}: on the template's latest release ({current})."
    return (
        f"{name}: template release {latest} is available (this repository is on {current}).\n"
        f"What changes: CHANGELOG.md of {result['template']}. Update: `make template-update`."
    )


def check(project: Path, output_format: str, fail_if_available: bool = False) -> int:
    answers: dict[str, Any] = {}
    try:
        answers = read_answers(project)
        check_template_reachable(str(answers["_src_path"]))
        check_copier()
        found = copier(project, "check-update", "--output-format", "json", ".", capture=True)
        if found.returncode != 0:
            message = (found.stderr.strip() or found.stdout.strip()).splitlines()
            raise UpdateError(f"copier check-update failed: {message[-1] if message else ''}")
        result = check_result(answers, found.stdout)
    except UpdateError as error:
        if output_format != "json":
            raise
        failed = {
            "project": answers.get("project_slug"),
            "template": answers.get("_src_path"),
            "current_version": answers.get("_commit"),
            "error": str(error),
        }
        print(json.dumps(failed))
        return 1
    print(json.dumps(result) if output_format == "json" else check_text(result))
    return UPDATE_AVAILABLE_EXIT if fail_if_available and result["update_available"] else 0


def conflicts_command(project: Path) -> int:
    conflicts = scan(project)
    if conflicts:
        print(conflict_report(conflicts), file=sys.stderr)
        return 1
    print("No conflict markers, .rej files or unmerged files left.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="repository root")
    commands = parser.add_subparsers(dest="command", required=True)
    update_parser = commands.add_parser("update", help="update from the template's newest release")
    update_parser.add_argument(
        "--data", action="append", default=[], metavar="KEY=VALUE", help="change an answer"
    )
    update_parser.add_argument("--vcs-ref", help="a template tag or commit instead of the newest")
    check_parser = commands.add_parser("check", help="is a newer template release out?")
    check_parser.add_argument("--format", choices=("text", "json"), default="text")
    check_parser.add_argument(
        "--fail-if-available",
        action="store_true",
        help=f"exit {UPDATE_AVAILABLE_EXIT} when a newer release exists",
    )
    commands.add_parser("conflicts", help="list conflicts an update left unresolved")
    args = parser.parse_args(argv)
    project: Path = args.project.resolve()
    try:
        if args.command == "update":
            return update(project, args.data, args.vcs_ref)
        if args.command == "check":
            return check(project, args.format, args.fail_if_available)
        return conflicts_command(project)
    except UpdateError as error:
        print(f"template-{args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
