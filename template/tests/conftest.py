"""The runtime's shared fixtures (mlops_stack_runtime.testing): throwaway copies of this
repository's params.yaml, small data generated from data/columns.yaml, an isolated MLflow store."""

pytest_plugins = ["mlops_stack_runtime.testing.fixtures"]
