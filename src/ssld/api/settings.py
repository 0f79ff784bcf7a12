"""The Python API's arguments as the config sections a YAML file would give, with one-line errors.

``ssld.distill(epochs=0, ...)`` must fail the way ``-o Global.epochs=0`` does, but name the argument the user
wrote: :data:`ARGUMENTS` maps config key paths back to argument names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ssld.config.schema import LR_SCHEDULES, SSLDConfig
from ssld.errors import UserError

OPTIMIZERS = {"sgd": "Momentum", "momentum": "Momentum", "adamw": "AdamW", "adam": "Adam", "rmsprop": "RMSProp"}
SCHEDULES = {name.lower(): name for name in LR_SCHEDULES}

# config key path -> the API argument that sets it (longest paths first when matching error messages)
ARGUMENTS = {
    "Global.output_dir": "out_dir", "Global.epochs": "epochs", "Global.seed": "seed", "Global.device": "device",
    "Global.checkpoints": "resume", "Global.tensorboard": "tensorboard", "Global.log_interval": "log_interval",
    "Global.max_steps_per_epoch": "max_steps_per_epoch", "Optimizer.lr.learning_rate": "lr",
    "Optimizer.lr.warmup_epoch": "warmup_epochs", "Optimizer.lr.eta_min": "min_lr", "Optimizer.lr.name": "schedule",
    "Optimizer.lr": "schedule", "Optimizer.name": "optimizer", "Optimizer.weight_decay": "weight_decay",
    "Optimizer.momentum": "momentum", "AMP.dtype": "amp", "AMP": "amp", "Arch.teacher_bn_mode": "teacher_bn_mode",
    "Loss.Train": "loss", "DataLoader.Train.dataset.soft_labels": "soft_labels", "DataLoader.Train": "train",
    "DataLoader.Eval": "val",
}


def argument_error(fn: str, message: str) -> UserError:
    """``message`` (``Key.path: what``) as ``ssld.<fn>: <argument>: what`` when an argument sets that key."""
    for path in sorted(ARGUMENTS, key=len, reverse=True):
        if message.startswith(path) and message[len(path):len(path) + 1] in (":", ".", "["):
            return UserError(f"ssld.{fn}: {ARGUMENTS[path]}{message[len(path):]}")
    return UserError(f"ssld.{fn}: {message}")


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _choice(fn: str, arg: str, value: str, names: dict[str, str]) -> str:
    if value in names.values():
        return value
    if value.lower() not in names:
        raise UserError(f"ssld.{fn}: {arg}: unknown {value!r} (one of {', '.join(sorted(names))})")
    return names[value.lower()]


def resume_path(resume: bool | str | Path, out_dir: str | Path) -> str | None:
    """``True``: the run's own latest checkpoint when there is one (else a fresh start); a path: that
    checkpoint (or run folder); ``False``: a fresh start."""
    if resume is True:
        latest = Path(out_dir) / "checkpoints" / "latest.pt"
        return str(latest) if latest.is_file() else None
    return str(resume) if resume else None


def build_config(fn: str, arch: dict[str, Any], loss: list[dict[str, Any]] | None, *, evaluate: bool,
                 out_dir: str | Path, epochs: int, lr: float, optimizer: str, momentum: float, weight_decay: float,
                 schedule: str, warmup_epochs: float, min_lr: float, amp: bool | str, device: str, seed: int,
                 resume: bool | str | Path, tensorboard: bool, log_interval: int,
                 options: dict[str, Any] | None) -> SSLDConfig:
    """The validated config of an API run (``options``: any further config keys, merged last)."""
    amp_section = None
    if amp:
        amp_section = {"enabled": True, **({"dtype": amp} if isinstance(amp, str) else {})}
    raw: dict[str, Any] = {
        "Global": {"output_dir": str(out_dir), "epochs": epochs, "device": device, "seed": seed,
                   "eval_during_train": evaluate, "checkpoints": resume_path(resume, out_dir),
                   "tensorboard": tensorboard, "log_interval": log_interval},
        "AMP": amp_section,
        "Arch": arch,
        "Optimizer": {"name": _choice(fn, "optimizer", optimizer, OPTIMIZERS), "momentum": momentum,
                      "weight_decay": weight_decay,
                      "lr": {"name": _choice(fn, "schedule", schedule, SCHEDULES), "learning_rate": lr,
                             "warmup_epoch": warmup_epochs, "eta_min": min_lr}},
    }
    if loss is not None:
        raw["Loss"] = {"Train": loss}
    if options:
        raw = _merge(raw, options)
    try:
        return SSLDConfig.model_validate(raw)
    except ValidationError as e:
        from ssld.config.loader import validation_error_line

        line = validation_error_line(e, "", {}).removeprefix(": ")
        raise argument_error(fn, line) from None
