"""`python -m <package>`: the same CLI as the console script; dvc.yaml calls it this way."""

from . import DISTRIBUTION_NAME
from .cli import app

if __name__ == "__main__":
    app(prog_name=DISTRIBUTION_NAME)
