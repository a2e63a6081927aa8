"""Task: point the project's pyproject.toml at the runtime of the template it was rendered from.

The runtime (the template's `runtime/` folder, distribution `mlops-stack-runtime`) is released
with the template under the same version. Where uv takes it from follows how the template was
given to Copier (`_src_path` of the answers file, made absolute by absolute_src_path.py first):

- a git URL (https://, ssh://, git@host:, file://, gh:/gl: shortcuts): a git source pinned to
  the release tag Copier rendered (`_commit`), or to the exact commit when that is not a tag;
- a local folder: a path source, for trying the template out and for its tests. Such a
  repository cannot build its image or run in CI, which have no copy of that folder; the
  generated README says so, and `make setup` says so on CI.

The answer `runtime_index_url` (a team's own package index, where the template's release
procedure publishes the runtime) takes precedence over both: the source is then the index named
`runtime`, which pyproject.toml declares as `[[tool.uv.index]]` (explicit, so nothing else comes
from it), and the version is the `==` pin of the dependency.

The line `mlops-stack-runtime = {...}` under `[tool.uv.sources]` is written on every copy and
update (idempotent); `make template-update` re-locks uv.lock afterwards.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml  # Copier's own dependency: this runs with Copier's Python.

RUNTIME_DISTRIBUTION = "mlops-stack-runtime"
RUNTIME_FOLDER = "runtime"
RUNTIME_INDEX = "runtime"  # the name of pyproject.toml's [[tool.uv.index]] for runtime_index_url
SOURCE_LINE = re.compile(rf"^{re.escape(RUNTIME_DISTRIBUTION)} = \{{.*\}}$", re.MULTILINE)
SHORTCUTS = {"gh:": "https://github.com/", "gl:": "https://gitlab.com/"}
URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://|[\w.-]+@[\w.-]+:)")
# A release tag as Copier records it in `_commit` (PEP 440, optionally with a leading v); a
# render of an untagged commit records `<tag>-<n>-g<hash>` or a bare hash instead.
RELEASE_TAG = re.compile(r"^v?\d+(\.\d+)*([abc]|rc|\.post|\.dev)?\d*$")
HASH = re.compile(r"^[0-9a-f]{7,40}$")


class SourceError(RuntimeError):
    """The runtime's source cannot be derived from the answers."""


def git_url(src_path: str) -> str | None:
    """The git URL uv clones for a template given as a URL or shortcut; None for a folder."""
    for shortcut, base in SHORTCUTS.items():
        if src_path.startswith(shortcut):
            repository = src_path.removeprefix(shortcut)
            return base + (repository if repository.endswith(".git") else f"{repository}.git")
    url = src_path.removeprefix("git+")
    if not URL.match(url):
        return None
    # uv takes scp-like addresses as ssh:// URLs only.
    scp = re.match(r"^([\w.-]+@[\w.-]+):(?!//)(.+)$", url)
    return f"ssh://{scp.group(1)}/{scp.group(2)}" if scp else url


def source_entry(src_path: str, commit: str, commit_hash: str, index_url: str = "") -> str:
    """The TOML inline table of `[tool.uv.sources]` for the runtime."""
    if index_url:
        return f"{{ index = {json.dumps(RUNTIME_INDEX)} }}"
    url = git_url(src_path)
    if url is None:
        folder = Path(src_path).expanduser()
        if not folder.is_absolute():
            raise SourceError(f"the template folder '{src_path}' is not an absolute path")
        return f"{{ path = {json.dumps(str(folder / RUNTIME_FOLDER))} }}"
    if RELEASE_TAG.match(commit):
        pin = f"tag = {json.dumps(commit)}"
    elif HASH.match(commit_hash):
        pin = f"rev = {json.dumps(commit_hash)}"
    else:
        raise SourceError(f"no release tag or commit to pin the runtime to (_commit: {commit!r})")
    return f"{{ git = {json.dumps(url)}, subdirectory = {json.dumps(RUNTIME_FOLDER)}, {pin} }}"


def rewrite(pyproject: Path, entry: str) -> bool:
    """Write the runtime's source line; whether the file changed."""
    text = pyproject.read_text(encoding="utf-8")
    line = f"{RUNTIME_DISTRIBUTION} = {entry}"
    if not SOURCE_LINE.search(text):
        raise SourceError(
            f"{pyproject} has no `{RUNTIME_DISTRIBUTION} = {{...}}` line under [tool.uv.sources]"
        )
    new = SOURCE_LINE.sub(line.replace("\\", "\\\\"), text, count=1)
    if new == text:
        return False
    pyproject.write_text(new, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers-file", type=Path, required=True)
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    parser.add_argument("--commit-hash", default="", help="Copier's _copier_conf.vcs_ref_hash")
    args = parser.parse_args(argv)
    if not args.answers_file.is_file() or not args.pyproject.is_file():
        print("runtime-source: no answers file or pyproject.toml; nothing to do", file=sys.stderr)
        return 0
    answers = yaml.safe_load(args.answers_file.read_text(encoding="utf-8")) or {}
    try:
        entry = source_entry(
            str(answers.get("_src_path") or ""),
            str(answers.get("_commit") or ""),
            args.commit_hash,
            str(answers.get("runtime_index_url") or ""),
        )
        changed = rewrite(args.pyproject, entry)
    except SourceError as error:
        print(f"runtime-source: {error}; edit [tool.uv.sources] by hand", file=sys.stderr)
        return 1
    if changed:
        print(f"runtime-source: {RUNTIME_DISTRIBUTION} = {entry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
