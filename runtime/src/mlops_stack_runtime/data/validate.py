"""The `validate` stage: check the raw data against the schema, then split it.

Only data that passed validation reaches data/validated/, so training never sees bad rows.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import DataValidationError
from .checks import check_data
from .columns import DECLARATION
from .csv_files import read_frame, write_frame
from .schema import ValidationReport, validate_frame
from .split import split_train_test

if TYPE_CHECKING:
    from ..config import Config


def validate(config: Config) -> ValidationReport:
    """Write the validation report and the train/test files; raise if the data is bad."""
    paths = config.paths
    raw = read_frame(paths.raw_data, declared_columns=False)
    report = validate_frame(raw)
    report.write_json(paths.validation_report)
    if not report.passed:
        # Stale splits from an earlier good run must not be trained on by mistake.
        paths.train_data.unlink(missing_ok=True)
        paths.test_data.unlink(missing_ok=True)
        raise DataValidationError(f"{paths.raw_data}: {report.to_text()}")
    try:
        train, test = split_train_test(
            raw,
            test_size=config.data.test_size,
            seed=config.data.seed,
            split=config.data.split,
        )
    except DataValidationError:
        paths.train_data.unlink(missing_ok=True)
        paths.test_data.unlink(missing_ok=True)
        raise
    write_frame(train, paths.train_data)
    write_frame(test, paths.test_data)
    warnings = check_data(raw, DECLARATION, config.data.split)
    report = replace(report, warnings=tuple(str(warning) for warning in warnings))
    report.write_json(paths.validation_report)
    return report
