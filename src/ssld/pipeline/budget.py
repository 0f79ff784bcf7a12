"""Optimizer-step budgets: what distill + finetune take (the labels-only baseline gets at least as many), and the
budgets that follow the data for stages whose pipeline entry sets no ``Global.epochs`` (``Pipeline.budget``).

Epochs tuned for one dataset do not transfer: 15 epochs are 855 steps over 7,200 images and 45 over 400. With
``budget.auto`` (the default) a stage without ``Global.epochs`` in its pipeline overrides gets
- distill: at least ``distill_min_steps`` optimizer steps and ``distill_min_epochs`` epochs over its largest list
  (labeled + C·k, capped by the pool);
- teacher: at least the baseline's budget (distill + finetune steps) over the teacher's own list, so the teacher
  is never trained less than the labels-only student it has to beat.
A stage whose entry sets ``Global.epochs`` keeps it (the shipped Fashion-MNIST profiles set every one).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

from ssld.config import SSLDConfig
from ssld.config.loader import validation_error_line
from ssld.errors import UserError
from ssld.pipeline.config import PipelineConfig, TrainStage
from ssld.pipeline.fit import fill_auto
from ssld.pipeline.training import read_training_yaml, steps_per_epoch

EPOCHS = "Global.epochs"


def validated(raw: dict[str, Any], where: str) -> SSLDConfig:
    """A raw training config as an :class:`SSLDConfig` (one-line error naming ``where``)."""
    try:
        return SSLDConfig.model_validate(raw)
    except ValidationError as e:
        raise UserError(validation_error_line(e, where, {})) from None


def auto_epochs(p: PipelineConfig, sec: TrainStage) -> bool:
    """Whether a stage's epochs follow the data: ``budget.auto`` and no ``Global.epochs`` in its overrides."""
    return p.pipeline.budget.auto and EPOCHS not in sec.overrides


def stage_cfg(p: PipelineConfig, stage: str, image: dict[str, Any] | None) -> SSLDConfig:
    """A stage's training config with its pipeline overrides and the data's sizes (for step counts)."""
    sec = getattr(p.pipeline, stage)
    where = f"Pipeline.{stage}"
    return validated(fill_auto(read_training_yaml(p.config_path(sec.config), sec.overrides, where), image, where),
                     where)


def distill_images(p: PipelineConfig, n_labeled: int, n_pool: int) -> int:
    """The distill list at its largest: labeled + C·k selected (capped by the pool)."""
    pl = p.pipeline
    return n_labeled + (min(pl.num_classes * pl.select.k, n_pool) if pl.select.enabled else 0)


def distill_epochs(p: PipelineConfig, cfg: SSLDConfig, n_labeled: int, n_pool: int) -> int:
    """The distill stage's epochs: the config's, or the data-driven budget when ``auto_epochs``."""
    if not auto_epochs(p, p.pipeline.distill):
        return cfg.Global.epochs
    b = p.pipeline.budget
    per_epoch = steps_per_epoch(cfg, distill_images(p, n_labeled, n_pool))
    return max(b.distill_min_epochs, math.ceil(b.distill_min_steps / per_epoch))


def ssld_step_budget(p: PipelineConfig, n_labeled: int, n_pool: int,
                     image: dict[str, Any] | None = None) -> dict[str, int]:
    """Optimizer steps of distill and finetune, with the distill set at its largest (labeled + C·k, capped by the
    pool), so the baseline gets at least as many."""
    pl = p.pipeline
    distill = stage_cfg(p, "distill", image)
    epochs = distill_epochs(p, distill, n_labeled, n_pool)
    budget = {"distill": steps_per_epoch(distill, distill_images(p, n_labeled, n_pool)) * epochs, "finetune": 0}
    if pl.finetune is not None and pl.finetune.enabled:
        ft = stage_cfg(p, "finetune", image)
        budget["finetune"] = steps_per_epoch(ft, n_labeled) * ft.Global.epochs
    budget["total"] = budget["distill"] + budget["finetune"]
    return budget


def teacher_epochs(p: PipelineConfig, cfg: SSLDConfig, n_teacher: int, n_labeled: int, n_pool: int,
                   image: dict[str, Any] | None) -> int:
    """The teacher's epochs: the config's, or enough for the baseline's budget when ``auto_epochs``."""
    if not auto_epochs(p, p.pipeline.teacher):
        return cfg.Global.epochs
    total = ssld_step_budget(p, n_labeled, n_pool, image)["total"]
    return max(1, math.ceil(total / steps_per_epoch(cfg, n_teacher)))


def budget_settings(p: PipelineConfig) -> dict[str, Any]:
    """What a data-driven budget depends on (for a stage's hash; only added where a budget is data-driven)."""
    pl = p.pipeline
    return {"budget": pl.budget.model_dump(), "distill": pl.distill.model_dump(), "select": pl.select.model_dump(),
            "finetune": pl.finetune.model_dump() if pl.finetune else None}
