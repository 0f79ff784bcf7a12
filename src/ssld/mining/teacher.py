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


def load_teacher(cfg: SSLDConfig, weights: str | None = None, device: str | torch.device = "cpu") -> Teacher:
    """Build the teacher from ``cfg`` and load ``weights`` (or the config's pretrained path) in eval mode.

    ``weights`` may be a timm checkpoint, an ssld checkpoint, a safetensors file, or a DistillationModel
    checkpoint (then the teacher's own sub-model weights are taken).
    """
    from ssld.models import create_model, load_weights

    name, spec, configured = cfg.Arch.teacher_spec()
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
