"""The exit statuses of the runtime's commands, in one place: make, CI and schedulers read them.

A status other than these is a failure the command did not expect (a bug: please report it).
"""

from __future__ import annotations

OK = 0
# An expected failure (bad input, a missed gate, an unreachable service): one line on stderr.
FAILED = 1
# `drift`: the batch drifted; `make monitor` retrains.
DRIFT = 3
# `release-check`: models/ holds a challenger that `promote` kept out: nothing to deploy.
RELEASE_SKIPPED = 3
# `drift`, `collect`: the batch cannot be judged (unreadable, empty, too few rows); `score` and
# `kfp local-score`: the file cannot be scored.
BATCH_ERROR = 4
# `score`, `kfp local-score`: rows were rejected (written beside the output, or in the task's
# output; ALLOW_REJECTS=1 accepts them).
ROWS_REJECTED = 5
