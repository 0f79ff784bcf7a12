"""Learning-rate schedules (PaddleClas ``Optimizer.lr``) as timm schedulers stepped once per optimizer update.

PaddleClas's ``Cosine`` with ``warmup_epoch`` is a linear warmup from ``warmup_start_lr`` followed by a cosine
over the remaining iterations down to ``eta_min``; timm's ``CosineLRScheduler`` with ``warmup_prefix=True`` and
``t_in_epochs=False`` is exactly that. Every schedule multiplies each parameter group's value by its
``lr_scale`` (the ``lr_mult_list`` multiplier), which timm's ``Scheduler.update_groups`` does.

The other PaddleClas schedules follow ``ppcls/optimizer/learning_rate.py`` (per iteration, ``by_epoch: false``),
each after the same linear warmup (Paddle's ``LinearWarmup``: the schedule itself starts counting when the warmup
ends, and the warmup climbs to the schedule's first value):

- ``MultiStepDecay``: ``learning_rate · gamma^k``, k = milestones (epochs) passed;
- ``Piecewise``: ``values[k]``, k = ``decay_epochs`` passed. As in PaddleClas, a ``learning_rate`` in a Piecewise
  section replaces ``decay_epochs``/``values`` by its rule: ÷10 every 30 epochs (with a warning);
- ``Linear``: polynomial decay ``(learning_rate − end_lr)·(1 − t/T)^power + end_lr`` over the iterations after
  the warmup;
- ``ConstLR``: the constant ``learning_rate`` after the warmup (``Constant`` is the same in ssld).

``by_epoch: true`` (PaddleClas steps such a schedule once per epoch, counting warmup and decay in epochs) holds each
epoch at the per-iteration schedule's value at that epoch's first iteration: the same learning rates, exactly.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable

import torch
from timm.scheduler import CosineLRScheduler, StepLRScheduler
from timm.scheduler.scheduler import Scheduler

from ssld.config.schema import OptimizerConfig
from ssld.errors import UserError

log = logging.getLogger("ssld.engine")


class WarmupCurveScheduler(Scheduler):
    """``curve(t − warmup)`` per iteration, after a linear warmup from ``warmup_start`` to ``curve(0)``."""

    def __init__(self, optimizer: torch.optim.Optimizer, curve: Callable[[int], float], warmup: int = 0,
                 warmup_start: float = 0.0) -> None:
        super().__init__(optimizer, param_group_field="lr", t_in_epochs=False)
        self.curve, self.warmup, self.warmup_start = curve, warmup, warmup_start
        self.update_groups(self._get_lr(0))

    def _get_lr(self, t: int) -> list[float]:
        if t < self.warmup:
            value = self.warmup_start + (self.curve(0) - self.warmup_start) * t / self.warmup
        else:
            value = self.curve(t - self.warmup)
        return [value for _ in self.base_values]


class ByEpochScheduler(Scheduler):
    """``inner``'s value at the first update of the current epoch (PaddleClas's ``by_epoch: true``)."""

    def __init__(self, optimizer: torch.optim.Optimizer, inner: Scheduler, steps_per_epoch: int) -> None:
        super().__init__(optimizer, param_group_field="lr", t_in_epochs=False)
        self.inner, self.steps_per_epoch = inner, max(1, steps_per_epoch)
        self.update_groups(self._get_lr(0))

    def _get_lr(self, t: int) -> list[float]:
        return self.inner._get_lr(t - t % self.steps_per_epoch)


def piecewise(boundaries: list[int], values: list[float]) -> Callable[[int], float]:
    """``values[k]`` where k is the number of boundaries (iterations) passed (Paddle's ``PiecewiseDecay``)."""
    return lambda t: values[bisect.bisect_right(boundaries, t)]


def multistep(lr: float, milestones: list[int], gamma: float) -> Callable[[int], float]:
    """``lr · gamma^k`` where k is the number of milestones (iterations) passed (Paddle's ``MultiStepDecay``)."""
    return lambda t: lr * gamma ** bisect.bisect_right(milestones, t)


def polynomial(lr: float, end_lr: float, steps: int, power: float) -> Callable[[int], float]:
    """Paddle's ``PolynomialDecay`` without cycling: from ``lr`` to ``end_lr`` over ``steps``, then ``end_lr``."""
    if steps <= 0:
        return lambda t: lr
    return lambda t: (lr - end_lr) * (1 - min(t, steps) / steps) ** power + end_lr


def _piecewise_rule(learning_rate: float, epochs: int) -> tuple[list[int], list[float]]:
    """PaddleClas's Piecewise with ``learning_rate``: ÷10 every 30 epochs (one value twice under 30 epochs)."""
    starts = list(range(0, epochs, 30))
    values = [learning_rate * 0.1**i for i in range(len(starts))]
    if len(starts) == 1:
        return [epochs], [values[0], values[0]]
    return starts[1:], values


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
            optimizer, decay_t=max(1, round(lr.step_size * steps_per_epoch)), decay_rate=lr.gamma, t_in_epochs=False,
            **warm
        )
    elif lr.name == "ConstLR":
        sched = WarmupCurveScheduler(optimizer, lambda t: lr.learning_rate, warmup, lr.warmup_start_lr)
    elif lr.name == "Linear":
        curve = polynomial(lr.learning_rate, lr.end_lr, total - warmup, lr.power)
        sched = WarmupCurveScheduler(optimizer, curve, warmup, lr.warmup_start_lr)
    elif lr.name == "MultiStepDecay":
        if not lr.milestones:
            raise UserError("Optimizer.lr.milestones: required for MultiStepDecay (epochs after which lr *= gamma)")
        curve = multistep(lr.learning_rate, [m * steps_per_epoch for m in lr.milestones], lr.gamma)
        sched = WarmupCurveScheduler(optimizer, curve, warmup, lr.warmup_start_lr)
    else:
        decay_epochs, values = lr.decay_epochs, lr.values
        if "learning_rate" in lr.model_fields_set:
            decay_epochs, values = _piecewise_rule(lr.learning_rate, epochs)
            log.warning("Optimizer.lr: Piecewise with learning_rate %g: decay_epochs and values are %s and %s "
                        "(PaddleClas's rule: lr / 10 every 30 epochs)", lr.learning_rate, decay_epochs, values)
        if not decay_epochs or not values or len(values) != len(decay_epochs) + 1:
            raise UserError(
                "Optimizer.lr: Piecewise needs decay_epochs (N boundaries) and values (N+1 learning rates)"
            )
        curve = piecewise([e * steps_per_epoch for e in decay_epochs], list(values))
        sched = WarmupCurveScheduler(optimizer, curve, warmup, lr.warmup_start_lr)
    if lr.by_epoch:
        sched = ByEpochScheduler(optimizer, sched, steps_per_epoch)
    sched.step_update(0)
    return sched
