"""PaddleClas ViT, DeiT and Swin in timm: PaddleClas's are ports of the same PyTorch code as timm's.

ViT and DeiT have timm's layer names (``blocks.<i>.attn.qkv``, ``pos_embed``, ``cls_token``...) and layer-norm
epsilon (1e-6 in every named model); only Paddle's ``Linear`` stores its weight transposed. Swin keeps the original
code's layout: each stage's patch merging at its end (timm: at the start of the next stage), the classifier
``head`` (timm: ``head.fc``), and its relative-position index saved with the weights (timm rebuilds it). And one
computation differs: PaddleClas always partitions and shifts windows, also where a stage's map is no larger than
a window (the last stage at 224 px: 7 x 7, window 7), where timm (like the original code) turns the shift off;
``paddle_swin_*`` are timm's networks with ``always_partition``, which is PaddleClas's.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from timm.models import generate_default_cfgs
from torch import nn

from ssld.models.paddle.common import default_cfg, register_variant
from ssld.models.paddle.convert import Rule, renamed_rules

_VIT = ["base_patch16_224", "base_patch16_384", "base_patch32_384", "large_patch16_224", "large_patch16_384",
        "large_patch32_384"]
_DEIT = ["tiny_patch16_224", "small_patch16_224", "base_patch16_224", "base_patch16_384", "tiny_distilled_patch16_224",
         "small_distilled_patch16_224", "base_distilled_patch16_224", "base_distilled_patch16_384"]


def vit_rules(model: nn.Module) -> list[Rule]:
    """Same names; the classifier (and a distilled DeiT's second one, ``head_dist``) is the head."""
    rules = renamed_rules(model, [], "head")
    return [Rule(r.src, r.dst, r.kind, head=True) if r.dst == "head_dist" else r for r in rules]


_SWIN = ["tiny_patch4_window7_224", "small_patch4_window7_224", "base_patch4_window7_224", "base_patch4_window12_384",
         "large_patch4_window7_224", "large_patch4_window12_384"]
_SWIN_SUBS = [(r"^layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample"),
              (r"^head\.fc$", "head")]


def swin_rules(model: nn.Module) -> list[Rule]:
    """timm's names with the patch merging one stage earlier and the classifier ``head``; PaddleClas's saved
    relative-position indices are dropped."""
    rules = renamed_rules(model, _SWIN_SUBS, "head.fc")
    for name, _ in model.named_modules():
        if re.fullmatch(r"layers\.\d+\.blocks\.\d+\.attn", name):
            rules.append(Rule(f"{name}.relative_position_index", "", "unused"))
    return rules


def _paddle_swin(name: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    import timm

    if pretrained:
        raise ValueError(f"paddle_swin_{name} has no timm weights: load PaddleClas's .pdparams")
    model = timm.create_model(f"swin_{name}", always_partition=True, **kwargs)
    model.pretrained_cfg = model.default_cfg = {**default_cfgs[f"paddle_swin_{name}"].default.to_dict(),
                                                "architecture": f"paddle_swin_{name}"}
    return model


default_cfgs = generate_default_cfgs({
    f"paddle_swin_{n}": default_cfg("head.fc", "patch_embed.proj", input_size=(3, int(n[-3:]), int(n[-3:])),
                                    pool_size=None, fixed_input_size=True, interpolation="bicubic", crop_pct=0.9)
    for n in _SWIN
})
for _name in _SWIN:
    register_variant(f"paddle_swin_{_name}", partial(_paddle_swin, _name),
                     f"PaddleClas SwinTransformer_{_name}, faithful (see ssld.models.paddle.transformers).", __name__)

RULES = ({f"vit_{n}": vit_rules for n in _VIT} | {f"deit_{n}": vit_rules for n in _DEIT}
         | {f"paddle_swin_{n}": swin_rules for n in _SWIN})
# PaddleClas name -> timm name
ALIASES = ({f"ViT_{n}": f"vit_{n}" for n in _VIT} | {f"DeiT_{n}": f"deit_{n}" for n in _DEIT}
           | {f"SwinTransformer_{n}": f"paddle_swin_{n}" for n in _SWIN})
