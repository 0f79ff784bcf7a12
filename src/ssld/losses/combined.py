"""The weighted sum of a config's loss list, with every part reported by name."""

from __future__ import annotations

from collections import Counter
from typing import Any

from torch import Tensor, nn

from ssld.losses.base import Loss, Outputs
from ssld.losses.registry import parse_list


class CombinedLoss(nn.Module):
    """``forward(outputs, labels) -> {"loss": Σ weight·part, "<Name>": part, ...}``.

    Parts are reported UNWEIGHTED under their loss name (a name used more than once becomes ``Name_1``,
    ``Name_2``, ... for every occurrence); only ``"loss"`` carries the weights. Every weight is honoured, also
    when the list has a single entry (PaddleClas drops it there).
    """

    def __init__(self, names: list[str], weights: list[float], losses: list[Loss]) -> None:
        super().__init__()
        counts = Counter(names)
        seen: Counter[str] = Counter()
        self.part_names: list[str] = []
        for name in names:
            seen[name] += 1
            self.part_names.append(f"{name}_{seen[name]}" if counts[name] > 1 else name)
        self.weights = list(weights)
        self.losses = nn.ModuleList(losses)

    def forward(self, outputs: Outputs, labels: Tensor | None = None) -> dict[str, Tensor]:
        parts: dict[str, Tensor] = {}
        total: Tensor | None = None
        for name, weight, loss in zip(self.part_names, self.weights, self.losses):
            value = loss(outputs, labels)
            parts[name] = value
            total = weight * value if total is None else total + weight * value
        assert total is not None  # build_loss() refuses an empty list
        return {"loss": total, **parts}

    def describe(self) -> str:
        return " + ".join(loss.describe(w) for w, loss in zip(self.weights, self.losses))


def build_loss(entries: list[dict[str, Any]]) -> CombinedLoss:
    """Build the loss module for a PaddleClas-form loss list (see :func:`validate_loss_list` for the checks
    that also need the model names); a bad entry raises ``ValueError("[i].Name.key: message")``."""
    parsed = parse_list(entries)
    return CombinedLoss([p[0] for p in parsed], [p[1] for p in parsed], [p[2] for p in parsed])


def describe_loss(entries: list[dict[str, Any]]) -> str:
    """A human summary of a valid loss list for reports, naming each loss and which divergence it is."""
    return build_loss(entries).describe()
