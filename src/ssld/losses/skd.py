"""``DistillationSKDLoss``: spherical knowledge distillation (Guo et al., 2020).

Both logit vectors are layer-normalised over the classes (no affine, eps 1e-7) and scaled by ``multiplier``,
which removes the teacher's confidence (logit norm) from what the student must match. Then
  kd = T²·mean over rows of CE(softmax(t̂/T), softmax(ŝ/T))     (soft cross-entropy, as PaddleClas)
  ce = mean over rows of CE(one-hot target, softmax(ŝ))
  loss = alpha·kd + (1 − alpha)·ce.
The target is the label, or the teacher's argmax for unlabeled rows (label -1), for every row without labels,
and with ``use_target_as_gt: true`` (as ``DistillationDKDLoss``). PaddleClas's ``temperature`` is accepted for T.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ssld.losses.base import PairLoss, flag, flat_labels, number, resolve_T
from ssld.losses.registry import register_loss


def hard_target(teacher: Tensor, labels: Tensor | None, use_teacher: bool, loss: str) -> Tensor:
    """The label of each row; the teacher's argmax where the label is -1, labels are absent or not wanted."""
    target = teacher.argmax(dim=-1)
    if labels is not None and not use_teacher:
        labels = flat_labels(labels, teacher.shape[0], loss).to(teacher.device)
        target = torch.where(labels >= 0, labels, target)
    return target


@register_loss("DistillationSKDLoss")
class DistillationSKDLoss(PairLoss):
    summary = "spherical KD, alpha·T²·CE(t̂, ŝ) + (1 − alpha)·CE(label, ŝ) on layer-normed logits"

    def __init__(self, model_name_pairs: Any, T: float | None = None, multiplier: float = 2.0, alpha: float = 0.9,
                 use_target_as_gt: bool = False, key: str | None = None, temperature: float | None = None) -> None:
        super().__init__(model_name_pairs, key)
        self.T = resolve_T(T, temperature, 1.0)
        self.multiplier = number("multiplier", multiplier, strict=True)
        self.alpha = number("alpha", alpha, below=1.0 + 1e-12)
        self.use_target_as_gt = flag("use_target_as_gt", use_target_as_gt)

    def pair(self, student: Tensor, teacher: Tensor, labels: Tensor | None) -> Tensor:
        target = hard_target(teacher, labels, self.use_target_as_gt, "DistillationSKDLoss")
        c = student.shape[1:]
        s = F.layer_norm(student, c, eps=1e-7) * self.multiplier
        t = F.layer_norm(teacher, c, eps=1e-7) * self.multiplier
        log_s = torch.log_softmax(s / self.T, dim=-1)
        kd = -(torch.softmax(t / self.T, dim=-1) * log_s).sum(-1).mean() * self.T**2
        ce = -torch.log_softmax(s, dim=-1).gather(1, target[:, None]).mean()
        return self.alpha * kd + (1 - self.alpha) * ce

    def details(self) -> str:
        return f", T={self.T:g}, multiplier={self.multiplier:g}, alpha={self.alpha:g}"
