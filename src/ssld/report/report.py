"""``RUN/report.md``: what each SSLD step bought, with every number's source file, and the report's figures.

Built only from files in the run directory (``eval/results.json``, the stages' ``done.json`` and
``metrics.jsonl``), so it can be regenerated at any time with ``ssld report RUN``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssld.errors import UserError
from ssld.report.plots import accuracy_bars, learning_curves, read_metrics
from ssld.report.tables import (
    describe_loss,
    markdown_table,
    read_json,
    result_rows,
    stage_records,
)
from ssld.utils.format import format_seconds
from ssld.utils.io import atomic_write_text

TRAINING = ("teacher", "baseline", "distill", "finetune", "fixres")


def _stage_lines(records: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| stage | wall time | metrics (from RUN/<stage>/done.json) |", "|---|---|---|"]
    for name, r in records.items():
        metrics = {k: v for k, v in (r.get("metrics") or {}).items() if not isinstance(v, (dict, list))}
        text = ", ".join(f"{k}={v}" for k, v in metrics.items())
        lines.append(f"| {name} | {format_seconds(r.get('wall_time_s'))} | {text} |")
    return lines


def _notes(run: Path, rows: list[dict[str, Any]], records: dict[str, dict[str, Any]]) -> list[str]:
    notes = []
    distill = next((r for r in rows if r["stage"] == "distill"), None)
    if distill:
        notes.append(f"- Distillation loss actually used: {describe_loss(distill['loss'])} "
                     "(from distill/config.yaml `Loss.Train`).")
    base = records.get("baseline", {}).get("metrics", {})
    if base:
        notes.append(f"- Baseline lr {base.get('lr')} chosen from the grid {base.get('lr_grid_holdout_top1')} "
                     f"(top-1 % on {base.get('holdout_images')} held-out *labeled* images, never val); "
                     f"{base.get('steps')} optimizer steps vs {base.get('ssld_steps', {}).get('total')} for "
                     "distill + finetune (distill set counted at its largest).")
    guard = read_json(run / "guard.json")
    if guard and guard.get("margin") is not None:
        notes.append(f"- Teacher guard: the teacher scored {guard['teacher_holdout_top1']} % and the labels-only student "
                     f"(its lr-grid run at lr {guard.get('student_lr')}) {guard['student_holdout_top1']} % on the "
                     f"{guard.get('holdout_images')} held-out labeled images ({guard.get('holdout')}): "
                     f"{guard['margin']:+.2f} points (guard.json; the teacher may have trained on these images, the "
                     "student did not).")
    elif base:
        notes.append("- Teacher guard: not run (Pipeline.guard.enabled: false, or the run stopped before it).")
    sel = records.get("select", {}).get("metrics", {})
    if sel:
        precision = sel.get("teacher_precision_on_selected")
        notes.append(f"- Selected {sel.get('selected')} pool images (top-{sel.get('k')} per class)"
                     + (f"; the teacher's class was right on {precision}% of them (hidden labels, analysis only)."
                        if precision is not None else "."))
    dedup = records.get("dedup", {}).get("metrics", {})
    if dedup:
        notes.append(f"- Dedup removed {dedup.get('removed')} of {dedup.get('pool')} pool images as copies of val "
                     "images (dedup/removed.csv).")
    notes.append("- Every accuracy is the stage's last weights (`student.safetensors`, written with the last "
                 "checkpoint) on val, evaluated once by the eval stage; val top-1 in the curves is logged only.")
    return notes


def write_report(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write ``RUN/report.md`` and its PNGs (in ``out_dir``, default ``RUN/report``); returns the markdown path."""
    run = Path(run_dir)
    if not run.is_dir():
        raise UserError(f"{run}: run directory not found")
    rows = result_rows(run)
    if not rows:
        raise UserError(f"{run}: no eval/results.json yet; run the pipeline up to the eval stage first "
                        "(ssld pipeline -c CONFIG --run-dir RUN --from eval)")
    records = stage_records(run)
    figs = Path(out_dir) if out_dir is not None else run / "report"
    figs.mkdir(parents=True, exist_ok=True)
    rel = figs.relative_to(run) if figs.is_relative_to(run) else figs
    identity = (read_json(run / "pipeline.json") or {}).get("identity", {})
    config = (f"Config: `{identity.get('source', '?')}`, profile `{identity.get('profile')}`, "
              f"seed {identity.get('pipeline', {}).get('seed', '?')}.")
    md = [f"# SSLD run report: {run.name}", "", config, "", markdown_table(rows), ""]
    sources = "; ".join(f"{r['stage']}: `{r['source']}`" for r in rows)
    md += [f"Sources: {sources}", ""]
    md += ["## Notes", "", *_notes(run, rows, records), ""]
    md += ["## Figures", ""]
    if accuracy_bars(rows, figs / "accuracy.png"):
        md.append(f"![val accuracy]({rel}/accuracy.png)")
    curves = {s: read_metrics(run / s / "metrics.jsonl") for s in TRAINING if (run / s).is_dir()}
    if learning_curves(curves, figs / "learning_curves.png"):
        md.append(f"![learning curves]({rel}/learning_curves.png)")
    for title, path in (("per-class selection counts", "select/select_counts.png"),
                        ("dedup: pool images removed as copies of val images", "dedup/pairs.png")):
        if (run / path).is_file():
            md.append(f"![{title}]({path})")
    md += ["", "## Stages", "", *_stage_lines(records), ""]
    path = run / "report.md"
    atomic_write_text(path, "\n".join(md) + "\n")
    return path
