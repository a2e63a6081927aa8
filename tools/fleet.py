"""Check and update many repositories made by this template: `make fleet-check` / `fleet-update`.

    python tools/fleet.py check  REPO... [--format text|json] [--jobs N] [--allow-template SRC]...
    python tools/fleet.py update REPO... [--format text|json] [--jobs N] [--branch NAME]
                                         [--vcs-ref REF] [--allow-template SRC]...

REPO arguments are folders or globs (`~/src/ml/*`). Each repository is checked and updated by the
newest form of the tool every generated repository uses, this checkout's runtime
(runtime/src/mlops_stack_runtime/tools/template_update.py, run with this Python, which must have
Copier, as `--project REPO`): repositories on older releases, even from before the tool existed,
get the same checks and the same report.

Only this template's repositories are touched. An update runs `copier update --trust`: the
template's tasks and migrations run on this machine, as the operator. So before anything else each
repository's recorded template (`_src_path` in .copier-answers.yml) must be this template: this
checkout's folder or the URL of one of its git remotes (compared normalised: a path and its
file:// URL are the same, https://, ssh:// and git@host:path name the same repository, case, a
trailing slash and `.git` aside). A repository recorded from any other source is reported
`failed`, with the source it names, and nothing of that source is fetched or run, unless the
operator names that source: `--allow-template SRC` (repeatable; SRC as recorded, or any spelling
that normalises the same), or, through make, the environment variable FLEET_ALLOW_TEMPLATES
(sources separated by whitespace).

`update`, for each repository behind the template: leaves it alone if its work tree is dirty;
otherwise creates (or safely resets) the branch `template-update` from the branch it is on, runs
the update there, commits only when something changed, and switches back to the
branch it was on. When the update conflicts or fails, the repository is restored exactly as it
was (nothing is committed, the branch is not left behind) and the report lists the files:
`make template-update` in that repository then shows the conflicts for a person to resolve.
A repository whose `template-update` branch already holds the update to the latest release, on
top of the branch it is on, is reported as updated and not touched: running the command again is
a no-op.

The report names, per repository, the files the update added, modified, removed (flagging the
ones the team had edited: their last version is in the commit the update started from) and
recreated, and the files the template changed that the update left as the repository has them
(team-owned, or deleted there): their upstream diffs are under the repository's .template-update/.

Exit status (make's own status is 2 on any failure; the JSON's `status` field always carries
this value): 0 when every repository is up to date or updated; for `check`, 3 when an update is
waiting and nothing failed; 1 when any repository is dirty (update only), conflicts or failed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ANSWERS_FILE = ".copier-answers.yml"
TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
TOOL = TEMPLATE_ROOT / "runtime/src/mlops_stack_runtime/tools/template_update.py"
ALLOW_ENV = "FLEET_ALLOW_TEMPLATES"  # `make fleet-update ... FLEET_ALLOW_TEMPLATES="<src> ..."`
DEFAULT_BRANCH = "template-update"
TRAILER = "Template-Update"  # `Template-Update: 0.1.0 -> 0.2.0` in the commits this makes
UPDATE_WAITING_EXIT = 3

UP_TO_DATE, UPDATE_AVAILABLE, UPDATED = "up to date", "update available", "updated"
CONFLICTS, DIRTY, FAILED = "conflicts", "dirty", "failed"


class RepoError(RuntimeError):
    """The repository cannot be checked or updated; the message says why and what to do."""


@dataclass
class RepoResult:
    repo: str
    result: str = FAILED
    project: str | None = None
    from_version: str | None = None
    to_version: str | None = None
    branch: str | None = None
    detail: str = ""
    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    removed_edited: list[str] = field(default_factory=list)  # of `removed`: the team had edited
    recreated: list[str] = field(default_factory=list)
    upstream_changes: list[dict[str, str]] = field(default_factory=list)  # path, here, diff
    base_commit: str | None = None  # where the update started: removed files' last version
    conflicts: list[str] = field(default_factory=list)
    dirty: list[str] = field(default_factory=list)


# --- git ------------------------------------------------------------------------------------------
def git(repo: Path, *args: str, check: bool = True) -> str:
    result = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=False, env=_env()
    )
    if check and result.returncode != 0:
        raise RepoError(f"`git {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


def _env() -> dict[str, str]:
    # The repository's tool runs with this Python and its Copier; uv for its `uv lock`.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "GIT_DIR")}
    uv = env.get("UV") or shutil.which("uv")
    if uv:
        env["UV"] = uv
    return env


def changed_paths(repo: Path) -> list[tuple[str, str]]:
    """(XY status, path) of every change in the work tree, untracked files one by one."""
    out = git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    entries, parts = [], iter(out.split("\0"))
    for part in parts:
        if not part:
            continue
        code, path = part[:2], part[3:]
        if "R" in code or "C" in code:
            next(parts, None)  # the rename's source
        entries.append((code, path))
    return entries


def current_ref(repo: Path) -> str:
    """The branch checked out, or the commit when HEAD is detached."""
    branch = git(repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
    return branch or git(repo, "rev-parse", "HEAD").strip()


def branch_tip(repo: Path, branch: str) -> str | None:
    found = git(
        repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", check=False
    )
    return found.strip() or None


def commit_trailer(repo: Path, commit: str) -> str | None:
    message = git(repo, "log", "-1", "--format=%B", commit)
    found = re.search(rf"^{TRAILER}: (.+)$", message, flags=re.MULTILINE)
    return found.group(1).strip() if found else None


# --- which template ------------------------------------------------------------------------------
def normalise_source(src: str, base: Path | None = None) -> str:
    """One spelling for a template source: `path:<absolute resolved path>` for a folder (a plain,
    relative (from `base`), `~` or file:// path), `url:<host>/<path>` for a remote (https://,
    http://, ssh://, git://, scp-like git@host:path, Copier's gh:/gl: and git+ prefixes), lower
    case, without user, port, trailing slash or `.git`."""
    text = src.strip()
    text = text.removeprefix("git+")
    for short, host in (("gh:", "https://github.com/"), ("gl:", "https://gitlab.com/")):
        if text.startswith(short):
            text = host + text[len(short) :]
    if text.startswith("file://"):
        text = urllib.parse.unquote(urllib.parse.urlsplit(text).path)
    elif "://" in text:
        parts = urllib.parse.urlsplit(text)
        return _url_key(parts.hostname or "", parts.path)
    elif (scp := re.fullmatch(r"(?:[^@/:]+@)?([^@/:]+):(?!/)(.+)", text)) and not Path(
        text
    ).exists():
        return _url_key(scp.group(1), scp.group(2))
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return f"path:{path.resolve()}"


def _url_key(host: str, path: str) -> str:
    path = path.strip("/").removesuffix(".git").strip("/")
    return f"url:{host.lower()}/{path.lower()}"


def this_template_sources(root: Path = TEMPLATE_ROOT) -> set[str]:
    """This checkout's folder and the URLs of its git remotes, normalised."""
    sources = {normalise_source(str(root))}
    found = subprocess.run(
        ["git", "config", "--get-regexp", r"^remote\..*\.url$"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env=_env(),
    )
    for line in found.stdout.splitlines():
        _, _, url = line.partition(" ")
        if url.strip():
            sources.add(normalise_source(url.strip(), root))
    return sources


def recorded_source(repo: Path) -> str:
    """The `_src_path` of the repository's answers file, as recorded."""
    import yaml  # PyYAML: Copier's dependency, in this checkout's environment

    try:
        answers = yaml.safe_load((repo / ANSWERS_FILE).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise RepoError(f"{ANSWERS_FILE} is not valid YAML: {error}") from None
    src = answers.get("_src_path") if isinstance(answers, dict) else None
    if not isinstance(src, str) or not src.strip():
        raise RepoError(f"{ANSWERS_FILE} records no template (_src_path)")
    return src


def check_template_source(repo: Path, allowed: frozenset[str]) -> None:
    """Refuse a repository recorded from another template than this one (or an allowed one):
    its tasks would run here, as the operator, with --trust."""
    src = recorded_source(repo)
    if normalise_source(src, repo) in allowed:
        return
    raise RepoError(
        f"recorded template {src} (_src_path in {ANSWERS_FILE}) is not this template"
        f" ({TEMPLATE_ROOT}): its tasks would run here with --trust, so nothing was fetched or"
        f" run; if you trust it, name it: --allow-template {src}"
    )


def allowed_sources(extra: Sequence[str] = ()) -> frozenset[str]:
    """This template's spellings and the sources named (--allow-template, FLEET_ALLOW_TEMPLATES)."""
    named = [*extra, *os.environ.get(ALLOW_ENV, "").split()]
    return frozenset(this_template_sources() | {normalise_source(src) for src in named})


# --- one repository -------------------------------------------------------------------------------
def run_tool(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), "--project", str(repo), *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env=_env(),
        timeout=1800,
    )


def check_repo_shape(repo: Path) -> None:
    if not repo.is_dir():
        raise RepoError("not a folder")
    if git(repo, "rev-parse", "--show-toplevel", check=False).strip() != str(repo.resolve()):
        raise RepoError("not the top folder of a git repository")
    if not (repo / ANSWERS_FILE).is_file():
        raise RepoError(f"no {ANSWERS_FILE}: not made by a Copier template")


def template_status(repo: Path, result: RepoResult) -> bool:
    """Fill in the versions from the repository's own check; True when an update is waiting."""
    found = run_tool(repo, "check", "--format", "json")
    status = json_answer(found.stdout)
    result.project = status.get("project")
    result.from_version = status.get("current_version")
    result.to_version = status.get("latest_version")
    if found.returncode != 0 or "error" in status or not status:
        message = status.get("error") or _last_line(found.stderr) or "no answer"
        raise RepoError(f"template check failed: {message}")
    if status.get("untagged"):  # nothing to update until the next release: say why
        result.detail = (
            f"rendered from an untagged commit after release {result.to_version}"
            f" ({result.from_version}); the next release updates it"
        )
    return bool(status["update_available"])


def json_answer(stdout: str) -> dict[str, Any]:
    """The tool's JSON document: its last line of stdout that is one."""
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def check_repo(repo: Path, allowed: frozenset[str] | None = None) -> RepoResult:
    result = RepoResult(repo=str(repo))
    try:
        check_repo_shape(repo)
        check_template_source(repo, allowed_sources() if allowed is None else allowed)
        result.result = UPDATE_AVAILABLE if template_status(repo, result) else UP_TO_DATE
    except (RepoError, OSError, subprocess.SubprocessError, ValueError) as error:
        result.result, result.detail = FAILED, str(error)
    return result


def update_repo(
    repo: Path, branch: str, vcs_ref: str | None, allowed: frozenset[str] | None = None
) -> RepoResult:
    result = RepoResult(repo=str(repo))
    try:
        check_repo_shape(repo)
        check_template_source(repo, allowed_sources() if allowed is None else allowed)
        dirty = changed_paths(repo)
        if dirty:
            result.result, result.dirty = DIRTY, [path for _, path in dirty]
            result.detail = "uncommitted changes: commit or stash them, then run again"
            return result
        if not template_status(repo, result) and vcs_ref is None:
            result.result = UP_TO_DATE
            return result
        _update_on_branch(repo, branch, vcs_ref, result)
    except (RepoError, OSError, subprocess.SubprocessError, ValueError) as error:
        result.result, result.detail = FAILED, str(error)
    return result


def _update_on_branch(repo: Path, branch: str, vcs_ref: str | None, result: RepoResult) -> None:
    origin = current_ref(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    if origin == branch:
        raise RepoError(f"on the branch {branch} itself: switch to the branch to update from")
    target = vcs_ref or result.to_version
    trailer = f"{result.from_version} -> {target}"
    previous = branch_tip(repo, branch)
    result.branch = branch
    if previous is not None:
        if _holds_the_update(repo, previous, head, trailer):
            result.result = UPDATED
            result.detail = f"already on branch {branch} ({trailer}); nothing changed"
            _fill_changes(repo, head, previous, result)
            return
        _check_branch_replaceable(repo, branch, previous, head)
    git(repo, "switch", "--quiet", "--force-create", branch)
    try:
        # Without --vcs-ref the repository's tool picks the newest release itself: the check's
        # `latest_version` is PEP 440-normalised ("v0.2.0" -> "0.2.0") and need not name a tag.
        args = ["update", "--format", "json", *(["--vcs-ref", vcs_ref] if vcs_ref else [])]
        update = run_tool(repo, *args)
        report = json_answer(update.stdout)
        _fill_report(report, result)
        if update.returncode == 0 and not changed_paths(repo):
            result.result = UP_TO_DATE
            result.detail = "the update changed no file"
            return
        if update.returncode != 0:
            if report.get("conflicts"):
                result.result = CONFLICTS
                result.detail = (
                    "nothing committed, repository as it was: run `make template-update`"
                    " in it and resolve the listed files"
                )
            else:
                result.result = FAILED
                result.detail = report.get("error") or _last_line(update.stderr) or "no answer"
            return
        git(repo, "add", "--all")
        message = f"Update from the template: {trailer}\n\n{TRAILER}: {trailer}\n"
        git(repo, "commit", "--quiet", "--no-verify", "-m", message)
        result.result = UPDATED
        result.detail = f"committed on branch {branch}"
    finally:
        _restore(repo, origin, branch, previous, keep_branch=result.result == UPDATED)


def _holds_the_update(repo: Path, tip: str, head: str, trailer: str) -> bool:
    parent = git(repo, "rev-parse", "--verify", "--quiet", f"{tip}^", check=False).strip()
    return parent == head and commit_trailer(repo, tip) == trailer


def _check_branch_replaceable(repo: Path, branch: str, tip: str, head: str) -> None:
    """Reset the branch only if nothing on it would be lost: commits of this command only."""
    own = [c for c in git(repo, "rev-list", f"{head}..{tip}").split() if c]
    foreign = [c for c in own if commit_trailer(repo, c) is None]
    if foreign:
        raise RepoError(
            f"branch {branch} has {len(foreign)} commit(s) this command did not make"
            f" (first: {foreign[-1][:12]}); merge or delete it, or pass --branch"
        )


def _restore(repo: Path, origin: str, branch: str, previous: str | None, keep_branch: bool) -> None:
    """Back to the branch the repository was on; a failed update leaves no trace."""
    if not keep_branch:
        git(repo, "reset", "--quiet", "--hard", "HEAD")
        git(repo, "clean", "--quiet", "-fd")
    detached = re.fullmatch(r"[0-9a-f]{40}", origin) is not None
    git(repo, "switch", "--quiet", *(["--detach"] if detached else []), origin)
    if not keep_branch:
        if previous is None:
            git(repo, "branch", "--quiet", "-D", branch)
        else:
            git(repo, "branch", "--quiet", "--force", branch, previous)


def _fill_report(report: dict[str, Any], result: RepoResult) -> None:
    """The tool's account of the update (tools/template_update.py, `update --format json`)."""
    result.added = list(report.get("added", []))
    result.modified = list(report.get("modified", []))
    removed = report.get("removed", [])
    result.removed = [item["path"] for item in removed]
    result.removed_edited = [item["path"] for item in removed if item["edited_here"]]
    result.recreated = list(report.get("recreated", []))
    result.upstream_changes = [dict(change) for change in report.get("upstream_changes", [])]
    result.base_commit = report.get("base_commit")
    result.conflicts = [conflict["path"] for conflict in report.get("conflicts", [])]


def _fill_changes(repo: Path, base: str, tip: str, result: RepoResult) -> None:
    out = git(repo, "diff", "--name-status", "--no-renames", "-z", base, tip)
    parts = [p for p in out.split("\0") if p]
    for code, path in zip(parts[::2], parts[1::2], strict=True):
        {"A": result.added, "D": result.removed}.get(code[0], result.modified).append(path)


# --- many repositories ----------------------------------------------------------------------------
def expand(patterns: Iterable[str]) -> list[Path]:
    """Folders named or matched by the patterns, each once, in order."""
    repos: list[Path] = []
    for pattern in patterns:
        expanded = str(Path(pattern).expanduser())
        # glob.glob, not Path.glob: the pattern may be absolute and have magic anywhere.
        matches = sorted(glob.glob(expanded)) if glob.has_magic(expanded) else [expanded]  # noqa: PTH207
        for match in matches:
            path = Path(match).resolve()
            if path not in repos and (path.is_dir() or not glob.has_magic(expanded)):
                repos.append(path)
    return repos


def exit_status(command: str, results: Sequence[RepoResult]) -> int:
    outcomes = {r.result for r in results}
    if outcomes & {CONFLICTS, DIRTY, FAILED}:
        return 1
    if command == "check" and UPDATE_AVAILABLE in outcomes:
        return UPDATE_WAITING_EXIT
    return 0


def summary(results: Sequence[RepoResult]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.result] = counts.get(r.result, 0) + 1
    return counts


def text_report(results: Sequence[RepoResult]) -> str:
    rows = [("repository", "from", "to", "result", "detail")]
    for r in results:
        rows.append((r.repo, r.from_version or "-", r.to_version or "-", r.result, _detail_line(r)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    ]
    for r in results:
        lines += _file_lists(r)
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(summary(results).items()))
    lines.append(f"{len(results)} repositories: {counts}")
    return "\n".join(line.rstrip() for line in lines)


def _file_lists(r: RepoResult) -> list[str]:
    removed = [
        f"{path}  (edited here; last version: git show {(r.base_commit or 'HEAD')[:12]}:{path})"
        if path in r.removed_edited
        else path
        for path in r.removed
    ]
    upstream = [
        f"{c['path']}  ({c['here']}; upstream diff: {c['diff']})" for c in r.upstream_changes
    ]
    listed = [("conflicts", r.conflicts), ("dirty", r.dirty)]
    if r.result in (CONFLICTS, UPDATED):
        listed += [
            ("removed by the update", removed),
            ("recreated by the update (deleted here)", r.recreated),
            ("changed by the template, left as they are here", upstream),
        ]
    lines = []
    for title, paths in listed:
        if paths:
            lines.append(f"{r.repo}: {title}:")
            lines += [f"  {path}" for path in paths]
    return lines


def _detail_line(r: RepoResult) -> str:
    if r.result == UPDATED and r.detail.startswith("committed"):
        changed = len(r.added) + len(r.modified) + len(r.removed) + len(r.recreated)
        return f"{r.detail}: {changed} file(s), {len(r.removed)} removed"
    return r.detail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("check", "where each repository stands"), ("update", "update each")):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("repos", nargs="+", metavar="REPO", help="folders or globs")
        sub.add_argument("--format", choices=("text", "json"), default="text")
        sub.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
        sub.add_argument(
            "--allow-template",
            action="append",
            default=[],
            metavar="SRC",
            help="also accept repositories recorded from this template source (repeatable)",
        )
        if name == "update":
            sub.add_argument("--branch", default=DEFAULT_BRANCH)
            sub.add_argument("--vcs-ref", help="a template tag or commit instead of the newest")
    args = parser.parse_args(argv)
    repos = expand(args.repos)
    if not repos:
        print(
            f"fleet-{args.command}: no repository matches {' '.join(args.repos)}", file=sys.stderr
        )
        return 1
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    allowed = allowed_sources(args.allow_template)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        if args.command == "check":
            results = list(pool.map(lambda r: check_repo(r, allowed), repos))
        else:
            results = list(
                pool.map(lambda r: update_repo(r, args.branch, args.vcs_ref, allowed), repos)
            )
    status = exit_status(args.command, results)
    if args.format == "json":
        document = {
            "command": args.command,
            "status": status,
            "summary": summary(results),
            "repositories": [asdict(r) for r in results],
        }
        print(json.dumps(document, indent=2))
    else:
        print(text_report(results))
    return status


if __name__ == "__main__":
    sys.exit(main())
