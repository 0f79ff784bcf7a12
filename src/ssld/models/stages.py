"""Split a backbone's parameters into ordered stages for PaddleClas ``lr_mult_list`` (per-stage lr multipliers).

Transfer learning from an SSLD student trains early stages with a smaller lr than late ones. PaddleClas's
recommended lists (the classifier always keeps multiplier 1.0; it is not part of the list):

- ResNet50_vd, classification: ``[0.1, 0.1, 0.2, 0.2, 0.3]``; detection backbone: ``[0.05, 0.05, 0.05, 0.1, 0.15]``
  (5 entries: stem, stage 1..4).
- MobileNetV3_large_x1_0: ``[0.25, 0.25, 0.5, 0.5, 0.75]`` (5 entries; its 15 inverted-residual blocks, 3 each).

Rules, by model family:

- ResNet style (timm ``resnet*``/``resnet*d``/``res2net*``/``resnext*`` and ssld's small-image nets): group 0 is
  the stem (everything before ``layer1``), then one group per stage ``layer1..layerK``; the list must have exactly
  ``K + 1`` entries (5 for ImageNet ResNets, 4 for the 3-stage small-image nets). Layers after the last stage
  (a final norm) join the last group.
- MobileNet / EfficientNet style (``conv_stem`` + ``blocks``): the inverted-residual blocks are counted in order
  and block ``i`` of ``B`` goes to group ``i * n // B`` (3 per group for MobileNetV3-large with 5 groups); the stem
  joins group 0, and other layers after a block (``conv_head``, a final 1x1 conv) join that block's group.
- Any other timm model: its ``group_matcher(coarse=True)`` stages, merged into ``n`` consecutive groups.
"""

from __future__ import annotations

import re

from timm.models import group_parameters
from torch import nn


def classifier_param_names(model: nn.Module) -> list[str]:
    """Names of the classifier's parameters (``model.get_classifier()``); they keep lr multiplier 1.0."""
    get_classifier = getattr(model, "get_classifier", None)
    if not callable(get_classifier):
        raise TypeError(f"{type(model).__name__} has no get_classifier(): cannot tell its classifier apart")
    head = get_classifier()
    for name, module in model.named_modules():
        if module is head:
            return [f"{name}.{p}" if name else p for p, _ in module.named_parameters()]
    return []


def _backbone_params(model: nn.Module) -> list[str]:
    skip = set(classifier_param_names(model))
    return [n for n, _ in model.named_parameters() if n not in skip]


def _resnet_units(model: nn.Module, names: list[str]) -> list[list[str]] | None:
    """Stem + one unit per ``layerK`` stage, or None when the model is not ResNet-shaped."""
    stages = sorted({int(m.group(1)) for n in names if (m := re.match(r"layer(\d+)\.", n))})
    if len(stages) < 3 or stages != list(range(1, len(stages) + 1)):
        return None
    units: list[list[str]] = [[] for _ in range(len(stages) + 1)]
    current = 0
    for n in names:
        m = re.match(r"layer(\d+)\.", n)
        current = int(m.group(1)) if m else current
        units[current].append(n)
    return units


def _block_units(model: nn.Module, names: list[str]) -> list[list[str]] | None:
    """One unit per inverted-residual block of a ``conv_stem`` + ``blocks`` model, or None."""
    blocks = getattr(model, "blocks", None)
    if not hasattr(model, "conv_stem") or not isinstance(blocks, nn.Sequential):
        return None
    from timm.models._efficientnet_blocks import ConvBnAct

    block_of: dict[str, int] = {}
    count = 0
    for s, stage in enumerate(blocks):
        subs = stage if isinstance(stage, nn.Sequential) else [stage]
        for b, sub in enumerate(subs):
            prefix = f"blocks.{s}.{b}." if isinstance(stage, nn.Sequential) else f"blocks.{s}."
            if not isinstance(sub, ConvBnAct):  # a plain conv (e.g. MobileNetV3's last 1x1) is no block
                count += 1
            block_of[prefix] = max(count - 1, 0)
    if count == 0:
        return None
    units: list[list[str]] = [[] for _ in range(count)]
    current = 0
    for n in names:
        for prefix, idx in block_of.items():
            if n.startswith(prefix):
                current = idx
                break
        units[current].append(n)
    return units


def _matcher_units(model: nn.Module, names: list[str]) -> list[list[str]]:
    """timm's coarse stage groups (stem, stages, head layers), in order, without the classifier."""
    if not hasattr(model, "group_matcher"):
        raise ValueError(f"{type(model).__name__} has no group_matcher(): cannot split it into stages")
    wanted = set(names)
    groups = group_parameters(model, model.group_matcher(coarse=True))
    units = [[n for n in params if n in wanted] for _, params in sorted(groups.items())]
    return [u for u in units if u]


def lr_mult_groups(model: nn.Module, n_groups: int) -> list[list[str]]:
    """Partition the non-classifier parameter names of ``model`` into ``n_groups`` ordered stages (see module doc).

    Raises ``ValueError`` naming the lengths the model accepts when it cannot be split into ``n_groups``.
    """
    names = _backbone_params(model)
    label = type(model).__name__
    resnet = _resnet_units(model, names)
    if resnet is not None:
        if n_groups != len(resnet):
            raise ValueError(
                f"lr_mult_list for a ResNet-style {label} needs {len(resnet)} entries "
                f"(stem + {len(resnet) - 1} stages), got {n_groups}"
            )
        return resnet
    units = _block_units(model, names)
    kind = "inverted-residual blocks"
    if units is None:
        units, kind = _matcher_units(model, names), "stages"
    if not 1 <= n_groups <= len(units):
        raise ValueError(f"lr_mult_list for {label} needs 1 to {len(units)} entries ({kind}), got {n_groups}")
    groups: list[list[str]] = [[] for _ in range(n_groups)]
    for i, unit in enumerate(units):
        groups[i * n_groups // len(units)].extend(unit)
    return groups
