"""benchmarks/bench_torchdistill.py gives torchdistill ssld's rounding: the loss and the lr match bit for bit."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("torchdistill")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_torchdistill as bench

from ssld.config.schema import OptimizerConfig
from ssld.engine.scheduler import build_scheduler
from ssld.losses import build_loss


def test_lambda_cosine_equals_ssld_schedule_bit_for_bit() -> None:
    steps_per_epoch, epochs = 78, 2
    p = torch.nn.Parameter(torch.zeros(1))
    ssld_opt = torch.optim.SGD([p], lr=0.1)
    td_opt = torch.optim.SGD([p], lr=0.1)
    sched = build_scheduler(ssld_opt, OptimizerConfig(lr={"name": "Cosine", "learning_rate": 0.1}),
                            steps_per_epoch, epochs)
    lam = torch.optim.lr_scheduler.LambdaLR(td_opt, bench.cosine_factor(steps_per_epoch * epochs))
    for update in range(1, steps_per_epoch * epochs + 1):
        assert ssld_opt.param_groups[0]["lr"] == td_opt.param_groups[0]["lr"], update
        p.grad = torch.zeros(1)
        td_opt.step()
        lam.step()
        sched.step_update(update)


def test_same_kl_equals_ssld_loss_bit_for_bit() -> None:
    from torchdistill.losses.registry import get_high_level_loss

    bench.register_same_kl()
    T = 4.0
    ssld_loss = build_loss([{"DistillationKLDivLoss": {"weight": 1.0, "T": T,
                                                       "model_name_pairs": [["Student", "Teacher"]]}}])
    td_loss = get_high_level_loss({"key": "WeightedSumLoss", "kwargs": {"sub_terms": {"kd": {
        "criterion": {"key": "SameKL", "kwargs": {"temperature": T}}, "weight": T ** 2}}}})
    g = torch.Generator().manual_seed(0)
    teacher = 3 * torch.randn(128, 10, generator=g)
    base = 3 * torch.randn(128, 10, generator=g)
    s1, s2 = base.clone().requires_grad_(), base.clone().requires_grad_()
    a = ssld_loss({"Student": s1, "Teacher": teacher}, torch.zeros(128, dtype=torch.long))["loss"]
    b = td_loss({"student": {".": {"output": s2}}, "teacher": {".": {"output": teacher}}}, {}, None)
    a.backward()
    b.backward()
    assert torch.equal(a, b)
    assert torch.equal(s1.grad, s2.grad)
