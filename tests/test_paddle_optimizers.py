"""PaddleClas's optimizer settings that torch spells otherwise: Paddle's RMSProp update, ``clip_norm`` (each
gradient tensor clipped on its own) and the ``clip_grad`` key PaddleClas ignores."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from ssld.config.schema import OptimizerConfig
from ssld.engine.optim import build_optimizer
from ssld.engine.rmsprop import PaddleRMSprop
from ssld.engine.train_loop import clip_each_norm_

RNG = np.random.default_rng(0)
W0 = RNG.normal(size=6).astype(np.float32)
GRADS = RNG.normal(size=(12, 6)).astype(np.float32)
LRS = [0.01 * (1 + i % 3) for i in range(12)]  # a changing lr: where the lr sits in the momentum matters


def _ours(rho: float, eps: float, momentum: float, decay: float) -> np.ndarray:
    p = torch.nn.Parameter(torch.tensor(W0))
    opt = PaddleRMSprop([p], lr=LRS[0], rho=rho, eps=eps, momentum=momentum, weight_decay=decay)
    out = []
    for lr, g in zip(LRS, GRADS, strict=True):
        opt.param_groups[0]["lr"] = lr
        p.grad = torch.tensor(g)
        opt.step()
        out.append(p.detach().numpy().copy())
    return np.stack(out)


def _by_hand(rho: float, eps: float, momentum: float, decay: float) -> np.ndarray:
    w, ms, mom, out = W0.astype(np.float64), np.zeros(6), np.zeros(6), []
    for lr, g in zip(LRS, GRADS.astype(np.float64), strict=True):
        g = g + decay * w
        ms = rho * ms + (1 - rho) * g * g
        mom = momentum * mom + lr * g / np.sqrt(ms + eps)
        w = w - mom
        out.append(w)
    return np.stack(out)


@pytest.mark.parametrize("rho,eps,momentum,decay", [(0.9, 1e-3, 0.9, 0.0), (0.95, 1e-6, 0.0, 1e-2)])
def test_rmsprop_follows_paddles_update_by_hand(rho: float, eps: float, momentum: float, decay: float) -> None:
    np.testing.assert_allclose(_ours(rho, eps, momentum, decay), _by_hand(rho, eps, momentum, decay), rtol=1e-5,
                               atol=1e-6)
    if not momentum:  # without momentum and with a tiny epsilon torch's RMSprop is nearly the same
        return
    # torch's own RMSprop (epsilon outside the root, lr outside the momentum) is measurably another optimizer
    p = torch.nn.Parameter(torch.tensor(W0))
    torch_opt = torch.optim.RMSprop([p], lr=LRS[0], alpha=rho, eps=eps, momentum=momentum, weight_decay=decay)
    for lr, g in zip(LRS, GRADS, strict=True):
        torch_opt.param_groups[0]["lr"] = lr
        p.grad = torch.tensor(g)
        torch_opt.step()
    assert np.abs(p.detach().numpy() - _by_hand(rho, eps, momentum, decay)[-1]).max() > 1e-3


_PADDLE = """
import json, sys
import numpy as np
import paddle
w0, grads, lrs = (np.array(x, np.float32) for x in json.loads(sys.argv[1]))
p = paddle.create_parameter([len(w0)], "float32", default_initializer=paddle.nn.initializer.Assign(w0))
opt = paddle.optimizer.RMSProp(learning_rate=0.01, rho=0.9, epsilon=1e-3, momentum=0.9, parameters=[p])
out = []
for lr, g in zip(lrs, grads):
    opt.set_lr(float(lr))
    (p * paddle.to_tensor(g)).sum().backward()
    opt.step()
    opt.clear_grad()
    out.append(p.numpy().tolist())
print(json.dumps(out))
"""


@pytest.mark.skipif(importlib.util.find_spec("paddle") is None, reason="paddlepaddle not installed (make test "
                                                                       "installs it)")
def test_rmsprop_equals_paddles_own() -> None:
    # Paddle in a process of its own, as in the other parity tests
    args = json.dumps([W0.tolist(), GRADS.tolist(), LRS])
    run = subprocess.run([sys.executable, "-c", _PADDLE, args], capture_output=True, text=True, timeout=120,
                         check=True)
    paddle_out = np.array(json.loads(run.stdout.strip().splitlines()[-1]), np.float32)
    np.testing.assert_allclose(_ours(0.9, 1e-3, 0.9, 0.0), paddle_out, rtol=1e-5, atol=1e-6)


def test_config_rho_epsilon_reach_the_optimizer() -> None:
    cfg = OptimizerConfig.model_validate({"name": "RMSProp", "momentum": 0.9, "rho": 0.9, "epsilon": "1e-3",
                                          "lr": {"learning_rate": 0.032}})
    opt = build_optimizer(torch.nn.Linear(3, 2), cfg)
    assert isinstance(opt, PaddleRMSprop)
    group = opt.param_groups[0]
    assert (group["rho"], group["eps"], group["momentum"]) == (0.9, 1e-3, 0.9)
    # without epsilon, Paddle's defaults: 1e-6 for RMSProp, 1e-8 for Adam(W)
    plain = OptimizerConfig.model_validate({"name": "RMSProp"})
    assert build_optimizer(torch.nn.Linear(3, 2), plain).param_groups[0]["eps"] == 1e-6
    adam = OptimizerConfig.model_validate({"name": "AdamW"})
    assert build_optimizer(torch.nn.Linear(3, 2), adam).param_groups[0]["eps"] == 1e-8


def test_clip_norm_clips_each_tensor_on_its_own() -> None:
    big, small = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    big.grad, small.grad = torch.tensor([3.0, 4.0]), torch.tensor([0.3, 0.4])  # norms 5 and 0.5
    clip_each_norm_([big, small, torch.nn.Parameter(torch.zeros(1))], 1.0)
    assert big.grad.tolist() == pytest.approx([0.6, 0.8])  # scaled to norm 1
    assert small.grad.tolist() == pytest.approx([0.3, 0.4])  # under the limit: untouched (a global clip would
    # have scaled it by 1 / 5.02)


def test_clip_grad_is_ignored_as_paddleclas_does(caplog) -> None:
    import logging

    with caplog.at_level(logging.INFO, logger="ssld.config"):
        cfg = OptimizerConfig.model_validate({"name": "AdamW", "clip_grad": 5.0, "clip_norm": 10})
    assert cfg.clip_norm == 10 and cfg.clip_grad_norm is None
    assert "clip_grad" in caplog.text and "ignored" in caplog.text
