"""Build the networks a config describes: one timm model, or a DistillationModel of several.

``pretrained: true`` means timm's pretrained weights. They are taken from the local Hugging Face / torch hub
cache when present; otherwise they are downloaded only when the hub answers within a few seconds, so an offline
machine gets one clear error at once instead of a minute of retries. ``pretrained: <path>`` loads a local file
(see :mod:`ssld.models.weights`). Errors name the config key (``Arch.models[0].Teacher.pretrained: ...``).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from torch import nn

from ssld.config.schema import ArchConfig, ModelSpec
from ssld.errors import UserError
from ssld.models import paddle_kwargs
from ssld.models.distillation import DistillationModel
from ssld.models.names import resolve_model_name
from ssld.models.weights import load_weights, resolve_weights_path

log = logging.getLogger("ssld.models")

_PROBE_TIMEOUT_S = 3.0
USE_SSLD_MESSAGE = (
    "use_ssld: true asks for PaddleClas's SSLD weights, which ssld does not download: give pretrained a local "
    ".pdparams/.safetensors path instead (e.g. PaddleClas's *_ssld_pretrained.pdparams, or a student.safetensors "
    "from `ssld train`)"
)


def _cached_timm_weights(timm_name: str) -> str | None:
    """Path of timm's pretrained weights for ``timm_name`` in the local HF or torch hub cache, if there."""
    import torch.hub
    from huggingface_hub import try_to_load_from_cache
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(timm_name)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        repo, _, revision = cfg.hf_hub_id.partition("@")
        files = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
        for filename in files:
            found = try_to_load_from_cache(repo, filename, revision=revision or None)
            if isinstance(found, str):
                return found
    if cfg.url:
        local = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(cfg.url).path).name
        if local.is_file():
            return str(local)
    return cfg.file if cfg.file and Path(cfg.file).is_file() else None


def _hub_reachable() -> bool:
    """False when HF_HUB_OFFLINE is set or the Hugging Face hub does not answer within a few seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=_PROBE_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def check_paddle_kwargs(spec: ModelSpec, timm_name: str) -> None:
    """Refuse (``PaddleKwargError``) PaddleClas model arguments that cannot be honoured on ``timm_name``."""
    if spec.drop_rate is not None and "dropout_prob" in spec.paddle_kwargs:
        raise paddle_kwargs.PaddleKwargError("dropout_prob", "give dropout_prob (PaddleClas) or drop_rate, not both")
    if spec.drop_path_rate is not None and "drop_connect_rate" in (spec.paddle_kwargs.get("override_params") or {}):
        raise paddle_kwargs.PaddleKwargError("override_params.drop_connect_rate",
                                             "give drop_connect_rate (PaddleClas) or drop_path_rate, not both")
    paddle_kwargs.check(spec.name, timm_name, spec.paddle_kwargs)


def _size_kwargs(timm_name: str, image_size: tuple[int, int] | None) -> dict[str, Any]:
    """``img_size`` for a timm network of fixed input size (ViT, Swin...) when the run's size is another."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(timm_name)
    if image_size is None or cfg is None or not cfg.fixed_input_size:
        return {}
    if tuple(cfg.input_size[-2:]) == tuple(image_size):
        return {}
    return {"img_size": tuple(image_size)}


def _timm_kwargs(spec: ModelSpec, num_classes: int, timm_name: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"num_classes": num_classes, **_size_kwargs(timm_name, spec.image_size)}
    if spec.drop_rate is not None:
        kwargs["drop_rate"] = spec.drop_rate
    if spec.drop_path_rate is not None:
        kwargs["drop_path_rate"] = spec.drop_path_rate
    return {**kwargs, **paddle_kwargs.timm_kwargs(spec.paddle_kwargs, timm_name, spec.name), **spec.kwargs}


def _timm_create(timm_name: str, where: str, **kwargs: Any) -> nn.Module:
    import timm

    try:
        return timm.create_model(timm_name, **kwargs)
    except TypeError as e:
        raise UserError(f"{where}: model '{timm_name}' does not accept these arguments ({e})") from None
    except (ValueError, AssertionError) as e:  # a size or width the network's design cannot take
        size = f" at {kwargs['img_size'][0]}x{kwargs['img_size'][1]} px" if "img_size" in kwargs else ""
        raise UserError(f"{where}: model '{timm_name}' cannot be built{size} ({e})") from None


