"""DistillationModel and build_model: frozen teachers stay bit-identical, BN modes, dropout off, Arch configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
from helpers.configs import REFERENCE_ARCH
from torch import nn

from ssld.config.schema import ArchConfig
from ssld.errors import UserError
from ssld.models import DistillationModel, build_model, load_weights, save_safetensors


def make_teacher() -> nn.Module:
    # dropout and drop-path on: the wrapper must switch them off
    return timm.create_model("cifar_resnet8", num_classes=10, drop_rate=0.5, drop_path_rate=0.3)


def make_model(bn_mode: str) -> DistillationModel:
    torch.manual_seed(0)
    teacher = make_teacher()
    with torch.no_grad():  # give the teacher non-trivial running statistics, as a trained teacher has
        teacher.train()(torch.randn(16, 3, 28, 28) * 2 + 0.5)
    student = timm.create_model("cifar_resnet_tiny", num_classes=10)
    return DistillationModel({"Teacher": teacher, "Student": student}, ["Teacher"], "Student", bn_mode)


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}


def distill_steps(model: DistillationModel, steps: int = 4) -> None:
    """A few real distillation steps: symmetric KL between student and teacher, SGD on what requires grad."""
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    for i in range(steps):
        out = model(torch.randn(8, 3, 28, 28, generator=torch.Generator().manual_seed(i)))
        assert out["Teacher"].grad_fn is None and not out["Teacher"].requires_grad
        s, t = F.log_softmax(out["Student"], 1), F.log_softmax(out["Teacher"], 1)
        loss = 0.5 * (F.kl_div(s, t, log_target=True, reduction="batchmean")
                      + F.kl_div(t, s, log_target=True, reduction="batchmean"))
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("bn_mode", ["train", "eval"])
def test_teacher_bit_identical_after_training(bn_mode: str) -> None:
    model = make_model(bn_mode)
    teacher_before, student_before = snapshot(model.models["Teacher"]), snapshot(model.models["Student"])
    distill_steps(model)
    teacher_after = snapshot(model.models["Teacher"])
    assert teacher_before.keys() == teacher_after.keys()
    assert any(k.endswith("running_mean") for k in teacher_after)
    for k in teacher_before:
        assert torch.equal(teacher_before[k], teacher_after[k]), k
    assert all(p.grad is None for p in model.models["Teacher"].parameters())
    assert not all(torch.equal(student_before[k], v) for k, v in snapshot(model.models["Student"]).items())


def test_bn_modes_and_dropout_off() -> None:
    x = torch.randn(8, 3, 28, 28)
    reference = make_model("eval").models["Teacher"]
    for bn_mode in ("train", "eval"):
        model = make_model(bn_mode).train()
        teacher = model.models["Teacher"]
        out1, out2 = model(x)["Teacher"], model(x)["Teacher"]
        assert torch.equal(out1, out2), "teacher dropout/drop-path must be off"
        bns = [m for m in teacher.modules() if isinstance(m, nn.BatchNorm2d)]
        others = [m for m in teacher.modules() if not isinstance(m, nn.BatchNorm2d)]
        assert all(m.training == (bn_mode == "train") for m in bns)
        assert not any(m.training for m in others)
        assert model.models["Student"].training
        ref_eval = reference.eval()(x)
        if bn_mode == "eval":
            torch.testing.assert_close(out1, ref_eval, rtol=0, atol=0)
        else:  # batch statistics: differs from eval mode, equals a BN-train / dropout-off forward of the same net
            assert not torch.allclose(out1, ref_eval)
            twin = make_teacher()
            twin.load_state_dict(teacher.state_dict())
            twin.eval()
            for m in twin.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.train()
            with torch.no_grad():
                torch.testing.assert_close(out1, twin(x))
        model.eval()
        assert not any(m.training for m in model.modules()), "model.eval() puts every sub-model in eval"
        torch.testing.assert_close(model(x)["Teacher"], ref_eval, rtol=0, atol=0)


def test_outputs_and_attributes() -> None:
    model = make_model("train")
    out = model(torch.randn(4, 3, 32, 32))
    assert list(out) == ["Teacher", "Student"] and all(v.shape == (4, 10) for v in out.values())
    assert model.infer_model is model.models["Student"] and model.infer_model_name == "Student"
    assert model.frozen_names == ["Teacher"] and model.trainable_names == ["Student"]
    assert list(model.trainable) == ["Student"]
    assert all(not p.requires_grad for p in model.models["Teacher"].parameters())
    assert all(p.requires_grad for p in model.models["Student"].parameters())


def test_student_state_dict_loads_into_plain_student(tmp_path: Path) -> None:
    model = make_model("train")
    distill_steps(model, 2)
    model.eval()
    x = torch.randn(2, 3, 28, 28)
    plain = timm.create_model("cifar_resnet_tiny", num_classes=10)
    plain.load_state_dict(model.student_state_dict())
    torch.testing.assert_close(plain.eval()(x), model(x)["Student"], rtol=0, atol=0)
    save_safetensors(model.student_state_dict(), tmp_path / "student.safetensors")
    torch.save({"model": model.state_dict(), "epoch": 1}, tmp_path / "latest.pt")
    whole = make_model("train")
    load_weights(whole, tmp_path / "latest.pt")  # a DistillationModel checkpoint into a DistillationModel
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in whole.state_dict().items())
    for path in ("student.safetensors", "latest.pt"):
        again = timm.create_model("cifar_resnet_tiny", num_classes=10)
        load_weights(again, tmp_path / path)
        torch.testing.assert_close(again.eval()(x), model(x)["Student"], rtol=0, atol=0)


def test_class_count_mismatch() -> None:
    with pytest.raises(ValueError, match=r"disagree on the number of classes: \{'Teacher': 10, 'Student': 5\}"):
        DistillationModel(
            {"Teacher": make_teacher(), "Student": timm.create_model("cifar_resnet_tiny", num_classes=5)}, ["Teacher"]
        )
    arch = ArchConfig(
        name="DistillationModel",
        class_num=10,
        models=[{"Teacher": {"name": "resnet8"}}, {"Student": {"name": "resnet_tiny", "class_num": 5}}],
    )
    with pytest.raises(UserError, match=r"^Arch.models: sub-models disagree on the number of classes"):
        build_model(arch)


def test_pretrained_list_overrides_models_pretrained(tmp_path: Path) -> None:
    teacher = timm.create_model("cifar_resnet8", num_classes=10)
    save_safetensors(teacher.state_dict(), tmp_path / "teacher.safetensors")
    arch = ArchConfig(
        name="DistillationModel",
        class_num=10,
        models=[{"Teacher": {"name": "resnet8", "pretrained": "elsewhere.pt"}}, {"Student": {"name": "resnet_tiny"}}],
        pretrained_list=[str(tmp_path / "teacher.safetensors"), None],
        freeze_params_list=[True, False],
    )
    model = build_model(arch)
    assert isinstance(model, DistillationModel)
    got = model.models["Teacher"].state_dict()
    assert all(torch.equal(got[k], v) for k, v in teacher.state_dict().items())
    bad = arch.model_copy(update={"pretrained_list": [str(tmp_path / "nope.pt"), None]})
    with pytest.raises(UserError, match=r"^Arch.pretrained_list\[0\]: file not found: .*nope.pt$"):
        build_model(bad)


def test_reference_arch_block(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^Arch.models\[0\].Teacher.use_ssld: use_ssld: true asks for PaddleClas"):
        build_model(ArchConfig(**REFERENCE_ARCH))
    teacher = timm.create_model("paddle_mobilenetv3_large_100")
    save_safetensors(teacher.state_dict(), tmp_path / "mv3_large_ssld.safetensors")
    cfg = {**REFERENCE_ARCH, "models": [dict(m) for m in REFERENCE_ARCH["models"]]}
    local = str(tmp_path / "mv3_large_ssld.safetensors")
    cfg["models"][0] = {"Teacher": {**cfg["models"][0]["Teacher"], "pretrained": local}}
    model = build_model(ArchConfig(**cfg))
    assert isinstance(model, DistillationModel)
    assert model.frozen_names == ["Teacher"] and model.infer_model_name == "Student"
    assert type(model.infer_model).__name__ == "MobileNetV3" and model.infer_model.num_classes == 1000
    got = model.models["Teacher"].state_dict()
    assert all(torch.equal(got[k], v) for k, v in teacher.state_dict().items())
    out = model.train()(torch.randn(2, 3, 64, 64))
    assert out["Teacher"].shape == out["Student"].shape == (2, 1000)
    assert out["Student"].requires_grad and not out["Teacher"].requires_grad
