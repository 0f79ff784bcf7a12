"""PaddleClas MobileNetV1 / V2 / V3 and PP-LCNet as timm networks, and their PaddleClas -> timm names.

timm's ``mobilenetv3_*``, ``mobilenetv1_*``, ``mobilenetv2_*`` and ``lcnet_*`` are other networks than
PaddleClas's of the same name, so each PaddleClas width gets a ``paddle_*`` variant built from timm's blocks:

- MobileNetV3: the first block has an expansion conv (timm's starts depthwise-separable); the squeeze-excite width
  is ``channels // 4`` (timm rounds to a multiple of 8) and its gate is ``clip(0.2 x + 0.5, 0, 1)`` (torch's hard
  sigmoid uses 1/6); widths scale as ``make_divisible(scale * width)`` for every layer; the 1280-wide head conv has
  no bias.
- MobileNetV1: ReLU (timm uses ReLU6) and widths ``int(scale * width)``.
- MobileNetV2: the first block has an expansion conv; widths ``int(scale * width)``.
- PP-LCNet: squeeze-excite width ``channels // 4``, gate slope 0.1666667 (Paddle's default), no head-conv bias.

PaddleClas's MobileNetV3 and PP-LCNet end in a dropout of mode ``downscale_in_infer``: training drops without
rescaling, inference multiplies by ``1 - p``. Conversion folds that factor into the classifier weights, so with
timm's usual dropout (rescaling in training) of the same ``p`` the network computes the same in both modes.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from timm.layers import make_divisible
from timm.models import build_model_with_cfg, generate_default_cfgs
from timm.models._efficientnet_blocks import SqueezeExcite
from timm.models._efficientnet_builder import decode_arch_def
from timm.models.efficientnet import EfficientNet
from timm.models.mobilenetv3 import MobileNetV3
from torch import nn

from ssld.models.paddle.common import PaddleHardSigmoid, default_cfg, register_variant
from ssld.models.paddle.convert import Rule
from ssld.models.paddle.init import init_like_paddle

# PaddleClas's dropout before the classifier (MobileNetV3, PP-LCNet), folded into the classifier on conversion.
HEAD_DROPOUT = 0.2


def _keep(channels: int) -> int:
    """Channel rounding that keeps the width given (the block strings already hold PaddleClas's widths)."""
    return channels


def _ratio(mid: int, inp: int) -> str:
    return repr(mid / inp)


def _decode(stages: list[list[str]]) -> list[list[dict[str, Any]]]:
    """timm block args of block strings. An expansion ratio is written as ``mid / in`` of PaddleClas's widths;
    timm's block computes ``make_divisible(in * ratio)``, which gives ``mid`` back when it is a multiple of 8."""
    return decode_arch_def(stages)


def _stages(rows: list[str], strides: list[int]) -> list[list[str]]:
    """Group block strings into stages, a new stage at each stride-2 block."""
    stages: list[list[str]] = []
    for row, stride in zip(rows, strides, strict=True):
        if not stages or stride == 2:
            stages.append([])
        stages[-1].append(row)
    return stages


# ---- MobileNetV3 ------------------------------------------------------------------------------------------------
# k, expansion width, out width, squeeze-excite, activation, stride (the network of Howard et al. 2019, Table 1/2)
_MNV3 = {
    "large": [
        (3, 16, 16, False, "relu", 1), (3, 64, 24, False, "relu", 2), (3, 72, 24, False, "relu", 1),
        (5, 72, 40, True, "relu", 2), (5, 120, 40, True, "relu", 1), (5, 120, 40, True, "relu", 1),
        (3, 240, 80, False, "hswish", 2), (3, 200, 80, False, "hswish", 1), (3, 184, 80, False, "hswish", 1),
        (3, 184, 80, False, "hswish", 1), (3, 480, 112, True, "hswish", 1), (3, 672, 112, True, "hswish", 1),
        (5, 672, 160, True, "hswish", 2), (5, 960, 160, True, "hswish", 1), (5, 960, 160, True, "hswish", 1),
    ],
    "small": [
        (3, 16, 16, True, "relu", 2), (3, 72, 24, False, "relu", 2), (3, 88, 24, False, "relu", 1),
        (5, 96, 40, True, "hswish", 2), (5, 240, 40, True, "hswish", 1), (5, 240, 40, True, "hswish", 1),
        (5, 120, 48, True, "hswish", 1), (5, 144, 48, True, "hswish", 1), (5, 288, 96, True, "hswish", 2),
        (5, 576, 96, True, "hswish", 1), (5, 576, 96, True, "hswish", 1),
    ],
}
_MNV3_SQUEEZE = {"large": 960, "small": 576}
_MNV3_SCALES = {"035": 0.35, "050": 0.5, "075": 0.75, "100": 1.0, "125": 1.25}


def _mnv3(variant: str, size: str, scale: float, pretrained: bool, **kwargs: Any) -> MobileNetV3:
    inp = make_divisible(16 * scale)
    stem = inp
    rows, strides = [], []
    for k, exp, out, se, act, stride in _MNV3[size]:
        mid, out_c = make_divisible(scale * exp), make_divisible(scale * out)
        rows.append(f"ir_r1_k{k}_s{stride}_e{_ratio(mid, inp)}_c{out_c}{'_se0.25' if se else ''}"
                    f"{'_nre' if act == 'relu' else ''}")
        strides.append(stride)
        inp = out_c
    stages = _stages(rows, strides) + [[f"cn_r1_k1_s1_c{make_divisible(scale * _MNV3_SQUEEZE[size])}"]]
    gate = partial(PaddleHardSigmoid, slope=0.2, offset=0.5)
    args = {
        "block_args": _decode(stages), "num_features": 1280, "stem_size": stem, "fix_stem": True, "head_bias": False,
        "round_chs_fn": _keep, "act_layer": nn.Hardswish, "norm_layer": nn.BatchNorm2d, "drop_rate": HEAD_DROPOUT,
        "se_layer": partial(SqueezeExcite, gate_layer=gate, force_act_layer=nn.ReLU, rd_round_fn=int),
    }
    model = build_model_with_cfg(MobileNetV3, variant, pretrained, **(args | kwargs))
    return model if pretrained else init_like_paddle(model, "xavier", bn_no_weight_decay=True,
                                                        linear_scale=1.0 - model.drop_rate)


# ---- MobileNetV1 ------------------------------------------------------------------------------------------------
# out width, stride of the 13 depthwise-separable blocks (Howard et al. 2017, Table 1)
_MNV1 = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
_MNV1_SCALES = {"025": 0.25, "050": 0.5, "075": 0.75, "100": 1.0}


def _mnv1(variant: str, scale: float, pretrained: bool, **kwargs: Any) -> EfficientNet:
    rows = [f"dsa_r1_k3_s{s}_c{int(c * scale)}" for c, s in _MNV1]
    args = {
        "block_args": _decode(_stages(rows, [s for _, s in _MNV1])), "num_features": 0, "stem_size": int(32 * scale),
        "fix_stem": True, "round_chs_fn": _keep, "act_layer": nn.ReLU, "norm_layer": nn.BatchNorm2d,
    }
    model = build_model_with_cfg(EfficientNet, variant, pretrained, **(args | kwargs))
    return model if pretrained else init_like_paddle(model, "kaiming", kaiming=lambda name, conv: True)


# ---- MobileNetV2 ------------------------------------------------------------------------------------------------
# expansion, out width, blocks, stride of each group (Sandler et al. 2018, Table 2)
_MNV2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
# x0.25 and x0.75 are left out: their expansion widths (e.g. 6 * 6 = 36) are not multiples of 8, which timm's
# inverted-residual block rounds to.
_MNV2_SCALES = {"050": 0.5, "100": 1.0, "150": 1.5, "200": 2.0}


def _mnv2(variant: str, scale: float, pretrained: bool, **kwargs: Any) -> EfficientNet:
    inp = int(32 * scale)
    stages = []
    for t, c, n, s in _MNV2:
        out = int(c * scale)
        stage = []
        for i in range(n):
            mid = round(inp * t)
            stage.append(f"ir_r1_k3_s{s if i == 0 else 1}_e{_ratio(mid, inp)}_c{out}")
            inp = out
        stages.append(stage)
    args = {
        "block_args": _decode(stages), "num_features": int(1280 * scale) if scale > 1.0 else 1280,
        "stem_size": int(32 * scale), "fix_stem": True, "round_chs_fn": _keep, "act_layer": nn.ReLU6,
        "norm_layer": nn.BatchNorm2d,
    }
    model = build_model_with_cfg(EfficientNet, variant, pretrained, **(args | kwargs))
    return model if pretrained else init_like_paddle(model, "xavier")


# ---- PP-LCNet ---------------------------------------------------------------------------------------------------
# kernel, out width, stride, squeeze-excite of the blocks of each stage (Cui et al. 2021, Table 1)
_LCNET = [
    [(3, 32, 1, False)],
    [(3, 64, 2, False), (3, 64, 1, False)],
    [(3, 128, 2, False), (3, 128, 1, False)],
    [(3, 256, 2, False)] + [(5, 256, 1, False)] * 5,
    [(5, 512, 2, True), (5, 512, 1, True)],
]
_LCNET_SCALES = {"025": 0.25, "035": 0.35, "050": 0.5, "075": 0.75, "100": 1.0, "150": 1.5, "200": 2.0, "250": 2.5}


def _lcnet(variant: str, scale: float, pretrained: bool, **kwargs: Any) -> MobileNetV3:
    stages = [
        [f"dsa_r1_k{k}_s{s}_c{make_divisible(c * scale)}{'_se0.25' if se else ''}" for k, c, s, se in stage]
        for stage in _LCNET
    ]
    gate = partial(PaddleHardSigmoid, slope=0.1666667, offset=0.5)
    args = {
        "block_args": _decode(stages), "num_features": 1280, "stem_size": make_divisible(16 * scale), "fix_stem": True,
        "head_bias": False, "round_chs_fn": _keep, "act_layer": nn.Hardswish, "norm_layer": nn.BatchNorm2d,
        "drop_rate": HEAD_DROPOUT,
        "se_layer": partial(SqueezeExcite, gate_layer=gate, force_act_layer=nn.ReLU, rd_round_fn=int),
    }
    model = build_model_with_cfg(MobileNetV3, variant, pretrained, **(args | kwargs))
    return model if pretrained else init_like_paddle(model, "xavier", kaiming=_lcnet_kaiming, bn_no_weight_decay=True,
                                                        linear_scale=1.0 - model.drop_rate)


def _lcnet_kaiming(name: str, conv: nn.Conv2d) -> bool:
    """PP-LCNet gives its stem and block convs KaimingNormal; the squeeze-excite and head convs keep the default."""
    return name != "conv_head" and ".se." not in f".{name}."


# ---- registration -----------------------------------------------------------------------------------------------
# timm name -> (builder, PaddleClas name)
VARIANTS: dict[str, tuple[Any, str]] = {}
for _size in ("large", "small"):
    for _tag, _scale in _MNV3_SCALES.items():
        VARIANTS[f"paddle_mobilenetv3_{_size}_{_tag}"] = (
            partial(_mnv3, size=_size, scale=_scale), f"MobileNetV3_{_size}_x{str(_scale).replace('.', '_')}"
        )
for _tag, _scale in _MNV1_SCALES.items():
    _paddle = "MobileNetV1" if _scale == 1.0 else f"MobileNetV1_x{str(_scale).replace('.', '_')}"
    VARIANTS[f"paddle_mobilenetv1_{_tag}"] = (partial(_mnv1, scale=_scale), _paddle)
for _tag, _scale in _MNV2_SCALES.items():
    _paddle = "MobileNetV2" if _scale == 1.0 else f"MobileNetV2_x{str(_scale).replace('.', '_')}"
    VARIANTS[f"paddle_mobilenetv2_{_tag}"] = (partial(_mnv2, scale=_scale), _paddle)
for _tag, _scale in _LCNET_SCALES.items():
    VARIANTS[f"paddle_lcnet_{_tag}"] = (partial(_lcnet, scale=_scale), f"PPLCNet_x{str(_scale).replace('.', '_')}")

default_cfgs = generate_default_cfgs(
    {name: default_cfg("classifier", "conv_stem", pool_size=(1, 1)) for name in VARIANTS}
)


for _name, (_builder, _paddle_name) in VARIANTS.items():
    register_variant(_name, partial(_builder, _name),
                     f"PaddleClas {_paddle_name}, faithful (see ssld.models.paddle.mobilenet).", __name__)


# ---- PaddleClas -> timm names -----------------------------------------------------------------------------------
def _cb(src_conv: str, src_bn: str, conv: str, bn: str) -> list[Rule]:
    return [Rule(src_conv, conv, "conv"), Rule(src_bn, bn, "bn")]


def _timm_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(f"blocks.{s}.{j}", b) for s, stage in enumerate(model.blocks) for j, b in enumerate(stage)]


