"""Models: small-image nets in timm, name resolution, create_model, weight files, lr_mult stages."""

from __future__ import annotations

import argparse
import io
import logging
import re
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from safetensors import safe_open

from ssld.config.schema import ModelSpec
from ssld.errors import UserError
from ssld.models import (
    classifier_param_names,
    create_model,
    factory,
    load_weights,
    lr_mult_groups,
    read_state_dict,
    resolve_model_name,
    save_safetensors,
)
from ssld.models.cifar import SMALL_IMAGE_ARCHS


def tiny(num_classes: int = 10, **kwargs) -> torch.nn.Module:
    return timm.create_model("cifar_resnet_tiny", num_classes=num_classes, **kwargs)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------- small-image nets


@pytest.mark.parametrize("short", list(SMALL_IMAGE_ARCHS))
def test_small_image_net_forward_28_and_32(short: str) -> None:
    model = timm.create_model(f"cifar_{short}", num_classes=7).eval()
    for size in (28, 32):
        with torch.no_grad():
            out = model(torch.randn(2, 3, size, size))
        assert out.shape == (2, 7) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("short", "low", "high"),
    [("resnet20", 0.26e6, 0.28e6), ("resnet56", 0.84e6, 0.87e6), ("resnet8x4", 1.2e6, 1.25e6),
     ("wrn_40_2", 2.2e6, 2.3e6), ("resnet_tiny", 1e3, 1e4), ("resnet8x0_5", 1.9e4, 2.1e4),
     ("resnet8x0_25", 5.0e3, 5.5e3)],
)
def test_param_counts_match_the_literature(short: str, low: float, high: float) -> None:
    n = sum(p.numel() for p in timm.create_model(f"cifar_{short}", num_classes=10).parameters())
    assert low < n < high, n


def test_timm_classifier_interface() -> None:
    model = timm.create_model("cifar_resnet8", num_classes=10, in_chans=1, drop_rate=0.5).eval()
    assert model.pretrained_cfg["input_size"] == (3, 32, 32)
    assert len(model.pretrained_cfg["mean"]) == 3 and model.pretrained_cfg["classifier"] == "fc"
    assert model.get_classifier() is model.fc and model.num_features == 64
    x = torch.randn(3, 1, 28, 28)
    feats = model.forward_features(x)
    assert feats.shape == (3, 64, 7, 7)
    assert model.forward_head(feats, pre_logits=True).shape == (3, 64)
    model.train()
    assert not torch.equal(model(x), model(x)), "drop_rate must act in train mode"
    model.eval()
    assert torch.equal(model(x), model(x))
    model.reset_classifier(5)
    assert model(x).shape == (3, 5) and model.num_classes == 5
    model.reset_classifier(0)
    assert model(x).shape == (3, 64)


def test_script_trace_channels_last_and_onnx_match_eager() -> None:
    import onnxruntime as ort

    model = timm.create_model("cifar_wrn_16_2", num_classes=10, drop_rate=0.2, drop_path_rate=0.1).eval()
    x = torch.randn(2, 3, 28, 28)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = model(x)
        torch.testing.assert_close(torch.jit.script(model)(x), ref)
        torch.testing.assert_close(torch.jit.trace(model, x)(x), ref)
        cl = timm.create_model("cifar_wrn_16_2", num_classes=10)
        cl.load_state_dict(model.state_dict())
        cl = cl.eval().to(memory_format=torch.channels_last)
        torch.testing.assert_close(cl(x.to(memory_format=torch.channels_last)), ref, atol=1e-5, rtol=1e-4)
        buf = io.BytesIO()
        torch.onnx.export(model, (x,), buf, input_names=["x"], dynamic_axes={"x": {0: "b"}}, dynamo=False)
    onnx_out = ort.InferenceSession(buf.getvalue()).run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(onnx_out, ref.numpy(), atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "expected"),
    [("resnet20", "cifar_resnet20"), ("resnet8x4", "cifar_resnet8x4"), ("wrn_40_2", "cifar_wrn_40_2"),
     ("cifar_resnet56", "cifar_resnet56"), ("ResNet50_vd", "resnet50d"),
     ("MobileNetV3_large_x1_0", "paddle_mobilenetv3_large_100"), ("ResNet18_vd", "paddle_resnet18_vd"),
     ("MobileNetV3_small_x1_0", "paddle_mobilenetv3_small_100"),
     ("resnet18.a1_in1k", "resnet18.a1_in1k"), ("efficientnet_b0", "efficientnet_b0")],
)
def test_resolve_model_name(name: str, expected: str) -> None:
    assert resolve_model_name(name) == expected
    assert timm.is_model(expected.split(".")[0])


