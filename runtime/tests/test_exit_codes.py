"""exit_codes.py: the statuses that make targets and schedulers compare against numbers."""

from mlops_stack_runtime import cli, exit_codes


def test_the_statuses_read_by_make_and_schedulers_keep_their_numbers() -> None:
    # The generated Makefile's monitor and deploy recipes test `$status -eq 3`; CronJobs and CI
    # tell 4 (unusable batch) and 5 (rejected rows) from 1.
    numbers = (exit_codes.OK, exit_codes.FAILED, exit_codes.DRIFT, exit_codes.BATCH_ERROR)
    assert numbers == (0, 1, 3, 4)
    assert exit_codes.ROWS_REJECTED == 5
    assert exit_codes.RELEASE_SKIPPED == 3
    assert len({exit_codes.FAILED, exit_codes.DRIFT, exit_codes.BATCH_ERROR, 5}) == 4


def test_the_cli_uses_them() -> None:
    assert cli.DRIFT_EXIT_CODE == exit_codes.DRIFT
    assert cli.BATCH_ERROR_EXIT_CODE == exit_codes.BATCH_ERROR
    assert cli.ROWS_REJECTED_EXIT_CODE == exit_codes.ROWS_REJECTED
    assert cli.RELEASE_SKIPPED_EXIT_CODE == exit_codes.RELEASE_SKIPPED
