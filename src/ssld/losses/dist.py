"""``DistillationDISTLoss``: DIST, distillation from a stronger teacher (Huang et al., NeurIPS 2022).

With y = softmax(logits) for student and teacher (PaddleClas's form: no temperature), and ρ the Pearson
correlation (cosine of the centred vectors, ``eps`` added to the norm product):
  inter = 1 − mean over rows of ρ(y_s[i, :], y_t[i, :])      (each image's class ranking)
  intra = 1 − mean over classes of ρ(y_s[:, c], y_t[:, c])   (each class's ranking over the batch)
  loss = beta·inter + gamma·intra, in [0, 2·(beta + gamma)].
It ignores the labels, so unlabeled rows (label -1) count like any other.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ssld.losses.base import PairLoss, number
from ssld.losses.registry import register_loss

_EPS = 1e-8


def _pearson_rows(a: Tensor, b: Tensor) -> Tensor:
    """Pearson correlation of each row of ``a`` with the same row of ``b``."""
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + _EPS)


@register_loss("DistillationDISTLoss")
class DistillationDISTLoss(PairLoss):
    summary = "DIST, beta·(1 − inter-class ρ) + gamma·(1 − intra-class ρ)"

    def __init__(self, model_name_pairs: Any, beta: float = 1.0, gamma: float = 1.0, key: str | None = None) -> None:
        super().__init__(model_name_pairs, key)
        self.beta = number("beta", beta)
        self.gamma = number("gamma", gamma)

    def pair(self, student: Tensor, teacher: Tensor, labels: Tensor | None) -> Tensor:
        ys, yt = torch.softmax(student, dim=-1), torch.softmax(teacher, dim=-1)
        inter = 1 - _pearson_rows(ys, yt).mean()
        intra = 1 - _pearson_rows(ys.t(), yt.t()).mean()
        return self.beta * inter + self.gamma * intra

    def details(self) -> str:
        return f", beta={self.beta:g}, gamma={self.gamma:g}"