def test_unknown_model_name_suggests_close_ones() -> None:
    expected = r"unknown model 'MobileNetV3_smal_x1_0'; did you mean .*'MobileNetV3_small_x1_0'"
    with pytest.raises(UserError, match=expected):
        resolve_model_name("MobileNetV3_smal_x1_0")
    with pytest.raises(UserError, match=r"did you mean .*'resnet20'"):
        resolve_model_name("resnet2O")


# ---------------------------------------------------------------- weight files


def _writers(tmp: Path, state: dict) -> dict[str, Path]:
    files = {
        "safetensors": tmp / "w.safetensors",
        "plain": tmp / "plain.pt",
        "state_dict": tmp / "sd.pth",
        "ssld_checkpoint": tmp / "ckpt.pt",
        "ema_only": tmp / "ema.pt",
        "ddp_prefix": tmp / "ddp.pt",
        "compiled_prefix": tmp / "compiled.pt",
        "timm_train_checkpoint": tmp / "timm.pth.tar",
    }
    save_safetensors(state, files["safetensors"], {"model": "cifar_resnet_tiny", "num_classes": 10})
    torch.save(state, files["plain"])
    torch.save({"state_dict": state, "epoch": 3}, files["state_dict"])
    torch.save({"model": state, "optimizer": {"state": {}}, "epoch": 1, "step": 5}, files["ssld_checkpoint"])
    torch.save({"model_ema": state}, files["ema_only"])
    torch.save({f"module.{k}": v for k, v in state.items()}, files["ddp_prefix"])
    torch.save({f"_orig_mod.{k}": v for k, v in state.items()}, files["compiled_prefix"])
    torch.save({"state_dict": state, "arch": "x", "args": argparse.Namespace(lr=0.1)}, files["timm_train_checkpoint"])
    return files


def test_load_weights_every_file_form(tmp_path: Path) -> None:
    src = tiny()
    with torch.no_grad():  # non-trivial running stats, so buffers are checked too
        src.train()(torch.randn(8, 3, 32, 32))
    for form, path in _writers(tmp_path, src.state_dict()).items():
        dst = tiny()
        assert load_weights(dst, path) == []
        assert same_weights(src, dst), form


def test_ema_weights_when_asked(tmp_path: Path) -> None:
    model, ema = tiny(), tiny()
    torch.save({"model": model.state_dict(), "model_ema": ema.state_dict()}, tmp_path / "ckpt.pt")
    got = tiny()
    load_weights(got, tmp_path / "ckpt.pt")
    assert same_weights(got, model)
    load_weights(got, tmp_path / "ckpt.pt", ema=True)
    assert same_weights(got, ema)


