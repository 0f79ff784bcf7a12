"""Read and write model weights: safetensors, timm checkpoints, ssld checkpoints, DistillationModel states.

Loading never unpickles arbitrary objects: torch files go through ``torch.load(weights_only=True)`` (plus
``argparse.Namespace``, which timm's ``train.py`` stores in its checkpoints), PaddleClas ``.pdparams`` files
through an unpickler that builds numpy arrays only (:mod:`ssld.models.paddle`). Every problem a user can cause (a
missing file, a file that is not weights, weights of another architecture) is one :class:`UserError` line.
"""

from __future__ import annotations

import argparse
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ssld.errors import UserError
from ssld.utils.io import atomic_path

StateDict = dict[str, torch.Tensor]

# Wrapper keys of checkpoint dicts that hold the model weights, in order of preference.
_STATE_KEYS = ("state_dict", "model", "module", "model_ema", "state_dict_ema")
_EMA_KEYS = ("model_ema", "state_dict_ema")
# Prefixes added by DistributedDataParallel / DataParallel and torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_DISTILL_PREFIX = "models."


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _clean_key(key: str) -> str:
    """Drop wrapper prefixes, also those of a wrapped sub-model (``models.Student.module.conv1.weight``)."""
    key = key.replace("._orig_mod.", ".")
    while key.startswith(_WRAPPER_PREFIXES):
        key = key.split(".", 1)[1]
    head, _, rest = key.partition(".")
    if head == _DISTILL_PREFIX[:-1] and rest:
        name, _, rest = rest.partition(".")
        while rest.startswith(_WRAPPER_PREFIXES):
            rest = rest.split(".", 1)[1]
        key = f"{_DISTILL_PREFIX}{name}.{rest}"
    return key


def _strip_wrappers(state: StateDict) -> StateDict:
    return {_clean_key(k): v for k, v in state.items()}


def resolve_weights_path(path: str | os.PathLike[str]) -> Path:
    """``path``, or ``path.pdparams`` when only that exists (PaddleClas configs name weights without the suffix)."""
    p = Path(path)
    paddle = p.with_name(p.name + ".pdparams")
    return paddle if not p.exists() and p.name and paddle.is_file() else p


def read_state_dict(path: str | os.PathLike[str], ema: bool = False, model: nn.Module | None = None) -> StateDict:
    """The weights stored in ``path`` as a flat state dict (wrapper keys and ``module.`` prefixes removed).

    Accepts ``.safetensors``, a plain state dict, or a checkpoint dict holding one under ``state_dict``,
    ``model`` (ssld), ``model_ema``/``state_dict_ema`` (taken first when ``ema``), and PaddleClas ``.pdparams``
    files, whose names and layouts are converted for ``model``'s architecture (so it must be given).
    """
    from ssld.models.paddle import (
        PADDLE_SUFFIXES,
        check_paddle_suffix,
        convert_pdparams,
    )

    p = resolve_weights_path(path)
    if p.suffix.lower() in PADDLE_SUFFIXES:
        check_paddle_suffix(p)
        if not p.is_file():
            raise UserError(f"{p}: weights file not found")
        if model is None:
            raise UserError(f"{p}: a .pdparams file converts only for a named architecture (ssld convert --arch)")
        return convert_pdparams(p, model)
    if not p.is_file():
        raise UserError(f"{p}: weights file not found")
    if p.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return _strip_wrappers(load_file(str(p), device="cpu"))
        except (SafetensorError, OSError) as e:
            raise UserError(f"{p}: not a readable safetensors file ({e})") from None
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{p}: cannot be read as torch weights with weights_only=True ({first})") from None
    if _is_state_dict(obj):
        return _strip_wrappers(obj)
    if isinstance(obj, dict):
        keys = (_EMA_KEYS + _STATE_KEYS) if ema else _STATE_KEYS
        for key in keys:
            if _is_state_dict(obj.get(key)):
                return _strip_wrappers(obj[key])
        raise UserError(f"{p}: no weights found (expected a state dict or one of the keys {list(keys)})")
    raise UserError(f"{p}: holds a {type(obj).__name__}, not model weights")


def distillation_members(state: StateDict) -> list[str]:
    """Sub-model names of a DistillationModel state (``models.<Name>.*`` keys), in order; empty otherwise."""
    names: dict[str, None] = {}
    for key in state:
        if not key.startswith(_DISTILL_PREFIX):
            return []
        names[key.split(".", 2)[1]] = None
    return list(names)


