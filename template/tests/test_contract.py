"""The contract this repository's own files keep with the runtime (mlops_stack_runtime): params.yaml
and data/columns.yaml load, rows generated from the declaration pass its validation, features.py
trains and compiles to ONNX (or the record says why not), and the server answers a declared row.
The runtime's behaviour itself is tested where it lives, with the runtime."""

from mlops_stack_runtime.testing.contract import *  # noqa: F403
