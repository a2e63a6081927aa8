"""`python -m <package>`: the runtime's CLI for this project, as the console script; dvc.yaml
calls it this way."""

from mlops_stack_runtime.cli import main

if __name__ == "__main__":
    main(__package__)
