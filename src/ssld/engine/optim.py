"""Optimizer factory: PaddleClas ``Optimizer`` sections become torch optimizers with parameter groups.

Groups split the trainable parameters two ways: weight decay or none (``one_dim_param_no_weight_decay``,
``no_weight_decay_name``, or a parameter's own ``no_weight_decay`` attribute), and per-stage learning-rate multipliers (``lr_mult_list``). A multiplier is stored as
the group's ``lr_scale``, which timm's schedulers apply every time they set the learning rate. Frozen parameters
(the teacher) never enter the optimizer.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from ssld.config.schema import OptimizerConfig
from ssld.engine.rmsprop import PaddleRMSprop
from ssld.errors import UserError


def trainable_parts(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(prefix, module)`` pairs whose parameters train: the non-frozen sub-models of a DistillationModel
    (its ``trainable`` dict; prefix ``models.Student.``) or the model itself (prefix ``""``)."""
    trainable = getattr(model, "trainable", None)
    if not isinstance(trainable, dict):
        return [("", model)]
    paths = {id(m): name for name, m in model.named_modules()}
    return [(paths[id(m)] + ".", m) for m in trainable.values()]


def _lr_scales(model: nn.Module, mults: list[float], key: str) -> dict[str, float]:
    """Parameter name -> lr multiplier, from the model's stage grouping (classifier head stays at 1.0)."""
    from ssld.models.stages import classifier_param_names, lr_mult_groups

    scales: dict[str, float] = {}
    for prefix, part in trainable_parts(model):
        try:
            groups = lr_mult_groups(part, len(mults))
        except ValueError as e:
            raise UserError(f"{key}: {e}") from None
        if len(groups) != len(mults):
            raise UserError(f"{key}: {len(mults)} values given, expected {len(groups)} for this model")
        head = set(classifier_param_names(part))
        for names, mult in zip(groups, mults, strict=True):
            for n in names:
                if n not in head:
                    scales[prefix + n] = float(mult)
    return scales


def _no_decay(name: str, p: torch.Tensor, cfg: OptimizerConfig) -> bool:
    if getattr(p, "no_weight_decay", False):  # set by the model (PaddleClas's L2Decay(0.0) on some BN layers)
        return True
    if cfg.one_dim_param_no_weight_decay and p.ndim <= 1:
        return True
    return bool(cfg.no_weight_decay_name) and any(s in name for s in cfg.no_weight_decay_name.split())


def param_groups(model: nn.Module, cfg: OptimizerConfig, arch_lr_mult: list[float] | None = None) -> list[dict]:
    """Parameter groups keyed by (weight decay, lr scale); only parameters with ``requires_grad``."""
    mults = cfg.lr_mult_list or arch_lr_mult
    key = "Optimizer.lr_mult_list" if cfg.lr_mult_list else "Arch.lr_mult_list"
    scales = _lr_scales(model, mults, key) if mults else {}
    buckets: dict[tuple[float, float], list[torch.Tensor]] = defaultdict(list)
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        wd = 0.0 if _no_decay(name, p, cfg) else cfg.decay
        # ``lr_mult``: a PaddleClas per-parameter multiplier set by the model (ssld.models.paddle_kwargs)
        buckets[(wd, scales.get(name, 1.0) * getattr(p, "lr_mult", 1.0))].append(p)
    groups = []
    for (wd, scale), params in buckets.items():
        group: dict = {"params": params, "weight_decay": wd}
        if mults or scale != 1.0:
            group["lr_scale"] = scale
        groups.append(group)
    if not groups:
        raise UserError("Arch: no trainable parameters (every model is frozen in freeze_params_list)")
    return groups


def build_optimizer(
    model: nn.Module, opt_cfg: OptimizerConfig, arch_lr_mult: list[float] | None = None
) -> torch.optim.Optimizer:
    """A torch optimizer for the model's trainable parameters, as the config's ``Optimizer`` section says.

    ``Momentum``/``SGD``: SGD with momentum (and Nesterov); ``AdamW``: decoupled decay; ``Adam``: L2 decay added to
    the gradient (PaddleClas ``L2`` regulariser semantics); ``RMSProp`` as Paddle's (:mod:`ssld.engine.rmsprop`). The base lr is the schedule's peak; the
    scheduler sets each group's actual lr (times its ``lr_scale``) every iteration.
    """
    groups = param_groups(model, opt_cfg, arch_lr_mult)
    lr = opt_cfg.lr.learning_rate
    name = opt_cfg.name
    if name in ("Momentum", "SGD"):
        if opt_cfg.nesterov and opt_cfg.momentum <= 0:
            raise UserError("Optimizer.nesterov: Nesterov momentum needs Optimizer.momentum > 0")
        return torch.optim.SGD(groups, lr=lr, momentum=opt_cfg.momentum, nesterov=opt_cfg.nesterov)
    betas = (opt_cfg.beta1, opt_cfg.beta2)
    if name == "AdamW":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=_eps(opt_cfg, 1e-8))
    if name == "Adam":
        return torch.optim.Adam(groups, lr=lr, betas=betas, eps=_eps(opt_cfg, 1e-8))
    return PaddleRMSprop(groups, lr=lr, rho=opt_cfg.rho, eps=_eps(opt_cfg, 1e-6), momentum=opt_cfg.momentum)


def _eps(opt_cfg: OptimizerConfig, default: float) -> float:
    """``Optimizer.epsilon``, else Paddle's default for this optimizer."""
    return default if opt_cfg.epsilon is None else opt_cfg.epsilon
