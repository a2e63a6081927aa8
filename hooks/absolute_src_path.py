"""Task: make the answers file record the template as an absolute path or a URL.

Copier stores `_src_path` exactly as typed, so `copier copy ../template my-repo` records
`../template`, and `copier update` / `copier check-update` then fail from any other directory
(including CI). This task rewrites a relative local `_src_path` to the template's absolute path;
URLs, `gh:`/`gl:` shortcuts, `~` paths and absolute paths are left alone.

Copier runs tasks on `copy` and three times on `update`, so the rewrite is idempotent: an absolute
path is never touched again.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import yaml  # Copier's own dependency: this runs with Copier's Python ({{ _copier_python }}).

# A URL (https://, ssh://, file://, git+...), an scp-like `git@host:path` or a Copier shortcut.
REMOTE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://|[\w.-]+@[\w.-]+:|gh:|gl:|git\+)")
SRC_PATH_LINE = re.compile(r"^_src_path:.*$", re.MULTILINE)


class UnresolvableError(RuntimeError):
    """The template's absolute location could not be found."""


def is_relative_local(src: str) -> bool:
    return not (REMOTE.match(src) or src.startswith("~") or Path(src).is_absolute())


def template_location(template_root: Path) -> Path:
    """Where the template lives, from Copier's working copy of it (`_copier_conf.src_path`).

    For a git template Copier works on a temporary clone whose `origin` is the template as git
    recorded it, which git makes absolute for a local path; for a plain folder Copier uses the
    folder itself, already absolute.
    """
    if (template_root / ".git").exists():
        origin = subprocess.run(
            ["git", "-C", str(template_root), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        candidate = Path(origin.removeprefix("file://")) if origin else None
    else:
        candidate = template_root
    if candidate is None or not candidate.is_absolute():
        raise UnresolvableError(f"no absolute location found for the template at {template_root}")
    candidate = candidate.resolve()
    if not any((candidate / name).is_file() for name in ("copier.yml", "copier.yaml")):
        raise UnresolvableError(f"{candidate} holds no copier.yml")
    return candidate


def rewrite(answers_file: Path, template_root: Path) -> str | None:
    """Rewrite a relative `_src_path`; return the new value, or None when nothing changed."""
    text = answers_file.read_text(encoding="utf-8")
    src = (yaml.safe_load(text) or {}).get("_src_path")
    if not isinstance(src, str) or not is_relative_local(src):
        return None
    location = str(template_location(template_root))
    # Same rendering as the answers file's `to_nice_yaml`, so the next update writes an equal line.
    line = yaml.safe_dump({"_src_path": location}, default_flow_style=False, allow_unicode=True)
    answers_file.write_text(SRC_PATH_LINE.sub(line.strip(), text, count=1), encoding="utf-8")
    return location


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers-file", type=Path, required=True)
    parser.add_argument("--template-root", type=Path, required=True)
    args = parser.parse_args(argv)
    if not args.answers_file.is_file():
        print(f"absolute-src-path: no {args.answers_file}; nothing to do", file=sys.stderr)
        return 0
    try:
        location = rewrite(args.answers_file, args.template_root)
    except UnresolvableError as error:
        print(
            f"absolute-src-path: {args.answers_file} records a relative template path, and {error}."
            "\nRun Copier again with the template's absolute path or git URL, or edit `_src_path`"
            " by hand, so that `copier update` works from anywhere.",
            file=sys.stderr,
        )
        return 1
    if location:
        print(f"absolute-src-path: {args.answers_file}: _src_path is now {location}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
