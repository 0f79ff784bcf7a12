"""``DistillationDMLLoss``: symmetric KL ½[KL(p_t‖p_s) + KL(p_s‖p_t)], what the SSLD reference calls
"JS divergence" (PaddleClas's ``JSDivLoss``/``DMLLoss`` compute this, not the true Jensen–Shannon divergence;
that one is ``DistillationJSDLoss``).

``act: softmax`` (default) compares class distributions; ``act: sigmoid`` treats every class as an independent
Bernoulli and sums the per-class KLs (multi-label outputs). ``T`` (default 1) divides the logits; no T² factor.

``eps`` (default 1e-12, PaddleClas's): the softmax terms use ``log(p + eps)``, as PaddleClas's ``DMLLoss`` does.
It only matters where a probability falls below ``eps``, and there it matters a lot: a frozen teacher in
train-mode BN can put logit gaps of 60 between classes (batch statistics of a barely-trained network), and the
exact ``log p`` then makes the reverse KL, and its gradient, several times larger than PaddleClas's. On a
PaddleClas distillation config (ResNet18_vd -> MobileNetV3 on Fashion-MNIST, 2 epochs) the exact form blew up the
student's logits in the first steps: 19 % top-1 against PaddleClas's 37 %; with ``eps`` 41 %. ``eps: 0`` gives
the exact symmetric KL (log-softmax).

PaddleClas's multi-label options: ``sum_across_class_dim: true`` multiplies the loss by the number of classes
(PaddleClas scales each class's term by C, then sums over classes instead of averaging); ``weight_ratio: true``
weights each class's term by the imbalance weight of ``MultiLabelLoss`` (labels ``[B, 2, C]``: targets and
positive ratios; unlabeled entries, y < 0, weigh 0).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ssld.losses.base import PairLoss, choice, flag, number, resolve_T
from ssld.losses.registry import register_loss


def _symmetric_terms(log_p: Tensor, log_q: Tensor) -> Tensor:
    """½[p(log p − log q) + q(log q − log p)] = ½(p − q)(log p − log q) per entry: each one ≥ 0."""
    return 0.5 * (log_p.exp() - log_q.exp()) * (log_p - log_q)


def _class_terms(s: Tensor, t: Tensor, act: str, eps: float = 0.0) -> Tensor:
    """[B, C] symmetric-KL terms: per class of the softmax distributions (``log(p + eps)``; exact log-softmax
    when ``eps`` is 0), or per class's Bernoulli (sigmoid)."""
    if act == "softmax" and eps > 0:
        p_t, p_s = torch.softmax(t, dim=-1), torch.softmax(s, dim=-1)
        return 0.5 * (p_t - p_s) * (torch.log(p_t + eps) - torch.log(p_s + eps))
    if act == "softmax":
        return _symmetric_terms(torch.log_softmax(t, dim=-1), torch.log_softmax(s, dim=-1))
    pos = _symmetric_terms(F.logsigmoid(t), F.logsigmoid(s))
    neg = _symmetric_terms(F.logsigmoid(-t), F.logsigmoid(-s))
    return pos + neg


@register_loss("DistillationDMLLoss")
class DistillationDMLLoss(PairLoss):
    summary = "symmetric KL, 'JS divergence' in the reference"

    def __init__(self, model_name_pairs: Any, act: str = "softmax", T: float | None = None,
                 key: str | None = None, temperature: float | None = None, sum_across_class_dim: bool = False,
                 weight_ratio: bool = False, eps: float = 1e-12) -> None:
        super().__init__(model_name_pairs, key)
        self.act = choice("act", act, ("softmax", "sigmoid"))
        self.T = resolve_T(T, temperature, 1.0)
        self.sum_across_class_dim = flag("sum_across_class_dim", sum_across_class_dim)
        self.weight_ratio = flag("weight_ratio", weight_ratio)
        self.eps = number("eps", eps, below=1.0)

    def pair(self, student: Tensor, teacher: Tensor, labels: Tensor | None) -> Tensor:
        terms = _class_terms(student / self.T, teacher / self.T, self.act, self.eps)
        if self.weight_ratio:
            from ssld.losses.multilabel import ratio_weights

            terms = terms * ratio_weights(labels, terms, "DistillationDMLLoss")
        rows = terms.sum(-1).clamp_min(0.0)  # ≥ 0 term by term; the clamp only removes rounding
        return rows.mean() * (terms.shape[1] if self.sum_across_class_dim else 1)

    def details(self) -> str:
        return ((f", {self.act}" if self.act != "softmax" else "") + (f", T={self.T:g}" if self.T != 1 else "")
                + (", x classes" if self.sum_across_class_dim else "") + (", exact log" if self.eps == 0 else "") + (", ratio-weighted" if self.weight_ratio
                                                                          else ""))
