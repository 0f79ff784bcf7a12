"""``ssld ablate``: the reference's ablations as pipeline variants, each the mean ± std over seeds.

An ablation file names a pipeline file and a list of rows; each row deep-merges ``overrides`` onto the
``Pipeline`` section. Row × seed is an ordinary pipeline run in ``OUT/<row>/s<seed>``; stages whose hash matches
a finished stage of another row (or a ``reuse`` run) are linked instead of recomputed, so a row that changes only
the distill loss trains no new teacher. Each finished seed is cached in ``OUT/results/<row>/s<seed>.json`` at once
(an ``ssld.utils.cache`` record keyed by the hash of its recipe, field ``recipe``): the command can be killed and
started again, and it goes on with the next missing row × seed.

``pipeline`` is relative to the ablation file's folder; ``out_dir``, ``results`` and ``reuse`` to the current
directory (like ``--run-dir``).
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ssld.config.loader import read_yaml, validation_error_line
from ssld.errors import UserError
from ssld.pipeline.config import deep_merge
from ssld.utils.cache import FinishedWork
from ssld.utils.io import atomic_write_text

BEGIN, END = "<!-- ssld-ablate:begin -->", "<!-- ssld-ablate:end -->"


class AblationRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    claim: str = Field(description="what the reference found, with its numbers")
    overrides: dict[str, Any] = Field(default_factory=dict, description="deep-merged onto Pipeline")


class AblationFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pipeline: str
    profile: str | None = "quick"
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    out_dir: str = "runs/ablate"
    results: str = "docs/results.md"
    reuse: list[str] = Field(default_factory=list, description="run dirs to link finished stages from; {seed} ok")
    row_defaults: dict[str, Any] = Field(default_factory=dict, description="deep-merged onto Pipeline for all rows")
    rows: list[AblationRow] = Field(min_length=1)


def slug(name: str) -> str:
    """A row's folder name: lowercase words joined by dashes."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def load_ablation(path: str | Path) -> tuple[AblationFile, Path]:
    """The validated ``Ablation`` section and the folder relative paths are resolved against."""
    data, lines = read_yaml(path)
    if set(data) != {"Ablation"}:
        raise UserError(f"{path}: expected one section 'Ablation', got {', '.join(map(str, data))}")
    try:
        ab = AblationFile.model_validate(data["Ablation"])
    except ValidationError as e:
        raise UserError(validation_error_line(e, str(path), {k[1:]: v for k, v in lines.items()})) from None
    names = [slug(r.name) for r in ab.rows]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"{path}: Ablation.rows: duplicate row names {dupes}")
    return ab, Path(path).resolve().parent


def summarize(results: dict[str, Any]) -> dict[str, float | None]:
    """Top-1 of the teacher, the baseline and the student after distill, finetune and FixRes (``eval/results.json``)."""
    return {k: results.get(k, {}).get("top1") for k in ("teacher", "baseline", "distill", "finetune", "fixres")}


def recipe_key(ab: AblationFile, base: Path, row: AblationRow, seed: int) -> str:
    """A hash of what one row × seed trains: the resolved pipeline section and the bytes of every training
    config it references. A cached cell with another key was measured on another recipe and is run again."""
    import hashlib

    from ssld.pipeline.config import load_pipeline_config

    p = load_pipeline_config(base / ab.pipeline, profile=ab.profile, seed=seed,
                             extra=deep_merge(ab.row_defaults, row.overrides))
    h = hashlib.sha256(json.dumps(p.pipeline.identity(), sort_keys=True, default=str).encode())
    for name in ("teacher", "baseline", "distill", "finetune", "fixres"):
        stage = getattr(p.pipeline, name)
        if stage is not None:
            h.update(p.config_path(stage.config).read_bytes())
    return h.hexdigest()


def run_row_seed(ab: AblationFile, base: Path, row: AblationRow, seed: int, out: Path) -> dict[str, Any]:
    """Run (or finish) one row for one seed; returns its summary."""
    from ssld.pipeline.api import open_pipeline

    run_dir = out / slug(row.name) / f"s{seed}"
    siblings = [d for d in sorted(out.glob(f"*/s{seed}")) if d != run_dir]
    reuse = siblings + [Path(r.format(seed=seed)) for r in ab.reuse]
    pipe = open_pipeline(base / ab.pipeline, profile=ab.profile, seed=seed, run_dir=run_dir, force=True,
                         reuse_from=reuse, extra=deep_merge(ab.row_defaults, row.overrides),
                         allow_weak_teacher=True)  # rows study weak teachers on purpose: the guard warns only
    pipe.run()
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    wall = sum(r.seconds or 0.0 for r in pipe.rows())
    return {**summarize(results), "run_dir": str(run_dir), "stage_seconds": round(wall, 1)}


def cell_path(out_dir: Path, row: AblationRow, seed: int) -> Path:
    """The cached result of one row × seed: one file per cell, so runs on different seeds never overwrite
    each other's results (two ``ssld ablate --seed`` processes may share the out_dir)."""
    return out_dir / "results" / slug(row.name) / f"s{seed}.json"