def _pretrained_timm(timm_name: str, kwargs: dict[str, Any], where: str, key: str) -> nn.Module:
    """timm model with its pretrained weights, from the local cache or a reachable hub; UserError otherwise."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(timm_name)
    if cfg is None or not cfg.has_weights:
        raise UserError(
            f"{key}: timm has no pretrained weights for '{timm_name}' (PaddleClas downloads its own for "
            "pretrained: true; ssld does not): give a local .pdparams/.safetensors path instead"
        )
    cached = _cached_timm_weights(timm_name)
    if cached is not None:
        return _timm_create(timm_name, where, pretrained=True, pretrained_cfg_overlay={"file": cached}, **kwargs)
    offline_msg = (
        f"{key}: true needs timm weights for '{timm_name}' (no network or local Hugging Face "
        "cache); set pretrained to a local .pt/.pth/.safetensors path"
    )
    if not _hub_reachable():
        raise UserError(offline_msg)
    try:
        return _timm_create(timm_name, where, pretrained=True, **kwargs)
    except (OSError, RuntimeError) as e:
        raise UserError(f"{offline_msg} [{type(e).__name__}]") from None


def create_model(
    spec: ModelSpec,
    num_classes: int,
    where: str = "Arch",
    allow_random: bool = False,
    pretrained_key: str | None = None,
) -> nn.Module:
    """Build ``spec`` as a timm classifier with ``num_classes`` outputs and its initial weights.

    ``where`` is the config key path of ``spec`` used in error messages; ``pretrained_key`` the key the
    ``pretrained`` value came from (default ``<where>.pretrained``). With ``allow_random`` (``ssld check``),
    weights that cannot be had here (timm weights offline, SSLD weights, a missing local file) give a warning and random
    initialisation instead of an error; weights that exist but do not fit are still an error.
    """
    reason = paddle_kwargs.unsupported_model(spec.name)
    if reason:
        raise UserError(f"{where}.name: {spec.name!r} is not supported ({reason})")
    try:
        timm_name = resolve_model_name(spec.name)
    except UserError as e:
        raise UserError(f"{where}.name: {e}") from None
    try:
        check_paddle_kwargs(spec, timm_name)
    except paddle_kwargs.PaddleKwargError as e:
        raise UserError(f"{where}.{e.key}: {e.message}") from None
    kwargs = _timm_kwargs(spec, num_classes, timm_name)
    key = pretrained_key or f"{where}.pretrained"
    pretrained = spec.pretrained
    try:
        if pretrained is True and spec.use_ssld:
            raise UserError(f"{where}.use_ssld: {USE_SSLD_MESSAGE}")
        if pretrained is True:
            return paddle_kwargs.apply(_pretrained_timm(timm_name, kwargs, where, key), timm_name, spec.paddle_kwargs)
        if isinstance(pretrained, str) and pretrained and not resolve_weights_path(pretrained).is_file():
            raise UserError(f"{key}: file not found: {pretrained}")
    except UserError as e:
        if not allow_random:
            raise
        log.warning("%s; using random weights", e)
        pretrained = False
    model = paddle_kwargs.apply(_timm_create(timm_name, where, **kwargs), timm_name, spec.paddle_kwargs)
    if isinstance(pretrained, str) and pretrained:
        try:
            load_weights(model, pretrained)
        except UserError as e:
            raise UserError(f"{key}: {e}") from None
    return model


def build_model(arch: ArchConfig, allow_random: bool = False, skip_frozen: bool = False) -> nn.Module:
    """The model of an ``Arch`` section: a single timm model or a :class:`DistillationModel`.

    ``pretrained_list[i]``, when set, overrides ``models[i].pretrained`` (PaddleClas reads but ignores it).
    ``skip_frozen`` leaves the frozen models (the teachers) out, never built: offline targets stand in for them.
    """
    if not arch.is_distillation:
        return create_model(arch.single_spec(), arch.class_num, "Arch", allow_random)
    overrides = arch.pretrained_list or [None] * len(arch.model_names())
    frozen = arch.frozen_names()
    models: dict[str, nn.Module] = {}
    for i, ((name, spec), override) in enumerate(zip(arch.model_specs().items(), overrides, strict=True)):
        if skip_frozen and name in frozen:
            continue
        key = None
        if override:
            spec, key = spec.model_copy(update={"pretrained": override}), f"Arch.pretrained_list[{i}]"
        where = f"Arch.models[{i}].{name}"
        models[name] = create_model(spec, spec.class_num or arch.class_num, where, allow_random, key)
    try:
        return DistillationModel(models, [] if skip_frozen else frozen, arch.infer_model_name, arch.teacher_bn_mode)
    except ValueError as e:
        raise UserError(f"Arch.models: {e}") from None
