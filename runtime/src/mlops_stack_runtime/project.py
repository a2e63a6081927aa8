"""The repository's own package: the column declaration, the data source, the model definition.

A generated repository is a small package (`src/<package>/`) that names itself to the runtime
with an entry point in its pyproject.toml:

    [project.entry-points."mlops_stack_runtime.project"]
    <package> = "<package>"

Installing the repository (`uv sync`, the Docker images, the Kubeflow trainer image) installs the
entry point, so every command, the model server and each pipeline task find the same project.
`python -m <package>` names it explicitly, and the environment variable MLOPS_STACK_PROJECT
(an import name) overrides both (tests, one-off experiments). Importing the package itself is
cheap: it holds names and metadata only; its data source and model definition are imported when
a command needs them (the serving image has no scikit-learn).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from types import ModuleType

from .errors import ConfigError

ENTRY_POINT_GROUP = "mlops_stack_runtime.project"
PROJECT_ENV_VAR = "MLOPS_STACK_PROJECT"


class ProjectError(ConfigError):
    """No repository package, or more than one, could be found."""


@dataclass(frozen=True)
class Project:
    """The repository's package: where its declaration lives and what it is called."""

    package: str
    # The distribution (pyproject `name`): the CLI's name and the version the server reports.
    distribution: str
    # The human-readable project name (the pipelines' descriptions, the model card).
    name: str
    folder: Path

    @property
    def declaration_file(self) -> Path:
        return self.folder / "data" / "columns.yaml"

    @property
    def version(self) -> str:
        try:
            return version(self.distribution)
        except PackageNotFoundError:  # a source tree that was never installed
            return "0.0.0"

    def module(self, name: str) -> ModuleType:
        """One of the package's modules, e.g. `features` (the model definition) or
        `data.source` (the team's data sources)."""
        return importlib.import_module(f"{self.package}.{name}")


def _named_package() -> str:
    named = os.environ.get(PROJECT_ENV_VAR, "").strip()
    if named:
        return named
    found = sorted({entry.value for entry in entry_points(group=ENTRY_POINT_GROUP)})
    if len(found) == 1:
        return found[0]
    if not found:
        raise ProjectError(
            "no project package is installed: a generated repository names its package under "
            f'[project.entry-points."{ENTRY_POINT_GROUP}"] in pyproject.toml and is installed '
            f"by `make setup`; or set {PROJECT_ENV_VAR}=<import name>"
        )
    raise ProjectError(
        f"several project packages are installed ({', '.join(found)}): set "
        f"{PROJECT_ENV_VAR}=<import name> to choose one"
    )


def bind(package: str) -> None:
    """Make `package` the project of this process and of the processes it starts."""
    os.environ[PROJECT_ENV_VAR] = package
    current_project.cache_clear()


@cache
def current_project() -> Project:
    """The project of this process (see the module's docstring for how it is found)."""
    package = _named_package()
    try:
        module = importlib.import_module(package)
    except ImportError as error:
        raise ProjectError(
            f"the project package '{package}' cannot be imported: {error}"
        ) from error
    if module.__file__ is None:
        raise ProjectError(f"the project package '{package}' has no folder")
    distribution = str(getattr(module, "DISTRIBUTION_NAME", package.replace("_", "-")))
    return Project(
        package=package,
        distribution=distribution,
        name=str(getattr(module, "PROJECT_NAME", distribution)),
        folder=Path(module.__file__).parent,
    )
