"""`python -m mlops_stack_runtime`: the CLI of the installed project (project.py finds it)."""

from .cli import main

if __name__ == "__main__":
    main()
