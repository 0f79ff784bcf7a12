"""``DistillationJSDLoss`` (ssld's own): the true Jensen–Shannon divergence ½KL(p_s‖m) + ½KL(p_t‖m),
m = ½(p_s + p_t), bounded by log 2. log m is computed stably as logsumexp(log p_s, log p_t) − log 2.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ssld.losses.base import PairLoss, kl_rows, resolve_T
from ssld.losses.registry import register_loss


@register_loss("DistillationJSDLoss")
class DistillationJSDLoss(PairLoss):
    summary = "true Jensen-Shannon divergence"

    def __init__(self, model_name_pairs: Any, T: float | None = None, key: str | None = None,
                 temperature: float | None = None) -> None:
        super().__init__(model_name_pairs, key)
        self.T = resolve_T(T, temperature, 1.0)

    def pair(self, student: Tensor, teacher: Tensor, labels: Tensor | None) -> Tensor:
        ls = torch.log_softmax(student / self.T, dim=-1)
        lt = torch.log_softmax(teacher / self.T, dim=-1)
        lm = torch.logsumexp(torch.stack([ls, lt]), dim=0) - math.log(2.0)
        return 0.5 * (kl_rows(ls, lm) + kl_rows(lt, lm)).mean()

    def details(self) -> str:
        return f", T={self.T:g}" if self.T != 1 else ""
