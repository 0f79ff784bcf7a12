"""``train(cfg)``: supervised or distillation training of the config's model, resumable at the exact step.

Order of work: validate everything the user gave (data lists, checkpoint, model) before anything is written;
then train epoch by epoch, evaluating the inference model every ``eval_interval`` epochs and writing
``checkpoints/latest.pt`` (and ``best.pt``), ``student.safetensors``, ``metrics.jsonl`` and, at the end,
``train_report.json`` into ``Global.output_dir``. Only rank 0 writes.
"""

from __future__ import annotations

import logging
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssld.config.schema import SSLDConfig
from ssld.engine import distributed as dist
from ssld.engine.amp import resolve_precision
from ssld.engine.checkpoint import config_hash, load_checkpoint, save_checkpoint
from ssld.engine.evaluate import evaluate
from ssld.engine.metrics import MetricsLog
from ssld.engine.model_setup import (
    build,
    load_pretrained,
    prepare,
    resolve_device,
    warn_random_teacher,
)
from ssld.engine.offline_teacher import build_offline
from ssld.engine.optim import build_optimizer
from ssld.engine.resume import (
    Trainables,
    make_checkpoint,
    restore_position,
    restore_rank_rng,
    restore_trainables,
)
from ssld.engine.scheduler import build_scheduler
from ssld.engine.train_loop import (
    Position,
    StepContext,
    StopRequest,
    base_lr,
    train_epoch,
)
from ssld.errors import UserError
from ssld.utils.io import write_json

log = logging.getLogger("ssld.engine")


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed torch, numpy and ``random``; deterministic mode makes CPU/CUDA kernels reproducible."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def _loaders(cfg: SSLDConfig) -> tuple[Any, Any, Any]:
    """Train loader and sampler, and the eval loader (None when not evaluating); raises UserError for bad data."""
    from ssld.data import build_loader

    if cfg.DataLoader.Train is None:
        raise UserError("DataLoader.Train: required for training (dataset, sampler, loader)")
    train_loader, sampler = build_loader(cfg.DataLoader.Train, train=True, seed=cfg.Global.seed)
    eval_loader = None
    if cfg.Global.eval_during_train and cfg.DataLoader.Eval is not None:
        eval_loader, _ = build_loader(cfg.DataLoader.Eval, train=False, seed=cfg.Global.seed)
    return train_loader, sampler, eval_loader


def _warn_unlabeled(cfg: SSLDConfig, loader: Any) -> None:
    samples = loader.dataset.dataset.samples
    unlabeled = sum(1 for s in samples if s.label < 0)
    if unlabeled and not cfg.Arch.is_distillation and dist.is_main():
        log.warning("warning: %d of %d training images are unlabeled (-1); the single-model loss skips them",
                    unlabeled, len(samples))


def build_train_loss(cfg: SSLDConfig) -> torch.nn.Module:
    from ssld.losses import build_loss

    try:
        return build_loss(cfg.Loss.Train)
    except ValueError as e:
        raise UserError(f"Loss.Train{e if str(e).startswith('[') else ': ' + str(e)}") from None


