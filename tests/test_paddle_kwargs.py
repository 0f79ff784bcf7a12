"""PaddleClas model arguments and Arch keys in configs written here (one per key family), and their refusals."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from ssld.config import load_config
from ssld.config.schema import ModelSpec
from ssld.errors import UserError
from ssld.models import create_model
from ssld.models.paddle_kwargs import SamePadAvgPool


def _cfg(tmp_path: Path, teacher: dict[str, Any], student: dict[str, Any], **sections: Any) -> Path:
    data = {
        "Global": {"image_shape": [3, 32, 64], "epochs": 2},
        "Arch": {"name": "DistillationModel", "class_num": 4, "freeze_params_list": [True, False],
                 "models": [{"Teacher": teacher}, {"Student": student}], "infer_model_name": "Student"},
        "Loss": {"Train": [{"DistillationDMLLoss": {"model_name_pairs": [["Student", "Teacher"]]}}]},
        **sections,
    }
    path = tmp_path / "paddle.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _refusal(path: Path) -> str:
    with pytest.raises(UserError) as info:
        load_config(path)
    return str(info.value)


# ---- honoured arguments ----------------------------------------------------------------------------------------

def test_dropout_prob_is_the_dropout_before_the_classifier() -> None:
    assert create_model(ModelSpec(name="PPLCNet_x0_5", dropout_prob=0.3), 4).drop_rate == 0.3
    assert create_model(ModelSpec(name="MobileNetV3_small_x0_5", dropout_prob=None), 4).drop_rate == 0.0
    with pytest.raises(UserError, match="dropout_prob: give dropout_prob"):
        create_model(ModelSpec(name="PPLCNet_x0_5", dropout_prob=0.1, drop_rate=0.1), 4)


def test_class_expand_and_use_last_conv_rebuild_the_head() -> None:
    plain = create_model(ModelSpec(name="PPLCNet_x0_5"), 4)
    wide = create_model(ModelSpec(name="PPLCNet_x0_5", class_expand=96), 4)
    assert wide.conv_head.out_channels == 96 and wide.classifier.in_features == 96
    assert (wide.conv_head.bias is None) == (plain.conv_head.bias is None)
    assert wide(torch.randn(2, 3, 32, 32)).shape == (2, 4)
    bare = create_model(ModelSpec(name="PPLCNet_x0_5", use_last_conv=False), 4)
    assert isinstance(bare.conv_head, torch.nn.Identity) and bare.drop_rate == 0.0
    assert bare.classifier.in_features == bare.blocks[-1][-1].conv_pw.out_channels
    assert bare(torch.randn(2, 3, 32, 32)).shape == (2, 4)


@pytest.mark.parametrize("name", ["PPLCNet_x0_5", "lcnet_050"])
def test_stride_list_on_pplcnet(name: str) -> None:
    model = create_model(ModelSpec(name=name, stride_list=[2, [2, 1], [2, 1], [2, 1], [2, 1]]), 4)
    # height halves 5 times (64 -> 2), width only at the stem (64 -> 32), as in PaddleClas's text-line models
    assert model.forward_features(torch.randn(1, 3, 64, 64)).shape[-2:] == (2, 32)


@pytest.mark.parametrize("name", ["ResNet18", "ResNet18_vd"])
def test_stride_list_on_resnet(name: str) -> None:
    model = create_model(ModelSpec(name=name, stride_list=[2, [2, 1], [2, 1], [2, 1], [2, 1]]), 4)
    assert model.forward_features(torch.randn(1, 3, 64, 48)).shape[-2:] == (2, 24)
    assert model.forward_features(torch.randn(1, 3, 65, 47)).shape[-2:] == (3, 24)


@pytest.mark.parametrize(("h", "w", "stride"), [(6, 7, (2, 1)), (5, 5, (2, 2)), (4, 3, (1, 1)), (7, 4, (1, 2))])
def test_same_pad_avg_pool_is_paddles_exclusive_same_pool(h: int, w: int, stride: tuple[int, int]) -> None:
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    out = SamePadAvgPool(stride)(x)
    oh, ow = -(-h // stride[0]), -(-w // stride[1])  # SAME: ceil(size / stride)
    assert out.shape[-2:] == (oh, ow)
    for i, j in itertools.product(range(oh), range(ow)):
        window = x[..., i * stride[0]:i * stride[0] + 2, j * stride[1]:j * stride[1] + 2]  # in-bounds part
        assert torch.allclose(out[..., i, j], window.mean(dim=(-2, -1)))


def test_lr_mult_list_inside_a_model_scales_its_stages(tmp_path: Path) -> None:
    from ssld.engine.check import build_parts
    from ssld.engine.scheduler import build_scheduler

    mults = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    path = _cfg(tmp_path, {"name": "ResNet18"}, {"name": "PPLCNet_x0_5", "lr_mult_list": mults})
    cfg = load_config(path)
    model, _, opt = build_parts(cfg)
    student = model.models["Student"]
    got = {n: getattr(p, "lr_mult", 1.0) for n, p in student.named_parameters()}
    assert got["conv_stem.weight"] == 0.0 and got["bn1.weight"] == 0.0  # PaddleClas's conv1
    assert got["conv_head.weight"] == 1.0 and got["classifier.weight"] == 1.0  # no multiplier in PaddleClas
    # blocks2 -> 0.1; each of blocks3..blocks6 starts at a stride-2 block and gets the next value
    blocks = [b for stage in student.blocks for b in stage]
    seen, expect = [], 0.1
    for i, block in enumerate(blocks):
        if tuple(block.conv_dw.stride) != (1, 1) and i > 0:
            expect += 0.1
        seen.append(round(expect, 6))
    assert seen[-1] == 0.5
    names = [f"blocks.{s}.{j}.conv_dw.weight" for s, stage in enumerate(student.blocks) for j in range(len(stage))]
    assert [got[n] for n in names] == seen
    sched = build_scheduler(opt, cfg.Optimizer, steps_per_epoch=4, epochs=2)
    sched.step_update(5)
    peak = next(g["lr"] for g in opt.param_groups if g.get("lr_scale", 1.0) == 1.0)
    assert sorted({round(g["lr"] / peak, 6) for g in opt.param_groups}) == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 1.0]


def test_paddleclas_pulc_style_config_checks_and_steps(tmp_path: Path) -> None:
    """Arch.use_sync_bn, Teacher stride_list, Student dropout_prob/lr_mult_list/stride_list, MultiStepDecay."""
    from ssld.engine.check import step

    strides = [2, [2, 1], [2, 1], [2, 1], [2, 1]]
    path = _cfg(tmp_path, {"name": "ResNet18_vd", "stride_list": strides},
                {"name": "PPLCNet_x0_5", "dropout_prob": 0.2, "stride_list": strides,
                 "lr_mult_list": [0.0, 0.4, 0.4, 0.8, 0.8, 1.0]},
                Optimizer={"name": "Momentum", "lr": {"name": "MultiStepDecay", "learning_rate": 0.1,
                                                      "milestones": [1], "step_each_epoch": 1}})
    data = yaml.safe_load(path.read_text())
    data["Arch"]["use_sync_bn"] = True
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    cfg = load_config(path)
    assert cfg.Global.use_sync_bn
    parts = step(cfg, batch_size=2)
    assert torch.isfinite(torch.tensor(parts["loss"]))


def test_use_sync_bn_on_one_process_is_a_noop_with_a_notice(tmp_path: Path, caplog) -> None:
    import logging

    from ssld.engine.model_setup import build, prepare

    path = _cfg(tmp_path, {"name": "cifar_resnet8"}, {"name": "cifar_resnet8"})
    data = yaml.safe_load(path.read_text())
    data["Arch"]["use_sync_bn"] = True
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    with caplog.at_level(logging.INFO, logger="ssld.engine"):
        trained = prepare(build(cfg), cfg, torch.device("cpu"))
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in trained.model.modules())
    assert "use_sync_bn" in caplog.text and "one process" in caplog.text


# ---- refusals: one line, the key, the value, "not supported" ---------------------------------------------------

@pytest.mark.parametrize(("teacher", "expect"), [
    ({"name": "ResNet18", "return_patterns": ["blocks[1]", "avg_pool"]},
     "Arch.models[0].Teacher.return_patterns: 'avg_pool' is not supported (ssld returns these layers of"),
    ({"name": "ResNet18", "return_patterns": ["blocks[8]"]}, "'blocks[8]' is not supported"),
    ({"name": "PPLCNet_x0_5", "return_stages": 7}, "Teacher.return_stages: stage indices are 0..4, got 7"),
    ({"name": "cifar_resnet8", "return_stages": True}, "Teacher.return_stages: True is not supported (ssld honours"),
    ({"name": "PPLCNet_x0_5", "scale": 0.5}, "Teacher.scale: 0.5 is not supported (the model name gives the width"),
    ({"name": "ResNet18", "dropout_prob": 0.2}, "Teacher.dropout_prob: 0.2 is not supported (ssld honours it on"),
    ({"name": "cifar_resnet8", "stride_list": [1, 1, 1, 1, 1]}, "Teacher.stride_list: [1, 1, 1, 1, 1] is not supp"),
    ({"name": "PPLCNet_x0_5", "stride_list": [2, 2]}, "Teacher.stride_list: must be a list of 5 strides"),
    ({"name": "PPLCNet_x0_5", "lr_mult_list": [1.0]}, "Teacher.lr_mult_list: must be 6 numbers"),
    ({"name": "AttentionModel", "pretrained_list": None, "models": []},
     "Arch.models[0].Teacher.name: 'AttentionModel' is not supported (AFD feature-distillation connector)"),
    ({"name": "RecModel", "Backbone": {"name": "PPLCNet_x2_5"}}, "'RecModel' is not supported"),
])
def test_model_argument_refusals(tmp_path: Path, teacher: dict, expect: str) -> None:
    message = _refusal(_cfg(tmp_path, teacher, {"name": "cifar_resnet8"}))
    assert expect in message and "unknown" not in message and "did you mean" not in message
    assert message.startswith(str(tmp_path / "paddle.yaml") + ":")  # file:line


def test_arch_and_dataset_refusals(tmp_path: Path) -> None:
    path = _cfg(tmp_path, {"name": "cifar_resnet8"}, {"name": "cifar_resnet8"})
    data = yaml.safe_load(path.read_text())
    data["Arch"]["infer_output_key"] = "features"
    path.write_text(yaml.safe_dump(data))
    assert "Arch.infer_output_key: not supported (GeneralRecognition" in _refusal(path)
    assert "'features'" in _refusal(path)
    del data["Arch"]["infer_output_key"]
    data["DataLoader"] = {"Train": {"dataset": {"name": "VeriWild"}}}  # MultiLabelDataset is read now
    path.write_text(yaml.safe_dump(data))
    message = _refusal(path)
    assert "DataLoader.Train.dataset.name: a PaddleClas dataset ssld does not support" in message
    assert "'VeriWild'" in message


def test_pretrained_true_says_to_give_a_local_weights_file(tmp_path: Path) -> None:
    from ssld.models.factory import USE_SSLD_MESSAGE

    assert ".pdparams" in USE_SSLD_MESSAGE and ".safetensors" in USE_SSLD_MESSAGE
    with pytest.raises(UserError, match=r"Arch.models\[0\].Teacher.use_ssld: .*\.pdparams"):
        create_model(ModelSpec(name="PPLCNet_x0_5", pretrained=True, use_ssld=True), 4, "Arch.models[0].Teacher")


# ---- feature outputs (return_patterns / return_stages) ---------------------------------------------------------

def test_return_patterns_give_paddleclas_dict_inside_a_distillation_model(tmp_path: Path) -> None:
    from ssld.engine.model_setup import build

    path = _cfg(tmp_path, {"name": "ResNet18", "return_stages": True},
                {"name": "PPLCNet_x0_5", "return_stages": True, "return_patterns": ["blocks3", "blocks5"]})
    model = build(load_config(path))
    out = model(torch.randn(2, 3, 64, 64))
    teacher, student = out["Teacher"], out["Student"]
    # ResNet18's stage outputs are PaddleClas's blocks[1], [3], [5], [7]; given both keys, return_patterns wins
    assert [tuple(teacher[k].shape[1:]) for k in ("blocks[1]", "blocks[3]", "blocks[5]", "blocks[7]")] == \
        [(64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)]
    assert sorted(student) == ["blocks3", "blocks5", "logits"]
    assert tuple(student["blocks3"].shape[1:]) == (32, 16, 16) and tuple(student["blocks5"].shape[1:]) == (128, 4, 4)
    assert teacher["logits"].shape == student["logits"].shape == (2, 4)
    alone = model.infer_model(torch.randn(2, 3, 64, 64))  # eval, export and predict see logits
    assert isinstance(alone, torch.Tensor) and alone.shape == (2, 4)
    # the feature is the named block's output: blocks[3] is the last block of ResNet's second stage
    x = torch.randn(1, 3, 64, 64)
    t = model.models["Teacher"].eval()
    with torch.no_grad():
        ref = t.layer2(t.layer1(t.maxpool(t.act1(t.bn1(t.conv1(x))))))
        model.eval()
        assert torch.allclose(model(x)["Teacher"]["blocks[3]"], ref)


def test_distance_loss_on_a_feature_map_like_the_pulc_configs(tmp_path: Path) -> None:
    from ssld.engine.check import build_parts, step

    both = {"name": "PPLCNet_x0_5", "return_stages": True, "return_patterns": ["blocks3", "blocks4"]}
    path = _cfg(tmp_path, both, dict(both), Loss={"Train": [
        {"DistillationGTCELoss": {"weight": 1.0, "key": "logits", "model_names": ["Student", "Teacher"]}},
        {"DistillationDMLLoss": {"weight": 1.0, "key": "logits", "model_name_pairs": [["Student", "Teacher"]]}},
        {"DistillationDistanceLoss": {"weight": 1.0, "key": "blocks4", "model_name_pairs": [["Student", "Teacher"]]}},
    ]})
    data = yaml.safe_load(path.read_text())
    data["Arch"]["freeze_params_list"] = [False, False]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    cfg = load_config(path)
    model, loss_fn, _ = build_parts(cfg)
    out = model(torch.randn(2, 3, 32, 32))
    parts = loss_fn(out, torch.tensor([1, -1]))
    expect = ((out["Student"]["blocks4"] - out["Teacher"]["blocks4"]) ** 2).mean()
    assert parts["DistillationDistanceLoss"].item() == pytest.approx(expect.item(), rel=1e-5)
    assert torch.isfinite(torch.tensor(step(cfg, batch_size=2)["loss"]))


def test_a_feature_key_the_model_does_not_return_is_refused(tmp_path: Path) -> None:
    path = _cfg(tmp_path, {"name": "PPLCNet_x0_5"}, {"name": "PPLCNet_x0_5", "return_patterns": ["blocks4"]},
                Loss={"Train": [{"DistillationDistanceLoss": {"key": "blocks4",
                                                              "model_name_pairs": [["Student", "Teacher"]]}}]})
    message = _refusal(path)
    assert "Loss.Train[0].DistillationDistanceLoss.key: 'blocks4' is not an output of model 'Teacher'" in message
    assert "no return_patterns" in message


@pytest.mark.parametrize(("name", "stage_ends"), [
    ("ResNet18", [1, 3, 5, 7]), ("ResNet34", [2, 6, 12, 15]), ("ResNet50_vd", [2, 6, 12, 15]),
    ("ResNet101_vd", [2, 6, 29, 32]), ("ResNet152_vd", [2, 10, 46, 49]), ("ResNet200_vd", [2, 14, 62, 65]),
])
def test_resnet_block_patterns_count_the_networks_blocks(name: str, stage_ends: list[int]) -> None:
    """``blocks[i]`` numbers PaddleClas's residual blocks over all stages; return_stages picks each stage's last."""
    import timm

    from ssld.models.names import resolve_model_name
    from ssld.models.paddle_kwargs import return_names

    timm_name = resolve_model_name(name)
    with torch.device("meta"):
        model = timm.create_model(timm_name)
    n_blocks = sum(len(getattr(model, f"layer{i}")) for i in range(1, 5))
    assert return_names(timm_name, {"return_stages": True}) == [f"blocks[{i}]" for i in stage_ends]
    assert stage_ends[-1] == n_blocks - 1
    with pytest.raises(ValueError, match=rf"'blocks\[{n_blocks}\]' is not supported"):
        return_names(timm_name, {"return_patterns": [f"blocks[{n_blocks}]"]})
