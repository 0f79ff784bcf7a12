"""Checks that need more than types: model names exist, losses name real models, class counts agree."""

from __future__ import annotations

import re

from ssld.config.loader import KeyPath, format_path, where
from ssld.config.schema import SSLDConfig
from ssld.errors import UserError


def _fail(source: str, lines: dict[KeyPath, int], loc: KeyPath, msg: str) -> UserError:
    return UserError(f"{where(source, lines, loc)}: {format_path(loc)}: {msg}")


def check_semantics(cfg: SSLDConfig, source: str, lines: dict[KeyPath, int]) -> None:
    """Raise one-line :class:`UserError` for unknown models, bad loss pairs and class-count mismatches."""
    from ssld.losses import validate_loss_list
    from ssld.models import paddle_kwargs
    from ssld.models.factory import check_paddle_kwargs
    from ssld.models.names import resolve_model_name

    arch = cfg.Arch
    if arch.is_distillation:
        for i, (name, spec) in enumerate(arch.model_specs().items()):
            at = ("Arch", "models", i, name)
            reason = paddle_kwargs.unsupported_model(spec.name)
            if reason:
                raise _fail(source, lines, (*at, "name"), f"{spec.name!r} is not supported ({reason})")
            try:
                timm_name = resolve_model_name(spec.name)
            except UserError as e:
                raise _fail(source, lines, (*at, "name"), str(e)) from None
            try:
                check_paddle_kwargs(spec, timm_name)
            except paddle_kwargs.PaddleKwargError as e:
                raise _fail(source, lines, (*at, e.key), e.message) from None
        classes = {n: s.class_num for n, s in arch.model_specs().items()}
        if len(set(classes.values())) > 1:
            raise _fail(source, lines, ("Arch", "models"), f"sub-models disagree on class_num: {classes}")
        model_names: list[str] | None = arch.model_names()
    else:
        try:
            timm_name = resolve_model_name(arch.name)
        except UserError as e:
            raise _fail(source, lines, ("Arch", "name"), str(e)) from None
        try:
            check_paddle_kwargs(arch, timm_name)  # type: ignore[arg-type]  (the same fields as a ModelSpec)
        except paddle_kwargs.PaddleKwargError as e:
            raise _fail(source, lines, ("Arch", e.key), e.message) from None
        model_names = None
    for split in ("Train", "Eval"):
        entries = getattr(cfg.Loss, split)
        if entries is None:
            continue
        try:
            validate_loss_list(entries, model_names)
        except ValueError as e:
            rel = str(e)
            m = re.match(r"\[(\d+)\]((?:\.\w+)*)", rel)  # "[0].CELoss.weight: must be ..." -> its key path
            at = ("Loss", split, int(m[1]), *m[2].split(".")[1:]) if m else ("Loss", split)
            raise UserError(f"{where(source, lines, at)}: Loss.{split}{rel if rel.startswith('[') else ': ' + rel}") \
                from None
        if arch.is_distillation:
            _check_feature_keys(cfg, source, split, entries)
    from ssld.config.multilabel import multilabel_problem

    problem = multilabel_problem(cfg)
    if problem is not None:
        raise _fail(source, lines, *problem)


def _check_feature_keys(cfg: SSLDConfig, source: str, split: str, entries: list) -> None:
    """A loss ``key`` other than ``logits`` must be a feature output (``return_patterns``) of every model it reads."""
    from ssld.models.names import resolve_model_name
    from ssld.models.paddle_kwargs import return_names

    specs = cfg.Arch.model_specs()
    for i, entry in enumerate(entries):
        ((loss, opts),) = entry.items()
        key = (opts or {}).get("key")
        if key in (None, "logits"):
            continue
        names = [n for pair in (opts.get("model_name_pairs") or []) for n in pair] + list(opts.get("model_names") or [])
        for name in names:
            spec = specs[name]
            outputs = return_names(resolve_model_name(spec.name), spec.paddle_kwargs)
            if key not in outputs:
                have = f"its feature outputs: {', '.join(outputs)}" if outputs else "it has no return_patterns"
                raise UserError(f"{source}: Loss.{split}[{i}].{loss}.key: {key!r} is not an output of model "
                                f"{name!r} ({have})")
