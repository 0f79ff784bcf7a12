"""PaddleClas model arguments (``dropout_prob``, ``class_expand``, ``stride_list``...) on timm models.

A PaddleClas config passes its model constructor extra arguments next to ``name``; the schema keeps them in
``ModelSpec.paddle_kwargs``. Each is honoured where the timm model can do exactly what PaddleClas's does, and
refused in one line naming the key and value otherwise (never dropped):

- ``dropout_prob`` (PP-LCNet, MobileNetV3): dropout before the classifier, timm's ``drop_rate`` (same place: after
  the last 1x1 conv). ``None`` means no dropout.
- ``class_expand`` (PP-LCNet, MobileNetV3): width of the last 1x1 conv; the head is rebuilt at that width.
- ``use_last_conv: false`` (PP-LCNet): no last 1x1 conv (and, as in PaddleClas, no dropout); the classifier reads
  the pooled block features.
- ``stride_list`` (PP-LCNet, ResNet): 5 strides, an int or ``[h, w]`` each. PP-LCNet: the stem conv and the first
  depthwise conv of blocks3..blocks6; ResNet: the stem's first conv, the max pool and the first block of stages
  2..4 (for ``_vd`` models the shortcut's average pool too, padded like Paddle's ``SAME`` pool).
- ``lr_mult_list`` (PP-LCNet: 6 values, ResNet: 5): per-stage learning-rate multipliers, PaddleClas's
  ``ParamAttr(learning_rate=...)``: stored on each parameter as ``lr_mult`` (the optimizer multiplies its group
  ``lr_scale`` by it); the last conv and the classifier keep 1.0, as in PaddleClas.

- ``return_patterns`` / ``return_stages`` (PP-LCNet: ``blocks2``..``blocks6``; ResNet: ``blocks[i]``, the i-th
  residual block counted over all stages): inside a DistillationModel the model's output becomes PaddleClas's dict
  ``{"logits": ..., "<pattern>": feature map}`` for the losses (``key: blocks4``); alone (eval, export, predict)
  it returns its logits. ``return_stages: true`` means the model's stage outputs (PaddleClas's
  ``MODEL_STAGES_PATTERN``), an int or a list picks some of them; given both, ``return_patterns`` wins, as in
  PaddleClas.

On timm's networks of PaddleClas's other designs (:mod:`ssld.models.paddle.timm_names`):

- ``use_fused_attn`` / ``use_fused_linear`` (Swin, MobileNetV4 hybrid...): Paddle's choice of fused kernels, the
  same maths; accepted on any model and without effect (timm picks torch's fused attention where it can).
- ``layer_scale_init_value`` and ``head_init_scale`` (ConvNeXt): timm's ``ls_init_value`` and ``head_init_scale``.
- ``override_params`` (TinyNet, EfficientNet): ``batch_norm_momentum`` m (Paddle's) is torch's 1 - m,
  ``batch_norm_epsilon`` the norm's epsilon, ``drop_connect_rate`` timm's ``drop_path_rate``; ``depth_trunc`` must
  be the one timm's network uses (``round`` for TinyNet, ``ceil`` for EfficientNet). Other keys are refused. A
  PaddleClas ``TinyNet_*`` name needs ``depth_trunc: round`` (its configs give it): PaddleClas's default rounds
  depths up, a deeper network than timm's.

Out of scope, refused as not supported: other feature patterns (``avg_pool``...), and the feature-distillation
connectors and GeneralRecognition models that use them.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ssld.config.section import _coerce_number

# model names PaddleClas builds that are not classifiers: feature connectors and metric-learning models
UNSUPPORTED_MODELS: dict[str, str] = {
    "AttentionModel": "AFD feature-distillation connector",
    "LinearTransformTeacher": "AFD feature-distillation connector",
    "LinearTransformStudent": "AFD feature-distillation connector",
    "RecModel": "GeneralRecognition metric-learning model",
}

_NOT_SUPPORTED: dict[str, str] = {
    "scale": "the model name gives the width (e.g. PPLCNet_x1_0)",
    "pretrained_list": "a model made of sub-models (AFD's AttentionModel) is a feature-distillation connector",
    "freeze_params_list": "a model made of sub-models (AFD's AttentionModel) is a feature-distillation connector",
    "models": "a model made of sub-models (AFD's AttentionModel) is a feature-distillation connector",
}
_GENERAL_RECOGNITION = {"infer_output_key", "infer_add_softmax", "Backbone", "BackboneStopLayer", "Neck", "Head",
                        "is_rec"}


class PaddleKwargError(ValueError):
    """A PaddleClas model argument ssld refuses; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def family(timm_name: str) -> str | None:
    """``lcnet``, ``mobilenetv3`` or ``resnet`` for timm's and ssld's faithful (``paddle_*``) PP-LCNet,
    MobileNetV3 and ResNet / ResNet-D (PaddleClas ResNet / ResNet_vd) networks, ``convnext`` and ``efficientnet``
    (EfficientNet B0-B7, TinyNet) for timm's, else None."""
    arch = timm_name.split(".")[0]
    if re.fullmatch(r"(paddle_)?lcnet_\d+", arch):
        return "lcnet"
    if re.fullmatch(r"(paddle_)?mobilenetv3_\w+", arch):
        return "mobilenetv3"
    if re.fullmatch(r"(paddle_)?resnet\d+(d|_vd)?", arch):
        return "resnet"
    if re.fullmatch(r"convnext_\w+", arch):
        return "convnext"
    if re.fullmatch(r"(tf_)?efficientnet_b\d|tinynet_[a-e]", arch):
        return "efficientnet"
    return None


