"""One training epoch: forward, loss, backward with gradient accumulation, optimizer and schedule steps.

The loop keeps loss sums on the device and reads them only every ``log_interval`` iterations, so it adds no
per-step host synchronisation to what a hand-written loop does. With N processes, one small host-side (gloo)
all-reduce per iteration makes every rank agree on skipping an empty batch (all its images unreadable) and on
stopping after a SIGTERM/SIGINT, so the ranks never disagree about which collective comes next.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ssld.engine import watchdog
from ssld.engine.metrics import MetricsLog, Throughput
from ssld.models.precision import Precision
from ssld.utils import distributed as dist

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger("ssld.engine")


@dataclass
class Position:
    """Where training stands: ``batch`` is the next batch of ``epoch``; ``step`` counts iterations in all,
    ``updates`` optimizer steps (the scheduler's clock)."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    updates: int = 0


class StopRequest:
    """Turns the first SIGTERM/SIGINT into a request to checkpoint and stop at the next update; a second one
    interrupts at once. Forked data-loader workers inherit the handler and ignore the signal: the main process
    stops them."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}
        self._pid = os.getpid()

    def _handle(self, signum: int, _frame: object) -> None:
        if os.getpid() != self._pid:
            return
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("signal %d: saving a checkpoint at the next step, then stopping", signum)

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


@dataclass
class StepContext:
    """Everything one epoch needs, built once by the trainer."""

    model: nn.Module
    student: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    precision: Precision
    device: torch.device
    iters_per_epoch: int
    accum_steps: int
    clip_grad_norm: float | None
    channels_last: bool
    log_interval: int
    save_steps: int | None
    metrics: MetricsLog
    save: Callable[[Position], None]
    stop: StopRequest
    ema: nn.Module | None = None
    ddp_modules: list[nn.Module] = field(default_factory=list)
    clip_norm: float | None = None  # per-tensor clipping (PaddleClas's clip_norm)
    offline: Any = None  # ssld.engine.offline_teacher.OfflineTeacher: teacher logits from the batch's soft_target
    batch_transform: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None
    bn_eval: bool = False  # BatchNorm layers stay in eval mode (running statistics, never updated): FixRes


@dataclass
class EpochResult:
    losses: dict[str, float]
    images: int
    seconds: float
    bad: list[int]


def _grad_anchor(outputs: Any) -> torch.Tensor:
    """A zero that depends on every output needing a gradient (a batch whose loss has no graph still has to run
    backward, or DDP ranks would disagree)."""
    tensors = outputs.values() if isinstance(outputs, dict) else [outputs]
    return sum((t.float().sum() * 0.0 for t in tensors if torch.is_tensor(t) and t.requires_grad),
               torch.zeros(()))


def set_bn_eval(model: nn.Module) -> None:
    """Put every BatchNorm in eval mode: running statistics are used and never updated."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def base_lr(optimizer: torch.optim.Optimizer) -> float:
    """The schedule's current value (a group's lr divided by its ``lr_scale``)."""
    g = optimizer.param_groups[0]
    return g["lr"] / g.get("lr_scale", 1.0) if g.get("lr_scale", 1.0) else g["lr"]


def _progress(total: int, initial: int, epoch: int) -> Any:
    from tqdm import tqdm

    show = dist.is_main() and (sys.stderr.isatty() or os.environ.get("SSLD_PROGRESS") == "1")
    return tqdm(total=total, initial=initial, desc=f"epoch {epoch + 1}", disable=not show, leave=False,
                dynamic_ncols=True)


def train_epoch(ctx: StepContext, loader: Iterable[dict[str, Any]], pos: Position) -> EpochResult:
    """Run the rest of ``pos.epoch`` from ``pos.batch``; ``pos`` is advanced in place."""
    ctx.model.train()
    if ctx.bn_eval:
        set_bn_eval(ctx.model)
    world = dist.world_size()
    sums: dict[str, torch.Tensor] = {}
    count = 0
    window: dict[str, torch.Tensor] = {}
    window_n = 0
    bad: list[int] = []
    images_done = 0
    had_grad = False
    meter = Throughput()
    start = time.perf_counter()
    bar = _progress(ctx.iters_per_epoch, pos.batch, pos.epoch)
    for batch in loader if pos.batch < ctx.iters_per_epoch else ():
        bad.extend(i for i in batch["bad"] if i >= 0)
        n = int(batch["image"].shape[0])
        empty, stop = n == 0, ctx.stop.requested
        if world > 1:
            empty, stop = dist.host_any([empty, stop])
        boundary = (pos.batch + 1) % ctx.accum_steps == 0 or pos.batch + 1 == ctx.iters_per_epoch
        if not empty:
            parts = _forward_backward(ctx, batch, sync=boundary)
            had_grad = True
            for k, v in parts.items():
                window[k] = window.get(k, 0) + v * n
                sums[k] = sums.get(k, 0) + v * n
            window_n += n
            count += n
            images_done += n
            meter.add(n * world)
        pos.batch += 1
        pos.step += 1
        watchdog.beat()
        bar.update(1)
        if not boundary:
            continue
        if had_grad:
            _optimizer_step(ctx)
        had_grad = False
        pos.updates += 1
        ctx.scheduler.step_update(pos.updates)
        if pos.step % ctx.log_interval == 0 and window_n:
            row = {k: float(v) / window_n for k, v in window.items()}
            lr = base_lr(ctx.optimizer)
            bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{lr:.3g}", img_s=f"{meter.rate():.0f}")
            ctx.metrics.write({"kind": "train", "epoch": pos.epoch + 1, "step": pos.step, "lr": lr, **row,
                               "img_s": meter.rate(), "time": time.time()})
            window, window_n = {}, 0
        if stop or (ctx.save_steps and pos.step % ctx.save_steps == 0):
            ctx.save(pos)
        if stop:
            bar.close()
            raise KeyboardInterrupt
        if pos.batch >= ctx.iters_per_epoch:
            break  # a capped epoch (max_steps_per_epoch) stops here, before fetching a batch it would not use
    bar.close()
    losses = {k: float(v) / max(count, 1) for k, v in sums.items()}
    return EpochResult(losses=losses, images=images_done, seconds=time.perf_counter() - start, bad=bad)


def _forward_backward(ctx: StepContext, batch: dict[str, Any], sync: bool) -> dict[str, torch.Tensor]:
    """Forward and backward of one micro-batch; returns the detached loss parts."""
    images = batch["image"].to(ctx.device, non_blocking=True)
    if ctx.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = batch["label"].to(ctx.device, non_blocking=True)
    if ctx.batch_transform is not None:
        images, labels = ctx.batch_transform(images, labels)
    with contextlib.ExitStack() as stack:
        if not sync:
            for m in ctx.ddp_modules:
                stack.enter_context(m.no_sync())
        with ctx.precision.autocast():
            outputs = ctx.model(images)
            if ctx.offline is not None:
                outputs = ctx.offline.add_targets(outputs, batch, ctx.device)
            parts = ctx.loss_fn(outputs, labels)
        loss = parts["loss"]
        if not loss.requires_grad:
            loss = loss + _grad_anchor(outputs).to(loss.device)
        ctx.scaler.scale(loss / ctx.accum_steps).backward()
    return {k: v.detach().float() for k, v in parts.items()}


def clip_each_norm_(params: list[torch.Tensor], max_norm: float) -> None:
    """Scale each gradient whose L2 norm exceeds ``max_norm`` down to it, tensor by tensor (Paddle's
    ``ClipGradByNorm``; torch's ``clip_grad_norm_`` clips the norm of all of them together)."""
    for p in params:
        if p.grad is not None:
            norm = torch.linalg.vector_norm(p.grad.float())
            p.grad.mul_((max_norm / norm.clamp(min=max_norm)).to(p.grad.dtype))


def _optimizer_step(ctx: StepContext) -> None:
    """Unscale, clip, step, update the scaler and the EMA, clear gradients."""
    if ctx.clip_grad_norm or ctx.clip_norm:
        ctx.scaler.unscale_(ctx.optimizer)
        params = [p for g in ctx.optimizer.param_groups for p in g["params"]]
        if ctx.clip_norm:
            clip_each_norm_(params, ctx.clip_norm)
        if ctx.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, ctx.clip_grad_norm)
    ctx.scaler.step(ctx.optimizer)
    ctx.scaler.update()
    ctx.optimizer.zero_grad(set_to_none=True)
    if ctx.ema is not None:
        ctx.ema.update(ctx.student)
