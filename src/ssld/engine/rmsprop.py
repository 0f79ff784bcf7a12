"""Paddle's RMSProp, which neither torch nor timm computes: written here so PaddleClas configs train the same.

Paddle (``paddle.optimizer.RMSProp``, what PaddleClas's ``RMSProp`` builds) updates, per parameter::

    mean_square = rho * mean_square + (1 - rho) * g^2           (starts at 0)
    moment      = momentum * moment + lr * g / sqrt(mean_square + epsilon)
    param      -= moment

torch's ``RMSprop`` adds epsilon outside the square root and keeps the lr out of the momentum buffer (they differ
once the lr changes); timm's ``RMSpropTF`` has Paddle's form but starts ``mean_square`` at 1, which shrinks the
first hundred steps. L2 weight decay is added to the gradient, as Paddle's ``L2Decay`` regulariser does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


class PaddleRMSprop(torch.optim.Optimizer):
    """RMSProp with Paddle's update (module docstring); ``rho`` is the decay of the squared-gradient average."""

    def __init__(self, params: Iterable[Any], lr: float = 0.01, rho: float = 0.95, eps: float = 1e-6,
                 momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        if not 0.0 < rho < 1.0 or eps < 0.0 or momentum < 0.0 or weight_decay < 0.0:
            raise ValueError(f"invalid RMSProp setting: rho={rho}, eps={eps}, momentum={momentum}, "
                             f"weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps, "momentum": momentum,
                                  "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, rho, eps, momentum, decay = (group[k] for k in ("lr", "rho", "eps", "momentum", "weight_decay"))
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.add(p, alpha=decay) if decay else p.grad
                state = self.state[p]
                if not state:
                    state["mean_square"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["moment"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                mean_square, moment = state["mean_square"], state["moment"]
                mean_square.mul_(rho).addcmul_(grad, grad, value=1 - rho)
                moment.mul_(momentum).addcdiv_(grad, (mean_square + eps).sqrt_(), value=lr)
                p.sub_(moment)
        return loss
