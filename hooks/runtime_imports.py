"""Migration: point the team's own modules at the runtime, once the platform left the repository.

Before release 0.1.0 every repository carried a copy of the platform in `src/<package>/`
(config.py, errors.py, data/columns.py, ...). From 0.1.0 that code is the runtime package
`mlops_stack_runtime`, and the update removes the copies. The modules the team owns stay as the
team has them (`data/source.py`, and any module a team added): their relative imports of the
platform (`from ..errors import DataSourceError`) would then name modules that are gone. This
migration rewrites exactly those imports to the runtime (`from mlops_stack_runtime.errors import
DataSourceError`); imports of the team's own modules, and everything else, stay as they are.

Runs after the update (`_stage == 'after'`), when the copies are gone; idempotent (an absolute
import is never touched again). It prints each file it changed; the team reviews the change with
the rest of the update.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml  # Copier's own dependency: this runs with Copier's Python.

RUNTIME = "mlops_stack_runtime"
RELATIVE_IMPORT = re.compile(
    r"^(?P<indent>[ \t]*)from (?P<dots>\.+)(?P<module>[\w.]*) import ", re.M
)


def module_exists(src: Path, dotted: str) -> bool:
    """Whether `dotted` (e.g. credit_risk_model.data.source) is a module or package under src/."""
    path = src.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def rewrite_module(path: Path, src: Path) -> str | None:
    """The file's text with its relative imports of removed modules made runtime imports, or
    None when nothing changes."""
    text = path.read_text(encoding="utf-8")
    package_parts = list(path.relative_to(src).with_suffix("").parts[:-1])
    if path.name == "__init__.py":
        package_parts = list(path.relative_to(src).parent.parts)

    def replace(match: re.Match[str]) -> str:
        level = len(match["dots"])
        if level > len(package_parts):
            return match[0]  # above the top of the package: not ours to judge
        base = package_parts[: len(package_parts) - level + 1]
        target = ".".join([*base, match["module"]] if match["module"] else base)
        if not match["module"] or module_exists(src, target):
            return match[0]  # the team's own module (or `from . import x`): unchanged
        inside = target.split(".", 1)[1] if "." in target else ""
        if not inside:
            return match[0]
        return f"{match['indent']}from {RUNTIME}.{inside} import "

    new = RELATIVE_IMPORT.sub(replace, text)
    return None if new == text else new


def migrate(project: Path, package: str) -> list[Path]:
    """Rewrite the package's modules; the files changed."""
    src = project / "src"
    changed = []
    for path in sorted((src / package).rglob("*.py")):
        new = rewrite_module(path, src)
        if new is not None:
            path.write_text(new, encoding="utf-8")
            changed.append(path.relative_to(project))
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers-file", type=Path, required=True)
    args = parser.parse_args(argv)
    answers = yaml.safe_load(args.answers_file.read_text(encoding="utf-8")) or {}
    package = answers.get("package_name")
    if not isinstance(package, str) or not (Path("src") / package).is_dir():
        print("runtime-imports: no src/<package_name>/ here; nothing to do", file=sys.stderr)
        return 0
    for path in migrate(Path.cwd(), package):
        print(
            f"runtime-imports: {path}: imports of the removed platform modules now name {RUNTIME}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
