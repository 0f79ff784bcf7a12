"""PaddleClas networks that timm ported layer for layer: PP-LCNetV2 (``lcnetv2_*``), PP-HGNet (``hgnet_*``) and
PP-HGNetV2 (``hgnetv2_*``). Their parameter names differ from PaddleClas's by renames only.

One computation differs: PP-HGNetV2's stem max-pools its first feature map padded on the right and bottom, Paddle
with a ``SAME`` pool (padding never wins the max), timm with zeros. With ReLU outputs (B4-B6) that is the same; with
the learnable affine after the ReLU (B0-B3) features can be negative and a zero would win at the border.
``paddle_hgnetv2_b0`` ... ``b3`` are timm's networks with the pool padded by ``-inf``.

Two PaddleClas details the names do not show: PP-LCNetV2 keeps an inference-only depthwise conv next to each
re-parameterizable block's branches, which its training-mode forward never reads (dropped on conversion); and a
``downscale_in_infer`` dropout before the classifier (PP-LCNetV2 and PPHGNet_base: p = 0.2 by default) scales
activations by ``1 - p`` at inference, which conversion folds into the classifier.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.hgnet import HighPerfGpuNet, StemV2, model_cfgs
from torch import nn

from ssld.models.paddle.common import default_cfg
from ssld.models.paddle.convert import Rule, renamed_rules


class PaddleStemV2(StemV2):
    """timm's PP-HGNetV2 stem whose max pool ignores its padding, as Paddle's ``SAME`` pool does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem1(x)
        x2 = self.stem2b(F.pad(self.stem2a(F.pad(x, (0, 1, 0, 1))), (0, 1, 0, 1)))
        x1 = self.pool(F.pad(x, (0, 1, 0, 1), value=float("-inf")))
        return self.stem4(self.stem3(torch.cat([x1, x2], dim=1)))


_LAB_HGNETV2 = [f"paddle_hgnetv2_b{i}" for i in range(4)]
default_cfgs = generate_default_cfgs(
    {name: default_cfg("head.fc", "stem.stem1.conv", crop_pct=0.965, interpolation="bicubic") for name in _LAB_HGNETV2}
)


def _create_hgnetv2(variant: str, pretrained: bool = False, **kwargs: Any) -> HighPerfGpuNet:
    out_indices = kwargs.pop("out_indices", (0, 1, 2, 3))
    model = build_model_with_cfg(
        HighPerfGpuNet, variant, pretrained, model_cfg=model_cfgs[variant.removeprefix("paddle_")],
        feature_cfg={"flatten_sequential": True, "out_indices": out_indices}, **({"use_lab": True} | kwargs),
    )
    model.stem.__class__ = PaddleStemV2
    return model


@register_model
def paddle_hgnetv2_b0(pretrained: bool = False, **kwargs: Any) -> HighPerfGpuNet:
    """PaddleClas PPHGNetV2_B0: timm hgnetv2_b0 with Paddle's stem pool padding."""
    return _create_hgnetv2("paddle_hgnetv2_b0", pretrained, **kwargs)


@register_model
def paddle_hgnetv2_b1(pretrained: bool = False, **kwargs: Any) -> HighPerfGpuNet:
    """PaddleClas PPHGNetV2_B1: timm hgnetv2_b1 with Paddle's stem pool padding."""
    return _create_hgnetv2("paddle_hgnetv2_b1", pretrained, **kwargs)


@register_model
def paddle_hgnetv2_b2(pretrained: bool = False, **kwargs: Any) -> HighPerfGpuNet:
    """PaddleClas PPHGNetV2_B2: timm hgnetv2_b2 with Paddle's stem pool padding."""
    return _create_hgnetv2("paddle_hgnetv2_b2", pretrained, **kwargs)


@register_model
def paddle_hgnetv2_b3(pretrained: bool = False, **kwargs: Any) -> HighPerfGpuNet:
    """PaddleClas PPHGNetV2_B3: timm hgnetv2_b3 with Paddle's stem pool padding."""
    return _create_hgnetv2("paddle_hgnetv2_b3", pretrained, **kwargs)

_LCNETV2_SUBS = [
    (r"\.se\.fc1$", ".se.conv1"), (r"\.se\.fc2$", ".se.conv2"),
    (r"\.pw_conv\.0\.", ".pw_conv_1."), (r"\.pw_conv\.1\.", ".pw_conv_2."),
    (r"^conv_head$", "last_conv"), (r"^classifier$", "fc"),
]
_HGNET_SUBS = [
    (r"^stem\.stem\.", "stem."), (r"\.aggregation\.0\.", ".aggregation_conv."), (r"\.aggregation\.1\.", ".att."),
    (r"^head\.last_conv\.0$", "last_conv"), (r"^head\.fc$", "fc"),
]
_HGNETV2_SUBS = [
    (r"\.aggregation\.0\.", ".aggregation_squeeze_conv."), (r"\.aggregation\.1\.", ".aggregation_excitation_conv."),
    (r"^head\.last_conv\.0$", "last_conv"), (r"^head\.last_conv\.2$", "lab"), (r"^head\.fc$", "fc"),
]
# PaddleClas's default dropout_prob before the classifier, per timm architecture (folded in as 1 - p).
_HEAD_DROPOUT = {"lcnetv2_small": 0.2, "lcnetv2_base": 0.2, "lcnetv2_large": 0.2, "hgnet_base": 0.2}


def _arch(model: nn.Module) -> str:
    return str(model.pretrained_cfg["architecture"])


def lcnetv2_rules(model: nn.Module) -> list[Rule]:
    """PaddleClas PP-LCNetV2 onto timm's ``lcnetv2_*``."""
    rules = renamed_rules(model, _LCNETV2_SUBS, "classifier", 1.0 - _HEAD_DROPOUT.get(_arch(model), 0.0))
    for name, module in model.named_modules():
        if getattr(module, "dw_conv_list", None) is not None:  # re-parameterizable: Paddle's dw_conv is unused
            rules.append(Rule(f"{name}.dw_conv", "", "unused"))
    return rules


def hgnet_rules(model: nn.Module) -> list[Rule]:
    """PaddleClas PP-HGNet onto timm's ``hgnet_*``."""
    return renamed_rules(model, _HGNET_SUBS, "head.fc", 1.0 - _HEAD_DROPOUT.get(_arch(model), 0.0))


def hgnetv2_rules(model: nn.Module) -> list[Rule]:
    """PaddleClas PP-HGNetV2 onto timm's ``hgnetv2_*``."""
    return renamed_rules(model, _HGNETV2_SUBS, "head.fc")


RULES = (
    {f"lcnetv2_{s}": lcnetv2_rules for s in ("small", "base", "large")}
    | {f"hgnet_{s}": hgnet_rules for s in ("tiny", "small", "base")}
    | {f"hgnetv2_b{i}": hgnetv2_rules for i in range(4, 7)}
    | dict.fromkeys(_LAB_HGNETV2, hgnetv2_rules)
)
# PaddleClas name -> timm name
ALIASES = (
    {f"PPLCNetV2_{s}": f"lcnetv2_{s}" for s in ("small", "base", "large")}
    | {f"PPHGNet_{s}": f"hgnet_{s}" for s in ("tiny", "small", "base")}
    | {f"PPHGNetV2_B{i}": f"{'paddle_' if i < 4 else ''}hgnetv2_b{i}" for i in range(7)}
)
