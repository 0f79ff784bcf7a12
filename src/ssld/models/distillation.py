"""DistillationModel: named sub-models (teacher(s), student) run side by side on the same batch.

Frozen sub-models (the teachers) never train: their parameters have ``requires_grad=False``, they run under
``torch.no_grad()`` (no autograd graph, no activation memory), and dropout / drop-path inside them is always off.
Their BatchNorm layers follow ``teacher_bn_mode``:

- ``"eval"``: running statistics, i.e. the teacher as it was trained; its outputs do not depend on the batch.
- ``"train"`` (the reference's choice, 76.00 vs 75.84 top-1): normalise with the statistics of the current batch,
  with ``momentum = 0`` so the running mean and variance never move and the saved teacher stays the teacher.
  ``num_batches_tracked`` still counts up (BatchNorm increments it in train mode; nothing reads it when momentum
  is set). The outputs then depend on the batch (its size per process and its composition), which is why
  offline labelling uses eval mode.

Whatever ``teacher_bn_mode`` says, ``model.eval()`` puts every sub-model fully in eval mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ssld.models.paddle_kwargs import forward_with_features

__all__ = ["DistillationModel", "num_classes_of"]


def num_classes_of(model: nn.Module) -> int | None:
    """A classifier's output size: timm's ``num_classes``, else the out_features of ``get_classifier()``."""
    n = getattr(model, "num_classes", None)
    if isinstance(n, int):
        return n
    get_classifier = getattr(model, "get_classifier", None)
    head = get_classifier() if callable(get_classifier) else None
    return getattr(head, "out_features", None)


class DistillationModel(nn.Module):
    """Sub-models in ``self.models`` (an ``nn.ModuleDict``); ``forward(x)`` returns ``{name: logits}``."""

    def __init__(
        self,
        models: Mapping[str, nn.Module],
        frozen: list[str] | tuple[str, ...] = (),
        infer_model_name: str | None = None,
        teacher_bn_mode: str = "train",
    ) -> None:
        super().__init__()
        if not models:
            raise ValueError("DistillationModel needs at least one sub-model")
        unknown = [n for n in frozen if n not in models]
        if unknown:
            raise ValueError(f"frozen names {unknown} are not sub-models {list(models)}")
        if teacher_bn_mode not in ("train", "eval"):
            raise ValueError(f"teacher_bn_mode must be 'train' or 'eval', got {teacher_bn_mode!r}")
        infer_model_name = infer_model_name or list(models)[-1]
        if infer_model_name not in models:
            raise ValueError(f"infer_model_name '{infer_model_name}' is not one of {list(models)}")
        classes = {name: num_classes_of(m) for name, m in models.items()}
        if len({c for c in classes.values() if c is not None}) > 1:
            raise ValueError(f"sub-models disagree on the number of classes: {classes}")
        self.models = nn.ModuleDict(dict(models))
        self.frozen_names: list[str] = [n for n in self.models if n in frozen]
        self.trainable_names: list[str] = [n for n in self.models if n not in frozen]
        self.infer_model_name = infer_model_name
        self.teacher_bn_mode = teacher_bn_mode
        for name in self.frozen_names:
            self.models[name].requires_grad_(False)
        self.train(self.training)

    @property
    def infer_model(self) -> nn.Module:
        """The sub-model that eval, export and predict use."""
        return self.models[self.infer_model_name]

    @property
    def trainable(self) -> dict[str, nn.Module]:
        """The non-frozen sub-models by name (what the optimizer and DDP see)."""
        return {n: self.models[n] for n in self.trainable_names}

    def train(self, mode: bool = True) -> DistillationModel:
        """Set train/eval mode; frozen sub-models keep dropout off and follow ``teacher_bn_mode``."""
        super().train(mode)
        for name in self.frozen_names:
            frozen = self.models[name]
            frozen.eval()
            if mode and self.teacher_bn_mode == "train":
                for m in frozen.modules():
                    if isinstance(m, _BatchNorm):
                        m.momentum = 0.0
                        m.train()
        return self

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        """``{name: logits}``; a sub-model with PaddleClas ``return_patterns`` gives ``{"logits": ..., pattern:
        feature map}`` instead (ssld.models.paddle_kwargs)."""
        out: dict[str, Any] = {}
        for name, model in self.models.items():
            if name in self.frozen_names:
                with torch.no_grad():
                    out[name] = forward_with_features(model, x)
            else:
                out[name] = forward_with_features(model, x)
        return out

    def student_state_dict(self) -> dict[str, torch.Tensor]:
        """The infer model's weights alone, loadable into a plain model of that architecture."""
        return self.infer_model.state_dict()