def _se(src: str, dst: str) -> list[Rule]:
    return [Rule(f"{src}.conv1", f"{dst}.conv_reduce", "conv"), Rule(f"{src}.conv2", f"{dst}.conv_expand", "conv")]


def mobilenetv3_rules(model: nn.Module) -> list[Rule]:
    """PaddleClas MobileNetV3 (``conv``, ``blocks.i.{expand,bottleneck,linear}_conv``, ``mid_se``, ``last_*``)."""
    rules = _cb("conv.conv", "conv.bn", "conv_stem", "bn1")
    blocks = _timm_blocks(model)
    for i, (dst, block) in enumerate(blocks[:-1]):
        src = f"blocks.{i}"
        rules += _cb(f"{src}.expand_conv.conv", f"{src}.expand_conv.bn", f"{dst}.conv_pw", f"{dst}.bn1")
        rules += _cb(f"{src}.bottleneck_conv.conv", f"{src}.bottleneck_conv.bn", f"{dst}.conv_dw", f"{dst}.bn2")
        if not isinstance(block.se, nn.Identity):
            rules += _se(f"{src}.mid_se", f"{dst}.se")
        rules += _cb(f"{src}.linear_conv.conv", f"{src}.linear_conv.bn", f"{dst}.conv_pwl", f"{dst}.bn3")
    last = blocks[-1][0]
    rules += _cb("last_second_conv.conv", "last_second_conv.bn", f"{last}.conv", f"{last}.bn1")
    rules.append(Rule("last_conv", "conv_head", "conv"))
    return rules + [Rule("fc", "classifier", "linear", scale=1.0 - HEAD_DROPOUT, head=True)]


