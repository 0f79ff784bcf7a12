"""Evaluation: top-1/top-5 and cross-entropy of the inference model, gathered across ranks without duplicates;
for multi-label data (``[B, C]`` or ``[B, 2, C]`` labels) the attribute metrics of ``ssld.engine.attr_metrics``
and the mean binary cross-entropy instead.

A ``DistributedSampler``-style sampler pads the last shard by repeating samples; every row carries its dataset
index, so after gathering, each index is counted once. The teacher of a DistillationModel never runs here: only
its ``infer_model``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ssld.config.schema import DataSplitConfig, SSLDConfig
from ssld.engine import watchdog
from ssld.engine.metrics import topk_hits
from ssld.errors import UserError
from ssld.models.precision import Precision
from ssld.utils import distributed as dist


def evaluate_weights(cfg: SSLDConfig, weights: str | Path, split: DataSplitConfig | None = None,
                     image_size: int | None = None) -> dict[str, Any]:
    """Metrics of the config's inference model with ``weights`` on ``split`` (default ``DataLoader.Eval``; its
    eval ops rebuilt at ``image_size`` when given), on ``Global.device`` with the config's AMP. Under torchrun
    (after ``init_from_env``) each rank evaluates its shard and every rank gets the totals."""
    from ssld.data import build_loader
    from ssld.data.loader import config_options
    from ssld.engine.attr_metrics import attr_threshold
    from ssld.engine.model_setup import use_channels_last
    from ssld.models.infer import load_infer_model
    from ssld.models.precision import resolve_precision
    from ssld.utils.device import resolve_device

    split = split or cfg.DataLoader.Eval
    if split is None:
        raise UserError("DataLoader.Eval: missing; evaluation needs an eval set")
    device = resolve_device(cfg.Global.device)
    loader, _ = build_loader(split, train=False, seed=cfg.Global.seed, image_size=image_size, **config_options(cfg))
    model = load_infer_model(cfg.Arch, weights).to(device)
    if use_channels_last(cfg.Global.channels_last, device):
        model.to(memory_format=torch.channels_last)
    return evaluate(model, loader, device, resolve_precision(cfg.AMP, device), attr_threshold(cfg.Metric))


def inference_model(model: nn.Module) -> nn.Module:
    """The sub-model eval, export and predict use: ``infer_model`` of a DistillationModel (DDP unwrapped)."""
    model = getattr(model, "module", model)
    infer = getattr(model, "infer_model", None)
    model = infer if isinstance(infer, nn.Module) else model
    return getattr(model, "module", model)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[dict[str, Any]],
    device: torch.device | None = None,
    precision: Precision | None = None,
    threshold: float = 0.5,
) -> dict[str, float]:
    """Top-1/top-5 (k capped at the class count), mean CE and the number of distinct labeled samples.

    Rows with label -1 (unlabeled) and unreadable files are not counted; ``bad`` reports the latter. Multi-label
    batches give the attribute metrics at ``threshold`` (on the sigmoid) instead of top-k.
    """
    net = inference_model(model)
    device = device or next(net.parameters()).device
    was_training = net.training
    net.eval()
    rows: list[torch.Tensor] = []
    bad: set[int] = set()
    multi = False  # multi-label batches seen
    try:
        for batch in loader:
            bad.update(i for i in batch["bad"] if i >= 0)
            watchdog.beat()
            labels = batch["label"].to(device)
            if labels.dim() > 1:  # multi-label: targets, or (targets, positive ratios)
                multi = True
                labels = labels[:, 0] if labels.dim() == 3 else labels
                keep = (labels >= 0).any(dim=1)
            else:
                keep = labels >= 0
            if not bool(keep.any()):
                continue
            images = batch["image"].to(device, non_blocking=True)[keep]
            labels = labels[keep]
            if precision is not None:
                with precision.autocast():
                    logits = net(images)
            else:
                logits = net(images)
            logits = logits.float()
            index = batch["index"].to(device)[keep]
            if labels.dim() > 1:
                rows.append(_multilabel_rows(index, logits, labels))
                continue
            hits = topk_hits(logits, labels)
            loss = F.cross_entropy(logits, labels, reduction="none")
            rows.append(torch.stack([index.double(), hits[1].double(), hits[5].double(), loss.double()], dim=1))
    finally:
        net.train(was_training)
    local = torch.cat(rows) if rows else None  # 4 columns, or 2 + 2C for multi-label rows
    meta = dist.all_gather_object((sorted(bad), multi, None if local is None else local.shape[1]))
    bad_all = set().union(*(b for b, _, _ in meta))
    multi = any(m for _, m, _ in meta)
    if local is None:
        local = torch.zeros((0, max((w or 0 for _, _, w in meta), default=0) or 4), dtype=torch.float64,
                            device=device)
    gathered = dist.all_gather_tensor(local).cpu()
    index = gathered[:, 0].long()
    _, first = _first_occurrence(index)
    unique = gathered[first]
    n = unique.shape[0]
    if multi:  # rows: index, loss, C targets, C probabilities
        return _multilabel_metrics(unique, threshold, len(bad_all))
    if n == 0:
        return {"top1": 0.0, "top5": 0.0, "loss": 0.0, "count": 0, "bad": len(bad_all)}
    return {
        "top1": float(unique[:, 1].mean()),
        "top5": float(unique[:, 2].mean()),
        "loss": float(unique[:, 3].mean()),
        "count": n,
        "bad": len(bad_all),
    }


def _first_occurrence(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct values of ``index`` and the position of each one's first occurrence."""
    uniq, inverse = torch.unique(index, return_inverse=True)
    pos = torch.arange(index.numel())
    first = torch.full((uniq.numel(),), index.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inverse, pos, reduce="amin")
    return uniq, first


def _multilabel_rows(index: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``[n, 2 + 2C]`` rows: index, mean BCE over the known entries, targets, sigmoid probabilities."""
    known = (targets >= 0).to(logits)
    bce = F.binary_cross_entropy_with_logits(logits, targets.clamp_min(0).to(logits), reduction="none")
    loss = (bce * known).sum(1) / known.sum(1).clamp_min(1)
    return torch.cat([index.double()[:, None], loss.double()[:, None], targets.double(),
                      torch.sigmoid(logits).double()], dim=1)


def _multilabel_metrics(unique: torch.Tensor, threshold: float, bad: int) -> dict[str, float]:
    from ssld.engine.attr_metrics import NAMES, attr_metrics

    n, classes = unique.shape[0], (unique.shape[1] - 2) // 2
    if n == 0:
        return {**dict.fromkeys(NAMES, 0.0), "loss": 0.0, "count": 0, "bad": bad}
    targets, probs = unique[:, 2:2 + classes].numpy(), unique[:, 2 + classes:].numpy()
    return {**attr_metrics(targets, probs, threshold), "loss": float(unique[:, 1].mean()), "count": n, "bad": bad}