def test_safetensors_metadata_and_atomicity(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "w.safetensors"
    save_safetensors(tiny().state_dict(), path, {"model": "cifar_resnet_tiny", "num_classes": 10})
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata() == {"model": "cifar_resnet_tiny", "num_classes": "10"}
    assert [p.name for p in path.parent.iterdir()] == ["w.safetensors"]
    tied = torch.randn(4, 4)
    save_safetensors({"a": tied, "b": tied, "c": tied.t()}, tmp_path / "tied.safetensors")
    loaded = read_state_dict(tmp_path / "tied.safetensors")
    assert torch.equal(loaded["a"], loaded["b"]) and torch.equal(loaded["c"], tied.t())


def test_distillation_state_into_single_model(tmp_path: Path) -> None:
    teacher, student = timm.create_model("cifar_resnet8", num_classes=10), tiny()
    state = {f"models.Teacher.{k}": v for k, v in teacher.state_dict().items()}
    state |= {f"models.Student.module.{k}": v for k, v in student.state_dict().items()}  # a DDP-wrapped student
    torch.save({"model": state}, tmp_path / "dm.pt")
    got = tiny()
    load_weights(got, tmp_path / "dm.pt")
    assert same_weights(got, student)
    got_teacher = timm.create_model("cifar_resnet8", num_classes=10)
    load_weights(got_teacher, tmp_path / "dm.pt")  # Student does not fit: the sub-model that fits is taken
    assert same_weights(got_teacher, teacher)
    with pytest.raises(UserError, match="has no sub-model 'Teacher2'"):
        load_weights(tiny(), tmp_path / "dm.pt", prefix="Teacher2")
    with pytest.raises(UserError, match="weights do not fit model 'cifar_resnet_tiny'"):
        load_weights(tiny(), tmp_path / "dm.pt", prefix="Teacher")


def test_mismatch_errors_and_transfer_classifier(tmp_path: Path) -> None:
    path = tmp_path / "r8.safetensors"
    save_safetensors(timm.create_model("cifar_resnet8", num_classes=10).state_dict(), path)
    with pytest.raises(UserError) as e:
        load_weights(tiny(), path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: weights do not fit model 'cifar_resnet_tiny': ") and "\n" not in msg
    assert "with another shape (e.g." in msg

    tiny_path = tmp_path / "tiny10.safetensors"
    src = tiny(10)
    save_safetensors(src.state_dict(), tiny_path)
    with pytest.raises(UserError, match=r"1 with another shape|2 with another shape"):
        load_weights(tiny(3), tiny_path)
    dst = tiny(3)
    fresh_fc = dst.fc.weight.clone()
    skipped = load_weights(dst, tiny_path, ignore_classifier=True)
    assert skipped == ["fc.weight", "fc.bias"]
    assert torch.equal(dst.fc.weight, fresh_fc) and torch.equal(dst.conv1.weight, src.conv1.weight)

    partial = tmp_path / "partial.pt"
    backbone = {k: v for k, v in src.state_dict().items() if not k.startswith("fc.")}
    torch.save(backbone | {"extra": torch.ones(1)}, partial)
    with pytest.raises(UserError, match=r"2 missing keys \(e.g. fc.weight, fc.bias\), 1 unexpected \(e.g. extra\)"):
        load_weights(tiny(), partial)
    load_weights(tiny(), partial, strict=False)


def test_bad_weight_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="weights file not found"):
        load_weights(tiny(), tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot be read as torch weights"):
        load_weights(tiny(), tmp_path / "junk.pt")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(UserError, match="not a readable safetensors file"):
        load_weights(tiny(), tmp_path / "junk.safetensors")
    (tmp_path / "teacher.pdparams").write_bytes(b"paddle")
    with pytest.raises(UserError, match=r"not a readable .pdparams file"):
        load_weights(tiny(), tmp_path / "teacher.pdparams")
    torch.save({"epoch": 3}, tmp_path / "noweights.pt")
    with pytest.raises(UserError, match="no weights found"):
        load_weights(tiny(), tmp_path / "noweights.pt")


# ---------------------------------------------------------------- create_model


def test_create_model_from_local_weights(tmp_path: Path) -> None:
    src = timm.create_model("cifar_resnet20", num_classes=10)
    save_safetensors(src.state_dict(), tmp_path / "t.safetensors")
    model = create_model(ModelSpec(name="resnet20", pretrained=str(tmp_path / "t.safetensors"), use_ssld=True), 10)
    assert same_weights(model, src)
    with pytest.raises(UserError, match=r"^Arch.pretrained: .*weights do not fit"):
        create_model(ModelSpec(name="resnet20", pretrained=str(tmp_path / "t.safetensors")), 5)


def test_create_model_passes_regularisation_and_kwargs() -> None:
    spec = ModelSpec(name="resnet8", drop_rate=0.3, drop_path_rate=0.1, kwargs={"in_chans": 1})
    model = create_model(spec, 6)
    assert model.drop_rate == 0.3 and model.num_classes == 6 and model.conv1.in_channels == 1
    assert any(type(m).__name__ == "DropPath" for m in model.modules())
    assert not any(type(m).__name__ == "DropPath" for m in create_model(ModelSpec(name="resnet8"), 6).modules())


def test_create_model_errors_name_the_key(tmp_path: Path) -> None:
    where = "Arch.models[0].Teacher"
    with pytest.raises(UserError, match=rf"^{re.escape(where)}.pretrained: file not found: x.pt$"):
        create_model(ModelSpec(name="resnet20", pretrained="x.pt"), 10, where)
    with pytest.raises(UserError, match=rf"^{re.escape(where)}.use_ssld: use_ssld: true asks for PaddleClas's SSLD"):
        create_model(ModelSpec(name="MobileNetV3_large_x1_0", pretrained=True, use_ssld=True), 10, where)
    with pytest.raises(UserError, match=r"^Arch.name: unknown model 'resnet2O'"):
        create_model(ModelSpec(name="resnet2O"), 10)
    with pytest.raises(UserError, match="timm has no pretrained weights for 'cifar_resnet20'"):
        create_model(ModelSpec(name="resnet20", pretrained=True), 10)
    with pytest.raises(UserError, match="does not accept these arguments"):
        create_model(ModelSpec(name="resnet20", kwargs={"no_such_arg": 1}), 10)


def test_pretrained_true_offline_is_one_fast_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(UserError) as e:
        create_model(ModelSpec(name="mobilenetv3_small_100", pretrained=True), 10, "Arch.models[1].Student")
    assert time.monotonic() - start < 5
    assert str(e.value) == (
        "Arch.models[1].Student.pretrained: true needs timm weights for 'mobilenetv3_small_100' (no network or local "
        "Hugging Face cache); set pretrained to a local .pt/.pth/.safetensors path"
    )


def test_pretrained_true_uses_local_hf_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A weights file laid out as in the Hugging Face cache is found and loaded without any network access."""
    import huggingface_hub.constants

    name = "mobilenetv3_small_050"
    cfg = timm.models.get_pretrained_cfg(name)
    repo_dir = tmp_path / f"models--{cfg.hf_hub_id.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text("0" * 40)
    src = timm.create_model(name)
    save_safetensors(src.state_dict(), repo_dir / "snapshots" / ("0" * 40) / "model.safetensors")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = create_model(ModelSpec(name=name, pretrained=True), 1000)
    assert same_weights(model, src)


def test_allow_random_warns_instead(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(factory, "_cached_timm_weights", lambda name: None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level(logging.WARNING, logger="ssld.models"):
        model = create_model(ModelSpec(name="resnet_tiny", pretrained="missing.pt"), 4, allow_random=True)
        create_model(ModelSpec(name="mobilenetv3_small_050", pretrained=True), 4, allow_random=True)
    assert model.num_classes == 4
    assert "Arch.pretrained: file not found: missing.pt; using random weights" in caplog.text
    assert "needs timm weights for 'mobilenetv3_small_050'" in caplog.text


# ---------------------------------------------------------------- lr_mult stages


def _check_partition(model: torch.nn.Module, groups: list[list[str]]) -> None:
    classifier = set(classifier_param_names(model))
    names = [n for n, _ in model.named_parameters()]
    flat = [n for g in groups for n in g]
    assert all(groups), "no empty group"
    assert sorted(flat) == sorted(n for n in names if n not in classifier), "each backbone param exactly once"
    assert flat == [n for n in names if n not in classifier], "groups follow the network's order"


def test_resnet_vd_stem_plus_four_stages() -> None:
    model = timm.create_model("resnet50d")
    groups = lr_mult_groups(model, 5)
    _check_partition(model, groups)
    assert classifier_param_names(model) == ["fc.weight", "fc.bias"]
    assert all(n.startswith(("conv1.", "bn1.")) for n in groups[0])
    for k in range(1, 5):
        assert all(n.startswith(f"layer{k}.") for n in groups[k])
    with pytest.raises(ValueError, match=r"needs 5 entries \(stem \+ 4 stages\), got 4"):
        lr_mult_groups(model, 4)


def test_small_image_resnet_stem_plus_three_stages() -> None:
    for name in ("cifar_resnet20", "cifar_wrn_16_2"):
        model = timm.create_model(name)
        groups = lr_mult_groups(model, 4)
        _check_partition(model, groups)
        assert groups[0][0] == "conv1.weight" and groups[3][0].startswith("layer3.")
        with pytest.raises(ValueError, match=r"needs 4 entries \(stem \+ 3 stages\), got 5"):
            lr_mult_groups(model, 5)


def test_mobilenetv3_large_blocks_three_per_group() -> None:
    model = timm.create_model("mobilenetv3_large_100")
    groups = lr_mult_groups(model, 5)
    _check_partition(model, groups)
    assert classifier_param_names(model) == ["classifier.weight", "classifier.bias"]
    blocks = [f"blocks.{s}.{b}." for s, stage in enumerate(model.blocks) for b in range(len(stage))][:15]
    for g, group in enumerate(groups):
        owned = {p for p in blocks if any(n.startswith(p) for n in group)}
        assert owned == set(blocks[3 * g: 3 * g + 3]), g
    assert groups[0][0] == "conv_stem.weight"
    assert any(n.startswith("conv_head.") for n in groups[4]) and any(n.startswith("blocks.6.") for n in groups[4])
    with pytest.raises(ValueError, match="needs 1 to 15 entries"):
        lr_mult_groups(model, 16)


def test_generic_timm_model_merges_its_stages() -> None:
    model = timm.create_model("vit_tiny_patch16_224")
    groups = lr_mult_groups(model, 4)
    _check_partition(model, groups)
    assert groups[0][0] == "cls_token" and "norm.weight" in groups[-1]
    with pytest.raises(ValueError, match=r"needs 1 to 13 entries \(stages\)"):
        lr_mult_groups(model, 20)

