"""Learning-rate schedules (PaddleClas ``Optimizer.lr``) as timm schedulers stepped once per optimizer update.

PaddleClas's ``Cosine`` with ``warmup_epoch`` is a linear warmup from ``warmup_start_lr`` followed by a cosine
over the remaining iterations down to ``eta_min``; timm's ``CosineLRScheduler`` with ``warmup_prefix=True`` and
``t_in_epochs=False`` is exactly that. Every schedule multiplies each parameter group's value by its
``lr_scale`` (the ``lr_mult_list`` multiplier), which timm's ``Scheduler.update_groups`` does.
"""

from __future__ import annotations

import bisect

import torch
from timm.scheduler import CosineLRScheduler, StepLRScheduler
from timm.scheduler.scheduler import Scheduler

from ssld.config.schema import OptimizerConfig
from ssld.errors import UserError


class PiecewiseLRScheduler(Scheduler):
    """PaddleClas ``Piecewise``: ``values[i]`` after the i-th boundary (boundaries in iterations)."""

    def __init__(self, optimizer: torch.optim.Optimizer, boundaries: list[int], values: list[float]) -> None:
        super().__init__(optimizer, param_group_field="lr", t_in_epochs=False)
        self.boundaries = boundaries
        self.values = values
        self.update_groups(self._get_lr(0))

    def _get_lr(self, t: int) -> list[float]:
        value = self.values[bisect.bisect_right(self.boundaries, t)]
        return [value for _ in self.base_values]


def build_scheduler(
    optimizer: torch.optim.Optimizer, opt_cfg: OptimizerConfig, steps_per_epoch: int, epochs: int
) -> Scheduler:
    """A per-iteration timm scheduler for ``opt_cfg.lr``; call ``step_update(num_updates)`` after each update.

    ``steps_per_epoch`` counts optimizer updates (iterations divided by gradient-accumulation steps). The
    returned scheduler has already set the lr for update 0.
    """
    lr = opt_cfg.lr
    total = max(1, steps_per_epoch * epochs)
    warmup = min(round(lr.warmup_epoch * steps_per_epoch), total - 1)
    warm = {"warmup_t": warmup, "warmup_lr_init": lr.warmup_start_lr, "warmup_prefix": True}
    sched: Scheduler
    if lr.name in ("Cosine", "CosineWarmup"):
        sched = CosineLRScheduler(
            optimizer, t_initial=max(1, total - warmup), lr_min=lr.eta_min, t_in_epochs=False, **warm
        )
    elif lr.name == "Constant":
        sched = StepLRScheduler(optimizer, decay_t=total + 1, decay_rate=1.0, t_in_epochs=False, **warm)
    elif lr.name == "Step":
        if not lr.step_size:
            raise UserError("Optimizer.lr.step_size: required for the Step schedule (epochs between decays)")
        sched = StepLRScheduler(
            optimizer, decay_t=lr.step_size * steps_per_epoch, decay_rate=lr.gamma, t_in_epochs=False, **warm
        )
    else:
        if not lr.decay_epochs or not lr.values or len(lr.values) != len(lr.decay_epochs) + 1:
            raise UserError(
                "Optimizer.lr: Piecewise needs decay_epochs (N boundaries) and values (N+1 learning rates)"
            )
        sched = PiecewiseLRScheduler(optimizer, [e * steps_per_epoch for e in lr.decay_epochs], list(lr.values))
    sched.step_update(0)
    return sched