_SUPPORTED = {
    "dropout_prob": ("lcnet", "mobilenetv3"),
    "class_expand": ("lcnet", "mobilenetv3"),
    "use_last_conv": ("lcnet",),
    "stride_list": ("lcnet", "resnet"),
    "lr_mult_list": ("lcnet", "resnet"),
    "return_patterns": ("lcnet", "resnet"),
    "return_stages": ("lcnet", "resnet"),
    "layer_scale_init_value": ("convnext",),
    "head_init_scale": ("convnext",),
    "override_params": ("efficientnet",),
}
_ANY_MODEL = {"use_fused_attn", "use_fused_linear"}  # kernel choices: accepted on every model, no effect
# override_params keys (PaddleClas's EfficientNet GlobalParams) and the depth rounding timm's networks use
_OVERRIDES = {"batch_norm_momentum", "batch_norm_epsilon", "drop_connect_rate", "depth_trunc"}
_DEPTH_TRUNC = {"tinynet": "round", "efficientnet": "ceil"}
# residual blocks per stage of PaddleClas's ResNets (and ssld's faithful paddle_resnet*), by depth
_RESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3),
                  200: (3, 12, 48, 3)}
_TIMM_RESNET200 = (3, 24, 36, 3)  # timm's resnet200 / resnet200d stack their blocks otherwise
_LCNET_PATTERNS = ["blocks2", "blocks3", "blocks4", "blocks5", "blocks6"]
_LR_MULT_LEN = {"lcnet": 6, "resnet": 5}


def _refuse(key: str, value: Any, why: str) -> PaddleKwargError:
    return PaddleKwargError(key, f"{value!r} is not supported ({why})")


def _strides(value: Any) -> list[tuple[int, int]]:
    if not isinstance(value, (list, tuple)) or len(value) != 5:
        raise PaddleKwargError("stride_list", f"must be a list of 5 strides, got {value!r}")
    out = []
    for s in value:
        pair = [s, s] if isinstance(s, int) else s
        if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in pair)):
            raise PaddleKwargError("stride_list", f"each stride must be a positive int or [h, w], got {s!r} in "
                                                  f"{value!r}")
        out.append((pair[0], pair[1]))
    return out


