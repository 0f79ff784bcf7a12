"""``train_model(cfg)``: supervised or distillation training of the config's model, resumable at the exact step.

Order of work: validate everything the user gave (data lists, checkpoint, model) before anything is written
(:mod:`ssld.engine.run_setup`); then train epoch by epoch (:func:`run_training`), evaluating the inference model
every ``eval_interval`` epochs and writing ``checkpoints/latest.pt`` (and ``best.pt``), ``student.safetensors``,
``metrics.jsonl`` (and TensorBoard scalars with ``Global.tensorboard``) and, at the end, ``train_report.json``
into ``Global.output_dir``. Only rank 0 writes. The Python API and FixRes hand in their own model and data
(``RunParts``) and run the same loop.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from ssld.config.schema import SSLDConfig
from ssld.engine.attr_metrics import attr_threshold, selection_metric
from ssld.engine.checkpoint import save_checkpoint
from ssld.engine.evaluate import evaluate
from ssld.engine.model_setup import use_channels_last
from ssld.engine.resume import make_checkpoint, restore_rank_rng
from ssld.engine.run_setup import RunParts, TrainingRun, build_train_loss, setup_run
from ssld.engine.tensorboard import close as close_metrics
from ssld.engine.train_loop import (
    EpochResult,
    Position,
    StepContext,
    StopRequest,
    base_lr,
    train_epoch,
)
from ssld.engine.watchdog import Watchdog
from ssld.errors import UserError
from ssld.utils import distributed as dist
from ssld.utils.io import write_json

__all__ = ["build_train_loss", "run_training", "train_model"]

log = logging.getLogger("ssld.engine")


def _save(run: TrainingRun, pos: Position, name: str = "latest.pt") -> None:
    """Checkpoint ``pos`` (collective) and, on rank 0, write it with the student's weights alone."""
    data = make_checkpoint(run.tm, run.state, pos, run.data.batch_size, run.cfg_hash,
                           {**run.extra, "best_top1": run.best})
    if dist.is_main():
        from ssld.models import save_safetensors

        save_checkpoint(run.out / "checkpoints" / name, data)
        save_safetensors(run.tm.student.state_dict(), run.out / "student.safetensors")
    dist.barrier()


def _step_context(run: TrainingRun, stop: StopRequest) -> StepContext:
    g = run.cfg.Global
    ddp = [m for m in run.tm.model.modules() if isinstance(m, torch.nn.parallel.DistributedDataParallel)]
    return StepContext(
        model=run.tm.model, student=run.tm.student, loss_fn=run.loss_fn, optimizer=run.state.optimizer,
        scheduler=run.state.scheduler, scaler=run.state.scaler, precision=run.precision, device=run.device,
        iters_per_epoch=run.iters_per_epoch, accum_steps=g.accum_steps,
        clip_grad_norm=run.cfg.Optimizer.clip_grad_norm, clip_norm=run.cfg.Optimizer.clip_norm,
        channels_last=use_channels_last(g.channels_last, run.device),
        log_interval=g.log_interval, save_steps=g.save_steps, metrics=run.metrics,
        save=lambda p: _save(run, p), stop=stop, ema=run.state.ema, ddp_modules=ddp, offline=run.offline,
        batch_transform=run.data.batch_transform, bn_eval=run.bn_eval,
    )


def _end_of_epoch(run: TrainingRun, epoch: int, result: EpochResult) -> dict[str, Any]:
    """Evaluate when due, log the epoch row, write best/latest; returns the eval metrics (empty if none)."""
    g = run.cfg.Global
    row: dict[str, Any] = {
        "kind": "epoch", "epoch": epoch + 1, "step": run.pos.step, "lr": base_lr(run.state.optimizer),
        **{f"train_{k}": v for k, v in result.losses.items()},
        "img_s": result.images * dist.world_size() / max(result.seconds, 1e-9), "time": time.time(),
    }
    metrics: dict[str, Any] = {}
    due = (epoch + 1) % g.eval_interval == 0 or epoch + 1 == g.epochs
    eval_loader = run.data.eval_loader
    if eval_loader is not None and due and epoch + 1 > g.start_eval_epoch:
        threshold = attr_threshold(run.cfg.Metric)
        metrics = evaluate(run.tm.student, eval_loader, run.device, run.precision, threshold)
        row.update(metrics)
        if run.state.ema is not None:
            ema = evaluate(run.state.ema.module, eval_loader, run.device, run.precision, threshold)
            row.update({f"ema_{k}": v for k, v in ema.items()})
        key = selection_metric(metrics)  # top1, or mA for multi-label data
        shown = ("top1", "top5") if key == "top1" else ("mA", "instance_f1")
        log.info("epoch %d: %s (%d images)", epoch + 1, " ".join(f"{k} {metrics[k]:.4f}" for k in shown),
                 metrics["count"])
        if metrics[key] > run.best:
            run.best = metrics[key]
            _save(run, run.pos, "best.pt")
    run.metrics.write(row)
    if (epoch + 1) % g.save_interval == 0 or epoch + 1 == g.epochs:
        _save(run, run.pos)
    return metrics


