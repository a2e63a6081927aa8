"""reports/drift.html: the drift check as one page, with a plot per feature and for the
predictions (binary: scores; regression: predicted values; multi-class: predicted classes).

Each plot shows the share of rows per bin, reference against batch: the very bins whose PSI the
table gives (reference deciles for numbers, values for categories), so the picture and the
numbers agree. One self-contained file (plots inlined as PNG) that opens anywhere, also as a CI
artifact. matplotlib draws on its Agg canvas: no display, no global pyplot state.
"""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING

from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

if TYPE_CHECKING:
    from pathlib import Path

    from .report import ColumnResult, DriftReport

REFERENCE_COLOUR = "#9aa5b1"
STABLE_COLOUR = "#2b6cb0"
DRIFTED_COLOUR = "#c53030"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1a202c; max-width: 80rem; }
.verdict { padding: 0.8rem 1.2rem; border-radius: 6px; color: white; font-size: 1.3rem; }
.drift { background: #c53030; } .stable { background: #2f855a; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #e2e8f0; padding: 0.3rem 0.7rem; text-align: left; }
tr.drifted td { color: #c53030; font-weight: 600; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(30rem, 1fr)); gap: 1rem; }
.plots figure { margin: 0; border: 1px solid #e2e8f0; border-radius: 6px; padding: 0.5rem; }
.plots img { width: 100%; }
code { font-size: 0.85rem; }
"""


def write_html_report(report: DriftReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report), encoding="utf-8")
    return path


def render(report: DriftReport) -> str:
    e = html.escape
    columns = [report.prediction, *sorted(report.features, key=lambda c: (not c.drifted, -c.psi))]
    verdict = "Drift" if report.drifted else "No drift"
    reasons = "".join(f"<li>{e(reason)}</li>" for reason in report.reasons)
    settings = ", ".join(f"{key} {value:g}" for key, value in report.settings.items())
    meta = [
        ("Batch", f"{report.batch} ({report.batch_rows} rows)"),
        ("Model", report.model),
        ("Training data", f"{report.reference_data} ({report.reference_rows} rows)"),
        ("Training data sha256", report.training_data_sha256),
        ("Thresholds (params.yaml drift)", settings),
        ("Checked at", report.created_at),
    ]
    problems = "".join(f"<li>{e(p.describe())}</li>" for p in report.quality_problems)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drift check: {verdict}</title>
<style>{STYLE}</style></head><body>
<h1>Drift check</h1>
<p class="verdict {"drift" if report.drifted else "stable"}">{verdict}</p>
{f"<ul>{reasons}</ul>" if reasons else ""}
<table>{"".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in meta)}</table>
<h2>Columns</h2>
<table><tr><th>Column</th><th>Drifted</th><th>PSI</th><th>chi-square p</th><th>KS</th>
<th>Change</th><th>Missing (reference, batch)</th></tr>
{"".join(_row(column) for column in columns)}</table>
<h2>Data quality</h2>
{f"<ul>{problems}</ul>" if problems else "<p>No value breaks the schema (data/columns.py).</p>"}
<h2>Distributions</h2>
<p>Share of rows per bin: training data in grey, the batch in blue, or red where it drifted.
The model's {e(report.predictions_word)} on the batch are compared with its
{e(report.predictions_word)} on its held-out test data.</p>
<div class="plots">{"".join(_figure(column) for column in columns)}</div>
</body></html>
"""


def _row(column: ColumnResult) -> str:
    e = html.escape
    ks = "" if column.ks_statistic is None else f"{column.ks_statistic:.3f}"
    missing = f"{column.reference_missing_share:.1%}, {column.current_missing_share:.1%}"
    cells = [
        column.name,
        "yes" if column.drifted else "no",
        f"{column.psi:.3f}",
        f"{column.p_value:.3g}",
        ks,
        column.change,
        missing,
    ]
    css = ' class="drifted"' if column.drifted else ""
    return f"<tr{css}>{''.join(f'<td>{e(cell)}</td>' for cell in cells)}</tr>"


def _figure(column: ColumnResult) -> str:
    title = html.escape(f"{column.name}: PSI {column.psi:.3f}")
    return (
        f'<figure><img alt="{title}" src="data:image/png;base64,{_plot(column)}">'
        f"<figcaption>{title}{' (drifted)' if column.drifted else ''}</figcaption></figure>"
    )


def _plot(column: ColumnResult) -> str:
    """A grouped bar chart of the shares, as base64 PNG."""
    shares = column.shares
    positions = range(len(shares.bins))
    figure = Figure(figsize=(6.0, 3.4), dpi=90, layout="constrained")
    axes = figure.add_subplot()
    axes.bar([p - 0.2 for p in positions], shares.reference, 0.4, color=REFERENCE_COLOUR)
    colour = DRIFTED_COLOUR if column.drifted else STABLE_COLOUR
    axes.bar([p + 0.2 for p in positions], shares.current, 0.4, color=colour)
    axes.set_xticks(list(positions), shares.bins, rotation=35, ha="right", fontsize=7)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_title(f"{column.name}: {column.change}", fontsize=9)
    predicted = column.kind in ("score", "prediction")
    baseline = "held-out test data" if predicted else "training data"
    axes.legend([baseline, "batch"], fontsize=7, frameon=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
