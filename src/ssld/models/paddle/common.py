"""Pieces shared by the faithful PaddleClas networks: Paddle's hard sigmoid, a timm default config, and the
registration of a variant into timm."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import register_model
from torch import nn


class PaddleHardSigmoid(nn.Module):
    """``clip(slope * x + offset, 0, 1)``: Paddle's hard sigmoid, whose slope is a parameter.

    PaddleClas's MobileNetV3 gates its squeeze-excite with slope 0.2; ``paddle.nn.Hardsigmoid()`` (PP-LCNet)
    defaults to 0.1666667 (torch's ``hardsigmoid`` uses exactly 1/6).
    """

    def __init__(self, slope: float = 0.2, offset: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.slope = slope
        self.offset = offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x * self.slope + self.offset, 0.0, 1.0)

    def extra_repr(self) -> str:
        return f"slope={self.slope}, offset={self.offset}"


def default_cfg(classifier: str, first_conv: str, **kwargs: Any) -> dict[str, Any]:
    """timm pretrained config of a faithful PaddleClas net (no weights URL: weights come from a .pdparams file)."""
    return {
        "url": "",
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": (7, 7),
        "crop_pct": 0.875,
        "interpolation": "bilinear",
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": first_conv,
        "classifier": classifier,
        **kwargs,
    }


def register_variant(name: str, build: Callable[..., nn.Module], doc: str, module: str) -> None:
    """Register ``name`` into timm as a model built by ``build(pretrained=..., **kwargs)``."""

    def create(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        return build(pretrained=pretrained, **kwargs)

    create.__name__, create.__doc__, create.__module__ = name, doc, module
    register_model(create)