def cell(out_dir: Path, row: AblationRow, seed: int) -> FinishedWork:
    """One row × seed as finished work: its summary, keyed by ``recipe_key`` in the field ``recipe``."""
    return FinishedWork(cell_path(out_dir, row, seed), key_field="recipe")


def run_ablation(
    path: str | Path, seeds: int | list[int] | None = None, rows: list[str] | None = None,
    write: str | Path | None = None, out: Callable[[str], None] = print, table_only: bool = False,
) -> str:
    """Run the missing row × seed cells (all rows, or ``rows`` by name; none with ``table_only``), then write
    the table into ``write`` (default: the file's ``results``) and return it.

    ``seeds``: None runs the file's seeds, an int N seeds 0..N-1, a list exactly those seeds; the table shows
    every cached cell of the file's seeds plus the ones run here."""
    ab, base = load_ablation(path)
    out_dir = Path(ab.out_dir)
    chosen = ab.rows
    if rows:
        known = {slug(r.name): r for r in ab.rows}
        missing = [r for r in rows if slug(r) not in known]
        if missing:
            raise UserError(f"--rows: unknown row(s) {missing}; rows: {', '.join(known)}")
        chosen = [known[slug(r)] for r in rows]
    seed_list = ab.seeds if seeds is None else list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    for row in [] if table_only else chosen:
        for seed in seed_list:
            work, key = cell(out_dir, row, seed), recipe_key(ab, base, row, seed)
            cached = work.read()
            if work.matches(cached, key):
                continue
            if cached is not None:
                out(f"ablate: row '{row.name}', seed {seed}: cached result is of another recipe, running again")
            out(f"ablate: row '{row.name}', seed {seed}")
            work.save(key, run_row_seed(ab, base, row, seed, out_dir))
    shown = seed_list if isinstance(seeds, int) else sorted(set(ab.seeds) | set(seed_list))
    table = ablation_table(ab, base, out_dir, shown)
    insert_section(Path(write or ab.results), table, f"ssld ablate -c {path}")
    out(table)
    return table


def _stat(values: list[float]) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.2f} ± {std:.2f}"


def _values(cells: list[dict[str, Any]], key: str) -> list[float]:
    """One metric over the cached seeds; ``final`` is the last stage a row ran: FixRes, finetune or distill."""
    if key == "final":
        picked = [next((c[k] for k in ("fixres", "finetune", "distill") if c.get(k) is not None), None)
                  for c in cells]
    else:
        picked = [c.get(key) for c in cells]
    return [v for v in picked if v is not None]


def _delta(values: list[float], reference: list[float]) -> str:
    if not values or not reference:
        return ""
    return f"{statistics.fmean(values) - statistics.fmean(reference):+.2f}"


def current_cells(ab: AblationFile, base: Path, out_dir: Path, row: AblationRow, seeds: list[int]) -> list[dict]:
    """The cached results of ``row`` on ``seeds`` that were measured on the current recipe (stale ones left out)."""
    cells = []
    for s in seeds:
        work = cell(out_dir, row, s)
        if work.path.is_file() and (record := work.load(recipe_key(ab, base, row, s))) is not None:
            cells.append(record)
    return cells


def ablation_table(ab: AblationFile, base: Path, out_dir: Path, seeds: list[int]) -> str:
    """Markdown table: one row per ablation row, mean ± std over the cached seeds of the current recipe, Δ vs the
    first row (the labels-only baseline is filled where the row runs the baseline stage: the recipe row)."""
    head = ("| variant | reference finding | teacher top-1 | labels-only baseline | after distill | after finetune | "
            "Δ distill vs first row | Δ final vs first row | seeds |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    first: list[dict[str, Any]] = []
    for i, row in enumerate(ab.rows):
        cells = current_cells(ab, base, out_dir, row, seeds)
        if i == 0:
            first = cells
        deltas = ["", ""] if i == 0 else [_delta(_values(cells, k), _values(first, k)) for k in ("distill", "final")]
        lines.append(f"| {row.name} | {row.claim} | {_stat(_values(cells, 'teacher'))} | "
                     f"{_stat(_values(cells, 'baseline'))} | "
                     f"{_stat(_values(cells, 'distill'))} | {_stat(_values(cells, 'finetune'))} | "
                     f"{deltas[0]} | {deltas[1]} | {len(cells)} |")
    return "\n".join(lines)


def insert_section(path: Path, table: str, command: str) -> None:
    """Put the table between the ablation markers of ``path`` (appending a section when there are none)."""
    block = f"{BEGIN}\n<!-- written by `{command}`; do not edit by hand -->\n\n{table}\n\n{END}"
    text = path.read_text() if path.is_file() else ""
    if BEGIN in text and END in text:
        start, stop = text.index(BEGIN), text.index(END) + len(END)
        text = text[:start] + block + text[stop:]
    else:
        text = text.rstrip() + ("\n\n" if text else "") + "## Ablations\n\n" + block + "\n"
    atomic_write_text(path, text)