def _sub_state(state: StateDict, name: str) -> StateDict:
    prefix = f"{_DISTILL_PREFIX}{name}."
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _mismatch(model: nn.Module, state: StateDict) -> tuple[list[str], list[str], list[str]]:
    """Missing keys (``num_batches_tracked`` excepted: BN fills it in), unexpected keys, shape mismatches."""
    target = model.state_dict()
    missing = [k for k in target if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in target]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(target[k].shape)}"
        for k in target
        if k in state and state[k].shape != target[k].shape
    ]
    return missing, unexpected, shapes


def model_label(model: nn.Module) -> str:
    """A model's name for messages: timm's architecture name, else its class name."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return str(cfg.get("architecture") or type(model).__name__)


def _pick_member(model: nn.Module, state: StateDict, members: list[str], prefix: str | None, path: Path) -> StateDict:
    """The sub-model state of a DistillationModel file to load into a single model."""
    if prefix is not None:
        if prefix not in members:
            raise UserError(f"{path}: has no sub-model '{prefix}' (it holds {members})")
        return _sub_state(state, prefix)
    order = (["Student"] if "Student" in members else []) + [m for m in members if m != "Student"]
    scored = []
    for name in order:
        sub = _sub_state(state, name)
        missing, unexpected, shapes = _mismatch(model, sub)
        if not (missing or unexpected or shapes):
            return sub
        scored.append((len(missing) + len(unexpected) + len(shapes), name, sub))
    return min(scored, key=lambda t: t[0])[2]


def _classifier_keys(model: nn.Module) -> list[str]:
    from ssld.models.stages import classifier_param_names

    try:
        prefixes = {n.rsplit(".", 1)[0] + "." for n in classifier_param_names(model)}
    except TypeError:
        return []
    return [k for k in model.state_dict() if any(k.startswith(p) for p in prefixes)]


def load_weights(
    model: nn.Module,
    path: str | os.PathLike[str],
    strict: bool = True,
    prefix: str | None = None,
    ignore_classifier: bool = False,
    ema: bool = False,
) -> list[str]:
    """Load the weights in ``path`` into ``model``; return the keys left out (a dropped classifier).

    A DistillationModel file (``models.<Name>.*`` keys) loaded into a single model contributes one sub-model:
    ``prefix`` (e.g. ``"Teacher"``), else ``Student`` when it fits, else the sub-model whose keys fit; ``prefix`` is
    ignored for a single-model file, so callers may always pass the name they want. ``ignore_classifier`` drops the
    file's classifier when its class count differs (transfer learning: the new head keeps its fresh initialisation).
    ``strict=False`` tolerates missing and unexpected keys but never a shape mismatch.
    """
    p = resolve_weights_path(path)
    state = read_state_dict(p, ema=ema, model=model)
    members = distillation_members(state)
    target_is_distill = isinstance(getattr(model, "models", None), nn.ModuleDict)
    if members and not target_is_distill:
        state = _pick_member(model, state, members, prefix, p)
    skipped: list[str] = []
    if ignore_classifier:
        target = model.state_dict()
        cls_keys = _classifier_keys(model)
        if any(k in state and state[k].shape != target[k].shape for k in cls_keys):
            skipped = cls_keys
            state = {k: v for k, v in state.items() if k not in cls_keys}
    missing, unexpected, shapes = _mismatch(model, state)
    missing = [k for k in missing if k not in skipped]
    if shapes or (strict and (missing or unexpected)):
        parts = [f"{len(missing)} missing keys" + (f" (e.g. {', '.join(missing[:3])})" if missing else "")]
        parts.append(f"{len(unexpected)} unexpected" + (f" (e.g. {', '.join(unexpected[:3])})" if unexpected else ""))
        if shapes:
            parts.append(f"{len(shapes)} with another shape (e.g. {', '.join(shapes[:2])})")
        raise UserError(f"{p}: weights do not fit model '{model_label(model)}': {', '.join(parts)}")
    model.load_state_dict(state, strict=False)
    return skipped


def save_safetensors(
    state_dict: dict[str, torch.Tensor], path: str | os.PathLike[str], metadata: dict[str, Any] | None = None
) -> None:
    """Write ``state_dict`` as safetensors, atomically; ``metadata`` values are stored as strings.

    Tensors are moved to CPU and made contiguous; tensors sharing storage (tied weights) are copied, which
    safetensors requires.
    """
    from safetensors.torch import save_file

    seen: set[int] = set()
    tensors: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        t = value.detach().to("cpu").contiguous()
        storage = t.untyped_storage().data_ptr()
        if t.numel() and storage in seen:
            t = t.clone()
        seen.add(storage)
        tensors[key] = t
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
