"""``DistillationWSLLoss``: weighted soft labels (Zhou et al., ICLR 2021).

Each row's soft cross-entropy T²·CE(softmax(t/T), softmax(s/T)) is weighted by w = 1 − exp(−r), where
r = max(CE_s / (CE_t + 1e-7), 0) compares the student's and the teacher's hard-target cross-entropies at T = 1
(no gradient through w): rows the teacher gets right and the student does not count most. The loss is the
batch mean of w·CE. The target is the label, or the teacher's argmax for unlabeled rows (label -1) and with
``use_target_as_gt: true``. PaddleClas's ``temperature`` is accepted for T (default 2, as PaddleClas).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ssld.losses.base import PairLoss, flag, resolve_T
from ssld.losses.registry import register_loss
from ssld.losses.skd import hard_target


@register_loss("DistillationWSLLoss")
class DistillationWSLLoss(PairLoss):
    summary = "weighted soft labels, (1 − exp(−CE_s/CE_t))·T²·CE(teacher, student)"

    def __init__(self, model_name_pairs: Any, T: float | None = None, use_target_as_gt: bool = False,
                 key: str | None = None, temperature: float | None = None) -> None:
        super().__init__(model_name_pairs, key)
        self.T = resolve_T(T, temperature, 2.0)
        self.use_target_as_gt = flag("use_target_as_gt", use_target_as_gt)

    def pair(self, student: Tensor, teacher: Tensor, labels: Tensor | None) -> Tensor:
        target = hard_target(teacher, labels, self.use_target_as_gt, "DistillationWSLLoss")[:, None]
        with torch.no_grad():
            ce_s = -torch.log_softmax(student, dim=-1).gather(1, target)[:, 0]
            ce_t = -torch.log_softmax(teacher, dim=-1).gather(1, target)[:, 0]
            weight = 1 - torch.exp(-(ce_s / (ce_t + 1e-7)).clamp_min(0))
        log_s = torch.log_softmax(student / self.T, dim=-1)
        kd = -(torch.softmax(teacher / self.T, dim=-1) * log_s).sum(-1)
        return (kd * weight).mean() * self.T**2

    def details(self) -> str:
        return f", T={self.T:g}"
