"""The runtime's suite: the shared fixtures of mlops_stack_runtime.testing, on the example
repository that tests/example_project.py sets up when imported (before any runtime module reads
the declaration)."""

from tests import example_project

pytest_plugins = ["mlops_stack_runtime.testing.fixtures"]
EXAMPLE_ROOT = example_project.root
