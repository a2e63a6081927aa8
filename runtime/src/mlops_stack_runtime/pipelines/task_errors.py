"""How a Kubeflow task ends on an expected failure: one line, the status of the same command
run without Kubeflow, no traceback; and how `make kfp-local` and `make kfp-score-local` read
that line and status back.

A task runs one of the project's stages (workspace.py) in a process of its own: a pod on a
cluster, a subprocess with kfp.local's runner. An expected failure (PipelineError: a missed
gate, an unusable batch, an unknown setting) prints `error: <message>` on the task's stderr (the
pod's log) and exits with the status `make pipeline` or `make score` gives for it
(exit_codes.py). The local runner streams a task's output into the run's log and only says that
the task failed; so the task also writes its message and status to the file TASK_ERROR_FILE_ENV_VAR
names when it is set (commands.py sets it for a local run), where the command finds them.
No kfp import: the components import this module in the trainer image, the commands anywhere.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .. import exit_codes
from ..errors import BatchError, PipelineError, RowsRejectedError

TASK_ERROR_FILE_ENV_VAR = "MLOPS_STACK_TASK_ERROR_FILE"


@dataclass(frozen=True)
class TaskFailure:
    """What a failed task reported: its message and its exit status."""

    message: str
    status: int


def exit_status(error: BaseException, *, scoring: bool = False) -> int:
    """The status the CLI gives `error`: `score` tells an unusable batch (4) and rejected rows
    (5) apart from other failures (1), the training stages exit 1 on every expected failure."""
    if scoring and isinstance(error, RowsRejectedError):
        return exit_codes.ROWS_REJECTED
    if scoring and isinstance(error, BatchError):
        return exit_codes.BATCH_ERROR
    return exit_codes.FAILED


@contextmanager
def reported_task_errors(*, scoring: bool = False) -> Iterator[None]:
    """A task's expected failure: one line on stderr, the file of TASK_ERROR_FILE_ENV_VAR (when
    set), and SystemExit with its status. Anything else keeps its traceback: a bug."""
    try:
        yield
    except (PipelineError, FileNotFoundError) as error:
        status = exit_status(error, scoring=scoring)
        print(f"error: {error}", file=sys.stderr, flush=True)
        target = os.environ.get(TASK_ERROR_FILE_ENV_VAR)
        if target:
            Path(target).write_text(
                json.dumps({"message": str(error), "status": status}), encoding="utf-8"
            )
        raise SystemExit(status) from None


def read_task_failure(path: Path) -> TaskFailure | None:
    """The failure a task wrote to `path`; None when no task wrote one (or it is unreadable:
    the run's log then tells what happened)."""
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
        message, status = str(recorded["message"]), int(recorded["status"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    # One line, as the command prints it: the first line names the failure (a gate's extra
    # lines, the held-out metrics, stay in the run's log).
    first = message.strip().splitlines()[0] if message.strip() else "the task failed"
    return TaskFailure(first, status if status > exit_codes.OK else exit_codes.FAILED)
