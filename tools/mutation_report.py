"""The killed share per module of a mutation run (`make mutation`), against a floor.

mutmut (configured in runtime/pyproject.toml, [tool.mutmut]) writes what became of every mutant of
a module beside its mutated copy, in runtime/mutants/<path>.meta. This prints, for each module the
configuration lists, how many mutants were killed (by a test, a timeout, or the type checker that
`make test-runtime` runs: the "by mypy" column counts those), how many survived, and the killed
share; it names every survivor that runtime/mutation-equivalents.toml does not list as equivalent (a
change no behaviour can show, with its reason) and every listed name that no longer survives.

Exit status: 0 when every module reaches the floor and every survivor is explained; 1 otherwise;
2 when the run or the files are missing or malformed.

    python tools/mutation_report.py [--runtime runtime] [--floor 0.85]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

EQUIVALENTS_FILE = "mutation-equivalents.toml"
# mutmut's exit codes (mutmut/stats.py): what the tests made of a mutant.
TYPE_CHECKED = 37
KILLED = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout"}
KILLED |= {255: "timeout", TYPE_CHECKED: "caught by type check"}
SURVIVED = {0: "survived", 5: "no tests", 33: "no tests"}


class ReportError(Exception):
    """The run or its configuration cannot be read."""


@dataclass
class ModuleFigures:
    path: str
    killed: int = 0
    typed: int = 0  # of the killed: rejected by the type checker before any test ran
    equivalent: int = 0
    survivors: list[tuple[str, str]] = field(default_factory=list)
    unchecked: int = 0
    codes: dict[str, int | None] = field(default_factory=dict)

    @property
    def judged(self) -> int:
        return self.killed + len(self.survivors)

    @property
    def share(self) -> float:
        return self.killed / self.judged if self.judged else 1.0


def configured_modules(runtime: Path) -> list[str]:
    """The files [tool.mutmut] only_mutate names (globs resolved against the runtime)."""
    config = _toml(runtime / "pyproject.toml").get("tool", {}).get("mutmut", {})
    patterns = config.get("only_mutate")
    if not isinstance(patterns, list) or not patterns:
        raise ReportError(f"{runtime / 'pyproject.toml'}: [tool.mutmut] lists no only_mutate files")
    found = sorted(
        {
            path.relative_to(runtime).as_posix()
            for path in runtime.rglob("*.py")
            if "mutants" not in path.relative_to(runtime).parts
            and any(fnmatch.fnmatch(path.relative_to(runtime).as_posix(), p) for p in patterns)
        }
    )
    if not found:
        raise ReportError(f"no file of the runtime matches [tool.mutmut] only_mutate: {patterns}")
    return found


def equivalents(runtime: Path) -> dict[str, str]:
    """Mutant name -> the reason it cannot be killed."""
    path = runtime / EQUIVALENTS_FILE
    if not path.is_file():
        return {}
    table = _toml(path).get("equivalent", {})
    bad = [name for name, reason in table.items() if not isinstance(reason, str) or not reason]
    if not isinstance(table, dict) or bad:
        raise ReportError(f"{path}: every [equivalent] entry needs a one-line reason: {bad}")
    return dict(table)


def module_figures(runtime: Path, module: str, explained: dict[str, str]) -> ModuleFigures:
    meta = runtime / "mutants" / f"{module}.meta"
    if not meta.is_file():
        raise ReportError(f"{meta} is missing: run `make mutation` first")
    try:
        codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ReportError(f"{meta} is not a mutmut result: {error}") from None
    figures = ModuleFigures(module, codes=codes)
    for name, code in sorted(codes.items()):
        if code is None:
            figures.unchecked += 1
        elif code in KILLED:
            figures.killed += 1
            figures.typed += code == TYPE_CHECKED
        elif name in explained:
            figures.equivalent += 1
        else:
            figures.survivors.append((name, SURVIVED.get(code, f"suspicious (exit {code})")))
    return figures


def report(runtime: Path, floor: float) -> int:
    explained = equivalents(runtime)
    figures = [module_figures(runtime, m, explained) for m in configured_modules(runtime)]
    print(
        f"{'module':<52} {'mutants':>7} {'killed':>6} {'by mypy':>7} {'equiv.':>6} "
        f"{'survived':>8} {'share':>6}"
    )
    failing = []
    for f in figures:
        total = f.judged + f.equivalent + f.unchecked
        mark = "" if f.share >= floor and not f.unchecked else "  < floor"
        if f.unchecked:
            mark = f"  {f.unchecked} not run"
        print(
            f"{f.path:<52} {total:>7} {f.killed:>6} {f.typed:>7} {f.equivalent:>6} "
            f"{len(f.survivors):>8} "
            f"{f'{f.share:.1%}' if f.judged else '-':>6}{mark}"
        )
        if mark:
            failing.append(f.path)
    survivors = [(name, why) for f in figures for name, why in f.survivors]
    if survivors:
        print(f"\n{len(survivors)} survivor(s) no test kills and {EQUIVALENTS_FILE} does not list:")
        for name, why in survivors:
            print(f"  {name}  ({why})")
        print("See one with: cd runtime && uv run --no-sync mutmut show <name>")
    codes = {name: code for f in figures for name, code in f.codes.items()}
    for name in sorted(explained):
        if name not in codes:
            print(f"warning: {EQUIVALENTS_FILE} lists {name}, which this run did not make")
        elif codes[name] in KILLED:
            print(f"warning: {EQUIVALENTS_FILE} lists {name}, which the tests now kill: remove it")
    if failing or survivors:
        print(f"\nbelow the floor of {floor:.0%} or unexplained survivors: {', '.join(failing)}")
        return 1
    print(f"\nevery module at or above {floor:.0%}; every survivor explained")
    return 0


def _toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path} is missing") from None
    except tomllib.TOMLDecodeError as error:
        raise ReportError(f"{path} is not valid TOML: {error}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", type=Path, default=Path("runtime"))
    parser.add_argument("--floor", type=float, default=0.85)
    args = parser.parse_args(argv)
    if not 0 < args.floor <= 1:
        print(f"mutation report: --floor must be in (0, 1], not {args.floor}", file=sys.stderr)
        return 2
    try:
        return report(args.runtime, args.floor)
    except ReportError as error:
        print(f"mutation report: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
