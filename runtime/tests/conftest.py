"""The runtime's suite: the shared fixtures of mlops_stack_runtime.testing, on the example
repository that tests/example_project.py sets up when imported (before any runtime module reads
the declaration)."""

from pathlib import Path

import pytest

from tests import example_project

pytest_plugins = ["mlops_stack_runtime.testing.fixtures"]
EXAMPLE_ROOT = example_project.root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run each test module's tests together, in the order they were given.

    mutmut runs a mutant's tests sorted by duration, which interleaves modules: pytest would then
    tear a module's fixtures down and set them up again between its tests, and a fixture that
    registers a model under a fixed name in the session's store fails the second time, counting
    the mutant as killed by a setup error. A plain run is already grouped, so this changes nothing
    there (the sort is stable).
    """
    first_seen: dict[Path, int] = {}
    for item in items:
        first_seen.setdefault(item.path, len(first_seen))
    items.sort(key=lambda item: first_seen[item.path])
