"""Keep this repository on the template's latest release: `make template-update` / `template-check`.

    python tools/template_update.py update [--data KEY=VALUE ...] [--vcs-ref REF] [--format json]
    python tools/template_update.py check [--format text|json] [--fail-if-available]
    python tools/template_update.py conflicts

`update` runs `copier update --conflict inline` non-interactively with the answers recorded in
.copier-answers.yml, then looks for what Copier leaves behind when your edits and the template's
touch the same lines: conflict markers (and unmerged files). Copier exits 0 in that case; this
script exits 4, lists the files and says how to finish, so that nothing (no CI job either) commits
half-merged code. It never commits. The scan also reports `.rej` files, which only a hand-run
`copier update --conflict rej` writes. Whether it conflicts or not, it reports what the update did:
files added, modified, removed (flagging the ones you had edited, and where their last version
is), recreated (you had deleted them), and the files the template changed that the update left
as you have them (team-owned files, or deleted here): their upstream diff is saved under
.template-update/ (git-ignored) for you to read. For that it renders both releases with your
answers in a temporary folder.
`check` asks Copier whether a newer release exists (`--format json` for fleet scripts). A
repository rendered from a commit after the latest release (no tag) is told so: it updates at
the next release.
`conflicts` runs the conflict scan alone, to confirm none is left after resolving.
After an update that changed pyproject.toml (or left no uv.lock), `update` re-resolves uv.lock with
`uv lock` (pins kept where they still fit), so CI's `uv sync --locked` accepts the result.

Exit status, the same for every command (also the `status` field of the JSON output; through
make any failure is make's own 2, so scripts read `status` or call this script):
  0  done: up to date, or the update applied without conflict
  1  the command itself failed (not a Copier project, dirty work tree, Copier failed, ...)
  3  `check --fail-if-available`: an update is waiting
  4  `update` / `conflicts`: conflicts are left to resolve
  5  the template cannot be reached (a path not on this machine, a git remote that does not answer)

`update` and `check` need Copier importable by the Python running this script; the Makefile runs
it with the pinned Copier in a throwaway uv environment. `conflicts` needs only git. This script
also updates repositories rendered before it existed: `python <template>/template/tools/
template_update.py --project <repo> update` (what the template's `make fleet-update` runs).
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ANSWERS_FILE = ".copier-answers.yml"
FAILED_EXIT = 1
UPDATE_AVAILABLE_EXIT = 3  # `check --fail-if-available`
CONFLICTS_EXIT = 4
UNREACHABLE_EXIT = 5
# The update's upstream diffs of files it left as they are (git-ignored; replaced at each update).
NOTES_DIR = ".template-update"
# Written by Copier or by the copy's tasks, not rendered: never compared with a render.
NOT_RENDERED = frozenset({ANSWERS_FILE, "uv.lock"})
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

    exit_code = FAILED_EXIT


class TemplateUnreachableError(UpdateError):
    """The template recorded in the answers cannot be read from here."""

    exit_code = UNREACHABLE_EXIT


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


def git_url(src: str) -> str:
    """The URL git reads for a `_src_path` (Copier's `gh:`/`gl:` shortcuts, `git+` prefix)."""
    for short, host in (("gh:", "https://github.com/"), ("gl:", "https://gitlab.com/")):
        if src.startswith(short):
            return host + src[len(short) :]
    return src.removeprefix("git+")


def check_template_reachable(src: str, project: Path | None = None) -> None:
    """The template must be readable from here: a local path that exists, a remote that answers.

    A relative path is read from the project, as Copier (run there) reads it.
    """
    recorded = src
    if not REMOTE.match(src):
        src = str((project or Path.cwd()) / Path(src).expanduser())
    if not REMOTE.match(src) and not Path(src).is_dir():
        raise TemplateUnreachableError(
            f"the template recorded in {ANSWERS_FILE} (_src_path: {recorded}) is not a folder on"
            " this machine. Point `_src_path` at the template's git URL (edit the line, commit),"
            " then retry."
        )
    url = git_url(src)
    try:
        probe = subprocess.run(
            ["git", "ls-remote", "--tags", "--quiet", url],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except subprocess.TimeoutExpired:
        message = f"the template at {recorded} did not answer within 120 s"
        raise TemplateUnreachableError(message) from None
    if probe.returncode != 0:
        reason = " ".join(probe.stderr.split()) or f"git exited {probe.returncode}"
        raise TemplateUnreachableError(f"cannot read the template at {recorded}: {reason}")


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


def copier(
    project: Path, *args: str, capture: bool = False, quiet_stdout: bool = False
) -> subprocess.CompletedProcess[str]:
    """Copier with this Python; `quiet_stdout` sends its output to stderr (JSON on stdout)."""
    return subprocess.run(
        [sys.executable, "-m", "copier", *args],
        cwd=project,
        capture_output=capture,
        stdout=sys.stderr if quiet_stdout and not capture else None,
        text=True,
        check=False,
    )


# --- what an update did ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Removed:
    path: str
    edited_here: bool  # this repository's version differed from the previous release's
    last_version: str  # a command that prints it


@dataclass(frozen=True)
class UpstreamChange:
    """A file the template changed between the releases that the update left as it is here."""

    path: str
    here: str  # "kept as you have it" (team-owned, or your version) or "deleted here"
    diff: str  # the template's change, saved under NOTES_DIR


@dataclass
class UpdateReport:
    from_version: str
    to_version: str
    base_commit: str
    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    removed: list[Removed] = field(default_factory=list)
    recreated: list[str] = field(default_factory=list)
    upstream_changes: list[UpstreamChange] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def render_release(src: str, ref: str, answers: dict[str, Any], dest: Path) -> dict[str, bytes]:
    """Every file the release renders with these answers (no task run), by path."""
    import yaml

    data_file = dest.parent / f"{dest.name}-answers.yml"
    data = {key: value for key, value in answers.items() if not key.startswith("_")}
    data_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    flags = ("--trust", "--skip-tasks", "--defaults", "--quiet", "--overwrite")
    args = ("copy", *flags, "--vcs-ref", ref, "--data-file", str(data_file), src, str(dest))
    result = copier(dest.parent, *args, capture=True)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise UpdateError(f"could not render release {ref} to compare with: {reason}")
    return {
        path.relative_to(dest).as_posix(): path.read_bytes()
        for path in sorted(dest.rglob("*"))
        if path.is_file() and path.relative_to(dest).as_posix() not in NOT_RENDERED
    }


def committed_blob(project: Path, commit: str, path: str) -> bytes | None:
    found = subprocess.run(
        ["git", "cat-file", "blob", f"{commit}:{path}"], cwd=project, capture_output=True
    )
    return found.stdout if found.returncode == 0 else None


def unified_diff(path: str, old: bytes | None, new: bytes | None, versions: tuple[str, str]) -> str:
    try:
        before = (old or b"").decode("utf-8").splitlines(keepends=True)
        after = (new or b"").decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return f"{path}: not text; compare the two releases by hand\n"
    names = [f"{side}/{path} ({version})" for side, version in zip("ab", versions, strict=True)]
    if old is None:
        names[0] = "/dev/null"
    if new is None:
        names[1] = "/dev/null"
    return "".join(difflib.unified_diff(before, after, fromfile=names[0], tofile=names[1]))


def save_upstream_diffs(project: Path, diffs: dict[str, str]) -> None:
    notes = project / NOTES_DIR
    shutil.rmtree(notes, ignore_errors=True)
    if not diffs:
        return
    notes.mkdir()
    (notes / ".gitignore").write_text("# Written by template updates; never committed.\n*\n")
    for path, text in diffs.items():
        target = notes / f"{path}.diff"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def describe_update(
    project: Path, src: str, before: dict[str, Any], after: dict[str, Any], base: str
) -> UpdateReport:
    """Compare the work tree with `base` and with both releases rendered with the answers."""
    from_version, to_version = str(before["_commit"]), str(after["_commit"])
    report = UpdateReport(from_version, to_version, base)
    with tempfile.TemporaryDirectory(prefix="template-update-") as scratch:
        old = render_release(src, from_version, before, Path(scratch) / "previous")
        new = render_release(src, to_version, after, Path(scratch) / "next")
    changed: set[str] = set()
    for entry in status(project, "--untracked-files=all"):
        if entry.path.startswith(f"{NOTES_DIR}/"):
            continue
        changed.add(entry.path)
        if "D" in entry.code:
            ours = committed_blob(project, base, entry.path)
            report.removed.append(
                Removed(
                    entry.path, ours != old.get(entry.path), f"git show {base[:12]}:{entry.path}"
                )
            )
        elif entry.code in ("??", "A "):  # new since `base`: the tree was clean before
            (report.recreated if entry.path in old else report.added).append(entry.path)
        else:
            report.modified.append(entry.path)
    diffs: dict[str, str] = {}
    for path in sorted((set(old) | set(new)) - changed):
        if old.get(path) == new.get(path):
            continue
        target = project / path
        here = target.read_bytes() if target.is_file() else None
        if here == new.get(path) or (here is None and path not in new):
            continue
        diffs[path] = unified_diff(path, old.get(path), new.get(path), (from_version, to_version))
        state = "deleted here" if here is None else "kept as you have it"
        report.upstream_changes.append(UpstreamChange(path, state, f"{NOTES_DIR}/{path}.diff"))
    save_upstream_diffs(project, diffs)
    return report


def report_text(report: UpdateReport) -> str:
    changed = len(report.added) + len(report.modified) + len(report.removed) + len(report.recreated)
    if report.conflicts:
        lines = [
            f"Template update {report.from_version} -> {report.to_version} left conflicts"
            f" (listed on stderr); it changed {changed} file(s):"
        ]
    elif changed:
        lines = [
            f"Template update applied ({report.from_version} -> {report.to_version}):"
            f" {changed} file(s) changed. Review `git diff`,",
            "run `make ci`, then commit (`git add -A && git commit`).",
        ]
    else:
        lines = [f"Template update {report.from_version} -> {report.to_version}: no file changed."]
    for title, paths in (("Added", report.added), ("Modified", report.modified)):
        if paths and report.conflicts:
            lines.append(f"{title}:")
            lines += [f"  {path}" for path in paths]
    if report.removed:
        lines.append("Removed by the update (your last version: the command shown):")
        for item in report.removed:
            flag = "  (you had edited it)" if item.edited_here else ""
            lines.append(f"  {item.path}{flag}  ->  {item.last_version}")
    if report.recreated:
        lines.append(
            "Recreated (you had deleted them; delete them again if you still do not want them):"
        )
        lines += [f"  {path}" for path in report.recreated]
    if report.upstream_changes:
        lines.append(
            "Changed by the template but left as they are here (team-owned or deleted here);"
            " read the template's change and apply what you want by hand:"
        )
        lines += [f"  {c.path}  ({c.here})  ->  {c.diff}" for c in report.upstream_changes]
    lines += report.notes
    return "\n".join(lines)


def report_json(report: UpdateReport, answers: dict[str, Any], status_code: int) -> str:
    document = {
        "status": status_code,
        "project": answers.get("project_slug"),
        "template": answers.get("_src_path"),
        **asdict(report),
    }
    return json.dumps(document)


def relock(project: Path) -> str | None:
    """Re-resolve uv.lock when the update changed pyproject.toml or there is none; what happened."""
    changed = {entry.path for entry in status(project)}
    missing = not (project / "uv.lock").exists()
    if "pyproject.toml" not in changed and not missing:
        return None
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv or shutil.which(uv) is None:
        return "No uv here to re-resolve uv.lock: run `uv lock` (or `make setup`), commit uv.lock."
    result = subprocess.run(
        [uv, "lock", "--quiet"], cwd=project, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no message"])[-1]
        return f"`uv lock` failed ({reason}): fix pyproject.toml, run `uv lock`, commit uv.lock."
    if missing:
        return "uv.lock written (there was none): commit it with the update."
    return "uv.lock re-resolved for the updated pyproject.toml (existing pins kept)."


def check_update(project: Path) -> dict[str, Any]:
    """Copier's check-update answer: current_version, latest_version, update_available."""
    found = copier(project, "check-update", "--output-format", "json", ".", capture=True)
    if found.returncode != 0:
        message = (found.stderr.strip() or found.stdout.strip()).splitlines()
        raise UpdateError(f"copier check-update failed: {message[-1] if message else ''}")
    return json.loads(found.stdout)


def after_latest_release(found: dict[str, Any]) -> bool:
    """Rendered from a commit after the latest tag (Copier: `0.1.0.post3.dev0+g1a2b3c4`)."""
    current = str(found["current_version"])
    return (
        not found["update_available"]
        and current != str(found["latest_version"])
        and bool(re.search(r"\.post\d|\.dev\d|\+", current))
    )


def nothing_to_update(found: dict[str, Any]) -> str:
    if after_latest_release(found):
        return (
            f"Rendered from an untagged commit after release {found['latest_version']}"
            f" ({found['current_version']}): no newer release yet, nothing to update. The next"
            " release updates it (or `--vcs-ref <commit>` for a commit of the template)."
        )
    return (
        f"Already on the template's latest release ({found['current_version']}): nothing to update."
    )


def update(project: Path, data: list[str], vcs_ref: str | None, output_format: str) -> int:
    answers = read_answers(project)
    src = str(answers["_src_path"])
    check_template_reachable(src, project)
    check_clean(project)
    check_copier()
    base = git(project, "rev-parse", "HEAD").strip()
    if not vcs_ref:
        found = check_update(project)
        if not found["update_available"]:
            if not data:
                message = nothing_to_update(found)
                if output_format == "json":
                    print(
                        json.dumps(
                            {
                                "status": 0,
                                "project": answers.get("project_slug"),
                                "template": src,
                                "from_version": str(answers["_commit"]),
                                "to_version": str(answers["_commit"]),
                                "note": message,
                            }
                        )
                    )
                else:
                    print(message)
                return 0
            # Answers change on the release this repository is on (possibly an untagged commit,
            # which Copier would otherwise "downgrade" to the latest tag and refuse).
            vcs_ref = str(answers["_commit"])
    args = ["update", "--trust", "--defaults", "--conflict", "inline"]
    for item in data:
        args += ["--data", item]
    args += ["--vcs-ref", vcs_ref] if vcs_ref else []
    result = copier(project, *args, quiet_stdout=output_format == "json")
    conflicts = scan(project)
    if result.returncode != 0 and not conflicts:
        raise UpdateError(
            f"copier update exited {result.returncode} (its message is above). Undo partial"
            " changes with `git reset --hard HEAD && git clean -fd`."
        )
    after = read_answers(project)
    lock_note = None if conflicts else relock(project)
    # The renders run in a temporary folder: a relative template path is the project's.
    local = not REMOTE.match(src)
    render_src = str((project / Path(src).expanduser()).resolve()) if local else src
    report = describe_update(project, render_src, answers, after, base)
    report.conflicts = conflicts
    report.notes += [lock_note] if lock_note else []
    code = CONFLICTS_EXIT if conflicts else 0
    if conflicts:
        print(conflict_report(conflicts), file=sys.stderr)
    print(report_json(report, answers, code) if output_format == "json" else report_text(report))
    return code


def check_result(answers: dict[str, Any], found: dict[str, Any], code: int) -> dict[str, Any]:
    """Copier's check-update answer, with what a fleet report needs to name the repository."""
    result = {
        "project": answers.get("project_slug"),
        "template": answers["_src_path"],
        "current_version": found["current_version"],
        "latest_version": found["latest_version"],
        "update_available": bool(found["update_available"]),
        "status": code,
    }
    if after_latest_release(found):
        result["untagged"] = True
    return result


def check_text(result: dict[str, Any]) -> str:
    name = result["project"] or "this repository"
    current, latest = result["current_version"], result["latest_version"]
    if result.get("untagged"):
        return (
            f"{name}: rendered from an untagged commit after the template's latest release"
            f" {latest} ({current}); no newer release yet. The next release updates it."
        )
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
        check_template_reachable(str(answers["_src_path"]), project)
        check_copier()
        found = check_update(project)
    except UpdateError as error:
        if output_format != "json":
            raise
        failed = {
            "project": answers.get("project_slug"),
            "template": answers.get("_src_path"),
            "current_version": answers.get("_commit"),
            "error": str(error),
            "status": error.exit_code,
        }
        print(json.dumps(failed))
        return error.exit_code
    waiting = fail_if_available and bool(found["update_available"])
    result = check_result(answers, found, UPDATE_AVAILABLE_EXIT if waiting else 0)
    print(json.dumps(result) if output_format == "json" else check_text(result))
    return result["status"]


def conflicts_command(project: Path) -> int:
    conflicts = scan(project)
    if conflicts:
        print(conflict_report(conflicts), file=sys.stderr)
        return CONFLICTS_EXIT
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
    update_parser.add_argument("--format", choices=("text", "json"), default="text")
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
            return update(project, args.data, args.vcs_ref, args.format)
        if args.command == "check":
            return check(project, args.format, args.fail_if_available)
        return conflicts_command(project)
    except UpdateError as error:
        if getattr(args, "format", "text") == "json" and args.command == "update":
            print(json.dumps({"status": error.exit_code, "error": str(error)}))
        print(f"template-{args.command}: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