def _load_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor], path: str) -> None:
    """Resume weights; a checkpoint of another architecture is a one-line UserError."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        what = ", ".join(f"{len(keys)} {label} (e.g. {keys[0]})" for label, keys in
                         (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes))
                         if keys)
        raise UserError(f"Global.checkpoints: {path} does not fit the config's model: {what}")
    model.load_state_dict(state)


def _iters_per_epoch(sampler: Any, batch_size: int, drop_last: bool, cap: int | None) -> int:
    per_rank = sampler.shard_size
    iters = per_rank // batch_size if drop_last else math.ceil(per_rank / batch_size)
    return max(1, min(iters, cap) if cap else iters)


def train(cfg: SSLDConfig) -> dict[str, Any]:
    """Train as the config says and return the final metrics (see module docstring for the files written)."""
    t_start = time.time()
    g = cfg.Global
    device = resolve_device(g.device)
    dist.init_from_env(device)
    seed_everything(g.seed, g.deterministic)
    train_loader, sampler, eval_loader = _loaders(cfg)
    _warn_unlabeled(cfg, train_loader)
    loss_fn = build_train_loss(cfg)
    ckpt = load_checkpoint(g.checkpoints) if g.checkpoints else None
    offline = build_offline(cfg)  # soft_labels set: student-only model + stand-in teacher (never built)
    model = build(cfg) if offline is None else offline[0]
    if offline is None:
        warn_random_teacher(cfg)
    if g.pretrained_model and ckpt is None:
        load_pretrained(model, g.pretrained_model)
    if ckpt is not None:
        _load_model_state(model, ckpt["model"], g.checkpoints)
    optimizer = build_optimizer(model, cfg.Optimizer, cfg.Arch.lr_mult_list)
    tm = prepare(model, cfg, device)
    loss_fn.to(device)
    precision = resolve_precision(cfg.AMP, device)
    bs = cfg.DataLoader.Train.sampler.batch_size
    iters = _iters_per_epoch(sampler, bs, train_loader.drop_last, g.max_steps_per_epoch)
    accum = g.accum_steps
    scheduler = build_scheduler(optimizer, cfg.Optimizer, -(-iters // accum), g.epochs)
    ema = None
    if g.ema:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(tm.student, decay=g.ema_decay)
    state = Trainables(optimizer, scheduler, precision.grad_scaler(cfg.AMP), ema)
    pos = Position()
    best = -1.0
    cfg_hash = config_hash(cfg)
    if ckpt is not None:
        if ckpt.get("config_hash") != cfg_hash and dist.is_main():
            log.warning("warning: %s was written by a different config; resuming anyway", g.checkpoints)
        pos = restore_position(ckpt, bs, iters, accum)
        restore_trainables(ckpt, state, pos)
        best = float(ckpt.get("best_top1", -1.0))
    out = Path(g.output_dir)
    metrics = MetricsLog(out / "metrics.jsonl", dist.is_main())
    metrics.truncate_after(pos.step if ckpt is not None else -1)

    def save(p: Position, name: str = "latest.pt") -> None:
        data = make_checkpoint(tm, state, p, bs, cfg_hash, {"best_top1": best})
        if dist.is_main():
            from ssld.models import save_safetensors

            save_checkpoint(out / "checkpoints" / name, data)
            save_safetensors(tm.student.state_dict(), out / "student.safetensors")
        dist.barrier()

    ddp = [m for m in tm.model.modules() if isinstance(m, torch.nn.parallel.DistributedDataParallel)]
    skipped: dict[int, str] = {}
    samples = train_loader.dataset.dataset.samples
    last_eval: dict[str, Any] = {}
    images = 0
    train_seconds = 0.0
    with StopRequest() as stop:
        ctx = StepContext(
            model=tm.model, student=tm.student, loss_fn=loss_fn, optimizer=optimizer, scheduler=scheduler,
            scaler=state.scaler, precision=precision, device=device, iters_per_epoch=iters, accum_steps=accum,
            clip_grad_norm=cfg.Optimizer.clip_grad_norm, channels_last=g.channels_last,
            log_interval=g.log_interval, save_steps=g.save_steps, metrics=metrics, save=save, stop=stop,
            ema=ema, ddp_modules=ddp, offline=offline[1] if offline else None,
        )
        first = True
        for epoch in range(pos.epoch, g.epochs):
            sampler.set_epoch(epoch)
            sampler.set_start_batch(pos.batch, bs)
            batches = iter(train_loader)
            if first and ckpt is not None:
                restore_rank_rng(ckpt)
            first = False
            result = train_epoch(ctx, batches, pos)
            images += result.images
            train_seconds += result.seconds
            _report_bad(epoch, result.bad, samples, skipped)
            pos = Position(epoch + 1, 0, pos.step, pos.updates)
            row: dict[str, Any] = {
                "kind": "epoch", "epoch": epoch + 1, "step": pos.step, "lr": base_lr(optimizer),
                **{f"train_{k}": v for k, v in result.losses.items()},
                "img_s": result.images * dist.world_size() / max(result.seconds, 1e-9), "time": time.time(),
            }
            due = (epoch + 1) % g.eval_interval == 0 or epoch + 1 == g.epochs
            if eval_loader is not None and due and epoch + 1 > g.start_eval_epoch:
                last_eval = evaluate(tm.student, eval_loader, device, precision)
                row.update(last_eval)
                if ema is not None:
                    row.update({f"ema_{k}": v for k, v in evaluate(ema.module, eval_loader, device, precision).items()})
                log.info("epoch %d: top1 %.4f top5 %.4f (%d images)", epoch + 1, last_eval["top1"],
                         last_eval["top5"], last_eval["count"])
                if last_eval["top1"] > best:
                    best = last_eval["top1"]
                    save(pos, "best.pt")
            metrics.write(row)
            if (epoch + 1) % g.save_interval == 0 or epoch + 1 == g.epochs:
                save(pos)
    img_s = images * dist.world_size() / max(train_seconds, 1e-9)
    report = {
        "epochs": g.epochs, "steps": pos.step, "world_size": dist.world_size(), "device": str(device),
        "precision": precision.name, "wall_seconds": time.time() - t_start, "train_seconds": train_seconds,
        "img_s": img_s, "best_top1": best if best >= 0 else None, **last_eval,
        "skipped_images": len(skipped), "skipped": sorted(skipped.values()),
    }
    if dist.is_main():
        write_json(out / "train_report.json", report)
    return report


def _report_bad(epoch: int, bad: list[int], samples: list[Any], skipped: dict[int, str]) -> None:
    """Gather the epoch's unreadable images from every rank and say how many were skipped."""
    indices = sorted(set().union(*dist.all_gather_object(sorted(set(bad)))))
    for i in indices:
        skipped[i] = samples[i].path
    if indices and dist.is_main():
        log.warning("epoch %d: skipped %d unreadable images (first: %s)", epoch + 1, len(indices),
                    samples[indices[0]].path)
