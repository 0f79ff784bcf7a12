"""``DistillationDMLLoss``: symmetric KL ½[KL(p_t‖p_s) + KL(p_s‖p_t)], what the SSLD reference calls
"JS divergence" (PaddleClas's ``JSDivLoss``/``DMLLoss`` compute this, not the true Jensen–Shannon divergence;
that one is ``DistillationJSDLoss``).

``act: softmax`` (default) compares class distributions; ``act: sigmoid`` treats every class as an independent
Bernoulli and sums the per-class KLs (multi-label outputs). ``T`` (default 1) divides the logits; no T² factor.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ssld.losses.base import PairLoss, choice, kl_rows, resolve_T
from ssld.losses.registry import register_loss


def _bernoulli_kl(a: Tensor, b: Tensor) -> Tensor:
    """Per-row Σ over classes of KL(Bernoulli(σ(a)) ‖ Bernoulli(σ(b))), from the logits a and b."""
    log_p = torch.stack([F.logsigmoid(a), F.logsigmoid(-a)], dim=-1)
    log_q = torch.stack([F.logsigmoid(b), F.logsigmoid(-b)], dim=-1)
    return kl_rows(log_p, log_q).sum(-1)


@register_loss("DistillationDMLLoss")
class DistillationDMLLoss(PairLoss):
    summary = "symmetric KL, 'JS divergence' in the reference"

    def __init__(self, model_name_pairs: Any, act: str = "softmax", T: float | None = None,
                 key: str | None = None, temperature: float | None = None) -> None:
        super().__init__(model_name_pairs, key)
        self.act = choice("act", act, ("softmax", "sigmoid"))
        self.T = resolve_T(T, temperature, 1.0)

    def pair(self, student: Tensor, teacher: Tensor, labels: Tensor | None) -> Tensor:
        s, t = student / self.T, teacher / self.T
        if self.act == "softmax":
            ls, lt = torch.log_softmax(s, dim=-1), torch.log_softmax(t, dim=-1)
            return 0.5 * (kl_rows(lt, ls) + kl_rows(ls, lt)).mean()
        return 0.5 * (_bernoulli_kl(t, s) + _bernoulli_kl(s, t)).mean()

    def details(self) -> str:
        return (f", {self.act}" if self.act != "softmax" else "") + (f", T={self.T:g}" if self.T != 1 else "")
