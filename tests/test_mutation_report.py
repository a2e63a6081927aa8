"""`make mutation`'s verdict (tools/mutation_report.py): the killed share per configured module
against the floor, and every survivor named unless mutation-equivalents.toml explains it."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .conftest import TEMPLATE_DIR

REPORT = [sys.executable, str(TEMPLATE_DIR / "tools" / "mutation_report.py")]
MODULES = ("src/pkg/gates.py", "src/pkg/data/infer.py")


def _runtime(tmp_path: Path, results: dict[str, dict[str, int | None]], equivalents: str = ""):
    runtime = tmp_path / "runtime"
    for module in MODULES:
        (runtime / module).parent.mkdir(parents=True, exist_ok=True)
        (runtime / module).write_text("def f():\n    return 1\n")
    (runtime / "src/pkg/other.py").write_text("def g():\n    return 2\n")
    (runtime / "pyproject.toml").write_text(
        '[tool.mutmut]\nonly_mutate = ["src/pkg/gates.py", "src/pkg/data/*"]\n'
    )
    for module, codes in results.items():
        meta = runtime / "mutants" / f"{module}.meta"
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps({"exit_code_by_key": codes, "durations_by_key": {}}))
    if equivalents:
        (runtime / "mutation-equivalents.toml").write_text(equivalents)
    return runtime


def _report(runtime: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*REPORT, "--runtime", str(runtime), *args], capture_output=True, text=True, check=False
    )


def _row(output: str, module: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.startswith(module))


def test_every_module_at_the_floor_passes_with_its_figures(tmp_path: Path) -> None:
    killed = {f"pkg.gates.x_f__mutmut_{i}": 1 for i in range(1, 9)}
    runtime = _runtime(
        tmp_path,
        {
            "src/pkg/gates.py": {
                **killed,
                "pkg.gates.x_f__mutmut_9": 37,
                "pkg.gates.x_f__mutmut_10": 36,
            },
            "src/pkg/data/infer.py": {"pkg.data.infer.x_f__mutmut_1": 1},
        },
    )
    result = _report(runtime)
    assert result.returncode == 0, result.stdout + result.stderr
    # mutants, killed (a timeout and a type-check rejection count), by mypy, equivalent, survived,
    # share
    assert _row(result.stdout, "src/pkg/gates.py")[1:] == ["10", "10", "1", "0", "0", "100.0%"]
    assert _row(result.stdout, "src/pkg/data/infer.py")[1:] == ["1", "1", "0", "0", "0", "100.0%"]
    assert "src/pkg/other.py" not in result.stdout


def test_a_module_below_the_floor_fails_and_names_its_survivors(tmp_path: Path) -> None:
    codes = {f"pkg.gates.x_f__mutmut_{i}": 1 for i in range(1, 9)}
    codes |= {"pkg.gates.x_f__mutmut_9": 0, "pkg.gates.x_f__mutmut_10": 33}
    runtime = _runtime(
        tmp_path,
        {"src/pkg/gates.py": codes, "src/pkg/data/infer.py": {"pkg.data.infer.x_f__mutmut_1": 1}},
    )
    result = _report(runtime)
    assert result.returncode == 1
    assert _row(result.stdout, "src/pkg/gates.py")[1:7] == ["10", "8", "0", "0", "2", "80.0%"]
    assert "pkg.gates.x_f__mutmut_9  (survived)" in result.stdout
    assert "pkg.gates.x_f__mutmut_10  (no tests)" in result.stdout
    assert "src/pkg/gates.py" in result.stdout.splitlines()[-1]
    # The same run passes a floor it reaches, but a survivor still needs a test or a reason.
    assert _report(runtime, "--floor", "0.8").returncode == 1


def test_a_listed_equivalent_is_explained_and_a_stale_entry_is_reported(tmp_path: Path) -> None:
    codes = {f"pkg.gates.x_f__mutmut_{i}": 1 for i in range(1, 9)} | {"pkg.gates.x_f__mutmut_9": 0}
    runtime = _runtime(
        tmp_path,
        {"src/pkg/gates.py": codes, "src/pkg/data/infer.py": {"pkg.data.infer.x_f__mutmut_1": 1}},
        equivalents=(
            "[equivalent]\n"
            '"pkg.gates.x_f__mutmut_9" = "the bound is never reached with a valid input"\n'
            '"pkg.gates.x_f__mutmut_1" = "killed now"\n'
            '"pkg.gates.x_gone__mutmut_1" = "the function is gone"\n'
        ),
    )
    result = _report(runtime)
    assert result.returncode == 0, result.stdout
    assert _row(result.stdout, "src/pkg/gates.py")[1:] == ["9", "8", "0", "1", "0", "100.0%"]
    assert "lists pkg.gates.x_f__mutmut_1, which the tests now kill" in result.stdout
    assert "lists pkg.gates.x_gone__mutmut_1, which this run did not make" in result.stdout


@pytest.mark.parametrize(
    ("equivalents", "message"),
    [
        ('[equivalent]\n"pkg.gates.x_f__mutmut_1" = ""\n', "needs a one-line reason"),
        ("[equivalent\n", "is not valid TOML"),
    ],
)
def test_a_bad_equivalents_file_is_refused_naming_it(tmp_path, equivalents, message) -> None:
    runtime = _runtime(
        tmp_path,
        {m: {"x__mutmut_1": 1} for m in MODULES},
        equivalents=equivalents,
    )
    result = _report(runtime)
    assert result.returncode == 2
    assert "mutation-equivalents.toml" in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_module_the_run_did_not_reach_is_reported_not_passed(tmp_path: Path) -> None:
    missing = _report(_runtime(tmp_path / "a", {"src/pkg/gates.py": {"x__mutmut_1": 1}}))
    assert missing.returncode == 2
    assert "src/pkg/data/infer.py.meta is missing: run `make mutation` first" in missing.stderr

    unfinished = _report(
        _runtime(tmp_path / "b", {m: {"x__mutmut_1": 1, "x__mutmut_2": None} for m in MODULES})
    )
    assert unfinished.returncode == 1
    assert "1 not run" in unfinished.stdout
    # A module none of whose mutants ran has no share to show.
    never = _report(_runtime(tmp_path / "c", {m: {"x__mutmut_1": None} for m in MODULES}))
    assert never.returncode == 1
    row = _row(never.stdout, "src/pkg/gates.py")
    assert row[1:] == ["1", "0", "0", "0", "0", "-", "1", "not", "run"]


def test_the_runtime_configures_every_critical_module_and_its_equivalents_have_reasons() -> None:
    runtime = TEMPLATE_DIR / "runtime"
    config = tomllib.loads((runtime / "pyproject.toml").read_text())["tool"]["mutmut"]
    for path in config["only_mutate"]:
        assert (runtime / path).is_file(), path
    listed = tomllib.loads((runtime / "mutation-equivalents.toml").read_text())["equivalent"]
    assert all(isinstance(reason, str) and reason.strip() for reason in listed.values())
