"""``DistillationDKDLoss``: decoupled knowledge distillation (Zhao et al., CVPR 2022).

With target class g, p = softmax(logits/T) and b = (p_g, 1 − p_g):
  TCKD = T²·KL(b_t ‖ b_s)                                   (target vs the rest)
  NCKD = T²·KL(p̂_t ‖ p̂_s), p̂ = softmax over the non-target classes only
  loss = alpha·TCKD + beta·NCKD, averaged over the batch.
The target is the label, or the teacher's argmax for unlabeled rows (label -1) and when ``use_target:
teacher`` (PaddleClas: ``use_target_as_gt: true``); so DKD also trains on unlabeled data. PaddleClas's
``temperature`` is accepted for ``T``. Defaults follow the paper (alpha 1, beta 8, T 4), not PaddleClas's
(1, 1, 1). Everything is done with log-softmax/logsumexp instead of the paper code's 1000·mask trick.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ssld.losses.base import (
    LossOptionError,
    PairLoss,
    choice,
    flag,
    flat_labels,
    kl_rows,
    number,
    resolve_T,
)
from ssld.losses.registry import register_loss


def _target_split(logits: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """log b = [log p_g, log(1 − p_g)] per row, and the log-softmax over the non-target classes (−inf at g)."""
    log_z = torch.logsumexp(logits, dim=-1, keepdim=True)
    others = logits.masked_fill(mask, float("-inf"))
    log_rest = torch.logsumexp(others, dim=-1, keepdim=True)
    log_g = logits.gather(1, target[:, None]) - log_z
    return torch.cat([log_g, log_rest - log_z], dim=-1), others - log_rest


@register_loss("DistillationDKDLoss")
class DistillationDKDLoss(PairLoss):
    summary = "decoupled KD, alpha·TCKD + beta·NCKD"

    def __init__(self, model_name_pairs: Any, alpha: float = 1.0, beta: float = 8.0, T: float | None = None,
                 use_target: str | None = None, key: str | None = None, temperature: float | None = None,
                 use_target_as_gt: bool = False) -> None:
        super().__init__(model_name_pairs, key)
        self.alpha = number("alpha", alpha)
        self.beta = number("beta", beta)
        self.T = resolve_T(T, temperature, 4.0)
        if flag("use_target_as_gt", use_target_as_gt):  # PaddleClas's spelling of use_target: teacher
            if use_target not in (None, "teacher"):
                raise LossOptionError("use_target_as_gt", f"contradicts use_target: {use_target}")
            use_target = "teacher"
        self.use_target = choice("use_target", use_target or "label", ("label", "teacher"))

    def pair(self, student: Tensor, teacher: Tensor, labels: Tensor | None) -> Tensor:
        if student.shape[1] < 2:
            raise ValueError("DistillationDKDLoss: needs at least two classes")
        target = teacher.argmax(dim=-1)
        if self.use_target == "label" and labels is not None:
            labels = flat_labels(labels, student.shape[0], "DistillationDKDLoss").to(student.device)
            target = torch.where(labels >= 0, labels, target)
        mask = torch.zeros_like(student, dtype=torch.bool).scatter_(1, target[:, None], True)
        b_s, rest_s = _target_split(student / self.T, target, mask)
        b_t, rest_t = _target_split(teacher / self.T, target, mask)
        tckd = kl_rows(b_t, b_s)
        nckd = kl_rows(rest_t, rest_s)  # the target class has p = 0: left out
        return (self.alpha * tckd + self.beta * nckd).mean() * self.T**2

    def details(self) -> str:
        target = "teacher argmax" if self.use_target == "teacher" else "label (teacher argmax when unlabeled)"
        return f", alpha={self.alpha:g}, beta={self.beta:g}, T={self.T:g}, target: {target}"
