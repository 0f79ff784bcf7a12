"""PaddleClas ResNeXt and Res2Net (vb and vd) in timm, and their PaddleClas -> timm parameter names.

ResNeXt: timm's ``resnext50_32x4d``, ``resnext50d_32x4d`` (vd), ``resnext101_32x4d`` and ``resnext101_64x4d``
compute what PaddleClas's do, and so do timm's ``resnext101_32x{8,16,32}d`` and PaddleClas's
``ResNeXt101_32x*d_wsl`` (the reference's ResNet teacher; PaddleClas's port of the torch models, named otherwise). Res2Net differs twice: PaddleClas average-pools the last split of a stride-2 block
leaving the padding out of the average (Paddle's ``exclusive`` pool) where timm counts it, and treats the first
block of stage 1 (stride 1, but with a projection shortcut) like any stride-1 block (hierarchical split sums, last
split passed through) where timm treats it like a stride-2 block. ``paddle_res2net*`` are timm's Res2Nets with both
changed, and ``paddle_res2net200_vd_26w_4s`` adds the 200-layer depth timm does not define.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from timm.models import build_model_with_cfg, generate_default_cfgs
from timm.models.res2net import Bottle2neck
from timm.models.resnet import ResNet
from torch import nn

from ssld.models.paddle.common import default_cfg, register_variant
from ssld.models.paddle.convert import Rule
from ssld.models.paddle.init import init_like_paddle

_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 200: (3, 12, 48, 3)}
_VARIANTS = {
    "paddle_res2net50_26w_4s": (50, False),
    "paddle_res2net50_vd_26w_4s": (50, True),
    "paddle_res2net101_vd_26w_4s": (101, True),
    "paddle_res2net200_vd_26w_4s": (200, True),
}
default_cfgs = generate_default_cfgs({name: default_cfg("fc", "conv1") for name in _VARIANTS})


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> ResNet:
    depth, vd = _VARIANTS[variant]
    args: dict[str, Any] = {"block": Bottle2neck, "layers": _DEPTHS[depth], "base_width": 26,
                            "block_args": {"scale": 4}}
    if vd:
        args |= {"stem_type": "deep", "avg_down": True, "stem_width": 32}
    model = build_model_with_cfg(ResNet, variant, pretrained, **(args | kwargs))
    for module in model.modules():
        if not isinstance(module, Bottle2neck) or module.pool is None:
            continue
        if module.convs[0].stride[0] == 1:  # the first block of stage 1: Paddle treats it as any stride-1 block
            module.is_first, module.pool = False, None
        else:
            pool = module.pool
            module.pool = nn.AvgPool2d(pool.kernel_size, pool.stride, pool.padding, count_include_pad=False)
    return model if pretrained else init_like_paddle(model, "uniform")


for _name in _VARIANTS:
    register_variant(_name, partial(_create, _name), "PaddleClas Res2Net, faithful (see ssld.models.paddle.resnext).",
                     __name__)


def _cb(src: str, conv: str, bn: str) -> list[Rule]:
    return [Rule(f"{src}._conv", conv, "conv"), Rule(f"{src}._batch_norm", bn, "bn")]


def _stage_letter(depth_is_deep: bool, stage: int, i: int) -> str:
    """PaddleClas's Res2Net branch names: ``res<stage+2><letter>``, ``b1, b2...`` in the long stage of 101+."""
    if depth_is_deep and stage == 2:
        return f"res{stage + 2}a" if i == 0 else f"res{stage + 2}b{i}"
    return f"res{stage + 2}{chr(97 + i)}"