def mobilenetv1_rules(model: nn.Module) -> list[Rule]:
    """PaddleClas MobileNetV1 (``conv``, ``blocks.i.{depthwise,pointwise}_conv``, ``fc``)."""
    rules = _cb("conv.conv", "conv.bn", "conv_stem", "bn1")
    for i, (dst, _) in enumerate(_timm_blocks(model)):
        src = f"blocks.{i}"
        rules += _cb(f"{src}.depthwise_conv.conv", f"{src}.depthwise_conv.bn", f"{dst}.conv_dw", f"{dst}.bn1")
        rules += _cb(f"{src}.pointwise_conv.conv", f"{src}.pointwise_conv.bn", f"{dst}.conv_pw", f"{dst}.bn2")
    return rules + [Rule("fc", "classifier", "linear", head=True)]


def mobilenetv2_rules(model: nn.Module) -> list[Rule]:
    """PaddleClas MobileNetV2 (``conv1``, ``conv2.._first_block / conv2.conv2_k``, ``conv9``, ``out``)."""
    rules = _cb("conv1._conv", "conv1._batch_norm", "conv_stem", "bn1")
    for s, stage in enumerate(model.blocks):
        group = f"conv{s + 2}"
        for j in range(len(stage)):
            src, dst = (f"{group}._first_block" if j == 0 else f"{group}.{group}_{j + 1}"), f"blocks.{s}.{j}"
            for part, conv, bn in (("_expand_conv", "conv_pw", "bn1"), ("_bottleneck_conv", "conv_dw", "bn2"),
                                   ("_linear_conv", "conv_pwl", "bn3")):
                rules += _cb(f"{src}.{part}._conv", f"{src}.{part}._batch_norm", f"{dst}.{conv}", f"{dst}.{bn}")
    rules += _cb("conv9._conv", "conv9._batch_norm", "conv_head", "bn2")
    return rules + [Rule("out", "classifier", "linear", head=True)]


