"""Evaluation: top-1/top-5 and cross-entropy of the inference model, gathered across ranks without duplicates.

A ``DistributedSampler``-style sampler pads the last shard by repeating samples; every row carries its dataset
index, so after gathering, each index is counted once. The teacher of a DistillationModel never runs here: only
its ``infer_model``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ssld.engine import distributed as dist
from ssld.engine import watchdog
from ssld.engine.amp import Precision
from ssld.engine.metrics import topk_hits


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
) -> dict[str, float]:
    """Top-1/top-5 (k capped at the class count), mean CE and the number of distinct labeled samples.

    Rows with label -1 (unlabeled) and unreadable files are not counted; ``bad`` reports the latter.
    """
    net = inference_model(model)
    device = device or next(net.parameters()).device
    was_training = net.training
    net.eval()
    rows: list[torch.Tensor] = []
    bad: set[int] = set()
    try:
        for batch in loader:
            bad.update(i for i in batch["bad"] if i >= 0)
            watchdog.beat()
            labels = batch["label"].to(device)
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
            hits = topk_hits(logits, labels)
            loss = F.cross_entropy(logits, labels, reduction="none")
            index = batch["index"].to(device)[keep]
            rows.append(torch.stack([index.double(), hits[1].double(), hits[5].double(), loss.double()], dim=1))
    finally:
        net.train(was_training)
    local = torch.cat(rows) if rows else torch.zeros((0, 4), dtype=torch.float64, device=device)
    gathered = dist.all_gather_tensor(local).cpu()
    bad_all = set().union(*dist.all_gather_object(sorted(bad)))
    index = gathered[:, 0].long()
    _, first = _first_occurrence(index)
    unique = gathered[first]
    n = unique.shape[0]
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
