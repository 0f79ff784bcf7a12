"""FixRes: evaluate at a higher test resolution, and finetune the classifier there (the reference's "Fix strategy").

Training with RandomResizedCrop shows objects larger than the center-crop test preprocessing does (Touvron et
al. 2019, "Fixing the train-test resolution discrepancy"). Testing at about 1.15x the train size makes the
apparent sizes agree; finetuning at that size with the TEST preprocessing for both train and eval closes the
remaining gap in the pooled feature statistics.

What the finetune does (``FixRes`` config section, run by :func:`run_fixres`):
1. every parameter but the classifier is frozen (``requires_grad=False``), as the reference does;
2. with ``bn_recalibrate`` (default on) the BN running statistics are re-estimated at the new size BEFORE training,
   as a cumulative average over ``recalibrate_batches`` training batches (BN affine weights stay frozen);
3. the classifier trains with BN in eval mode, so the statistics it sees are exactly those used at test time.
Touvron et al. also finetune the BN affine parameters; the reference freezes everything but the fully connected
layer, and so does this module (step 2 adapts the statistics, which is where most of the resolution shift lives).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ssld.config.schema import DataSplitConfig, FixResConfig, SSLDConfig
from ssld.errors import UserError

log = logging.getLogger("ssld.fixres")

RATIO = 1.15


def fixres_size(train_size: int, ratio: float = RATIO) -> int:
    """The test resolution FixRes recommends for a model trained at ``train_size`` (224 -> 258, 28 -> 32)."""
    return round(train_size * ratio)


def _eval_ops(cfg: SSLDConfig) -> tuple[list[Any], tuple[int, ...]]:
    from ssld.preprocessing import eval_ops, fixed_size_ops

    return fixed_size_ops(eval_ops(cfg, None), None, cfg.Global.image_shape)


def resolved(cfg: SSLDConfig) -> FixResConfig:
    """The ``FixRes`` section with ``train_size`` (default: the eval crop) and ``test_size`` (default 1.15x) set."""
    fx = cfg.FixRes or FixResConfig()
    train_size = fx.train_size or int(_eval_ops(cfg)[1][1])
    return fx.model_copy(update={"train_size": train_size, "test_size": fx.test_size or fixres_size(train_size)})


def fixres_split(cfg: SSLDConfig, split: DataSplitConfig | None = None) -> DataSplitConfig:
    """``split`` (default ``DataLoader.Eval``) with the eval preprocessing: FixRes trains on what it tests on."""
    if cfg.DataLoader.Eval is None:
        raise UserError("DataLoader.Eval: FixRes needs the eval split and its transform_ops")
    base = split or cfg.DataLoader.Eval
    dataset = base.dataset.model_copy(update={"transform_ops": _eval_ops(cfg)[0]})
    return base.model_copy(update={"dataset": dataset})


def evaluate_at(model: nn.Module, cfg: SSLDConfig, image_size: int, device: torch.device | None = None) -> dict:
    """Top-1/top-5 on ``DataLoader.Eval`` with the eval transforms rebuilt at ``image_size``."""
    from ssld.data import build_loader
    from ssld.data.loader import config_options
    from ssld.engine.evaluate import evaluate

    loader, _ = build_loader(fixres_split(cfg), train=False, seed=cfg.Global.seed, image_size=image_size,
                             **config_options(cfg))
    return evaluate(model, loader, device=device)


def freeze_all_but_classifier(model: nn.Module) -> list[str]:
    """Set ``requires_grad=False`` on every parameter outside the classifier; return the trainable names."""
    from ssld.models.stages import classifier_param_names

    try:
        head = set(classifier_param_names(model))
    except ValueError as e:
        raise UserError(f"FixRes: {e}") from None
    if not head:
        raise UserError(f"FixRes: {type(model).__name__} has no classifier parameters to finetune")
    for name, p in model.named_parameters():
        p.requires_grad_(name in head)
    return sorted(head)


def set_bn_eval(model: nn.Module) -> None:
    """Put every BatchNorm in eval mode: running statistics are used and never updated."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


