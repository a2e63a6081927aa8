"""project.py: how the runtime finds the repository's package, and what it says when it cannot."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_stack_runtime import project as project_module
from mlops_stack_runtime.project import (
    PROJECT_ENV_VAR,
    ProjectError,
    bind,
    current_project,
)


@pytest.fixture
def team_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A repository's package on sys.path: names, a declaration and a model definition."""
    name = "acme_churn_model"
    folder = tmp_path / name
    (folder / "data").mkdir(parents=True)
    (folder / "__init__.py").write_text(
        'DISTRIBUTION_NAME = "acme-churn-model"\nPROJECT_NAME = "Acme Churn Model"\n'
    )
    (folder / "data" / "__init__.py").write_text("")
    (folder / "data" / "columns.yaml").write_text("features: []\n")
    (folder / "features.py").write_text(
        textwrap.dedent(
            """
            def build_preprocessor(*, scale_numeric=True):
                return ("preprocessor", scale_numeric)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(PROJECT_ENV_VAR, raising=False)
    current_project.cache_clear()
    yield name
    current_project.cache_clear()
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]


def no_entry_points(monkeypatch: pytest.MonkeyPatch, *values: str) -> None:
    class Entry:
        def __init__(self, value: str) -> None:
            self.value = value

    monkeypatch.setattr(
        project_module, "entry_points", lambda group: [Entry(value) for value in values]
    )


def test_the_environment_names_the_package(
    team_package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PROJECT_ENV_VAR, team_package)
    found = current_project()
    assert found.package == team_package
    assert found.distribution == "acme-churn-model"
    assert found.name == "Acme Churn Model"
    assert found.declaration_file.read_text() == "features: []\n"
    assert found.module("features").build_preprocessor(scale_numeric=False) == (
        "preprocessor",
        False,
    )
    assert found.version == "0.0.0", "a package that was never installed"


def test_the_one_installed_entry_point_names_the_package(
    team_package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_entry_points(monkeypatch, team_package)
    assert current_project().package == team_package


def test_no_package_is_refused_with_what_to_do(
    team_package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_entry_points(monkeypatch)
    with pytest.raises(ProjectError, match=rf"no project package is installed.*{PROJECT_ENV_VAR}"):
        current_project()


def test_several_packages_are_refused_by_name(
    team_package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_entry_points(monkeypatch, "b_model", "a_model")
    with pytest.raises(ProjectError, match=r"several project packages .*\(a_model, b_model\)"):
        current_project()


def test_a_package_that_cannot_be_imported_is_named(
    team_package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PROJECT_ENV_VAR, "no_such_team_package")
    with pytest.raises(ProjectError, match="'no_such_team_package' cannot be imported"):
        current_project()


def test_bind_names_the_package_for_this_process_and_its_children(
    team_package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PROJECT_ENV_VAR, "no_such_team_package")
    bind(team_package)
    assert current_project().package == team_package
    import os

    assert os.environ[PROJECT_ENV_VAR] == team_package
