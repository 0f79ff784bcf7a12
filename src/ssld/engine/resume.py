"""Building a checkpoint from the live training state, and putting a checkpoint back into it.

The position is stored twice: as ``(epoch, batch, step, updates)`` for a resume under the same world size, and
as ``samples`` (images of the epoch consumed by all ranks together) so that a resume under another world size
re-derives its batch: every rank walks the same global permutation, so the global count is what matters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ssld.engine.checkpoint import restore_rng, rng_state
from ssld.engine.model_setup import TrainModel
from ssld.engine.train_loop import Position
from ssld.utils import distributed as dist

log = logging.getLogger("ssld.engine")


@dataclass
class Trainables:
    """The objects whose state a checkpoint carries besides the model."""

    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    ema: nn.Module | None


def make_checkpoint(tm: TrainModel, t: Trainables, pos: Position, batch_size: int, cfg_hash: str,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint dict at ``pos`` (collective: gathers every rank's RNG state)."""
    rngs = dist.all_gather_object(rng_state())
    return {
        "model": tm.state_dict(),
        "optimizer": t.optimizer.state_dict(),
        "scheduler": t.scheduler.state_dict(),
        "scaler": t.scaler.state_dict(),
        "ema": t.ema.module.state_dict() if t.ema is not None else None,
        "epoch": pos.epoch,
        "batch": pos.batch,
        "step": pos.step,
        "updates": pos.updates,
        "samples": pos.batch * batch_size * dist.world_size(),
        "batch_size": batch_size,
        "rng": rngs,
        "config_hash": cfg_hash,
        "world_size": dist.world_size(),
        **(extra or {}),
    }


def restore_position(ckpt: dict[str, Any], batch_size: int, iters_per_epoch: int, accum: int) -> Position:
    """Where to continue: exact under the same world size and batch, re-derived from ``samples`` otherwise."""
    if ckpt["world_size"] == dist.world_size() and ckpt.get("batch_size") == batch_size:
        return Position(ckpt["epoch"], ckpt["batch"], ckpt["step"], ckpt["updates"])
    batch = min(int(ckpt["samples"]) // (batch_size * dist.world_size()), iters_per_epoch)
    epoch = int(ckpt["epoch"])
    updates_per_epoch = -(-iters_per_epoch // accum)
    log.log(
        logging.WARNING if dist.is_main() else logging.DEBUG,
        "resuming a checkpoint written with %d process(es) x batch %s under %d x %d: continuing at epoch %d, "
        "batch %d (re-derived from the %d images already seen this epoch)",
        ckpt["world_size"], ckpt.get("batch_size"), dist.world_size(), batch_size, epoch + 1, batch,
        ckpt["samples"],
    )
    return Position(epoch, batch, epoch * iters_per_epoch + batch, epoch * updates_per_epoch + batch // accum)


def restore_trainables(ckpt: dict[str, Any], t: Trainables, pos: Position) -> None:
    """Optimizer, scaler and EMA state. The schedule is a pure function of the update count, so the freshly built
    scheduler (whose length follows the current config and world size) is simply set to ``pos.updates``."""
    t.optimizer.load_state_dict(ckpt["optimizer"])
    t.scaler.load_state_dict(ckpt["scaler"])
    if t.ema is not None and ckpt.get("ema") is not None:
        t.ema.module.load_state_dict(ckpt["ema"])
    t.scheduler.step_update(pos.updates)


def restore_rank_rng(ckpt: dict[str, Any]) -> None:
    """This rank's RNG states, when the checkpoint was written by the same number of processes."""
    rngs = ckpt.get("rng") or []
    if len(rngs) == dist.world_size():
        restore_rng(rngs[dist.rank()])
