"""PaddleClas HRNet_W*_C in timm: ``paddle_hrnet_w18`` ... ``paddle_hrnet_w64``.

timm's classification HRNet is PaddleClas's network but for four biases: the three strided convs of the head that
merge the branches and its last 1x1 conv carry a bias in timm, none in PaddleClas (its ``ConvBNLayer`` has no
bias, the batch norm after it holds the shift). ``paddle_hrnet_w*`` are timm's networks without those biases, so
PaddleClas's ``.pdparams`` (its SSLD weights among them) load exactly, and the parameter names map below.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from timm.models.hrnet import HighResolutionNet, _create_hrnet
from torch import nn

from ssld.models.paddle.common import register_variant
from ssld.models.paddle.convert import Rule, conv_bn

WIDTHS = (18, 30, 32, 40, 44, 48, 64)


def _create(width: int, pretrained: bool = False, **kwargs: Any) -> HighResolutionNet:
    if pretrained:
        raise ValueError("paddle_hrnet_w* has no timm weights: load PaddleClas's .pdparams")
    model = _create_hrnet(f"hrnet_w{width}", False, **kwargs)
    for conv in [m[0] for m in model.downsamp_modules] + [model.final_layer[0]]:
        conv.bias = None  # PaddleClas's ConvBNLayer: no bias before the batch norm
    model.pretrained_cfg = {**model.pretrained_cfg, "architecture": f"paddle_hrnet_w{width}", "url": "",
                            "hf_hub_id": None}
    return model


for _width in WIDTHS:
    register_variant(f"paddle_hrnet_w{_width}", partial(_create, _width),
                     f"PaddleClas HRNet_W{_width}_C, faithful (see ssld.models.paddle.hrnet).", __name__)


def _bottleneck(src: str, dst: str, block: nn.Module) -> list[Rule]:
    rules = [r for k in (1, 2, 3) for r in conv_bn(f"{src}.conv{k}", f"{dst}.conv{k}", f"{dst}.bn{k}")]
    if block.downsample is not None:
        rules += conv_bn(f"{src}.conv_down", f"{dst}.downsample.0", f"{dst}.downsample.1")
    return rules


def _stage(src: str, dst: str, stage: nn.Module) -> list[Rule]:
    """One PaddleClas ``Stage`` (``stage_func_list``) onto timm's ``stage<n>``: branches, then the fuse layers in
    PaddleClas's order (output i, input j; j > i: one 1x1 conv, j < i: i - j strided 3x3 convs)."""
    rules = []
    for m, module in enumerate(stage):
        s, d = f"{src}.stage_func_list.{m}", f"{dst}.{m}"
        for b, branch in enumerate(module.branches):
            for k in range(len(branch)):
                for c in (1, 2):
                    rules += conv_bn(f"{s}.basic_block_list.{b}.{k}.conv{c}", f"{d}.branches.{b}.{k}.conv{c}",
                                 f"{d}.branches.{b}.{k}.bn{c}")
        n, idx = len(module.branches), 0
        for i in range(n):
            for j in range(n):
                if j > i:
                    rules += conv_bn(f"{s}.fuse_func.residual_func_list.{idx}", f"{d}.fuse_layers.{i}.{j}.0",
                                 f"{d}.fuse_layers.{i}.{j}.1")
                    idx += 1
                for k in range(i - j if j < i else 0):
                    rules += conv_bn(f"{s}.fuse_func.residual_func_list.{idx}", f"{d}.fuse_layers.{i}.{j}.{k}.0",
                                 f"{d}.fuse_layers.{i}.{j}.{k}.1")
                    idx += 1
    return rules


def hrnet_rules(model: nn.Module) -> list[Rule]:
    """PaddleClas HRNet_W*_C onto ``paddle_hrnet_w*``."""
    rules = conv_bn("conv_layer1_1", "conv1", "bn1") + conv_bn("conv_layer1_2", "conv2", "bn2")
    for i, block in enumerate(model.layer1):
        rules += _bottleneck(f"layer1.{i}", f"layer1.{i}", block)
    rules += conv_bn("conv_tr1_1", "transition1.0.0", "transition1.0.1")
    rules += conv_bn("conv_tr1_2", "transition1.1.0.0", "transition1.1.0.1")
    rules += conv_bn("conv_tr2", "transition2.2.0.0", "transition2.2.0.1")
    rules += conv_bn("conv_tr3", "transition3.3.0.0", "transition3.3.0.1")
    for n in (2, 3, 4):
        rules += _stage(f"st{n}", f"stage{n}", getattr(model, f"stage{n}"))
    for i, incre in enumerate(model.incre_modules):
        rules += _bottleneck(f"last_cls.func_list.{i}", f"incre_modules.{i}.0", incre[0])
    for i in range(len(model.downsamp_modules)):
        rules += conv_bn(f"cls_head_conv_list.{i}", f"downsamp_modules.{i}.0", f"downsamp_modules.{i}.1")
    rules += conv_bn("conv_last", "final_layer.0", "final_layer.1")
    return rules + [Rule("fc", "classifier", "linear", head=True)]


RULES = {f"paddle_hrnet_w{w}": hrnet_rules for w in WIDTHS}
# PaddleClas name -> timm name
ALIASES = {f"HRNet_W{w}_C": f"paddle_hrnet_w{w}" for w in WIDTHS}
