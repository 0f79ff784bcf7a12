"""Hard-label cross-entropy: ``CELoss`` (single model) and ``DistillationGTCELoss`` (named sub-models).

Rows labelled -1 (any negative label) are unlabeled and skipped; a batch without labeled rows gives 0.
Label smoothing ``epsilon`` mixes the one-hot target with the uniform distribution (on probabilities).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ssld.losses.base import (
    Loss,
    Outputs,
    hard_ce,
    model_list,
    number,
    optional_key,
    pick,
)
from ssld.losses.registry import register_loss


@register_loss("CELoss")
class CELoss(Loss):
    """Mean CE of the single model's logits against the labels (float [B, C] soft targets also accepted)."""

    summary = "cross-entropy with the labels"

    def __init__(self, epsilon: float | None = None, key: str | None = None) -> None:
        super().__init__()
        self.epsilon = number("epsilon", epsilon or 0.0, below=1.0)
        self.key = optional_key(key)

    def forward(self, outputs: Outputs, labels: Tensor | None = None) -> Tensor:
        return hard_ce(pick(outputs, None, self.key, "CELoss"), labels, self.epsilon, "CELoss")

    def details(self) -> str:
        return f", label smoothing {self.epsilon:g}" if self.epsilon else ""


@register_loss("DistillationGTCELoss")
class DistillationGTCELoss(Loss):
    """CE against the labels for each sub-model in ``model_names`` (summed), e.g. the student's own labels."""

    distillation = True
    summary = "cross-entropy with the labels"

    def __init__(self, model_names: Any, epsilon: float | None = None, key: str | None = None) -> None:
        super().__init__()
        self.model_names = model_list("model_names", model_names)
        self.epsilon = number("epsilon", epsilon or 0.0, below=1.0)
        self.key = optional_key(key)

    def forward(self, outputs: Outputs, labels: Tensor | None = None) -> Tensor:
        name = "DistillationGTCELoss"
        parts = [hard_ce(pick(outputs, m, self.key, name), labels, self.epsilon, name) for m in self.model_names]
        return sum(parts[1:], parts[0])

    def referenced_models(self) -> tuple[str, list[tuple[str, str]]]:
        return "model_names", [(f"entry {j}", n) for j, n in enumerate(self.model_names)]

    def details(self) -> str:
        return f", label smoothing {self.epsilon:g}" if self.epsilon else ""

    def applies_to(self) -> str:
        return " on " + ", ".join(self.model_names)
