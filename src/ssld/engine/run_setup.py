"""Everything a training run needs before its first step, validated before anything is written.

Data lists, the loss, the checkpoint to resume and the model are checked first (each mistake is a one-line
``UserError``); only then are the optimizer, schedule, precision, EMA and the resume position put together.

The model, data and loss come from the config, or from a caller as :class:`RunParts` (the Python API's own
``nn.Module``s and Datasets, FixRes's classifier-only model): either way the same loop, checkpoints, resume,
precision and DDP follow from the config's ``Global``, ``AMP`` and ``Optimizer`` sections.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssld.config.schema import SSLDConfig
from ssld.engine.batch_ops import BatchTransform, build_batch_transform
from ssld.engine.checkpoint import config_hash, load_checkpoint
from ssld.engine.metrics import MetricsLog
from ssld.engine.model_setup import (
    TrainModel,
    build,
    load_pretrained,
    prepare,
    warn_random_teacher,
)
from ssld.engine.offline_teacher import OfflineTeacher, build_offline
from ssld.engine.optim import build_optimizer
from ssld.engine.resume import Trainables, restore_position, restore_trainables
from ssld.engine.scheduler import build_scheduler
from ssld.engine.tensorboard import metrics_log
from ssld.engine.train_loop import Position
from ssld.errors import UserError
from ssld.models.precision import Precision, resolve_precision
from ssld.utils import distributed as dist
from ssld.utils.device import resolve_device

log = logging.getLogger("ssld.engine")


@dataclass
class RunData:
    """The loaders of a run. Batches are ``{"image", "label", "index", "bad"}`` dicts (``ssld.data.collate``);
    ``sampler`` has ``set_epoch``, ``set_start_batch`` and ``shard_size`` (``ssld.data.ResumableSampler``)."""

    train_loader: Any
    sampler: Any
    eval_loader: Any | None
    batch_size: int  # per process
    num_samples: int
    sample_name: Callable[[int], str]  # names sample i in reports of unreadable images
    batch_transform: BatchTransform | None = None


@dataclass
class RunParts:
    """What a caller hands the engine in place of the config's ``Arch``, ``Loss`` and ``DataLoader`` sections.

    ``model`` comes with its weights (``Global.pretrained_model`` is not loaded into it); ``data`` is called once
    the process group is up, so its samplers can shard by rank; ``extra`` is saved in every checkpoint.
    """

    model: torch.nn.Module
    data: Callable[[], RunData]
    loss_fn: torch.nn.Module  # forward(outputs, labels) -> {"loss": total, "<part>": value, ...}
    offline: OfflineTeacher | None = None
    bn_eval: bool = False  # BatchNorm keeps its running statistics while training (FixRes)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainingRun:
    """The state of a run between steps (see :func:`setup_run`)."""

    cfg: SSLDConfig
    device: torch.device
    data: RunData
    loss_fn: torch.nn.Module
    tm: TrainModel
    state: Trainables
    precision: Precision
    iters_per_epoch: int
    pos: Position
    best: float
    cfg_hash: str
    ckpt: dict[str, Any] | None
    offline: OfflineTeacher | None
    out: Path
    metrics: MetricsLog
    bn_eval: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed torch, numpy and ``random``; deterministic mode makes CPU/CUDA kernels reproducible."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def build_train_loss(cfg: SSLDConfig) -> torch.nn.Module:
    """``Loss.Train`` as a module; a bad entry is a UserError naming it."""
    from ssld.losses import build_loss

    try:
        return build_loss(cfg.Loss.Train)
    except ValueError as e:
        raise UserError(f"Loss.Train{e if str(e).startswith('[') else ': ' + str(e)}") from None


def config_data(cfg: SSLDConfig) -> RunData:
    """The config's train loader and sampler, and the eval loader (None when not evaluating); raises UserError
    for bad data."""
    from ssld.data import build_loader
    from ssld.data.loader import config_options

    if cfg.DataLoader.Train is None:
        raise UserError("DataLoader.Train: required for training (dataset, sampler, loader)")
    train_loader, sampler = build_loader(cfg.DataLoader.Train, train=True, seed=cfg.Global.seed, **config_options(cfg))
    eval_loader = None
    if cfg.Global.eval_during_train and cfg.DataLoader.Eval is not None:
        eval_loader, _ = build_loader(cfg.DataLoader.Eval, train=False, seed=cfg.Global.seed, **config_options(cfg))
    samples = train_loader.dataset.dataset.samples
    _warn_unlabeled(cfg, samples)
    train_ds = cfg.DataLoader.Train.dataset
    batch_transform = build_batch_transform(
        train_ds.batch_transform_ops, cfg.Arch.class_num, sum(1 for s in samples if s.label < 0),
        train_ds.soft_labels is not None)
    return RunData(train_loader, sampler, eval_loader, cfg.DataLoader.Train.sampler.batch_size, len(samples),
                   lambda i: samples[i].path, batch_transform)


def _warn_unlabeled(cfg: SSLDConfig, samples: list[Any]) -> None:
    unlabeled = sum(1 for s in samples if s.label < 0)
    if unlabeled and not cfg.Arch.is_distillation and dist.is_main():
        log.warning("warning: %d of %d training images are unlabeled (-1); the single-model loss skips them",
                    unlabeled, len(samples))


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


def config_model(cfg: SSLDConfig) -> tuple[torch.nn.Module, OfflineTeacher | None]:
    """The config's model (``Arch``; student-only with an offline store, plus the stand-in teacher) with
    ``Global.pretrained_model`` loaded unless the run resumes."""
    offline = build_offline(cfg)  # soft_labels set: student-only model + stand-in teacher (never built)
    model = build(cfg) if offline is None else offline[0]
    if offline is None:
        warn_random_teacher(cfg)
    if cfg.Global.pretrained_model and not cfg.Global.checkpoints:
        load_pretrained(model, cfg.Global.pretrained_model)
    return model, offline[1] if offline else None


def check_output_dir(path: str, key: str = "Global.output_dir") -> None:
    """``path`` is a folder, or can be made one, and can be written: checked before any work, so a run does not
    train an epoch and then fail to save it. Nothing is created here."""
    import os

    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"{key}: {out} is a file, not a folder")
    parent = next((p for p in [out, *out.parents] if p.exists()), Path("."))
    if not parent.is_dir():
        raise UserError(f"{key}: {out} cannot be created ({parent} is a file)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{key}: {out} cannot be written (no permission in {parent})")


def setup_run(cfg: SSLDConfig, parts: RunParts | None = None) -> TrainingRun:
    """Validate the inputs, build model, optimizer and schedule, and restore a checkpoint when resuming.

    ``parts`` replaces what ``Arch``, ``Loss`` and ``DataLoader`` would build (see :class:`RunParts`).
    """
    g = cfg.Global
    check_output_dir(g.output_dir)
    device = resolve_device(g.device)
    dist.init_from_env(device)
    seed_everything(g.seed, g.deterministic)
    if parts is None:  # data lists, loss and checkpoint are checked before the model is built
        data = config_data(cfg)
        loss_fn = build_train_loss(cfg)
        ckpt = load_checkpoint(g.checkpoints) if g.checkpoints else None
        model, offline = config_model(cfg)
        parts = RunParts(model, lambda: data, loss_fn, offline)
    else:
        data = parts.data()
        ckpt = load_checkpoint(g.checkpoints) if g.checkpoints else None
    model, loss_fn = parts.model, parts.loss_fn
    if ckpt is not None:
        _load_model_state(model, ckpt["model"], str(g.checkpoints))
    optimizer = build_optimizer(model, cfg.Optimizer, cfg.Arch.lr_mult_list)
    tm = prepare(model, cfg, device)
    loss_fn.to(device)
    precision = resolve_precision(cfg.AMP, device)
    bs = data.batch_size
    iters = _iters_per_epoch(data.sampler, bs, data.train_loader.drop_last, g.max_steps_per_epoch)
    scheduler = build_scheduler(optimizer, cfg.Optimizer, -(-iters // g.accum_steps), g.epochs)
    ema = None
    if g.ema:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(tm.student, decay=g.ema_decay)
    state = Trainables(optimizer, scheduler, precision.grad_scaler(cfg.AMP), ema)
    pos, best, cfg_hash = Position(), -1.0, config_hash(cfg)
    if ckpt is not None:
        if ckpt.get("config_hash") != cfg_hash and dist.is_main():
            log.warning("warning: %s was written by a different config; resuming anyway", g.checkpoints)
        pos = restore_position(ckpt, bs, iters, g.accum_steps)
        restore_trainables(ckpt, state, pos)
        best = float(ckpt.get("best_top1", -1.0))
    out = Path(g.output_dir)
    metrics = metrics_log(out, g.tensorboard, pos.step if ckpt is not None else -1)
    return TrainingRun(cfg, device, data, loss_fn, tm, state, precision, iters, pos, best, cfg_hash, ckpt,
                       parts.offline, out, metrics, parts.bn_eval, parts.extra)
