"""How the command line reports an expected failure: one readable line and exit 1.

Shared by cli.py and the cluster tiers' pipeline commands (pipelines/commands.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from . import exit_codes
from .errors import PipelineError


@contextmanager
def reported_errors() -> Iterator[None]:
    """Expected failures print one readable message and exit 1, without a traceback."""
    try:
        yield
    except (PipelineError, FileNotFoundError) as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=exit_codes.FAILED) from None
