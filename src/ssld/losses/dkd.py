"""``DistillationDKDLoss``: decoupled knowledge distillation (Zhao et al., CVPR 2022).

With target class g, p = softmax(logits/T) and b = (p_g, 1 − p_g):
  TCKD = T²·KL(b_t ‖ b_s)                                   (target vs the rest)
  NCKD = T²·KL(p̂_t ‖ p̂_s), p̂ = softmax over the non-target classes only
  loss = alpha·TCKD + beta·NCKD, averaged over the batch.
The target is the label, or the teacher's argmax for unlabeled rows (label -1) and when ``use_target:
teacher``; so DKD also trains on unlabeled data. Everything is done with log-softmax/logsumexp, no 1000·mask.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ssld.losses.base import PairLoss, choice, flat_labels, kl_rows, number
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

    def __init__(self, model_name_pairs: Any, alpha: float = 1.0, beta: float = 8.0, T: float = 4.0,
                 use_target: str = "label", key: str | None = None) -> None:
        super().__init__(model_name_pairs, key)
        self.alpha = number("alpha", alpha)
        self.beta = number("beta", beta)
        self.T = number("T", T, strict=True)
        self.use_target = choice("use_target", use_target, ("label", "teacher"))

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
