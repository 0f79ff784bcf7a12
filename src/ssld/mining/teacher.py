"""Load the teacher for inference (label, dedup): the config's model, or a DistillationModel's frozen teacher.

The teacher always comes back in eval mode: mining outputs must be a function of the image alone, and
train-mode BN would make them depend on the batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from ssld.config import SSLDConfig
from ssld.config.schema import ModelSpec
from ssld.errors import UserError
from ssld.utils.io import sha256_file


@dataclass
class Teacher:
    """An eval-mode teacher, the name it has in the config, and where its weights came from."""

    model: nn.Module
    name: str
    model_name: str
    num_classes: int
    weights: str
    weights_sha256: str


def teacher_spec(cfg: SSLDConfig) -> tuple[str, ModelSpec, str | bool]:
    """``(name, spec, weights)`` of the teacher: the single model, or the first frozen sub-model."""
    arch = cfg.Arch
    if not arch.is_distillation:
        spec = ModelSpec(name=arch.name, class_num=arch.class_num, pretrained=False, kwargs=arch.kwargs)
        return arch.name, spec, arch.pretrained
    frozen = arch.frozen_names()
    if not frozen:
        raise UserError("Arch.freeze_params_list: this DistillationModel has no frozen (teacher) model to run")
    name = frozen[0]
    spec = arch.model_specs()[name]
    pretrained: str | bool = spec.pretrained
    if arch.pretrained_list:
        listed = arch.pretrained_list[arch.model_names().index(name)]
        pretrained = listed or pretrained
    return name, spec.model_copy(update={"pretrained": False}), pretrained


def load_teacher(cfg: SSLDConfig, weights: str | None = None, device: str | torch.device = "cpu") -> Teacher:
    """Build the teacher from ``cfg`` and load ``weights`` (or the config's pretrained path) in eval mode.

    ``weights`` may be a timm checkpoint, an ssld checkpoint, a safetensors file, or a DistillationModel
    checkpoint (then the teacher's own sub-model weights are taken).
    """
    from ssld.models import create_model, load_weights

    name, spec, configured = teacher_spec(cfg)
    source = weights or (configured if isinstance(configured, str) else None)
    num_classes = int(spec.class_num or cfg.Arch.class_num)
    if source is None and configured is not True:
        raise UserError(f"--weights: required; the config gives the teacher '{name}' no pretrained weights")
    if source is None:
        model = create_model(spec.model_copy(update={"pretrained": True}), num_classes)
        sha = f"timm-pretrained:{spec.name}"
    else:
        if not os.path.isfile(source):
            raise UserError(f"--weights: {source}: file not found")
        model = create_model(spec, num_classes)
        load_weights(model, source, prefix=name if cfg.Arch.is_distillation else None)
        sha = sha256_file(source)
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return Teacher(model, name, spec.name, num_classes, str(source or spec.name), sha)
