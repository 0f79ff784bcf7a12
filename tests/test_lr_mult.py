"""lr_mult_list: every parameter's effective learning rate, at every iteration of a warmup + cosine schedule, is the
schedule's base value times its stage multiplier (the classifier keeps 1.0).

The expected stage of each parameter and the expected schedule are written out here from the model layouts and
the PaddleClas formulas, independently of ``ssld.models.stages`` and timm's scheduler.
"""

from __future__ import annotations

import math
import re

import pytest
import timm
import torch

from ssld.config.schema import ModelSpec, OptimizerConfig
from ssld.engine.optim import build_optimizer
from ssld.engine.scheduler import build_scheduler
from ssld.errors import UserError
from ssld.models import create_model

BASE_LR, WARMUP_START, ETA_MIN = 0.1, 0.01, 0.001
WARMUP_EPOCHS, EPOCHS, STEPS_PER_EPOCH = 2, 6, 5


def expected_base_lr(t: int) -> float:
    """PaddleClas Cosine with linear warmup, per iteration: warmup from WARMUP_START to BASE_LR, then cosine."""
    warm, total = WARMUP_EPOCHS * STEPS_PER_EPOCH, EPOCHS * STEPS_PER_EPOCH
    if t < warm:
        return WARMUP_START + (BASE_LR - WARMUP_START) * t / warm
    return ETA_MIN + 0.5 * (BASE_LR - ETA_MIN) * (1 + math.cos(math.pi * (t - warm) / (total - warm)))


def opt_config(mults: list[float] | None, name: str = "Momentum") -> OptimizerConfig:
    return OptimizerConfig(
        name=name,
        lr={"name": "Cosine", "learning_rate": BASE_LR, "warmup_epoch": WARMUP_EPOCHS,
            "warmup_start_lr": WARMUP_START, "eta_min": ETA_MIN},
        regularizer={"name": "L2", "coeff": 1e-4},
        lr_mult_list=mults,
    )


def resnet_stage(name: str) -> int | None:
    """ResNet layout: stem (``conv1``/``bn1``) -> 0, ``layerK`` -> K, classifier ``fc`` -> None (mult 1.0)."""
    if name.startswith("fc."):
        return None
    m = re.match(r"layer(\d+)\.", name)
    return int(m.group(1)) if m else 0


def mobilenetv3_stage_fn(model: torch.nn.Module):
    """MobileNetV3-large: its 15 inverted-residual blocks in order, 3 per group; the stem goes with the first
    group, the final 1x1 conv block and ``conv_head`` with the last; ``classifier`` keeps 1.0."""
    order: list[str] = []
    for s, stage in enumerate(model.blocks):
        for b, block in enumerate(stage):
            if type(block).__name__ != "ConvBnAct":
                order.append(f"blocks.{s}.{b}.")
    assert len(order) == 15, order

    def stage(name: str) -> int | None:
        if name.startswith("classifier."):
            return None
        if name.startswith(("conv_stem.", "bn1.")):
            return 0
        for i, prefix in enumerate(order):
            if name.startswith(prefix):
                return i // 3
        return 4  # blocks.6 (the last 1x1 ConvBnAct) and conv_head

    return stage


def check_schedule(model: torch.nn.Module, mults: list[float], stage_of) -> None:
    cfg = opt_config(mults)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS)
    lr_of = {}
    seen_stages = set()
    for t in range(EPOCHS * STEPS_PER_EPOCH):
        sched.step_update(t)
        for group in opt.param_groups:
            for p in group["params"]:
                lr_of[id(p)] = group["lr"]
        base = expected_base_lr(t)
        for name, p in model.named_parameters():
            stage = stage_of(name)
            seen_stages.add(stage)
            mult = 1.0 if stage is None else mults[stage]
            assert lr_of[id(p)] == pytest.approx(base * mult, rel=1e-9, abs=1e-12), (t, name, stage)
    assert seen_stages == {None, *range(len(mults))}


def test_resnet50d_five_multipliers_through_warmup_and_cosine() -> None:
    model = timm.create_model("resnet50d", num_classes=7)
    check_schedule(model, [0.1, 0.1, 0.2, 0.2, 0.3], resnet_stage)


def test_mobilenetv3_large_blocks_grouped_by_three() -> None:
    model = timm.create_model("mobilenetv3_large_100", num_classes=7)
    check_schedule(model, [0.25, 0.25, 0.5, 0.5, 0.75], mobilenetv3_stage_fn(model))


def test_cifar_resnet_stem_and_three_stages() -> None:
    model = create_model(ModelSpec(name="resnet20"), 10)
    check_schedule(model, [0.05, 0.1, 0.4, 0.8], resnet_stage)


def test_one_sgd_step_moves_each_parameter_by_its_own_lr() -> None:
    """The group lr is really what the optimizer applies: a first SGD step (no momentum history, no decay)
    changes each parameter by exactly -lr_eff * grad."""
    model = create_model(ModelSpec(name="resnet8"), 10)
    mults = [0.0, 0.25, 0.5, 1.5]
    cfg = opt_config(mults).model_copy(update={"regularizer": None})
    opt = build_optimizer(model, cfg)
    build_scheduler(opt, cfg, steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model(torch.randn(4, 3, 28, 28)).logsumexp(1).mean().backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    for name, p in model.named_parameters():
        stage = resnet_stage(name)
        lr = WARMUP_START * (1.0 if stage is None else mults[stage])
        torch.testing.assert_close(p.detach(), before[name] - lr * grads[name], rtol=1e-5, atol=1e-7)
        if stage == 0:
            assert torch.equal(p.detach(), before[name])


@pytest.mark.parametrize(("arch", "mults", "want"), [
    ("resnet50d", [0.1, 0.2, 0.3, 0.4], "5"),
    ("resnet20", [0.1, 0.1, 0.2, 0.2, 0.3], "4"),
])
def test_wrong_length_is_one_clear_error(arch: str, mults: list[float], want: str) -> None:
    model = timm.create_model(arch, num_classes=3) if arch == "resnet50d" else create_model(ModelSpec(name=arch), 3)
    with pytest.raises(UserError) as exc:
        build_optimizer(model, opt_config(mults))
    msg = str(exc.value)
    assert "lr_mult_list" in msg and want in msg and "\n" not in msg
