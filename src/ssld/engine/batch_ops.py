"""PaddleClas ``batch_transform_ops`` (MixupOperator, CutmixOperator, OpSampler) on top of timm's ``Mixup``.

The batch operators mix images and turn hard labels into soft targets ([B, C] probabilities) that ``CELoss``
and ``DistillationGTCELoss`` accept. Mixing needs a label for every image, so lists with unlabeled rows and
offline soft labels (stored for the unmixed image) are refused before training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ssld.errors import UserError

BatchTransform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
KEY = "DataLoader.Train.dataset.batch_transform_ops"


def _op(entry: Any, where: str) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        return entry, {}
    if not isinstance(entry, dict) or len(entry) != 1:
        raise UserError(f"{where}: expected one operator name with its options, e.g. {{MixupOperator: {{alpha: 0.2}}}}")
    (name, kwargs), = entry.items()
    return name, dict(kwargs or {})


def _alphas(ops: list[Any], where: str) -> dict[str, float]:
    """Mixup/CutMix alphas and the probability of mixing at all (the sum of OpSampler's per-operator ``prob``)."""
    out = {"mixup_alpha": 0.0, "cutmix_alpha": 0.0, "prob": 1.0}
    for i, entry in enumerate(ops):
        name, kw = _op(entry, f"{where}[{i}]")
        members = [(name, kw, f"{where}[{i}]")]
        if name == "OpSampler":
            members = [(n, dict(v or {}), f"{where}[{i}].OpSampler") for n, v in kw.items()]
            out["prob"] = min(1.0, sum(float(v.pop("prob", 1.0)) for _, v, _ in members))
        for op_name, op_kw, at in members:
            if op_name not in ("MixupOperator", "CutmixOperator"):
                raise UserError(f"{at}: unknown batch operator '{op_name}' (MixupOperator, CutmixOperator, OpSampler)")
            unknown = set(op_kw) - {"alpha"}
            if unknown:
                raise UserError(f"{at}.{op_name}: unknown option(s) {sorted(unknown)}; it takes 'alpha'")
            alpha = float(op_kw.get("alpha", 0.2 if op_name == "MixupOperator" else 1.0))
            if alpha <= 0:
                raise UserError(f"{at}.{op_name}.alpha: must be > 0, got {alpha}")
            out["mixup_alpha" if op_name == "MixupOperator" else "cutmix_alpha"] = alpha
    return out


def build_batch_transform(ops: list[Any] | None, num_classes: int, num_unlabeled: int,
                          offline: bool) -> BatchTransform | None:
    """timm ``Mixup`` for the configured operators, or None when there are none."""
    if not ops:
        return None
    params = _alphas(ops, KEY)
    if num_unlabeled:
        raise UserError(f"{KEY}: Mixup/CutMix needs a label for every training image ({num_unlabeled} unlabeled)")
    if offline:
        raise UserError(f"{KEY}: Mixup/CutMix cannot be combined with soft_labels (stored for unmixed images)")
    from timm.data import Mixup

    both = params["mixup_alpha"] > 0 and params["cutmix_alpha"] > 0
    mixup = Mixup(mixup_alpha=params["mixup_alpha"], cutmix_alpha=params["cutmix_alpha"], prob=params["prob"],
                  switch_prob=0.5 if both else 0.0, label_smoothing=0.0, num_classes=num_classes)

    def apply(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[0] % 2:  # timm mixes pairs: an odd last batch trains unmixed
            return images, labels
        return mixup(images, labels)

    return apply
