"""Turn PaddleClas parameter arrays into a timm state dict, by per-architecture rules.

A rule pairs a PaddleClas layer prefix with a timm module prefix and says what kind of layer it is; the kind
decides the parameter names on both sides and any layout change (Paddle's ``Linear`` stores ``[in, out]``, torch
``[out, in]``). Every PaddleClas array must be used and every timm parameter filled, shapes equal, or the
conversion stops with one line naming the first key that does not fit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ssld.errors import UserError

# Paddle batch-norm parameter names -> torch's.
_BN = (("weight", "weight"), ("bias", "bias"), ("_mean", "running_mean"), ("_variance", "running_var"))


@dataclass(frozen=True)
class Rule:
    """``src`` (PaddleClas layer prefix) holds what ``dst`` (timm module prefix) needs.

    ``kind``: ``conv`` (weight, bias if the timm layer has one), ``bn``, ``linear`` (weight transposed),
    ``affine`` (scale/bias scalars of a learnable affine block), ``norm`` (a layer norm's weight and bias),
    ``param`` (one bare parameter: a class token, a position embedding, a layer scale), ``unused`` (PaddleClas arrays its forward pass
    never reads, e.g. the inference-only conv next to PP-LCNetV2's re-parameterizable branches: dropped).
    ``scale`` multiplies a linear layer's weight: a Paddle dropout in ``downscale_in_infer`` mode scales
    activations by ``1 - p`` at inference, which folds into the next layer exactly. ``head`` marks the classifier, whose class count may differ from the model's (the
    loader decides whether to drop it).
    """

    src: str
    dst: str
    kind: str
    scale: float = 1.0
    head: bool = False


Mapping = Callable[[nn.Module], list[Rule]]


def conv_bn(src: str, conv: str, bn: str) -> list[Rule]:
    """A Paddle conv + batch-norm pair (``<src>.conv``, ``<src>.bn``) onto two timm modules."""
    return [Rule(f"{src}.conv", conv, "conv"), Rule(f"{src}.bn", bn, "bn")]


def _pairs(rule: Rule, target: dict[str, torch.Tensor]) -> list[tuple[str, str]]:
    if rule.kind == "unused":
        return []
    if rule.kind == "bn":
        return [(f"{rule.src}.{a}", f"{rule.dst}.{b}") for a, b in _BN]
    if rule.kind == "affine":
        return [(f"{rule.src}.scale", f"{rule.dst}.scale"), (f"{rule.src}.bias", f"{rule.dst}.bias")]
    if rule.kind == "norm":
        return [(f"{rule.src}.weight", f"{rule.dst}.weight"), (f"{rule.src}.bias", f"{rule.dst}.bias")]
    if rule.kind == "param":
        return [(rule.src, rule.dst)]
    pairs = [(f"{rule.src}.weight", f"{rule.dst}.weight")]
    if f"{rule.dst}.bias" in target:
        pairs.append((f"{rule.src}.bias", f"{rule.dst}.bias"))
    return pairs


def _fit(src_key: str, array: np.ndarray, rule: Rule) -> torch.Tensor:
    value = torch.from_numpy(np.ascontiguousarray(array))
    if rule.kind == "linear" and src_key.endswith(".weight"):
        value = value.t().contiguous()
        if rule.scale != 1.0:
            value = value * rule.scale
    return value


def apply_rules(
    arrays: dict[str, np.ndarray], model: nn.Module, rules: list[Rule], path: Path, label: str
) -> dict[str, torch.Tensor]:
    """The timm state dict the rules make of ``arrays``; UserError naming the first key that does not fit."""
    where = f"{path}: PaddleClas weights do not fit '{label}'"
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for rule in rules:
        if rule.kind == "unused":
            used.update(k for k in arrays if k == rule.src or k.startswith(rule.src + "."))
        for src_key, dst_key in _pairs(rule, target):
            if src_key not in arrays:
                raise UserError(f"{where}: no '{src_key}' in the file (needed for {dst_key})")
            if dst_key not in target:
                raise UserError(f"{where}: the model has no '{dst_key}' (for {src_key})")
            value = _fit(src_key, arrays[src_key], rule)
            if value.shape != target[dst_key].shape and not rule.head:
                raise UserError(
                    f"{where}: {src_key} has shape {tuple(arrays[src_key].shape)}, the model's {dst_key} "
                    f"{tuple(target[dst_key].shape)}"
                )
            out[dst_key] = value.to(target[dst_key].dtype)
            used.add(src_key)
    extra = [k for k in arrays if k not in used]
    if extra:
        raise UserError(
            f"{where}: {len(extra)} arrays have no place in the model, the first '{extra[0]}' "
            f"{tuple(arrays[extra[0]].shape)}"
        )
    missing = [k for k in target if k not in out and not k.endswith("num_batches_tracked")]
    if missing:
        raise UserError(f"{where}: nothing in the file fills {missing[0]} {tuple(target[missing[0]].shape)}")
    return out


def _kind(module: nn.Module) -> str | None:
    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, nn.BatchNorm2d):
        return "bn"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.LayerNorm):
        return "norm"
    if {n for n, _ in module.named_parameters(recurse=False)} == {"scale", "bias"}:
        return "affine"
    return None


def renamed_rules(model: nn.Module, subs: list[tuple[str, str]], head: str, head_scale: float = 1.0) -> list[Rule]:
    """Rules for a timm port of a PaddleClas network whose layer names differ by renames only: each conv, BN,
    linear, layer-norm and affine layer of ``model``, and each bare parameter of another module (class token,
    position embedding...), maps to its name rewritten by the regex substitutions ``subs``."""
    rules = []
    for name, module in model.named_modules():
        kind = _kind(module)
        if kind is None:
            for pname, _ in module.named_parameters(recurse=False):
                dst = f"{name}.{pname}" if name else pname
                rules.append(Rule(_renamed(dst, subs), dst, "param"))
            continue
        is_head = name == head
        rules.append(Rule(_renamed(name, subs), name, kind, scale=head_scale if is_head else 1.0, head=is_head))
    return rules


def _renamed(name: str, subs: list[tuple[str, str]]) -> str:
    for pattern, repl in subs:
        name = re.sub(pattern, repl, name)
    return name


def head_classes(arrays: dict[str, np.ndarray], rules: list[Rule]) -> int | None:
    """Class count of the file's classifier (the ``head`` linear rule's output width), if it has one."""
    for rule in rules:
        weight = arrays.get(f"{rule.src}.weight")
        if rule.head and weight is not None and weight.ndim == 2:
            return int(weight.shape[1])
    return None


def to_paddle_arrays(state: dict[str, torch.Tensor], rules: list[Rule], label: str) -> dict[str, np.ndarray]:
    """The reverse of :func:`apply_rules`: PaddleClas-named float arrays made of a timm state dict.

    Linear weights go back to Paddle's ``[in, out]`` layout and lose the folded dropout scale; an architecture
    whose PaddleClas file holds arrays ssld drops (``unused`` rules) cannot be rebuilt and says so.
    """
    out: dict[str, np.ndarray] = {}
    for rule in rules:
        if rule.kind == "unused":
            raise UserError(f"'{label}': its PaddleClas file holds arrays ssld does not keep ({rule.src}.*); "
                            "it cannot be written back as .pdparams")
        for src_key, dst_key in _pairs(rule, state):
            if dst_key not in state:
                raise UserError(f"'{label}': the weights have no '{dst_key}' (for {src_key})")
            value = state[dst_key].detach().cpu()
            if rule.kind == "linear" and src_key.endswith(".weight"):
                if rule.scale != 1.0:
                    value = value / rule.scale
                value = value.t()
            out[src_key] = np.ascontiguousarray(value.numpy())
    return out
