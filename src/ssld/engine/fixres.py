"""FixRes: evaluate at a higher test resolution, and finetune the classifier there (the reference's "Fix strategy").

Training with RandomResizedCrop shows objects larger than the center-crop test preprocessing does (Touvron et
al. 2019, "Fixing the train-test resolution discrepancy"). Testing at about 1.15x the train size makes the
apparent sizes agree; finetuning at that size with the TEST preprocessing for both train and eval closes the
remaining gap in the pooled feature statistics.

What the finetune does (``FixRes`` config section, run by :func:`run_fixres`):
1. every parameter but the classifier is frozen (``requires_grad=False``), as the reference does;
2. with ``bn_recalibrate`` (default on) the BN running statistics are re-estimated at the new size BEFORE training,
   as a cumulative average over ``recalibrate_batches`` training batches (BN affine weights stay frozen; under
   torchrun the ranks' estimates are averaged);
3. the classifier trains with BN in eval mode, so the statistics it sees are exactly those used at test time.
Touvron et al. also finetune the BN affine parameters; the reference freezes everything but the fully connected
layer, and so does this module (step 2 adapts the statistics, which is where most of the resolution shift lives).

Step 3 is the engine's training loop (:func:`ssld.engine.trainer.run_training`) with this model and data handed in
as ``RunParts``: AMP, DDP, ``Global.checkpoints`` resume, ``metrics.jsonl`` and checkpoints work as in any run.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import torch
from torch import nn

from ssld.config.schema import DataSplitConfig, FixResConfig, SSLDConfig
from ssld.engine.run_setup import RunData, RunParts, setup_run
from ssld.engine.train_loop import set_bn_eval
from ssld.engine.trainer import run_training
from ssld.errors import UserError
from ssld.models.precision import Precision
from ssld.utils import distributed as dist

__all__ = ["evaluate_at", "fixres_enabled", "fixres_size", "fixres_split", "freeze_all_but_classifier",
           "recalibrate_bn", "resolved", "run_fixres", "set_bn_eval"]

log = logging.getLogger("ssld.fixres")

RATIO = 1.15
_CE = [{"CELoss": {"weight": 1.0}}]


def fixres_enabled(cfg: SSLDConfig) -> bool:
    """Whether the config asks for the FixRes finetune rather than a training run."""
    return cfg.FixRes is not None and cfg.FixRes.enabled


def fixres_size(train_size: int, ratio: float = RATIO) -> int:
    """The test resolution FixRes recommends for a model trained at ``train_size`` (224 -> 258, 28 -> 32)."""
    return round(train_size * ratio)


def _eval_ops(cfg: SSLDConfig) -> tuple[list[Any], tuple[int, ...]]:
    from ssld.data.preprocessing import eval_ops, fixed_size_ops

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


def _loader(cfg: SSLDConfig, split: DataSplitConfig | None, train: bool, image_size: int) -> tuple[Any, Any]:
    from ssld.data import build_loader
    from ssld.data.loader import config_options

    return build_loader(fixres_split(cfg, split), train=train, seed=cfg.Global.seed, image_size=image_size,
                        **config_options(cfg))


def evaluate_at(model: nn.Module, cfg: SSLDConfig, image_size: int, device: torch.device | None = None,
                precision: Precision | None = None) -> dict:
    """Top-1/top-5 on ``DataLoader.Eval`` with the eval transforms rebuilt at ``image_size``."""
    from ssld.engine.evaluate import evaluate

    return evaluate(model, _loader(cfg, None, False, image_size)[0], device=device, precision=precision)


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


@torch.no_grad()
def recalibrate_bn(model: nn.Module, loader: Any, max_batches: int, device: torch.device | None = None) -> int:
    """Re-estimate BN running mean/var as the exact average over up to ``max_batches`` batches; return the count.

    Only the statistics change: the BN affine weights and every other parameter are left as they are. Under
    torchrun each rank averages its own shard's batches, then the ranks' estimates are averaged.
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
    if dist.world_size() > 1:
        for m in bns:
            for stat in (m.running_mean, m.running_var):
                torch.distributed.all_reduce(stat)
                stat.div_(dist.world_size())
    return seen


def _data(cfg: SSLDConfig, size: int) -> RunData:
    """FixRes's loaders: the labeled training list and (when evaluating) val, both with the eval preprocessing at
    ``size``."""
    train_loader, sampler = _loader(cfg, cfg.DataLoader.Train, True, size)
    eval_loader = _loader(cfg, None, False, size)[0] if cfg.Global.eval_during_train else None
    samples = train_loader.dataset.dataset.samples
    return RunData(train_loader, sampler, eval_loader, cfg.DataLoader.Train.sampler.batch_size, len(samples),
                   lambda i: samples[i].path)