@torch.no_grad()
def recalibrate_bn(model: nn.Module, loader: Any, max_batches: int, device: torch.device | None = None) -> int:
    """Re-estimate BN running mean/var as the exact average over up to ``max_batches`` batches; return the count.

    Only the statistics change: the BN affine weights and every other parameter are left as they are.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns:
        return 0
    device = device or next(model.parameters()).device
    momenta = [m.momentum for m in bns]
    was_training = model.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
    model.train()
    seen = 0
    try:
        for batch in loader:
            if seen >= max_batches:
                break
            model(batch["image"].to(device))
            seen += 1
    finally:
        for m, mom in zip(bns, momenta, strict=True):
            m.momentum = mom
        model.train(was_training)
    return seen


def _classifier_epochs(model: nn.Module, cfg: SSLDConfig, loader: Any, sampler: Any, epochs: int,
                       device: torch.device) -> list[float]:
    """Train the unfrozen parameters (the classifier) with BN in eval mode; return the mean loss per epoch."""
    from ssld.engine.optim import build_optimizer
    from ssld.engine.scheduler import build_scheduler

    optimizer = build_optimizer(model, cfg.Optimizer.model_copy(update={"lr_mult_list": None}))
    steps = len(loader)
    scheduler = build_scheduler(optimizer, cfg.Optimizer, steps_per_epoch=steps, epochs=epochs)
    losses, update = [], 0
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        model.train()
        set_bn_eval(model)
        total, count = 0.0, 0
        for batch in loader:
            keep = batch["label"] >= 0
            if not bool(keep.any()):
                continue
            logits = model(batch["image"][keep].to(device))
            loss = F.cross_entropy(logits, batch["label"][keep].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            update += 1
            scheduler.step_update(update)
            n = int(keep.sum())
            total, count = total + loss.item() * n, count + n
        losses.append(total / max(count, 1))
        log.info("fixres epoch %d/%d: loss %.4f", epoch + 1, epochs, losses[-1])
    model.eval()
    return losses


def run_fixres(cfg: SSLDConfig) -> dict[str, Any]:
    """The FixRes finetune of ``Global.pretrained_model``: writes ``student.safetensors`` and
    ``fixres_report.json`` into ``Global.output_dir`` and returns the report (accuracies before and after)."""
    from pathlib import Path

    from ssld.data import build_loader
    from ssld.data.loader import config_options
    from ssld.engine.model_setup import resolve_device
    from ssld.export import load_infer_model
    from ssld.models import save_safetensors
    from ssld.utils.io import write_json

    if not cfg.Global.pretrained_model:
        raise UserError("Global.pretrained_model: FixRes finetunes a trained model; set it to its weights")
    if cfg.DataLoader.Train is None:
        raise UserError("DataLoader.Train: FixRes needs the labeled training list")
    fx = resolved(cfg)
    start = time.perf_counter()
    device = resolve_device(cfg.Global.device)
    model = load_infer_model(cfg, cfg.Global.pretrained_model).to(device)
    report: dict[str, Any] = {"train_size": fx.train_size, "test_size": fx.test_size,
                              "bn_recalibrate": fx.bn_recalibrate, "weights": cfg.Global.pretrained_model}
    report["before_at_train_size"] = evaluate_at(model, cfg, fx.train_size, device)
    report["before_at_test_size"] = evaluate_at(model, cfg, fx.test_size, device)
    trainable = freeze_all_but_classifier(model)
    loader, sampler = build_loader(fixres_split(cfg, cfg.DataLoader.Train), train=True, seed=cfg.Global.seed,
                                   image_size=fx.test_size, **config_options(cfg))
    if fx.bn_recalibrate:
        sampler.set_epoch(0)
        report["bn_batches"] = recalibrate_bn(model, loader, fx.recalibrate_batches, device)
        report["after_bn_recalibration"] = evaluate_at(model, cfg, fx.test_size, device)
    epochs = fx.epochs or cfg.Global.epochs
    report["train_loss"] = _classifier_epochs(model, cfg, loader, sampler, epochs, device)
    report["after_finetune"] = evaluate_at(model, cfg, fx.test_size, device)
    report.update(trainable=trainable, epochs=epochs, top1=report["after_finetune"]["top1"],
                  top5=report["after_finetune"]["top5"], train_seconds=round(time.perf_counter() - start, 1))
    out = Path(cfg.Global.output_dir)
    save_safetensors(model.state_dict(), out / "student.safetensors",
                     metadata={"fixres_test_size": fx.test_size})
    write_json(out / "fixres_report.json", report)
    return report
