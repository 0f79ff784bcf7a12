"""Put the configured model on the device for training: weights, SyncBN, memory format, DDP and compile.

DDP wraps only the parts that train: a single model is wrapped whole; inside a DistillationModel each trainable
sub-model (the student) is replaced by its wrapper in place, so the frozen teacher is never wrapped or
synchronised. ``state_dict`` strips the wrappers' ``module.`` / ``_orig_mod.`` segments, so checkpoints look the
same for 1 and N processes, compiled or not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from torch import nn

from ssld.config.schema import SSLDConfig
from ssld.engine.optim import trainable_parts
from ssld.errors import UserError
from ssld.utils import distributed as dist

log = logging.getLogger("ssld.engine")

_WRAPPER_SEGMENTS = ("module.", "_orig_mod.")


_CPU_CHANNELS_LAST_WARNING = (
    "warning: Global.channels_last: True on the CPU: torch's CPU kernels can abort (heap corruption, SIGSEGV) or "
    "hang in the backward pass of some networks in channels_last; 'auto' (the default) trains contiguous on the CPU"
)
_warned_cpu_channels_last = False


def use_channels_last(setting: bool | str, device: torch.device) -> bool:
    """Whether to run in channels_last: ``auto`` means CUDA only; an explicit True on the CPU warns once."""
    global _warned_cpu_channels_last
    if setting == "auto":
        return device.type == "cuda"
    if setting and device.type == "cpu" and not _warned_cpu_channels_last and dist.is_main():
        _warned_cpu_channels_last = True
        log.warning(_CPU_CHANNELS_LAST_WARNING)
    return bool(setting)


def build(cfg: SSLDConfig, allow_random: bool = False) -> nn.Module:
    """The config's model on the CPU (a class-count mismatch becomes a UserError naming ``Arch.models``);
    ``allow_random`` (``ssld check``) turns unavailable pretrained weights into a warning."""
    from ssld.models import build_model

    try:
        return build_model(cfg.Arch, allow_random=allow_random)
    except ValueError as e:
        raise UserError(f"Arch.models: {e}") from None


def warn_random_teacher(cfg: SSLDConfig) -> None:
    """A frozen model with no weights is almost always a mistake: say so (it is allowed)."""
    arch = cfg.Arch
    if not arch.is_distillation or not dist.is_main():
        return
    paths = arch.pretrained_list or [None] * len(arch.model_names())
    for (name, spec), path in zip(arch.model_specs().items(), paths, strict=True):
        if name in arch.frozen_names() and not spec.pretrained and not path:
            log.warning(
                "warning: frozen model '%s' has no weights (Arch.models: pretrained is false): it stays random; "
                "point pretrained at the teacher's checkpoint", name
            )


def load_pretrained(model: nn.Module, path: str) -> None:
    """``Global.pretrained_model``: weights into the model (for a DistillationModel, into its infer model)."""
    from ssld.models import load_weights

    target = getattr(model, "infer_model", None)
    if isinstance(target, nn.Module):
        load_weights(target, path, prefix=model.infer_model_name)
    else:
        load_weights(model, path)


@dataclass
class TrainModel:
    """The model as trained: ``model`` is what the step calls (wrappers inside), ``student`` the unwrapped
    inference model, ``wrapped`` the module paths that carry a DDP/compile wrapper."""

    model: nn.Module
    student: nn.Module
    wrapped: list[str] = field(default_factory=list)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The full model's weights without DDP/compile wrapper segments in the keys."""
        out = {}
        for key, value in self.model.state_dict().items():
            out[_strip(key, self.wrapped)] = value
        return out


def _strip(key: str, wrapped: list[str]) -> str:
    for path in wrapped:
        prefix = f"{path}." if path else ""
        if key.startswith(prefix):
            rest = key[len(prefix):]
            while rest.startswith(_WRAPPER_SEGMENTS):
                rest = rest.split(".", 1)[1]
            return prefix + rest
    return key


def _replace(model: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent_path) if parent_path else model, name, new)


def prepare(model: nn.Module, cfg: SSLDConfig, device: torch.device) -> TrainModel:
    """SyncBN (student, N processes), channels_last, device placement, DDP on trainable parts, compile."""
    g = cfg.Global
    infer = getattr(model, "infer_model", None)
    student = infer if isinstance(infer, nn.Module) else model
    parts = [(p.rstrip("."), m) for p, m in trainable_parts(model)]
    sync_bn = g.use_sync_bn and dist.world_size() > 1
    if g.use_sync_bn and dist.world_size() == 1:
        log.info("Global.use_sync_bn (or Arch.use_sync_bn): one process has no batch statistics to share; "
                 "BatchNorm stays as it is")
    if sync_bn and device.type == "cpu":
        sync_bn = False
        if dist.is_main():
            log.warning("warning: Global.use_sync_bn is ignored on CPU (PyTorch's SyncBatchNorm needs a GPU)")
    if sync_bn:
        for path, part in parts:
            synced = nn.SyncBatchNorm.convert_sync_batchnorm(part)
            if path:
                _replace(model, path, synced)
            else:
                model = synced
        student = getattr(model, "infer_model", model) if infer is not None else model
        parts = [(p.rstrip("."), m) for p, m in trainable_parts(model)]
    model.to(device)
    if use_channels_last(g.channels_last, device):
        model.to(memory_format=torch.channels_last)
    wrapped: list[str] = []
    for path, part in parts:
        new = part
        if dist.world_size() > 1:
            ids = [device.index] if device.type == "cuda" else None
            new = nn.parallel.DistributedDataParallel(new, device_ids=ids)
        if g.compile:
            new = torch.compile(new)
        if new is part:
            continue
        wrapped.append(path)
        if path:
            _replace(model, path, new)
        else:
            model = new
    return TrainModel(model=model, student=student, wrapped=wrapped)
