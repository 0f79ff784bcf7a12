"""Multi-label binary cross-entropy: ``MultiLabelLoss`` (single model) and ``DistillationMultiLabelLoss``.

Every class is an independent sigmoid: BCE-with-logits against multi-hot targets y (a float [B, C] tensor), or
against ``[B, 2, C]`` = (targets, per-class positive ratio r) for ``weight_ratio``, PaddleClas's imbalance
weight: exp(1 − r) on a positive, exp(r) on a negative. ``epsilon`` smooths the targets to
(1 − ε)·y + ε/C. ``size_sum: true`` sums over the classes and averages over the rows; otherwise the mean over
every element. Integer labels [B] are taken as one-hot rows. Unlabeled entries (y < 0; a -1 label) weigh 0,
and rows without any labeled entry are left out of the mean, as the other losses leave out label -1.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ssld.losses.base import (
    Loss,
    Outputs,
    at_least_fp32,
    flag,
    flat_labels,
    fp32_region,
    model_list,
    number,
    optional_key,
    pick,
)
from ssld.losses.registry import register_loss


def _targets(labels: Tensor | None, shape: torch.Size, weight_ratio: bool,
             loss: str) -> tuple[Tensor, Tensor | None]:
    """(targets [B, C] float, positive ratios [B, C] or None) from multi-hot, [B, 2, C] or integer labels."""
    if labels is None:
        raise ValueError(f"{loss}: needs labels (multi-hot [batch, classes], or -1 for unlabeled)")
    labels = torch.as_tensor(labels)
    if labels.dim() == 3:
        if labels.shape[1] != 2 or labels.shape[0] != shape[0] or labels.shape[2] != shape[1]:
            raise ValueError(f"{loss}: expected [batch, 2, classes] labels, got {tuple(labels.shape)}")
        return labels[:, 0].double(), labels[:, 1].double() if weight_ratio else None
    if weight_ratio:
        raise ValueError(f"{loss}: weight_ratio needs [batch, 2, classes] labels (targets and positive ratios), "
                         f"got {tuple(labels.shape)}")
    if labels.dim() == 2 and tuple(labels.shape) == tuple(shape):
        return labels.double(), None
    hard = flat_labels(labels, shape[0], loss)
    target = F.one_hot(hard.clamp_min(0), shape[1]).double()
    return torch.where(hard[:, None] >= 0, target, torch.full_like(target, -1.0)), None


def ratio_weights(labels: Tensor | None, like: Tensor, loss: str) -> Tensor:
    """PaddleClas's imbalance weight per entry from ``[B, 2, C]`` labels: exp(1 − r) on a positive, exp(r) on a
    negative, 0 where the target is unlabeled (y < 0)."""
    target, ratio = _targets(labels, like.shape, True, loss)
    target, ratio = target.to(like), ratio.to(like)  # type: ignore[union-attr]  (weight_ratio gives a ratio)
    pos = (target > 0.5).to(like)
    return torch.exp(pos * (1 - ratio) + (1 - pos) * ratio) * (target >= 0).to(like)


def multilabel_bce(logits: Tensor, labels: Tensor | None, epsilon: float, size_sum: bool, weight_ratio: bool,
                   loss: str) -> Tensor:
    """The mean (or class-summed) BCE over the labeled entries; see the module docstring."""
    with fp32_region(logits):
        x = at_least_fp32(logits)
        target, ratio = _targets(labels, x.shape, weight_ratio, loss)
        target, known = target.to(x), (target >= 0).to(x)
        if epsilon > 0:
            target = (1 - epsilon) * target + epsilon / x.shape[1]
        cost = F.binary_cross_entropy_with_logits(x, target.clamp_min(0), reduction="none") * known
        if ratio is not None:
            pos = (target > 0.5).to(x)
            ratio = ratio.to(x)
            cost = cost * torch.exp(pos * (1 - ratio) + (1 - pos) * ratio)
        rows = known.amax(dim=1) > 0
        cost = cost[rows]
        if size_sum:
            return cost.sum(1).sum() / rows.sum().clamp_min(1)
        return cost.sum() / (rows.sum() * x.shape[1]).clamp_min(1)


class _MultiLabel(Loss):
    summary = "multi-label BCE"

    def __init__(self, epsilon: float | None, size_sum: bool, weight_ratio: bool, key: str | None) -> None:
        super().__init__()
        self.epsilon = number("epsilon", epsilon or 0.0, below=1.0)
        self.size_sum = flag("size_sum", size_sum)
        self.weight_ratio = flag("weight_ratio", weight_ratio)
        self.key = optional_key(key)

    def details(self) -> str:
        return (f", label smoothing {self.epsilon:g}" if self.epsilon else "") + (
            ", summed over classes" if self.size_sum else "") + (", ratio-weighted" if self.weight_ratio else "")


@register_loss("MultiLabelLoss")
class MultiLabelLoss(_MultiLabel):
    def __init__(self, epsilon: float | None = None, size_sum: bool = False, weight_ratio: bool = False,
                 key: str | None = None) -> None:
        super().__init__(epsilon, size_sum, weight_ratio, key)

    def forward(self, outputs: Outputs, labels: Tensor | None = None) -> Tensor:
        logits = pick(outputs, None, self.key, "MultiLabelLoss")
        return multilabel_bce(logits, labels, self.epsilon, self.size_sum, self.weight_ratio, "MultiLabelLoss")


@register_loss("DistillationMultiLabelLoss")
class DistillationMultiLabelLoss(_MultiLabel):
    """Multi-label BCE for each sub-model in ``model_names`` (summed)."""

    distillation = True

    def __init__(self, model_names: Any, epsilon: float | None = None, size_sum: bool = False,
                 weight_ratio: bool = False, key: str | None = None) -> None:
        super().__init__(epsilon, size_sum, weight_ratio, key)
        self.model_names = model_list("model_names", model_names)

    def forward(self, outputs: Outputs, labels: Tensor | None = None) -> Tensor:
        name = "DistillationMultiLabelLoss"
        parts = [multilabel_bce(pick(outputs, m, self.key, name), labels, self.epsilon, self.size_sum,
                                self.weight_ratio, name) for m in self.model_names]
        return sum(parts[1:], parts[0])

    def referenced_models(self) -> tuple[str, list[tuple[str, str]]]:
        return "model_names", [(f"entry {j}", n) for j, n in enumerate(self.model_names)]

    def applies_to(self) -> str:
        return " on " + ", ".join(self.model_names)