def _run_config(cfg: SSLDConfig, epochs: int) -> SSLDConfig:
    """The training settings of the finetune: its epochs, plain CE, no per-stage lr multipliers."""
    return cfg.model_copy(update={
        "Global": cfg.Global.model_copy(update={"epochs": epochs}),
        "Arch": cfg.Arch.model_copy(update={"lr_mult_list": None}),
        "Optimizer": cfg.Optimizer.model_copy(update={"lr_mult_list": None}),
        "Loss": cfg.Loss.model_copy(update={"Train": _CE}),
    })


def _epoch_losses(path: Any) -> list[float]:
    """Mean training loss of every epoch in ``metrics.jsonl`` (rank 0's file, shared with every rank)."""
    losses: list[float] = []
    if dist.is_main() and path.is_file():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        losses = [float(r["train_loss"]) for r in rows if r.get("kind") == "epoch" and "train_loss" in r]
    return dist.broadcast_object(losses)


def run_fixres(cfg: SSLDConfig) -> dict[str, Any]:
    """The FixRes finetune of ``Global.pretrained_model``: writes ``student.safetensors`` and
    ``fixres_report.json`` (besides a training run's files) into ``Global.output_dir`` and returns the report
    (accuracies before and after). ``Global.checkpoints`` resumes an interrupted finetune at the exact step."""
    from ssld.losses import build_loss
    from ssld.models import save_safetensors
    from ssld.models.infer import load_infer_model
    from ssld.models.precision import resolve_precision
    from ssld.utils.device import resolve_device
    from ssld.utils.io import write_json

    g = cfg.Global
    if not g.pretrained_model:
        raise UserError("Global.pretrained_model: FixRes finetunes a trained model; set it to its weights")
    if cfg.DataLoader.Train is None:
        raise UserError("DataLoader.Train: FixRes needs the labeled training list")
    fx = resolved(cfg)
    start = time.perf_counter()
    device = resolve_device(g.device)
    dist.init_from_env(device)
    precision = resolve_precision(cfg.AMP, device)
    model = load_infer_model(cfg.Arch, g.pretrained_model).to(device)
    report: dict[str, Any] = {"train_size": fx.train_size, "test_size": fx.test_size,
                              "bn_recalibrate": fx.bn_recalibrate, "weights": g.pretrained_model}
    report["before_at_train_size"] = evaluate_at(model, cfg, fx.train_size, device, precision)
    report["before_at_test_size"] = evaluate_at(model, cfg, fx.test_size, device, precision)
    trainable = freeze_all_but_classifier(model)
    data = _data(cfg, fx.test_size)
    recalibration: dict[str, Any] = {}
    if fx.bn_recalibrate and not g.checkpoints:  # a resumed finetune's checkpoint holds the recalibrated statistics
        data.sampler.set_epoch(0)
        recalibration["bn_batches"] = recalibrate_bn(model, data.train_loader, fx.recalibrate_batches, device)
        recalibration["after_bn_recalibration"] = evaluate_at(model, cfg, fx.test_size, device, precision)
    epochs = fx.epochs or g.epochs
    parts = RunParts(model, lambda: data, build_loss(_CE), bn_eval=True, extra={"fixres": recalibration})
    run = setup_run(_run_config(cfg, epochs), parts)
    if run.ckpt is not None:
        recalibration.update(run.ckpt.get("fixres") or {})
    trained = run_training(run)
    report.update(recalibration)
    report["train_loss"] = _epoch_losses(run.out / "metrics.jsonl")
    final = {k: trained[k] for k in ("top1", "top5", "loss", "count", "bad") if k in trained}
    report["after_finetune"] = final if "top1" in final else evaluate_at(run.tm.student, cfg, fx.test_size, device,
                                                                         precision)
    report.update(trainable=trainable, epochs=epochs, top1=report["after_finetune"]["top1"],
                  top5=report["after_finetune"]["top5"], steps=trained["steps"], precision=trained["precision"],
                  train_seconds=round(time.perf_counter() - start, 1))
    if dist.is_main():
        save_safetensors(run.tm.student.state_dict(), run.out / "student.safetensors",
                         metadata={"fixres_test_size": fx.test_size})
        write_json(run.out / "fixres_report.json", report)
    dist.barrier()
    return report
