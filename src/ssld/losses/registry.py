"""Loss registry: PaddleClas loss names → classes, config-list validation with one-line errors, summaries.

A config's loss list is PaddleClas's form, ``[{"DistillationDMLLoss": {"weight": 1.0, "model_name_pairs":
[["Student", "Teacher"]]}}, {"CELoss": None}]``; ``None`` options mean defaults, ``weight`` defaults to 1.0.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from ssld.losses.base import Loss, LossOptionError, number

LOSSES: dict[str, type[Loss]] = {}

# PaddleClas losses ssld does not implement, and why: refused as "not supported", never as a typo of another loss
UNSUPPORTED: dict[str, str] = {
    **dict.fromkeys(("AFDLoss", "MGDLoss", "PEFDLoss", "DistillationPairLoss", "DistillationRKDLoss"),
                    "feature-map distillation is not implemented"),
    **dict.fromkeys(("TripletLoss", "TripletLossV2", "TriHardLoss", "CenterLoss", "ArcMargin", "SupConLoss",
                     "SoftSupConLoss", "PairwiseCosface", "NpairsLoss", "MSMLoss", "EmlLoss", "ContrastiveLoss",
                     "TripletAngularMarginLoss", "DSHSDLoss", "LCDSHLoss", "DCHLoss"),
                    "metric-learning losses are not implemented"),
}


def register_loss(name: str) -> Callable[[type[Loss]], type[Loss]]:
    """Class decorator: make the loss available under ``name`` in config loss lists."""

    def add(cls: type[Loss]) -> type[Loss]:
        if name in LOSSES:
            raise ValueError(f"loss {name!r} is registered twice")
        LOSSES[name] = cls
        return cls

    return add


def _options(cls: type[Loss]) -> list[str]:
    params = inspect.signature(cls.__init__).parameters
    return ["weight", *(p for p in params if p != "self")]


def _did_you_mean(word: str, options: list[str], cutoff: float = 0.5) -> str:
    """A "; did you mean 'X'?" hint naming the closest option (case-insensitive), or an empty string."""
    lowered = {o.lower(): o for o in options}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)
    return f"; did you mean {lowered[close[0]]!r}?" if close else ""


def parse_entry(i: int, entry: Any) -> tuple[str, float, Loss]:
    """One list entry → (loss name, weight, constructed loss); ``ValueError("[i].Name.key: ...")`` when bad."""
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ValueError(f"[{i}]: expected one {{LossName: {{options}}}} mapping, got {entry!r}")
    ((name, kwargs),) = entry.items()
    where = f"[{i}].{name}"
    if name in UNSUPPORTED and name not in LOSSES:
        detail = ""
        if isinstance(kwargs, dict) and kwargs.get("base_loss_name"):
            detail = f"base_loss_name {kwargs['base_loss_name']!r}: "
        raise ValueError(f"{where}: the PaddleClas loss {name!r} is not supported ({detail}{UNSUPPORTED[name]})")
    if name not in LOSSES:
        # loss names share "Distillation...Loss": only a near-identical name is a typo worth naming
        raise ValueError(f"{where}: unknown loss{_did_you_mean(str(name), list(LOSSES), cutoff=0.9)} "
                         f"(known: {', '.join(sorted(LOSSES))})")
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"{where}: expected a mapping of options, got {kwargs!r}")  # noqa: TRY004 (contract)
    cls = LOSSES[name]
    allowed = _options(cls)
    for key in kwargs:
        if key not in allowed:
            raise ValueError(f"{where}.{key}: unknown option{_did_you_mean(str(key), allowed)} "
                             f"(allowed: {', '.join(allowed)})")
    for key, param in inspect.signature(cls.__init__).parameters.items():
        if param.default is inspect.Parameter.empty and key != "self" and key not in kwargs:
            raise ValueError(f"{where}.{key}: required option is missing")
    options = dict(kwargs)
    try:
        weight = number("weight", options.pop("weight", 1.0))
        loss = cls(**options)
    except LossOptionError as e:
        raise ValueError(f"{where}.{e.key}: {e.message}") from None
    return name, weight, loss


def parse_list(entries: Any) -> list[tuple[str, float, Loss]]:
    """Every entry of a loss list parsed by :func:`parse_entry`; the list must be non-empty."""
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"expected a non-empty list of {{LossName: {{options}}}} entries, got {entries!r}")
    return [parse_entry(i, entry) for i, entry in enumerate(entries)]


def _check_models(where: str, loss: Loss, model_names: list[str] | None) -> None:
    if not loss.distillation:
        return
    if model_names is None or len(model_names) < 2:
        raise ValueError(f"{where}: a distillation loss needs a DistillationModel with at least two models; "
                         "this Arch has a single model")
    key, named = loss.referenced_models()
    for label, n in named:
        if n not in model_names:
            raise ValueError(f"{where}.{key}: {label} names model {n!r}, which is not in Arch.models "
                             f"({', '.join(model_names)}){_did_you_mean(n, model_names)}")


def validate_loss_list(entries: Any, model_names: list[str] | None) -> None:
    """Raise ``ValueError("[i].Name.key: message")`` for the first bad entry.

    ``model_names`` are the DistillationModel's sub-model names, or None for a single model (then distillation
    losses are refused). A plain ``CELoss`` is accepted with several models because eval runs the infer model
    alone; given a DistillationModel's outputs at train time it raises, pointing at DistillationGTCELoss.
    """
    for i, (name, _, loss) in enumerate(parse_list(entries)):
        _check_models(f"[{i}].{name}", loss, model_names)
