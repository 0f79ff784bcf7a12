"""PaddleClas lr schedules (ppcls/optimizer/learning_rate.py semantics) against sequences worked out by hand."""

from __future__ import annotations

import pytest
import torch

from ssld.config.schema import OptimizerConfig
from ssld.engine.scheduler import build_scheduler


def _lrs(lr: dict, steps_per_epoch: int, epochs: int) -> list[float]:
    """The lr of every iteration of the run, as the trainer sets it (step_update(t) before update t)."""
    opt_cfg = OptimizerConfig.model_validate({"name": "Momentum", "lr": lr})
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=opt_cfg.lr.learning_rate)
    sched = build_scheduler(opt, opt_cfg, steps_per_epoch, epochs)
    out = []
    for t in range(steps_per_epoch * epochs):
        sched.step_update(t)
        out.append(opt.param_groups[0]["lr"])
    return out


def test_multistep_decay_by_iteration() -> None:
    # 2 iterations per epoch, milestones at epochs 1 and 3: lr changes at iterations 2 and 6
    got = _lrs({"name": "MultiStepDecay", "learning_rate": 0.8, "milestones": [1, 3], "gamma": 0.5}, 2, 4)
    assert got == pytest.approx([0.8, 0.8, 0.4, 0.4, 0.4, 0.4, 0.2, 0.2])


def test_multistep_decay_after_warmup_counts_from_the_warmup_end() -> None:
    # 1 warmup epoch of 2 iterations from 0.2 to 0.8 (0.2, 0.5), then milestone 1 epoch after the warmup ends
    got = _lrs({"name": "MultiStepDecay", "learning_rate": 0.8, "milestones": [1], "gamma": 0.1,
                "warmup_epoch": 1, "warmup_start_lr": 0.2}, 2, 3)
    assert got == pytest.approx([0.2, 0.5, 0.8, 0.8, 0.08, 0.08])


def test_multistep_needs_milestones_and_ignores_step_each_epoch() -> None:
    from ssld.errors import UserError

    with pytest.raises(UserError, match="milestones"):
        _lrs({"name": "MultiStepDecay", "learning_rate": 0.1}, 2, 2)
    # PaddleClas's builder overwrites step_each_epoch with the loader's length; so does ssld
    got = _lrs({"name": "MultiStepDecay", "learning_rate": 1.0, "milestones": [1], "step_each_epoch": 1}, 3, 2)
    assert got == pytest.approx([1.0, 1.0, 1.0, 0.1, 0.1, 0.1])


def test_piecewise_with_warmup_climbs_to_the_first_value() -> None:
    got = _lrs({"name": "Piecewise", "decay_epochs": [1], "values": [0.4, 0.04], "warmup_epoch": 1}, 2, 3)
    # warmup 0 -> 0.4 over 2 iterations (0, 0.2), then values[0] for an epoch, then values[1]
    assert got == pytest.approx([0.0, 0.2, 0.4, 0.4, 0.04, 0.04])


def test_piecewise_with_learning_rate_follows_paddleclas_rule() -> None:
    # PaddleClas: a learning_rate in a Piecewise section means / 10 every 30 epochs, replacing decay_epochs/values
    got = _lrs({"name": "Piecewise", "learning_rate": 1.0, "decay_epochs": [1], "values": [5.0, 6.0]}, 1, 65)
    assert got[0] == pytest.approx(1.0) and got[29] == pytest.approx(1.0)
    assert got[30] == pytest.approx(0.1) and got[59] == pytest.approx(0.1) and got[60] == pytest.approx(0.01)
    short = _lrs({"name": "Piecewise", "learning_rate": 0.3}, 2, 3)  # under 30 epochs: one value throughout
    assert short == pytest.approx([0.3] * 6)


def test_linear_is_polynomial_decay_to_end_lr() -> None:
    # power 1 from 1.0 to 0.2 over 4 iterations after a 2-iteration warmup from 0: 0, 0.5, then 1, .8, .6, .4
    got = _lrs({"name": "Linear", "learning_rate": 1.0, "end_lr": 0.2, "warmup_epoch": 1}, 2, 3)
    assert got == pytest.approx([0.0, 0.5, 1.0, 0.8, 0.6, 0.4])
    squared = _lrs({"name": "Linear", "learning_rate": 1.0, "power": 2.0}, 2, 2)
    assert squared == pytest.approx([1.0, 0.5625, 0.25, 0.0625])  # (1 - t/4)^2


def test_constlr_and_step_and_cosine() -> None:
    assert _lrs({"name": "ConstLR", "learning_rate": 0.3, "warmup_epoch": 1, "warmup_start_lr": 0.1}, 2, 2) \
        == pytest.approx([0.1, 0.2, 0.3, 0.3])
    assert _lrs({"name": "Step", "learning_rate": 1.0, "step_size": 1, "gamma": 0.5}, 2, 3) \
        == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.25, 0.25])
    # Cosine over 4 iterations after a 2-iteration warmup: 0.5·(1 + cos(πt/4))
    assert _lrs({"name": "Cosine", "learning_rate": 1.0, "warmup_epoch": 1}, 2, 3) \
        == pytest.approx([0.0, 0.5, 1.0, 0.853553, 0.5, 0.146447], abs=1e-6)


def test_by_epoch_holds_each_epoch_at_its_first_iteration() -> None:
    # PaddleClas by_epoch: 1 warmup epoch from 0, then a cosine over the 2 other epochs, stepped once per epoch
    assert _lrs({"name": "Cosine", "learning_rate": 1.0, "warmup_epoch": 1, "by_epoch": True}, 2, 3) \
        == pytest.approx([0.0, 0.0, 1.0, 1.0, 0.5, 0.5])
    assert _lrs({"name": "MultiStepDecay", "learning_rate": 0.8, "milestones": [1], "by_epoch": True}, 3, 2) \
        == pytest.approx([0.8] * 3 + [0.08] * 3)


@pytest.mark.parametrize(("lr", "message"), [
    ({"name": "Cyclic"}, "a PaddleClas schedule ssld does not support"),
    ({"name": "OneCycleLR"}, "'OneCycleLR'"),
    ({"name": "Cosinus"}, "unknown schedule (supported: Cosine"),
    ({"name": "Linear", "cycle": True}, "Optimizer.lr.cycle: not supported"),
])
def test_refusals_name_the_value(tmp_path, lr, message) -> None:
    import yaml

    from ssld.config import load_config
    from ssld.errors import UserError

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"Arch": {"name": "cifar_resnet8", "class_num": 10}, "Optimizer": {"lr": lr}}))
    with pytest.raises(UserError) as info:
        load_config(path)
    assert message in str(info.value)
    if "name" in lr and lr["name"] not in ("Cosine", "Linear"):
        assert repr(lr["name"]) in str(info.value)