def _report_bad(epoch: int, bad: list[int], run: TrainingRun, skipped: dict[int, str]) -> None:
    """Gather the epoch's unreadable images from every rank and say how many were skipped."""
    indices = sorted(set().union(*dist.all_gather_object(sorted(set(bad)))))
    for i in indices:
        skipped[i] = run.data.sample_name(i)
    if indices and dist.is_main():
        log.warning("epoch %d: skipped %d unreadable images (first: %s)", epoch + 1, len(indices),
                    skipped[indices[0]])


def train_model(cfg: SSLDConfig, parts: RunParts | None = None) -> dict[str, Any]:
    """Train as the config says, or with the caller's model, data and loss (``parts``), and return the final
    metrics (see module docstring for the files written). ``ssld.engine.train`` also runs FixRes configs."""
    return run_training(setup_run(cfg, parts))


def run_training(run: TrainingRun) -> dict[str, Any]:
    """Train ``run`` from its position to ``Global.epochs`` and return the report (``train_report.json``)."""
    t_start = time.time()
    g = run.cfg.Global
    skipped: dict[int, str] = {}
    last_eval: dict[str, Any] = {}
    images, train_seconds = 0, 0.0
    where = f"Last checkpoint: {run.out / 'checkpoints' / 'latest.pt'}"
    try:
        with Watchdog(g.stall_timeout, where), StopRequest() as stop:
            ctx = _step_context(run, stop)
            start_epoch = run.pos.epoch
            for epoch in range(start_epoch, g.epochs):
                run.data.sampler.set_epoch(epoch)
                run.data.sampler.set_start_batch(run.pos.batch, run.data.batch_size)
                batches = iter(run.data.train_loader)  # creating it draws from the RNG: restore the saved state after
                if epoch == start_epoch and run.ckpt is not None:
                    restore_rank_rng(run.ckpt)
                result = train_epoch(ctx, batches, run.pos)
                images += result.images
                train_seconds += result.seconds
                _report_bad(epoch, result.bad, run, skipped)
                if len(skipped) == run.data.num_samples:  # nothing trained: no checkpoint of an untrained net
                    raise UserError(f"DataLoader.Train.dataset: none of the {run.data.num_samples} training images "
                                    f"could be read (first: {run.data.sample_name(0)}); `ssld data check-list` "
                                    "lists them")
                run.pos = Position(epoch + 1, 0, run.pos.step, run.pos.updates)
                last_eval = _end_of_epoch(run, epoch, result) or last_eval
        if start_epoch >= g.epochs and run.data.eval_loader is not None:  # resumed a finished run: its metrics
            log.info("%s: training already complete (%d epochs)", g.checkpoints, g.epochs)
            last_eval = evaluate(run.tm.student, run.data.eval_loader, run.device, run.precision,
                                 attr_threshold(run.cfg.Metric))
    finally:
        close_metrics(run.metrics)
    report = {
        "epochs": g.epochs, "steps": run.pos.step, "world_size": dist.world_size(), "device": str(run.device),
        "precision": run.precision.name, "wall_seconds": time.time() - t_start, "train_seconds": train_seconds,
        "img_s": images * dist.world_size() / max(train_seconds, 1e-9),
        f"best_{selection_metric(last_eval)}": run.best if run.best >= 0 else None, **last_eval,
        "skipped_images": len(skipped), "skipped": sorted(skipped.values()),
    }
    if dist.is_main():
        write_json(run.out / "train_report.json", report)
    return report