def model_zoo_resnet_rules(model: nn.Module, plain_stem: str) -> list[Rule]:
    """PaddleClas's model-zoo ResNet naming (ResNeXt, Res2Net): ``conv1_1..3`` or ``<plain_stem>``,
    ``bb_<stage>_<i>.conv0/conv1/conv2/short`` (Res2Net: ``<res..>_branch2b_<k>`` splits), classifier ``out``."""
    if isinstance(model.conv1, nn.Sequential):
        rules = _cb("conv1_1", "conv1.0", "conv1.1") + _cb("conv1_2", "conv1.3", "conv1.4")
        rules += _cb("conv1_3", "conv1.6", "bn1")
    else:
        rules = _cb(plain_stem, "conv1", "bn1")
    stages = (model.layer1, model.layer2, model.layer3, model.layer4)
    deep = len(model.layer3) > 6
    for s, stage in enumerate(stages):
        for i, block in enumerate(stage):
            src, dst = f"bb_{s}_{i}", f"layer{s + 1}.{i}"
            rules += _cb(f"{src}.conv0", f"{dst}.conv1", f"{dst}.bn1")
            if isinstance(block, Bottle2neck):
                for k in range(len(block.convs)):
                    branch = f"{src}.{_stage_letter(deep, s, i)}_branch2b_{k + 1}"
                    rules += _cb(branch, f"{dst}.convs.{k}", f"{dst}.bns.{k}")
            else:
                rules += _cb(f"{src}.conv1", f"{dst}.conv2", f"{dst}.bn2")
            rules += _cb(f"{src}.conv2", f"{dst}.conv3", f"{dst}.bn3")
            if block.downsample is not None:
                j = 0 if isinstance(block.downsample[0], nn.Conv2d) else 1
                rules += _cb(f"{src}.short", f"{dst}.downsample.{j}", f"{dst}.downsample.{j + 1}")
    return rules + [Rule("out", "fc", "linear", head=True)]


def resnext_rules(model: nn.Module) -> list[Rule]:
    """PaddleClas ResNeXt / ResNeXt_vd onto timm's resnext."""
    return model_zoo_resnet_rules(model, "conv")


def res2net_rules(model: nn.Module) -> list[Rule]:
    """PaddleClas Res2Net / Res2Net_vd onto ``paddle_res2net*``."""
    return model_zoo_resnet_rules(model, "conv1")


def wsl_rules(model: nn.Module) -> list[Rule]:
    """PaddleClas ResNeXt101_32x{8,16,32}d_wsl (a port of the torch models: ``_conv<stage>_<i>._conv0/1/2``,
    ``_short._conv``, stem ``_conv_stem``, classifier ``_out``) onto timm's resnext101_32x*d."""
    rules = [Rule("_conv_stem._conv", "conv1", "conv"), Rule("_conv_stem._bn", "bn1", "bn")]
    for s, stage in enumerate((model.layer1, model.layer2, model.layer3, model.layer4)):
        for i, block in enumerate(stage):
            src, dst = f"_conv{s + 1}_{i}", f"layer{s + 1}.{i}"
            for k in range(3):
                rules += [Rule(f"{src}._conv{k}._conv", f"{dst}.conv{k + 1}", "conv"),
                          Rule(f"{src}._conv{k}._bn", f"{dst}.bn{k + 1}", "bn")]
            if block.downsample is not None:
                rules += [Rule(f"{src}._short._conv._conv", f"{dst}.downsample.0", "conv"),
                          Rule(f"{src}._short._conv._bn", f"{dst}.downsample.1", "bn")]
    return rules + [Rule("_out", "fc", "linear", head=True)]


_WSL = ("8", "16", "32")
RULES = {name: res2net_rules for name in _VARIANTS} | {
    name: resnext_rules for name in ("resnext50_32x4d", "resnext50d_32x4d", "resnext101_32x4d", "resnext101_64x4d")
} | {f"resnext101_32x{w}d": wsl_rules for w in _WSL}
# PaddleClas name -> timm name
ALIASES = {
    "Res2Net50_26w_4s": "paddle_res2net50_26w_4s",
    "Res2Net50_vd_26w_4s": "paddle_res2net50_vd_26w_4s",
    "Res2Net101_vd_26w_4s": "paddle_res2net101_vd_26w_4s",
    "Res2Net200_vd_26w_4s": "paddle_res2net200_vd_26w_4s",
    "ResNeXt50_32x4d": "resnext50_32x4d",
    "ResNeXt50_vd_32x4d": "resnext50d_32x4d",
    "ResNeXt101_32x4d": "resnext101_32x4d",
    "ResNeXt101_64x4d": "resnext101_64x4d",
    **{f"ResNeXt101_32x{w}d_wsl": f"resnext101_32x{w}d.fb_wsl_ig1b_ft_in1k" for w in _WSL},
}
