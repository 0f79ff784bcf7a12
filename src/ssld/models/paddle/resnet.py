"""PaddleClas ResNet / ResNet_vd in timm, and the PaddleClas -> timm parameter names.

PaddleClas's ResNet-50/101/152 (and their vd versions) compute what timm's ``resnet50`` / ``resnet50d`` ...
compute: the same deep stem, stride on the 3x3 conv, and in vd a 2x2 average pool (``ceil_mode``, padding left out
of the average) before the 1x1 shortcut conv. ResNet-18/34 differ: PaddleClas gives the first block a 1x1 conv +
BN shortcut although its width does not change, where timm keeps the identity. ``paddle_resnet18_vd`` etc. are
timm ResNets with that shortcut added. PaddleClas's ResNet200_vd has another block count than timm's resnet200d:
``paddle_resnet200_vd``.
"""

from __future__ import annotations

from typing import Any

from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.resnet import (
    BasicBlock,
    Bottleneck,
    ResNet,
    downsample_avg,
    downsample_conv,
)
from torch import nn

from ssld.models.paddle.common import default_cfg
from ssld.models.paddle.convert import Rule, conv_bn
from ssld.models.paddle.init import init_like_paddle


class PaddleResNet(ResNet):
    """timm ResNet whose first block always has a projection shortcut (1x1 conv + BN), as in PaddleClas."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        first = self.layer1[0]
        if first.downsample is None:
            width = first.conv1.in_channels
            make = downsample_avg if kwargs.get("avg_down") else downsample_conv
            first.downsample = make(width, width, kernel_size=1, stride=1)


_BASIC = {"18": (2, 2, 2, 2), "34": (3, 4, 6, 3)}
_VARIANTS = {f"paddle_resnet{d}": (d, False) for d in _BASIC} | {f"paddle_resnet{d}_vd": (d, True) for d in _BASIC}
# PaddleClas's ResNet200 has 3-12-48-3 bottleneck blocks, timm's resnet200(d) 3-24-36-3.
_VARIANTS |= {"paddle_resnet200_vd": ("200", True)}

default_cfgs = generate_default_cfgs({name: default_cfg("fc", "conv1") for name in _VARIANTS})


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> ResNet:
    depth, vd = _VARIANTS[variant]
    if depth == "200":
        args: dict[str, Any] = {"block": Bottleneck, "layers": (3, 12, 48, 3)}
    else:
        args = {"block": BasicBlock, "layers": _BASIC[depth]}
    if vd:
        args |= {"stem_width": 32, "stem_type": "deep", "avg_down": True}
    model = build_model_with_cfg(PaddleResNet, variant, pretrained, **(args | kwargs))
    return model if pretrained else init_like_paddle(model, "uniform")


@register_model
def paddle_resnet18(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """PaddleClas ResNet18: timm resnet18 plus the first block's projection shortcut."""
    return _create("paddle_resnet18", pretrained, **kwargs)


@register_model
def paddle_resnet18_vd(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """PaddleClas ResNet18_vd: timm resnet18d plus the first block's projection shortcut."""
    return _create("paddle_resnet18_vd", pretrained, **kwargs)


@register_model
def paddle_resnet34(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """PaddleClas ResNet34: timm resnet34 plus the first block's projection shortcut."""
    return _create("paddle_resnet34", pretrained, **kwargs)


@register_model
def paddle_resnet200_vd(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """PaddleClas ResNet200_vd: a vd ResNet with 3-12-48-3 bottleneck blocks (timm's resnet200d has 3-24-36-3)."""
    return _create("paddle_resnet200_vd", pretrained, **kwargs)


@register_model
def paddle_resnet34_vd(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """PaddleClas ResNet34_vd: timm resnet34d plus the first block's projection shortcut."""
    return _create("paddle_resnet34_vd", pretrained, **kwargs)


def resnet_rules(model: nn.Module) -> list[Rule]:
    """PaddleClas ResNet(_vd) names (``stem.i``, ``blocks.g.convK``, ``short``, ``fc``) onto a timm ResNet."""
    rules: list[Rule] = []
    if isinstance(model.conv1, nn.Sequential):  # deep (vd) stem: conv-bn-act x3, the last BN is bn1
        rules += conv_bn("stem.0", "conv1.0", "conv1.1") + conv_bn("stem.1", "conv1.3", "conv1.4")
        rules += conv_bn("stem.2", "conv1.6", "bn1")
    else:
        rules += conv_bn("stem.0", "conv1", "bn1")
    g = 0
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        for j, block in enumerate(stage):
            src, dst = f"blocks.{g}", f"{model_stage_name(model, stage)}.{j}"
            convs = 3 if hasattr(block, "conv3") else 2
            for k in range(convs):
                rules += conv_bn(f"{src}.conv{k}", f"{dst}.conv{k + 1}", f"{dst}.bn{k + 1}")
            if block.downsample is not None:
                i = 0 if isinstance(block.downsample[0], nn.Conv2d) else 1
                rules += conv_bn(f"{src}.short", f"{dst}.downsample.{i}", f"{dst}.downsample.{i + 1}")
            g += 1
    return rules + [Rule("fc", "fc", "linear", head=True)]


def model_stage_name(model: nn.Module, stage: nn.Module) -> str:
    return next(name for name, module in model.named_children() if module is stage)


# timm architecture -> rules. timm's own resnetNN / resnetNNd are exact for the bottleneck depths.
RULES = {name: resnet_rules for name in _VARIANTS} | {
    name: resnet_rules
    for d in ("50", "101", "152")
    for name in (f"resnet{d}", f"resnet{d}d")
}
# PaddleClas name -> timm name
ALIASES = {
    "ResNet18": "paddle_resnet18",
    "ResNet18_vd": "paddle_resnet18_vd",
    "ResNet34": "paddle_resnet34",
    "ResNet34_vd": "paddle_resnet34_vd",
    "ResNet50": "resnet50",
    "ResNet50_vd": "resnet50d",
    "ResNet101": "resnet101",
    "ResNet101_vd": "resnet101d",
    "ResNet152": "resnet152",
    "ResNet152_vd": "resnet152d",
    "ResNet200_vd": "paddle_resnet200_vd",
}
