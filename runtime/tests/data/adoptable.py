"""A throwaway repository that `use-data` can adopt a file into: the example's params.yaml and
package (its columns.yaml), a dvc.yaml with the `prepare` stage, git and DVC initialised.

The runtime's project (where columns.yaml is written) is pointed at this copy for the test, so
the example repository the suite runs against is never written to.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlops_stack_runtime.config import Config, load_config
from mlops_stack_runtime.data import adopt
from mlops_stack_runtime.project import Project

from tests import example_project

DVC_YAML = f"""\
stages:
  prepare:
    cmd: python -m {example_project.PACKAGE} prepare
    deps:
      - src/{example_project.PACKAGE}/data/columns.yaml
    params:
      - data.source
    outs:
      - data/raw/credit.csv
"""


def adoptable_project(root: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    example_project.build_example(root)
    (root / "dvc.yaml").write_text(DVC_YAML, encoding="utf-8")
    for command in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        subprocess.run(command, cwd=root, check=True, capture_output=True)
    project = Project(
        package=example_project.PACKAGE,
        distribution="credit-risk-model",
        name="Credit Risk Model",
        folder=root / "src" / example_project.PACKAGE,
    )
    monkeypatch.setattr(adopt, "current_project", lambda: project)
    return load_config(root / "params.yaml")


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the repository but git's and DVC's own bookkeeping, with its content."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not {".git", ".dvc"} & set(path.relative_to(root).parts)
    }
