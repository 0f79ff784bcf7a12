"""``DistillationDistanceLoss``: an element-wise distance between student and teacher outputs.

``mode``: ``l2`` (mean squared error, the default), ``l1`` (mean absolute error) or ``smooth_l1`` (Huber with
delta 1: ½d² below 1, |d| − ½ above), averaged over every element. ``act``: none (the raw logits), ``softmax`` or
``sigmoid`` first (over the last axis, as PaddleClas). Labels are not used. ``key`` picks the logits (default) or
a feature map the models return through PaddleClas's ``return_patterns`` (``key: blocks4``, as its PULC configs).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ssld.losses.base import LossOptionError, PairLoss, choice
from ssld.losses.registry import register_loss


@register_loss("DistillationDistanceLoss")
class DistillationDistanceLoss(PairLoss):
    summary = "element-wise distance"
    logits_only = False

    def __init__(self, model_name_pairs: Any, mode: str = "l2", act: str | None = None,
                 key: str | None = None) -> None:
        super().__init__(model_name_pairs, key)
        self.mode = choice("mode", mode, ("l2", "l1", "smooth_l1"))
        if act not in (None, "softmax", "sigmoid"):
            raise LossOptionError("act", f"must be softmax, sigmoid or null, got {act!r}")
        self.act = act

    def pair(self, student: Tensor, teacher: Tensor, labels: Tensor | None) -> Tensor:
        if self.act == "softmax":
            student, teacher = torch.softmax(student, dim=-1), torch.softmax(teacher, dim=-1)
        elif self.act == "sigmoid":
            student, teacher = torch.sigmoid(student), torch.sigmoid(teacher)
        if self.mode == "l2":
            return F.mse_loss(student, teacher)
        if self.mode == "l1":
            return F.l1_loss(student, teacher)
        return F.huber_loss(student, teacher, delta=1.0)

    def details(self) -> str:
        return f", {self.mode}" + (f" after {self.act}" if self.act else "")