def _lr_mults(value: Any, fam: str) -> list[float]:
    n = _LR_MULT_LEN[fam]
    if isinstance(value, str):  # PaddleClas accepts the list written as a string
        value = [x.strip() for x in value.strip("[]").split(",")]
    try:
        mults = [float(x) for x in value]
    except (TypeError, ValueError):
        raise PaddleKwargError("lr_mult_list", f"must be a list of {n} numbers, got {value!r}") from None
    if len(mults) != n or any(not math.isfinite(m) or m < 0 for m in mults):
        raise PaddleKwargError("lr_mult_list", f"must be {n} numbers >= 0 for this model, got {value!r}")
    return mults


def _number(value: Any) -> float | None:
    """A finite number, also written as a string (YAML reads ``1e-6`` as one), else None."""
    value = _coerce_number(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _overrides(value: Any, timm_name: str) -> dict[str, Any]:
    """timm's keyword arguments for PaddleClas's EfficientNet ``override_params``."""
    if not isinstance(value, dict):
        raise PaddleKwargError("override_params", f"must be a mapping, got {value!r}")
    out: dict[str, Any] = {}
    for key, v in value.items():
        where = f"override_params.{key}"
        if key not in _OVERRIDES:
            raise _refuse(where, v, f"ssld maps {', '.join(sorted(_OVERRIDES))}")
        if key == "depth_trunc":
            want = _DEPTH_TRUNC["tinynet" if timm_name.startswith("tinynet") else "efficientnet"]
            if v != want:
                raise _refuse(where, v, f"timm's {timm_name.split('.')[0]} rounds depths by {want!r}")
            continue
        number = _number(v)
        if number is None:
            raise PaddleKwargError(where, f"must be a number, got {v!r}")
        if key == "batch_norm_momentum":
            if not 0 <= number <= 1:
                raise PaddleKwargError(where, f"must be in [0, 1], got {v!r}")
            out["bn_momentum"] = 1.0 - number  # Paddle keeps m of the old average, torch takes m of the new batch
        elif key == "batch_norm_epsilon":
            out["bn_eps"] = number
        else:
            if not 0 <= number < 1:
                raise PaddleKwargError(where, f"must be in [0, 1), got {v!r}")
            out["drop_path_rate"] = number
    return out


def check(model_name: str, timm_name: str, kwargs: dict[str, Any]) -> None:
    """Raise :class:`PaddleKwargError` for the first argument that cannot be honoured on ``timm_name``."""
    fam = family(timm_name)
    if model_name.startswith("TinyNet_") and (kwargs.get("override_params") or {}).get("depth_trunc") != "round":
        raise PaddleKwargError("override_params.depth_trunc", f"{model_name} without depth_trunc: round is PaddleClas's "
                               "TinyNet with depths rounded up, which timm does not build: add override_params: "
                               "{depth_trunc: round} (as PaddleClas's TinyNet configs do), or name timm's "
                               f"{timm_name}")
    for key, value in kwargs.items():
        if key in _ANY_MODEL:
            if not isinstance(value, bool):
                raise PaddleKwargError(key, f"must be true or false, got {value!r}")
            continue
        if key in _GENERAL_RECOGNITION:
            raise _refuse(key, value, "GeneralRecognition's metric-learning models are not implemented")
        if key in _NOT_SUPPORTED:
            raise _refuse(key, value, _NOT_SUPPORTED[key])
        if key not in _SUPPORTED:
            raise _refuse(key, value, "a PaddleClas connector argument; feature distillation is not implemented")
        if fam not in _SUPPORTED[key]:
            raise _refuse(key, value, f"ssld honours it on {', '.join(_SUPPORTED[key])} models only, and "
                                      f"{model_name} is {timm_name}")
        if key == "dropout_prob" and value is not None and not (
                isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1):
            raise PaddleKwargError(key, f"must be a probability in [0, 1) or null, got {value!r}")
        if key == "class_expand" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise PaddleKwargError(key, f"must be a positive int, got {value!r}")
        if key == "use_last_conv" and not isinstance(value, bool):
            raise PaddleKwargError(key, f"must be true or false, got {value!r}")
        if key in ("layer_scale_init_value", "head_init_scale") and _number(value) is None:
            raise PaddleKwargError(key, f"must be a number, got {value!r}")
        if key == "override_params":
            _overrides(value, timm_name)
        if key == "stride_list":
            _strides(value)
        if key == "lr_mult_list":
            _lr_mults(value, fam or "")
    return_names(timm_name, kwargs)


def _stage_patterns(timm_name: str, fam: str) -> tuple[list[str], list[str]]:
    """(every pattern ssld can return, the stage-output patterns ``return_stages`` picks from)."""
    if fam == "lcnet":
        return _LCNET_PATTERNS, _LCNET_PATTERNS
    depth = int(re.search(r"resnet(\d+)", timm_name).group(1))  # type: ignore[union-attr]
    counts = _TIMM_RESNET200 if depth == 200 and not timm_name.startswith("paddle_") else _RESNET_BLOCKS.get(depth)
    if counts is None:
        return [], []
    ends = [sum(counts[:i + 1]) - 1 for i in range(len(counts))]
    return [f"blocks[{i}]" for i in range(sum(counts))], [f"blocks[{i}]" for i in ends]


def return_names(timm_name: str, kwargs: dict[str, Any]) -> list[str]:
    """The feature outputs ``return_patterns``/``return_stages`` ask for (PaddleClas's precedence); refuses a
    pattern ssld cannot return with :class:`PaddleKwargError`."""
    patterns, stages = kwargs.get("return_patterns"), kwargs.get("return_stages")
    if not patterns and not stages:
        return []
    fam = family(timm_name) or ""
    allowed, stage_list = _stage_patterns(timm_name, fam)
    if patterns:
        if isinstance(patterns, str):
            patterns = [patterns]
        if not isinstance(patterns, list) or not all(isinstance(x, str) for x in patterns):
            raise PaddleKwargError("return_patterns", f"must be a list of layer names, got {patterns!r}")
        bad = [x for x in patterns if x not in allowed]
        if bad:
            shown = ", ".join(allowed[:6]) + (", ..." if len(allowed) > 6 else "")
            raise _refuse("return_patterns", bad[0] if len(bad) == 1 else bad,
                          f"ssld returns these layers of {timm_name}: {shown}")
        return list(dict.fromkeys(patterns))
    if stages is True:
        return list(stage_list)
    picks = [stages] if isinstance(stages, int) and not isinstance(stages, bool) else stages
    if not isinstance(picks, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in picks):
        raise PaddleKwargError("return_stages", f"must be true, a stage index or a list of them, got {stages!r}")
    # PaddleClas ignores indices outside the stage list (with a warning); ssld refuses them
    if any(not 0 <= i < len(stage_list) for i in picks):
        raise PaddleKwargError("return_stages", f"stage indices are 0..{len(stage_list) - 1}, got {stages!r}")
    return [stage_list[i] for i in picks]


def unsupported_model(name: str) -> str | None:
    """The reason a PaddleClas model name is refused as not supported, or None."""
    return UNSUPPORTED_MODELS.get(name)


def timm_kwargs(kwargs: dict[str, Any], timm_name: str = "", model_name: str = "") -> dict[str, Any]:
    """The arguments that go to ``timm.create_model`` (``dropout_prob`` -> ``drop_rate``, ConvNeXt's layer scale,
    EfficientNet's ``override_params``). PaddleClas's ``EfficientNetB*`` keep batch-norm statistics with
    momentum 0.99 (torch's 0.01) unless ``override_params`` says otherwise."""
    out: dict[str, Any] = {}
    if model_name.startswith("EfficientNetB"):
        out["bn_momentum"] = 0.01
    if "dropout_prob" in kwargs:
        out["drop_rate"] = float(kwargs["dropout_prob"] or 0.0)
    if "layer_scale_init_value" in kwargs:
        out["ls_init_value"] = _number(kwargs["layer_scale_init_value"])
    if "head_init_scale" in kwargs:
        out["head_init_scale"] = _number(kwargs["head_init_scale"])
    if "override_params" in kwargs:
        out.update(_overrides(kwargs["override_params"], timm_name))
    return out


def apply(model: nn.Module, timm_name: str, kwargs: dict[str, Any]) -> nn.Module:
    """The arguments that change a built timm model in place (head width, strides, lr multipliers, feature
    outputs)."""
    fam = family(timm_name)
    names = return_names(timm_name, kwargs)
    if names:  # located before stride changes: PP-LCNet stages are found by their default strides
        _add_taps(model, {n: _pattern_module(model, fam or "", n) for n in names})
    if fam in ("lcnet", "mobilenetv3"):
        _mnv3_head(model, kwargs.get("class_expand"), kwargs.get("use_last_conv", True))
    if "lr_mult_list" in kwargs:  # before stride_list: the lcnet stages are found by their default strides
        assert fam is not None  # check() refused other families
        _set_lr_mults(model, _stage_prefixes(model, fam), _lr_mults(kwargs["lr_mult_list"], fam))
    if "stride_list" in kwargs:
        strides = _strides(kwargs["stride_list"])
        (_lcnet_strides if fam == "lcnet" else _resnet_strides)(model, strides)
    return model


def _mnv3_head(model: nn.Module, class_expand: int | None, use_last_conv: bool) -> None:
    """Rebuild timm's MobileNetV3 head: the last 1x1 conv at ``class_expand`` channels, or none at all."""
    if class_expand is None and use_last_conv:
        return
    num_classes = model.num_classes
    if not use_last_conv:
        model.conv_head, model.norm_head, model.act2 = nn.Identity(), nn.Identity(), nn.Identity()
        model.drop_rate = 0.0  # PaddleClas's dropout sits behind the last conv and goes with it
        width = model.num_features  # the last block's channels
    else:
        old = model.conv_head
        model.conv_head = nn.Conv2d(old.in_channels, class_expand, 1, bias=old.bias is not None)
        width = class_expand
    model.head_hidden_size = width
    model.classifier = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()


def _set_stride(conv: nn.Conv2d, stride: tuple[int, int]) -> None:
    conv.stride = stride


def _lcnet_stages(model: nn.Module) -> list[tuple[str, int]]:
    """(parameter-name prefix, PaddleClas stage) of each block: stage 1 is blocks2, and each of blocks3..blocks6
    starts at a stride-2 block. Found by stride, so timm's 6-stage ``lcnet_*`` (blocks5 split in two) and ssld's
    5-stage ``paddle_lcnet_*`` both map; call before any stride changes."""
    out, stage = [], 1
    for s, group in enumerate(model.blocks):
        for j, block in enumerate(group):
            if tuple(block.conv_dw.stride) != (1, 1):
                stage += 1
            out.append((f"blocks.{s}.{j}.", stage))
    if stage != 5:
        raise ValueError(f"expected 4 stride-2 blocks in a PP-LCNet, found {stage - 1}")
    return out


def _lcnet_strides(model: nn.Module, strides: list[tuple[int, int]]) -> None:
    """PP-LCNet: the stem conv, then the first depthwise conv of blocks3..blocks6."""
    starts = [model.get_submodule(prefix.rstrip(".")) for prefix, stage in _lcnet_stages(model)]
    firsts = [b for b in starts if tuple(b.conv_dw.stride) != (1, 1)]
    _set_stride(model.conv_stem, strides[0])
    for block, stride in zip(firsts, strides[1:], strict=True):
        _set_stride(block.conv_dw, stride)


class SamePadAvgPool(nn.Module):
    """Paddle's ``AvgPool2D(2, stride, padding='SAME', ceil_mode=True)`` (exclusive): the window is padded on the
    bottom/right only; replicating the last row/column and averaging gives the same mean as excluding the pad."""

    def __init__(self, stride: tuple[int, int]) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, s in ((x.shape[-1], self.stride[1]), (x.shape[-2], self.stride[0])):
            out = -(-size // s)
            pads += [0, max((out - 1) * s + 2 - size, 0)]
        if any(pads):
            x = F.pad(x, pads, mode="replicate")
        return F.avg_pool2d(x, 2, self.stride, ceil_mode=True, count_include_pad=False)


def _resnet_strides(model: nn.Module, strides: list[tuple[int, int]]) -> None:
    """PaddleClas ResNet: [stem conv, max pool, stage 2, stage 3, stage 4]."""
    stem = model.conv1[0] if isinstance(model.conv1, nn.Sequential) else model.conv1
    _set_stride(stem, strides[0])
    model.maxpool.stride = strides[1]
    for i, stride in enumerate(strides[2:], start=2):
        block = getattr(model, f"layer{i}")[0]
        _set_stride(block.conv2 if hasattr(block, "conv3") else block.conv1, stride)
        down = block.downsample
        if isinstance(down[0], nn.AvgPool2d):  # _vd: average pool, then a stride-1 1x1 conv
            down[0] = SamePadAvgPool(stride)
        else:
            _set_stride(down[0], stride)


def _stage_prefixes(model: nn.Module, fam: str) -> list[tuple[str, ...]]:
    """Parameter-name prefixes of PaddleClas's lr_mult_list stages, in order (head layers are in none)."""
    if fam == "lcnet":
        stages: list[list[str]] = [["conv_stem.", "bn1."], [], [], [], [], []]
        for prefix, stage in _lcnet_stages(model):
            stages[stage].append(prefix)
        return [tuple(s) for s in stages]
    return [("conv1.", "bn1."), ("layer1.",), ("layer2.",), ("layer3.",), ("layer4.",)]


class FeatureTaps:
    """Feature maps captured by forward hooks while ``active`` (a plain object: not in the state dict)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.active = False
        self.found: dict[str, torch.Tensor] = {}


def _pattern_module(model: nn.Module, fam: str, pattern: str) -> nn.Module:
    """The module whose output is PaddleClas's layer ``pattern``."""
    if fam == "lcnet":
        stage = _LCNET_PATTERNS.index(pattern) + 1
        last = [prefix for prefix, s in _lcnet_stages(model) if s == stage][-1]
        return model.get_submodule(last.rstrip("."))
    blocks = [b for i in range(1, 5) for b in getattr(model, f"layer{i}")]
    return blocks[int(pattern[len("blocks["):-1])]


def _add_taps(model: nn.Module, modules: dict[str, nn.Module]) -> None:
    taps = FeatureTaps(list(modules))
    for name, module in modules.items():
        def hook(_m: nn.Module, _i: Any, out: torch.Tensor, name: str = name) -> None:
            if taps.active:
                taps.found[name] = out
        module.register_forward_hook(hook)
    model.paddle_taps = taps


def _unwrap(model: nn.Module) -> nn.Module:
    """The network inside DDP / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def forward_with_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
    """``model(x)``; for a model with ``return_patterns``, PaddleClas's ``{"logits": ..., pattern: feature}``."""
    taps = getattr(_unwrap(model), "paddle_taps", None)
    if not isinstance(taps, FeatureTaps):
        return model(x)
    taps.active, taps.found = True, {}
    try:
        logits = model(x)
    finally:
        taps.active = False
    found, taps.found = taps.found, {}
    return {"logits": logits, **found}


def _set_lr_mults(model: nn.Module, stages: list[tuple[str, ...]], mults: list[float]) -> None:
    for name, p in model.named_parameters():
        for prefixes, mult in zip(stages, mults, strict=True):
            if name.startswith(prefixes):
                p.lr_mult = mult  # type: ignore[attr-defined]
                break
