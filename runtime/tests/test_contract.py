"""The contract suite generated repositories run, run here on the example repository."""

from mlops_stack_runtime.testing.contract import *  # noqa: F403
