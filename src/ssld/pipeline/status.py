"""The plain-text status table printed at the start and end of ``ssld pipeline`` (no terminal tricks: it reads the
same in a log file as on a screen)."""

from __future__ import annotations

from typing import Any, NamedTuple

from ssld.utils.format import format_seconds


class StageRow(NamedTuple):
    """One line of the status table."""

    stage: str
    state: str
    seconds: float | None
    metric_name: str | None
    metric: Any


def _metric_text(row: StageRow) -> str:
    if row.metric is None or row.metric_name is None:
        return "-"
    value = f"{row.metric:.2f}" if isinstance(row.metric, float) else str(row.metric)
    return f"{row.metric_name}={value}"


def format_status(rows: list[StageRow], title: str = "pipeline status") -> str:
    """Render rows as an aligned table with a header and the total wall time of finished stages."""
    table = [("stage", "state", "time", "key metric")]
    table += [(r.stage, r.state, format_seconds(r.seconds), _metric_text(r)) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(4)]
    lines = [title]
    for i, line in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    total = sum(r.seconds for r in rows if r.seconds is not None and r.state == "done")
    lines.append(f"total time of finished stages: {format_seconds(total)}")
    return "\n".join(lines)
