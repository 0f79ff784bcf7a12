"""``DistillationKLDivLoss``: Hinton's KD term T²·KL(softmax(t/T) ‖ softmax(s/T)), T = 4 by default.

The direction is KL(teacher‖student), i.e. ``F.kl_div(log_softmax(s/T), log_softmax(t/T), log_target=True)``;
swapping those arguments (PaddleClas issue #538) gives a different, wrong loss.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ssld.losses.base import PairLoss, kl_rows, resolve_T
from ssld.losses.registry import register_loss


@register_loss("DistillationKLDivLoss")
class DistillationKLDivLoss(PairLoss):
    summary = "T²·KL(teacher‖student)"

    def __init__(self, model_name_pairs: Any, T: float | None = None, key: str | None = None,
                 temperature: float | None = None) -> None:
        super().__init__(model_name_pairs, key)
        self.T = resolve_T(T, temperature, 4.0)

    def pair(self, student: Tensor, teacher: Tensor, labels: Tensor | None) -> Tensor:
        ls = torch.log_softmax(student / self.T, dim=-1)
        lt = torch.log_softmax(teacher / self.T, dim=-1)
        return kl_rows(lt, ls).mean() * self.T**2

    def details(self) -> str:
        return f", T={self.T:g}"
