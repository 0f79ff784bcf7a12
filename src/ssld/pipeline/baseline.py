"""The labels-only baseline: the same student, its own best lr, at least as many optimizer steps as SSLD.

The lr comes from a small grid, each candidate trained on part of the labeled set and scored on the held-out
rest of it (never on val). The final run then trains on the whole labeled set for at least the optimizer steps
distill + finetune take together, so the comparison cannot be won by training longer.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

from ssld.config import SSLDConfig
from ssld.errors import UserError
from ssld.pipeline.budget import auto_epochs, ssld_step_budget, validated
from ssld.pipeline.config import PipelineConfig
from ssld.pipeline.fit import fill_auto, fit_config
from ssld.pipeline.runner import Stage, StageContext, StageResult
from ssld.pipeline.shared import data_lists
from ssld.pipeline.training import (
    WEIGHTS,
    Lists,
    count_lines,
    evaluate_weights,
    percent,
    read_training_yaml,
    steps_per_epoch,
    train_config,
    write_stage_config,
)
from ssld.utils.io import atomic_write_text, write_json


def split_labeled(labeled: Path, holdout_fraction: float, seed: int, out_dir: Path) -> tuple[Path, Path]:
    """A stratified split of the labeled list into ``grid_train.txt`` and ``grid_holdout.txt``."""
    by_class: dict[str, list[str]] = {}
    for line in labeled.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            by_class.setdefault(parts[1], []).append(line)
    rng = random.Random(seed)
    train, holdout = [], []
    for cls in sorted(by_class):
        lines = by_class[cls][:]
        rng.shuffle(lines)
        n_hold = max(1, round(len(lines) * holdout_fraction)) if len(lines) > 1 else 0
        holdout += lines[:n_hold]
        train += lines[n_hold:]
    if not holdout:
        raise UserError(f"{labeled}: too few labeled images per class to hold out a split for the lr grid")
    paths = out_dir / "grid_train.txt", out_dir / "grid_holdout.txt"
    for path, lines in zip(paths, (train, holdout), strict=True):
        atomic_write_text(path, "".join(x + "\n" for x in lines))
    return paths


def baseline_stage(p: PipelineConfig) -> Stage:
    sec = p.pipeline.baseline
    assert sec is not None
    path = p.config_path(sec.config)
    seed = p.pipeline.seed

    def run_one(out: Path, lists: Lists, lr: float, epochs: int, resume: bool,
                image: dict[str, Any] | None) -> tuple[SSLDConfig, dict[str, Any]]:
        raw = read_training_yaml(path, {**sec.overrides, "Optimizer.lr.learning_rate": lr, "Global.epochs": epochs},
                                 "Pipeline.baseline")
        raw = fit_config(raw, image, "Pipeline.baseline", sec.config)
        cfg = write_stage_config(raw, out, lists, seed, resume, sec.config)
        return cfg, train_config(cfg)

    def run(ctx: StageContext) -> StageResult:
        image_root, data_dir = data_lists(ctx)
        labeled = data_dir / "train_labeled.txt"
        n_labeled = count_lines(labeled)
        image = ctx.upstream["data"]["metrics"].get("image")
        budget = ssld_step_budget(p, n_labeled, ctx.upstream["data"]["metrics"]["pool"], image)

        def probe_cfg() -> SSLDConfig:
            raw = fill_auto(read_training_yaml(path, sec.overrides, "Pipeline.baseline"), image, "Pipeline.baseline")
            return validated(raw, "Pipeline.baseline")

        grid_dir = ctx.dir / "lr_grid"
        grid_dir.mkdir(exist_ok=True)
        grid_train, holdout = split_labeled(labeled, sec.holdout_fraction, seed, grid_dir)
        grid_lists = Lists(image_root, str(grid_train), str(holdout))
        scores: dict[str, float] = {}
        for lr in sec.lr_grid:
            out = grid_dir / f"lr_{lr:g}"
            result = out / "holdout.json"
            if not result.is_file():
                per_epoch = steps_per_epoch(probe_cfg(), count_lines(grid_train))
                epochs = max(1, math.ceil(sec.grid_steps_fraction * budget["total"] / per_epoch))
                cfg, _ = run_one(out, grid_lists, lr, epochs, resume=ctx.resume, image=image)
                score = evaluate_weights(cfg, out / WEIGHTS, str(holdout), image_root)
                write_json(result, {"lr": lr, "epochs": epochs, **score})
            scores[f"{lr:g}"] = json.loads(result.read_text())["top1"]
        best = max(sec.lr_grid, key=lambda lr: scores[f"{lr:g}"])
        epochs = math.ceil(budget["total"] / steps_per_epoch(probe_cfg(), n_labeled))
        lists = Lists(image_root, str(labeled), str(data_dir / "val.txt"))
        cfg, final = run_one(ctx.dir, lists, best, epochs, resume=ctx.resume, image=image)
        steps = steps_per_epoch(cfg, n_labeled) * epochs
        metrics = {
            "val_top1_last_epoch": percent(final.get("top1")),
            "lr": best, "lr_grid_holdout_top1": scores, "holdout_images": count_lines(holdout),
            "epochs": epochs, "steps": steps, "ssld_steps": budget, "train_images": n_labeled,
            "source": "baseline/train_report.json; lr choice: baseline/lr_grid/*/holdout.json",
        }
        return StageResult(metrics, [WEIGHTS])

    settings = {**sec.model_dump(exclude={"config"}), "seed": seed,
                "budget_from": {"distill": p.pipeline.distill.model_dump(),
                                "finetune": p.pipeline.finetune.model_dump() if p.pipeline.finetune else None,
                                "select": p.pipeline.select.model_dump()}}
    if auto_epochs(p, p.pipeline.distill):  # the distill budget follows the data
        settings["budget_from"]["budget"] = p.pipeline.budget.model_dump()
    inputs = [str(path), str(p.config_path(p.pipeline.distill.config))]
    if p.pipeline.finetune is not None:
        inputs.append(str(p.config_path(p.pipeline.finetune.config)))
    return Stage("baseline", run, deps=("data",), settings=settings, input_files=tuple(inputs), key_metric="val_top1_last_epoch")
