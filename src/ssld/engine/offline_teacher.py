"""Offline teacher: distillation targets read from a soft-label store instead of a teacher forward per step.

With ``DataLoader.Train.dataset.soft_labels: STORE`` the trainer builds the DistillationModel without its frozen
teacher (its weights are never loaded: no teacher memory, no teacher compute) and each batch carries the dense
teacher probabilities ``soft_target`` (see :mod:`ssld.data.soft_targets`). The step puts ``log p`` into the
model outputs under the teacher's name. ``log p`` differs from the teacher's logits by a per-row constant, which
softmax at any temperature removes, so every configured distillation loss works unchanged.

Offline targets are eval-mode teacher outputs on the un-augmented image (what ``ssld label`` writes), so
``Arch.teacher_bn_mode`` does not apply and the student's augmented crop is not the view the target belongs to.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ssld.config.schema import SSLDConfig
from ssld.errors import UserError

log = logging.getLogger("ssld.engine")

WHERE = "DataLoader.Train.dataset.soft_labels"
# floor under stored probabilities before the log: below float16's smallest subnormal (6e-8), so it only
# replaces exact zeros (a store with full float16 probabilities can hold them)
PROB_FLOOR = 1e-8


@dataclass
class OfflineTeacher:
    """Stands in for the frozen teacher ``teacher_name``: turns a batch's ``soft_target`` into its logits."""

    teacher_name: str
    store_dir: str

    def add_targets(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any],
                    device: torch.device) -> dict[str, torch.Tensor]:
        """``outputs`` with the teacher's logits (``log p``, float32) added under the teacher's name."""
        probs = batch["soft_target"].to(device, non_blocking=True)
        return {**outputs, self.teacher_name: probs.float().clamp_min(PROB_FLOOR).log()}


def store_dir(cfg: SSLDConfig) -> str | None:
    """The configured store, or None when the teacher runs online."""
    train = cfg.DataLoader.Train
    return train.dataset.soft_labels if train is not None else None


def check_store(cfg: SSLDConfig, manifest: dict[str, Any], directory: str) -> None:
    """``UserError`` when the store was written by another teacher or class count than the config's teacher."""
    from ssld.models import resolve_model_name
    from ssld.utils.io import sha256_file

    name, spec, weights = cfg.Arch.teacher_spec()
    classes = int(spec.class_num or cfg.Arch.class_num)
    if int(manifest.get("num_classes", -1)) != classes:
        raise UserError(f"{WHERE}: {directory} has {manifest.get('num_classes')} classes but the teacher '{name}' "
                        f"in Arch has {classes}; label with this config's teacher")
    stored = str(manifest.get("teacher", ""))
    try:
        same_arch = resolve_model_name(stored) == resolve_model_name(spec.name)
    except UserError:
        same_arch = False
    if not same_arch:
        raise UserError(f"{WHERE}: {directory} was labeled by '{stored}' but the config's teacher '{name}' is "
                        f"'{spec.name}'")
    if weights is True:
        expected: str | None = f"timm-pretrained:{spec.name}"
    elif isinstance(weights, str) and weights and os.path.isfile(weights):
        expected = sha256_file(weights)
    else:
        expected = None
        log.warning("warning: cannot check that %s was labeled by the teacher's weights (%s: no weights file); "
                    "trusting the store", directory, name)
    if expected is not None and manifest.get("weights_sha256") != expected:
        raise UserError(f"{WHERE}: {directory} was labeled with other weights than the teacher's "
                        f"({weights}: sha256 differs from the store's manifest); label again with these weights")


def build_offline(cfg: SSLDConfig) -> tuple[nn.Module, OfflineTeacher] | None:
    """The DistillationModel without its teacher and the stand-in for it; None unless ``soft_labels`` is set.

    Raises ``UserError`` for a single-model config, several frozen models, or a store of another teacher.
    """
    directory = store_dir(cfg)
    if directory is None:
        return None
    arch = cfg.Arch
    frozen = arch.frozen_names()
    if not arch.is_distillation or len(frozen) != 1:
        raise UserError(f"{WHERE}: offline targets need a DistillationModel with exactly one frozen teacher "
                        f"(Arch.freeze_params_list marks {len(frozen)})")
    from ssld.data.store import read_manifest

    manifest = read_manifest(_existing(directory))
    if manifest is None or not manifest.get("complete"):
        raise UserError(f"{WHERE}: {directory} is not a complete soft-label store; run `ssld label` first")
    check_store(cfg, manifest, directory)
    if arch.teacher_bn_mode == "train":
        log.info("offline targets are eval-mode teacher outputs: Arch.teacher_bn_mode 'train' does not apply")
    from ssld.models import build_model

    return build_model(arch, skip_frozen=True), OfflineTeacher(frozen[0], directory)


def _existing(directory: str) -> Path:
    path = Path(directory)
    if not path.is_dir():
        raise UserError(f"{WHERE}: soft-label store not found: {directory} (write it with `ssld label`)")
    return path