def lcnet_rules(model: nn.Module) -> list[Rule]:
    """PaddleClas PP-LCNet (``conv1``, ``blocksN.j.{dw_conv,se,pw_conv}``, ``last_conv``, ``fc``)."""
    rules = _cb("conv1.conv", "conv1.bn", "conv_stem", "bn1")
    for s, stage in enumerate(model.blocks):
        for j, block in enumerate(stage):
            src, dst = f"blocks{s + 2}.{j}", f"blocks.{s}.{j}"
            rules += _cb(f"{src}.dw_conv.conv", f"{src}.dw_conv.bn", f"{dst}.conv_dw", f"{dst}.bn1")
            if not isinstance(block.se, nn.Identity):
                rules += _se(f"{src}.se", f"{dst}.se")
            rules += _cb(f"{src}.pw_conv.conv", f"{src}.pw_conv.bn", f"{dst}.conv_pw", f"{dst}.bn2")
    rules.append(Rule("last_conv", "conv_head", "conv"))
    return rules + [Rule("fc", "classifier", "linear", scale=1.0 - HEAD_DROPOUT, head=True)]


_FAMILY_RULES = {
    "paddle_mobilenetv3": mobilenetv3_rules,
    "paddle_mobilenetv1": mobilenetv1_rules,
    "paddle_mobilenetv2": mobilenetv2_rules,
    "paddle_lcnet": lcnet_rules,
}
RULES = {name: next(rules for family, rules in _FAMILY_RULES.items() if name.startswith(family + "_"))
         for name in VARIANTS}
# PaddleClas name -> timm name
ALIASES = {paddle: name for name, (_, paddle) in VARIANTS.items()}
