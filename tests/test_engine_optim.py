"""Optimizer parameter groups and per-iteration learning-rate schedules."""

from __future__ import annotations

import io
import math

import pytest
import torch

from ssld.config.schema import ModelSpec, OptimizerConfig
from ssld.engine.optim import build_optimizer
from ssld.engine.rmsprop import PaddleRMSprop
from ssld.engine.scheduler import build_scheduler
from ssld.errors import UserError
from ssld.models import DistillationModel, create_model


def _opt(**kw: object) -> OptimizerConfig:
    base = {"name": "Momentum", "lr": {"name": "Cosine", "learning_rate": 0.4, "warmup_epoch": 2,
                                        "warmup_start_lr": 0.04, "eta_min": 0.001}}
    return OptimizerConfig.model_validate({**base, **kw})


def _resnet() -> torch.nn.Module:
    return create_model(ModelSpec(name="cifar_resnet8"), num_classes=10)


def _lrs(sched: object, opt: torch.optim.Optimizer, updates: range) -> list[list[float]]:
    out = []
    for t in updates:
        sched.step_update(t)
        out.append([g["lr"] for g in opt.param_groups])
    return out


def test_warmup_then_cosine_per_iteration() -> None:
    model = _resnet()
    opt = build_optimizer(model, _opt())
    steps, epochs = 10, 6
    sched = build_scheduler(opt, _opt(), steps_per_epoch=steps, epochs=epochs)
    lrs = [row[0] for row in _lrs(sched, opt, range(steps * epochs + 1))]
    warm = 2 * steps
    for t in range(warm):  # linear from warmup_start_lr to the base lr over 2 epochs of iterations
        assert lrs[t] == pytest.approx(0.04 + (0.4 - 0.04) * t / warm)
    for t in range(warm, steps * epochs):  # cosine over the remaining iterations, down to eta_min
        expected = 0.001 + 0.5 * (0.4 - 0.001) * (1 + math.cos(math.pi * (t - warm) / (steps * epochs - warm)))
        assert lrs[t] == pytest.approx(expected)
    assert lrs[-1] == pytest.approx(0.001)
    assert len(set(lrs[:warm])) == warm  # changes every iteration, not every epoch


def test_lr_mult_groups_scale_the_schedule_and_head_keeps_one() -> None:
    model = _resnet()
    mults = [0.1, 0.2, 0.5, 0.8]  # stem + 3 stages of the small-image ResNet
    cfg = _opt(lr_mult_list=mults)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch=5, epochs=4)
    scale_of = {id(p): g["lr_scale"] for g in opt.param_groups for p in g["params"]}
    names = dict(model.named_parameters())
    assert scale_of[id(names["conv1.weight"])] == 0.1
    assert scale_of[id(names["layer3.0.conv1.weight"])] == 0.8
    head = [n for n in names if n.startswith(model.default_cfg.get("classifier", "fc"))]
    assert head and all(scale_of[id(names[n])] == 1.0 for n in head)
    for t, row in zip(range(20), _lrs(sched, opt, range(20)), strict=True):
        base = row[[g["lr_scale"] for g in opt.param_groups].index(1.0)]
        for g, lr in zip(opt.param_groups, row, strict=True):
            assert lr == pytest.approx(base * g["lr_scale"]), f"update {t}"


def test_wrong_lr_mult_length_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"Optimizer\.lr_mult_list: .*4 entries"):
        build_optimizer(_resnet(), _opt(lr_mult_list=[0.1, 0.2, 0.3, 0.4, 0.5]))


def test_nesterov_without_momentum_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"Optimizer\.nesterov"):
        build_optimizer(_resnet(), _opt(nesterov=True, momentum=0.0))
    assert build_optimizer(_resnet(), _opt(nesterov=True)).param_groups[0]["nesterov"]


def test_no_weight_decay_on_norm_and_bias() -> None:
    model = _resnet()
    opt = build_optimizer(model, _opt(regularizer={"name": "L2", "coeff": 1e-4}, one_dim_param_no_weight_decay=True))
    decay_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        assert decay_of[id(p)] == (0.0 if p.ndim <= 1 else 1e-4), name
    opt = build_optimizer(model, _opt(weight_decay=1e-4, no_weight_decay_name="bn bias"))
    decay_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decay_of[id(dict(model.named_parameters())["bn1.weight"])] == 0.0
    assert decay_of[id(dict(model.named_parameters())["conv1.weight"])] == 1e-4


def test_frozen_teacher_is_not_in_the_optimizer() -> None:
    teacher, student = _resnet(), _resnet()
    model = DistillationModel({"Teacher": teacher, "Student": student}, frozen=["Teacher"], infer_model_name="Student")
    opt = build_optimizer(model, _opt(lr_mult_list=[0.1, 0.2, 0.5, 0.8]))
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert in_opt == {id(p) for p in student.parameters()}
    assert not any(id(p) in in_opt for p in teacher.parameters())


@pytest.mark.parametrize("name,cls", [("AdamW", torch.optim.AdamW), ("Adam", torch.optim.Adam),
                                      ("RMSProp", PaddleRMSprop), ("SGD", torch.optim.SGD)])
def test_optimizer_kinds(name: str, cls: type) -> None:
    opt = build_optimizer(_resnet(), _opt(name=name, weight_decay=0.05))
    assert isinstance(opt, cls)
    assert {g["weight_decay"] for g in opt.param_groups} == {0.05}


def test_step_and_piecewise_schedules() -> None:
    model = _resnet()
    cfg = _opt(lr={"name": "Step", "learning_rate": 0.1, "step_size": 2, "gamma": 0.1})
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch=3, epochs=6)
    lrs = [r[0] for r in _lrs(sched, opt, range(18))]
    assert lrs[5] == pytest.approx(0.1) and lrs[6] == pytest.approx(0.01) and lrs[12] == pytest.approx(0.001)
    cfg = _opt(lr={"name": "Piecewise", "decay_epochs": [1, 3], "values": [0.3, 0.03, 0.003]})
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch=4, epochs=5)
    lrs = [r[0] for r in _lrs(sched, opt, range(20))]
    assert lrs[3] == pytest.approx(0.3) and lrs[4] == pytest.approx(0.03) and lrs[12] == pytest.approx(0.003)
    with pytest.raises(UserError, match="Piecewise"):
        build_scheduler(opt, _opt(lr={"name": "Piecewise", "decay_epochs": [1]}), 4, 5)


def test_scheduler_state_round_trips() -> None:
    model = _resnet()
    opt = build_optimizer(model, _opt())
    sched = build_scheduler(opt, _opt(), steps_per_epoch=10, epochs=3)
    sched.step_update(17)
    buf = io.BytesIO()
    torch.save(sched.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)  # checkpoints are read with weights_only
    opt2 = build_optimizer(model, _opt())
    sched2 = build_scheduler(opt2, _opt(), steps_per_epoch=10, epochs=3)
    sched2.load_state_dict(state)
    sched2.step_update(17)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
