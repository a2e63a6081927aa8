"""The summary `use-data` prints: what was inferred and what deserves a second look."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .adopt import Adoption
    from .checks import DataWarning


# Classes whose share of the rows the first line shows.
SHOWN_SHARES = 10


def format_adoption(adoption: Adoption, warnings: Sequence[DataWarning] = ()) -> str:
    """The summary; `warnings` are the checks before training (checks.py), a leak the
    inference already noted shown once."""
    inference = adoption.inference
    declaration = inference.declaration
    rows = [("column", "role", "kind", "missing", "categories or range")]
    rows += [
        (s.name, s.role, s.kind, f"{s.missing_share:.1%}", s.detail) for s in inference.summaries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    table = "\n".join(
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        + "  "
        + row[4]
        for row in rows
    )
    label = declaration.label
    total = inference.labelled_rows or sum(inference.label_counts.values())
    shares = [f"{value} {count / total:.1%}" for value, count in inference.label_counts.items()]
    balance = ", ".join(shares[:SHOWN_SHARES]) + (" ..." if len(shares) > SHOWN_SHARES else "")
    about_label = {
        "binary": f"positive {label.positive}; balance {balance}",
        "multiclass": f"multi-class, {len(label.classes)} classes; balance {balance}",
        "regression": f"regression, {label.min_value:g} .. {label.max_value:g}"
        if label.min_value is not None and label.max_value is not None
        else "regression",
    }[label.task]
    lines = [
        f"adopted {adoption.data_path} ({total} labelled rows): "
        f"{len(declaration.features)} features, label '{label.name}' ({about_label})",
        f"task {inference.task_rule}" if inference.task_rule else f"task {label.task}",
        f"rule: {inference.rule}",
        table,
    ]
    if declaration.protected_attribute is None:
        lines.append("protected attribute: none (the fairness gate reports 'not applicable')")
    second_look = [*inference.warnings]
    noted = {item.split(":", 1)[0] for item in inference.warnings if "leak" in item}
    second_look += [
        str(warning)
        for warning in warnings
        if not (warning.kind == "leakage" and warning.column in noted)
    ]
    second_look += [f"{name}: left out, {reason}" for name, reason in declaration.ignored.items()]
    if second_look:
        lines.append("deserves a second look:")
        lines += [f"  - {item}" for item in second_look]
    if adoption.replaced:
        lines.append(f"replaced the previous adoption of {adoption.replaced}")
    lines.append(
        "written: src/*/data/columns.yaml, params.yaml (data.source: file), dvc.yaml (prepare "
        f"deps), {adoption.data_path}.dvc. Nothing is committed: review, then `make ci`, "
        "`dvc push` and commit."
    )
    return "\n".join(lines)
