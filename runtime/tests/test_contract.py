"""The contract suite generated repositories run, run here on the example repository, and on
repositories that adopted a dataset of each other task (a regression label, integer-coded
classes, text classes): the contract must hold whatever `use-data` declared."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_stack_runtime.data.columns import Declaration, declaration_to_yaml
from mlops_stack_runtime.testing.contract import *  # noqa: F403

from tests import example_project
from tests.data import task_declarations

pytestmark = pytest.mark.separate_process  # the repository's own tests run in a process of theirs

CONTRACT_TESTS = '"""The contract."""\n\nfrom mlops_stack_runtime.testing.contract import *\n'
CONFTEST = 'pytest_plugins = ["mlops_stack_runtime.testing.fixtures"]\n'
DECLARED: dict[str, Callable[[], Declaration]] = {
    "regression": task_declarations.regression,
    "integer-classes": task_declarations.integer_classes,
    "text-classes": task_declarations.text_classes,
}


@pytest.mark.parametrize("task", list(DECLARED))
def test_the_contract_holds_in_a_repository_of_another_task(tmp_path: Path, task: str) -> None:
    """A repository whose columns.yaml `use-data` wrote for the dataset, its own tests run as a
    generated repository runs them (its package on the path, its rootdir, nothing shared)."""
    root = example_project.build_example(tmp_path / "repo")
    package = root / "src" / example_project.PACKAGE
    (package / "data" / "columns.yaml").write_text(declaration_to_yaml(DECLARED[task]()))
    (root / "tests").mkdir()
    (root / "tests" / "conftest.py").write_text(CONFTEST)
    (root / "tests" / "test_contract.py").write_text(CONTRACT_TESTS)
    environment = {
        **os.environ,
        "PYTHONPATH": str(root / "src"),
        "MLOPS_STACK_PROJECT": example_project.PACKAGE,
        "MLOPS_STACK_REPOSITORY": str(root),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "5 passed" in result.stdout, result.stdout[-2000:]
