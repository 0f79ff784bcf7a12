"""PaddleClas ``.pdparams`` weights in timm models: a safe reader, faithful networks, and name maps.

``convert_pdparams(path, model)`` reads a ``.pdparams`` file without running code from it
(:mod:`.unpickle`) and renames and reshapes its arrays into ``model``'s state dict by the rules of ``model``'s
architecture (:mod:`.convert`). Importing this package registers the faithful PaddleClas networks with timm
(``paddle_resnet18_vd``, ``paddle_mobilenetv3_large_100``, ...).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ssld.errors import UserError
from ssld.models.paddle import (
    hrnet,
    mobilenet,
    ported,
    resnet,
    resnext,
    same_names,
    transformers,
)
from ssld.models.paddle.convert import Mapping, Rule, apply_rules, head_classes
from ssld.models.paddle.unpickle import check_paddle_suffix, read_pdparams

__all__ = [
    "PADDLE_SUFFIXES",
    "RULES",
    "check_paddle_suffix",
    "convert_pdparams",
    "file_classes",
    "read_pdparams",
    "rules_for",
]

# Suffixes of PaddlePaddle files; only .pdparams holds loadable weights.
PADDLE_SUFFIXES = (".pdparams", ".pdopt", ".pdmodel", ".pdiparams", ".pdema")

# timm architecture name -> the rules that map PaddleClas names onto it.
RULES: dict[str, Mapping] = {**resnet.RULES, **mobilenet.RULES, **ported.RULES, **resnext.RULES, **hrnet.RULES,
                              **transformers.RULES, **same_names.RULES}


def _arch(model: nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return str(cfg.get("architecture") or type(model).__name__)


def rules_for(model: nn.Module, path: str | os.PathLike[str] = "") -> list[Rule]:
    """The PaddleClas -> timm rules for ``model``'s architecture; UserError for one without a mapping."""
    arch = _arch(model)
    mapping = RULES.get(arch)
    if mapping is None:
        raise UserError(
            f"{path}: no PaddleClas mapping for model '{arch}'; name the model by its PaddleClas name "
            "(e.g. ResNet50_vd, MobileNetV3_large_x1_0, PPLCNet_x1_0; docs/paddle_weights.md lists them)"
        )
    return mapping(model)


def convert_pdparams(path: str | os.PathLike[str], model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict for ``model`` made of the ``.pdparams`` file at ``path`` (one UserError line on misfit)."""
    p = Path(path)
    if isinstance(getattr(model, "models", None), nn.ModuleDict):
        raise UserError(
            f"{p}: a .pdparams file holds one PaddleClas network; set it as the pretrained weights of one of "
            "Arch.models, not of the whole distillation model"
        )
    arrays = read_pdparams(p)
    return apply_rules(arrays, model, rules_for(model, p), p, _arch(model))


def file_classes(path: str | os.PathLike[str], model: nn.Module) -> int | None:
    """Class count of the classifier in a ``.pdparams`` file meant for ``model``'s architecture."""
    return head_classes(read_pdparams(path), rules_for(model, path))
