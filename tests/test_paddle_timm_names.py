"""PaddleClas names of timm's networks of the same design, their PaddleClas arguments (ConvNeXt's layer scale,
TinyNet's override_params, the fused-kernel switches), and the names ssld has no network for."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
import yaml

from ssld.config import load_config
from ssld.config.schema import ModelSpec
from ssld.errors import UserError
from ssld.models import create_model
from ssld.models.names import resolve_model_name
from ssld.models.paddle.timm_names import TIMM_NAMES


def test_every_paddleclas_name_resolves_to_a_timm_network() -> None:
    missing = {k: v for k, v in TIMM_NAMES.items() if not timm.is_model(v.split(".")[0])}
    assert not missing
    assert resolve_model_name("SwinTransformerV2_tiny_patch4_window8_256") == "swinv2_tiny_window8_256"
    assert resolve_model_name("SwinTransformer_tiny_patch4_window7_224") == "paddle_swin_tiny_patch4_window7_224"
    assert resolve_model_name("RegNetX_4GF") == "regnetx_040"
    assert resolve_model_name("ReXNet_1_3") == "rexnet_130"
    assert resolve_model_name("ResNet50_vd") == "resnet50d"  # the faithful networks still win


def test_convnext_layer_scale_and_head_init_scale(tmp_path: Path) -> None:
    # PaddleClas writes numbers such as 1e-6, which YAML reads as strings
    model = create_model(ModelSpec(name="ConvNeXt_tiny", layer_scale_init_value="1e-2", head_init_scale=0.0), 3)
    gamma = model.stages[0].blocks[0].gamma
    assert torch.allclose(gamma, torch.full_like(gamma, 1e-2))  # timm's default is 1e-6
    assert model.head.fc.weight.abs().max() == 0  # the head's initial weights scaled by 0
    with pytest.raises(UserError, match="layer_scale_init_value: must be a number"):
        create_model(ModelSpec(name="ConvNeXt_tiny", layer_scale_init_value="tiny"), 3)
    with pytest.raises(UserError, match="layer_scale_init_value.*on convnext models only"):
        create_model(ModelSpec(name="RegNetX_200MF", layer_scale_init_value=1e-6), 3)


def test_tinynet_override_params_map_onto_timm() -> None:
    overrides = {"batch_norm_momentum": 0.9, "batch_norm_epsilon": "1e-3", "depth_trunc": "round",
                 "drop_connect_rate": 0.1}
    model = create_model(ModelSpec(name="TinyNet_E", override_params=overrides), 3)
    assert model.bn1.momentum == pytest.approx(0.1) and model.bn1.eps == pytest.approx(1e-3)
    assert any(type(m).__name__ == "DropPath" and m.drop_prob > 0 for m in model.modules())
    with pytest.raises(UserError, match="depth_trunc: TinyNet_E without depth_trunc: round"):
        create_model(ModelSpec(name="TinyNet_E", override_params={"depth_trunc": "ceil"}), 3)
    with pytest.raises(UserError, match="depth_trunc: TinyNet_E without depth_trunc: round"):
        create_model(ModelSpec(name="TinyNet_E"), 3)
    create_model(ModelSpec(name="tinynet_e"), 3)  # timm's own name: timm's network, no PaddleClas rule
    with pytest.raises(UserError, match="depth_trunc: 'round' is not supported.*'ceil'"):
        create_model(ModelSpec(name="EfficientNetB0", override_params={"depth_trunc": "round"}), 3)
    rounded = {"depth_trunc": "round"}
    with pytest.raises(UserError, match="override_params.width_coefficient"):
        create_model(ModelSpec(name="TinyNet_E", override_params={**rounded, "width_coefficient": 1.2}), 3)
    with pytest.raises(UserError, match="drop_connect_rate \\(PaddleClas\\) or drop_path_rate"):
        create_model(ModelSpec(name="TinyNet_E", override_params={**rounded, "drop_connect_rate": 0.1},
                               drop_path_rate=0.1), 3)


def test_efficientnet_pads_and_normalises_as_paddleclas() -> None:
    model = create_model(ModelSpec(name="EfficientNetB0"), 3)
    assert type(model.conv_stem).__name__ == "Conv2dSame"  # TensorFlow's SAME padding, as PaddleClas's
    assert model.bn1.eps == pytest.approx(1e-3) and model.bn1.momentum == pytest.approx(0.01)  # Paddle's 0.99
    tuned = create_model(ModelSpec(name="EfficientNetB0", override_params={"batch_norm_momentum": 0.9}), 3)
    assert tuned.bn1.momentum == pytest.approx(0.1)


def test_fused_kernel_switches_are_accepted_on_any_model() -> None:
    create_model(ModelSpec(name="MobileNetV4_conv_small", use_fused_attn=False, use_fused_linear=True), 3)
    with pytest.raises(UserError, match="use_fused_attn: must be true or false"):
        create_model(ModelSpec(name="MobileNetV4_conv_small", use_fused_attn="yes"), 3)


@pytest.mark.parametrize("name,words", [
    ("HarDNet68", "HarDNet68 has no network of the same design in timm"),
    ("LeViT_128", "2-5 % more parameters"),
    ("Xception41", "DeepLab"),
])
def test_names_without_a_timm_network_say_so(name: str, words: str) -> None:
    with pytest.raises(UserError, match=words):
        resolve_model_name(name)


def _config(tmp_path: Path, **sections: object) -> Path:
    data = {"Arch": {"name": "RegNetX_200MF", "class_num": 3}, **sections}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_paddleclas_optimizer_and_global_spellings(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, Optimizer={"name": "Momentum", "momentum": 0.9, "use_nesterov": True,
                                                   "lr": {"name": "Step", "step_size": 2.4, "learning_rate": 0.1}}))
    assert cfg.Optimizer.nesterov is True and cfg.Optimizer.lr.step_size == 2.4
    with pytest.raises(UserError, match="Global.train_mode: not supported .*'progressive'"):
        load_config(_config(tmp_path, Global={"train_mode": "progressive"}))
    # PaddleClas's attribute configs say their exported model ends without a softmax
    path = _config(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["Arch"]["infer_add_softmax"] = False
    path.write_text(yaml.safe_dump(data))
    assert load_config(path).Arch.infer_add_softmax is False


def test_fixed_size_networks_are_built_for_the_configs_image_size(tmp_path: Path) -> None:
    from ssld.models import build_model

    path = _config(tmp_path, Global={"image_shape": [3, 64, 48]})
    data = yaml.safe_load(path.read_text())
    data["Arch"]["name"] = "DeiT_tiny_patch16_224"  # timm builds it for 224 px unless told
    path.write_text(yaml.safe_dump(data))
    model = build_model(load_config(path).Arch).eval()
    assert model(torch.randn(1, 3, 64, 48)).shape == (1, 3)
