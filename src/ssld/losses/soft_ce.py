"""``DistillationCELoss``: soft-target cross-entropy −Σ softmax(t/T)·log_softmax(s/T), T = 1 by default.

At the same T it differs from T⁻²·``DistillationKLDivLoss`` only by the teacher's entropy, a constant for the
student, so both give the same gradient (the reference's "KL is almost useless vs CE").
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ssld.losses.base import PairLoss, flag, resolve_T
from ssld.losses.registry import register_loss


@register_loss("DistillationCELoss")
class DistillationCELoss(PairLoss):
    summary = "soft-target cross-entropy with the teacher's probabilities"

    def __init__(self, model_name_pairs: Any, T: float | None = None, t2_scale: bool = False,
                 key: str | None = None, temperature: float | None = None) -> None:
        super().__init__(model_name_pairs, key)
        self.T = resolve_T(T, temperature, 1.0)
        self.t2_scale = flag("t2_scale", t2_scale)

    def pair(self, student: Tensor, teacher: Tensor, labels: Tensor | None) -> Tensor:
        p_t = torch.softmax(teacher / self.T, dim=-1)
        loss = -(p_t * torch.log_softmax(student / self.T, dim=-1)).sum(-1).mean()
        return loss * self.T**2 if self.t2_scale else loss

    def details(self) -> str:
        return f", T={self.T:g}" + (", T²-scaled" if self.t2_scale else "")
