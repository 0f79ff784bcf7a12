"""The results table of a pipeline run: teacher, labels-only baseline, distilled and finetuned student.

Numbers come from ``RUN/eval/results.json`` (each model's last weights on val); data sizes, steps and wall time
from the stages' ``done.json``. Deltas are against the labels-only baseline of the same run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ssld.utils.format import format_seconds

MODEL_STAGES = ("teacher", "baseline", "distill", "finetune", "fixres")
ROW_NAMES = {
    "teacher": "teacher",
    "baseline": "student, labels only (baseline)",
    "distill": "student after SSLD distill",
    "finetune": "student after distill + finetune",
    "fixres": "student after FixRes finetune",
}


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's content, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def describe_loss(names: list[str]) -> str:
    """A loss list by its names, e.g. the distill stage's: each with the summary its class states (the one
    source of loss descriptions, also behind ``ssld check``)."""
    from ssld.losses.registry import LOSSES

    return " + ".join(f"{n} ({LOSSES[n].summary})" if n in LOSSES else n for n in names) or "-"


def result_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """One row per evaluated model, in pipeline order, with delta vs baseline and each number's source file."""
    run = Path(run_dir)
    results = read_json(run / "eval" / "results.json") or {}
    base = results.get("baseline", {}).get("top1")
    rows = []
    for stage in MODEL_STAGES:
        r = results.get(stage)
        if r is None:
            continue
        rows.append({
            "stage": stage,
            "name": ROW_NAMES[stage],
            "model": r.get("model"),
            "top1": r.get("top1"),
            "top5": r.get("top5"),
            "delta": None if base is None or stage == "baseline" else round(r["top1"] - base, 2),
            "train_images": r.get("train_images"),
            "steps": r.get("steps"),
            "lr": r.get("lr"),
            "wall_time_s": r.get("wall_time_s"),
            "loss": r.get("loss", []),
            "source": f"eval/results.json[{stage}] ← {r.get('weights')}",
        })
    return rows


def _cells(row: dict[str, Any]) -> list[str]:
    top1 = "-" if row["top1"] is None else f"{row['top1']:.2f}"
    delta = "" if row["delta"] is None else f"{row['delta']:+.2f}"
    if row["stage"] == "teacher":
        delta = f"({delta})" if delta else ""
    return [row["name"], row["model"] or "-", top1, delta, str(row["train_images"] or "-"), str(row["steps"] or "-"),
            format_seconds(row["wall_time_s"])]


HEADER = ["model", "network", "val top-1 %", "Δ vs baseline", "train images", "optimizer steps", "wall time"]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a GitHub markdown table."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def plain_table(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned plain-text table (for the console)."""
    table = [HEADER] + [_cells(r) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    out = []
    for i, line in enumerate(table):
        out.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def results_table(run_dir: str | Path) -> str | None:
    """The console table of a run, or None before its eval stage has finished."""
    rows = result_rows(run_dir)
    if not rows:
        return None
    total = sum(r.get("wall_time_s") or 0.0 for r in stage_records(run_dir).values())
    return f"results ({Path(run_dir)}; val = last weights of each stage)\n{plain_table(rows)}\n" \
           f"wall time of all finished stages: {format_seconds(total)}"


def stage_records(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """``done.json`` of every finished stage of a run, by stage name, in the order they finished."""
    records = [(done.parent.name, read_json(done)) for done in Path(run_dir).glob("*/done.json")]
    records = [(name, r) for name, r in records if r is not None]
    return dict(sorted(records, key=lambda item: item[1].get("finished_at", 0.0)))
