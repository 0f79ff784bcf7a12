"""PaddleClas ``.pdparams`` weights: safe unpickling, name maps, parity with PaddleClas itself, and the paths that
accept weights (``pretrained:``, ``Global.pretrained_model``, ``--weights``, ``ssld convert``).

The parity tests build random-init PaddleClas networks with paddlepaddle + paddleclas (the ``paddle`` test extra,
which ``make test`` installs) in a subprocess, save them as ``.pdparams`` and compare logits on the same batch.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from helpers.paths import TESTS

from ssld.cli import main
from ssld.errors import UserError
from ssld.models import load_weights, resolve_model_name
from ssld.models.paddle import read_pdparams, rules_for
from ssld.models.paddle.convert import Rule, _pairs

# PaddleClas name, backbone module, input size (odd stage sizes where the net allows: 56 px gives ResNet a 7 px map
# before a stride-2 average pool, which exercises ceil_mode).
R, M3, M1, M2, L = ("legendary_models.resnet", "legendary_models.mobilenet_v3", "legendary_models.mobilenet_v1",
                    "model_zoo.mobilenet_v2", "legendary_models.pp_lcnet")
ARCHS: list[tuple[str, str, int]] = (
    [(n, R, 56) for n in ("ResNet18", "ResNet18_vd", "ResNet34", "ResNet34_vd", "ResNet50", "ResNet50_vd",
                          "ResNet101_vd")]
    + [(f"MobileNetV3_{s}_x{w}", M3, 64) for s in ("large", "small") for w in ("0_35", "0_5", "0_75", "1_0", "1_25")]
    + [(n, M1, 64) for n in ("MobileNetV1_x0_25", "MobileNetV1_x0_5", "MobileNetV1_x0_75", "MobileNetV1")]
    + [(n, M2, 64) for n in ("MobileNetV2_x0_5", "MobileNetV2", "MobileNetV2_x1_5", "MobileNetV2_x2_0")]
    + [(f"PPLCNet_x{w}", L, 64) for w in ("0_25", "0_35", "0_5", "0_75", "1_0", "1_5", "2_0", "2_5")]
    + [("PPLCNetV2_base", "legendary_models.pp_lcnet_v2", 64)]
    + [(n, "legendary_models.pp_hgnet", 64) for n in ("PPHGNet_tiny", "PPHGNet_small")]
    + [(f"PPHGNetV2_B{i}", "legendary_models.pp_hgnet_v2", 64) for i in range(5)]
    + [("Res2Net50_26w_4s", "model_zoo.res2net", 56), ("Res2Net50_vd_26w_4s", "model_zoo.res2net_vd", 56)]
    + [("ResNeXt50_32x4d", "model_zoo.resnext", 56), ("ResNeXt50_vd_32x4d", "model_zoo.resnext_vd", 56)]
    + [("ResNeXt101_32x8d_wsl", "model_zoo.resnext101_wsl", 32)]  # the reference's teacher family (88M parameters)
    + [("HRNet_W18_C", "legendary_models.hrnet", 64)]
    + [(n, "model_zoo.distilled_vision_transformer", 224) for n in ("DeiT_tiny_patch16_224",
                                                                     "DeiT_tiny_distilled_patch16_224")]
    + [("SwinTransformer_tiny_patch4_window7_224", "legendary_models.swin_transformer", 224)]
    + [("alt_gvt_small", "model_zoo.twins", 224), ("DLA34", "model_zoo.dla", 64), ("StarNet_S1", "model_zoo.starnet", 64),
       ("CSPDarkNet53", "model_zoo.cspnet", 64), ("ConvNeXt_tiny", "model_zoo.convnext", 64),
       ("RepVGG_A0", "model_zoo.repvgg", 64), ("PVT_V2_B0", "model_zoo.pvt_v2", 64),
       ("DenseNet121", "model_zoo.densenet", 64)]
)
# Measured once the same way, left out of the suite for their size (same code paths as their smaller siblings):
# PPLCNetV2_small/large, PPHGNet_base, PPHGNetV2_B5/B6, ResNet152_vd, ResNet200_vd, Res2Net101/200_vd_26w_4s,
# ResNeXt101_32x4d/64x4d, ResNeXt101_32x16d_wsl, HRNet_W48_C, ViT_base_patch16_224 (docs/paddle_weights.md has their
# numbers).
CLASSES = 10


def _have_paddle() -> bool:
    return importlib.util.find_spec("paddle") is not None and importlib.util.find_spec("paddleclas") is not None


@pytest.fixture(scope="session")
def refs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every architecture of ARCHS built by PaddleClas: .pdparams, input batch and logits (one subprocess, shared
    by the pytest-xdist workers of a run: the first to create the folder builds, the others wait for it)."""
    if not _have_paddle():
        pytest.skip("paddlepaddle/paddleclas not installed: `make test` installs them (pip install -e '.[paddle]' "
                    "and pip install --no-deps paddleclas==2.6.0)")
    base = tmp_path_factory.getbasetemp()
    out = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "paddle_refs"
    try:
        out.mkdir()
    except FileExistsError:
        deadline = time.monotonic() + 300
        while not (out / "done").exists() and not (out / "failed").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (out / "done").exists(), (out / "failed").read_text() if (out / "failed").exists() else "timed out"
        return out
    specs = [{"name": n, "module": m, "size": s, "kwargs": {"class_num": CLASSES}} for n, m, s in ARCHS]
    run = subprocess.run([sys.executable, str(TESTS / "paddle" / "reference.py"), str(out), json.dumps(specs)],
                         capture_output=True, text=True, timeout=300, check=False)
    (out / ("done" if run.returncode == 0 else "failed")).write_text(run.stderr[-3000:])
    assert run.returncode == 0, run.stderr[-3000:]
    return out


# ---- without paddle: the reader and the name maps -------------------------------------------------------------
def _paddle_arrays(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The PaddleClas-named arrays ``model``'s rules expect: the conversion run backwards."""
    state = model.state_dict()
    arrays = {}
    for rule in rules_for(model):
        for src, dst in _pairs(rule, state):
            value = state[dst].numpy()
            if rule.kind == "linear" and src.endswith(".weight"):
                value = value.T / rule.scale
            arrays[src] = np.ascontiguousarray(value, dtype=np.float32)
    return arrays


def _write(path: Path, obj: object, protocol: int = 4) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


@pytest.mark.parametrize("protocol", [2, 4])
def test_pdparams_round_trip_without_paddle(tmp_path: Path, protocol: int) -> None:
    source = timm.create_model("paddle_mobilenetv3_small_035", num_classes=CLASSES).eval()
    arrays = _paddle_arrays(source)
    meta = {"StructuredToParameterName@@": {k: f"param_{i}" for i, k in enumerate(arrays)}}
    path = _write(tmp_path / "m.pdparams", {**arrays, **meta}, protocol)
    read = read_pdparams(path)
    assert read.keys() == arrays.keys() and all(np.array_equal(read[k], v) for k, v in arrays.items())
    target = timm.create_model(resolve_model_name("MobileNetV3_small_x0_35"), num_classes=CLASSES).eval()
    load_weights(target, path)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x), rtol=1e-5, atol=1e-5)


class _Payload:
    """Unpickling this would create a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (open, (str(self.path), "w"))


def test_a_code_payload_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned.txt"
    path = _write(tmp_path / "evil.pdparams", {"conv.weight": np.zeros(3, np.float32), "x": _Payload(marker)})
    with pytest.raises(UserError, match=r"refused without running it \(refusing to load global .*open"):
        load_weights(timm.create_model("paddle_mobilenetv1_025"), path)
    assert not marker.exists()
    objects = _write(tmp_path / "obj.pdparams", {"a": np.array([1, "x"], dtype=object)})
    with pytest.raises(UserError, match="refused"):
        read_pdparams(objects)


@pytest.mark.parametrize(("suffix", "says"), [(".pdopt", "optimizer state"), (".pdmodel", "inference program"),
                                              (".pdiparams", "inference weights")])
def test_other_paddle_files_say_what_they_are(tmp_path: Path, suffix: str, says: str) -> None:
    path = tmp_path / f"ResNet50_vd{suffix}"
    path.write_bytes(b"\x00")
    with pytest.raises(UserError, match=f"{says}.*pass the .*pdparams"):
        load_weights(timm.create_model("resnet50d"), path)


def test_misfits_name_the_first_key_and_both_shapes(tmp_path: Path) -> None:
    model = timm.create_model("paddle_mobilenetv1_025", num_classes=CLASSES)
    arrays = _paddle_arrays(model)
    arrays["blocks.3.pointwise_conv.conv.weight"] = np.zeros((5, 4, 1, 1), np.float32)
    bad = _write(tmp_path / "shape.pdparams", arrays)
    with pytest.raises(UserError, match=r"blocks\.3\.pointwise_conv\.conv\.weight has shape \(5, 4, 1, 1\), the "
                                        r"model's blocks\.2\.0\.conv_pw\.weight \(64, 32, 1, 1\)"):
        load_weights(model, bad)
    arrays = _paddle_arrays(model)
    del arrays["blocks.0.depthwise_conv.bn._mean"]
    with pytest.raises(UserError, match=r"no 'blocks\.0\.depthwise_conv\.bn\._mean' in the file"):
        load_weights(model, _write(tmp_path / "missing.pdparams", arrays))
    arrays = {**_paddle_arrays(model), "extra.weight": np.zeros(2, np.float32)}
    with pytest.raises(UserError, match=r"1 arrays have no place in the model, the first 'extra\.weight' \(2,\)"):
        load_weights(model, _write(tmp_path / "extra.pdparams", arrays))
    with pytest.raises(UserError, match="no PaddleClas mapping for model 'resnet18d'"):
        load_weights(timm.create_model("resnet18d"), bad)
    # another class count: an error, unless the classifier is dropped on purpose (transfer learning)
    other = timm.create_model("paddle_mobilenetv1_025", num_classes=3)
    good = _write(tmp_path / "good.pdparams", _paddle_arrays(model))
    with pytest.raises(UserError, match=r"classifier\.weight \(10, 256\) vs \(3, 256\)"):
        load_weights(other, good)
    assert load_weights(other, good, ignore_classifier=True) == ["classifier.weight", "classifier.bias"]


def test_former_stand_ins_are_faithful() -> None:
    assert resolve_model_name("PPLCNetV2_base") == "lcnetv2_base"  # was lcnet_100, another network
    assert resolve_model_name("MobileNetV1_x0_25") == "paddle_mobilenetv1_025"  # was mobilenetv1_100
    assert resolve_model_name("Res2Net200_vd_26w_4s") == "paddle_res2net200_vd_26w_4s"  # was res2net101d
    assert resolve_model_name("ResNet200_vd") == "paddle_resnet200_vd"  # timm's resnet200d has other block counts


# ---- with paddle: parity with PaddleClas ---------------------------------------------------------------------
@pytest.mark.parametrize("name", [a[0] for a in ARCHS])
def test_parity_with_paddleclas(refs: Path, name: str) -> None:
    x = torch.from_numpy(np.load(refs / f"{name}.input.npy"))
    ref = np.load(refs / f"{name}.logits.npy")
    model = timm.create_model(resolve_model_name(name), num_classes=CLASSES).eval()
    load_weights(model, refs / f"{name}.pdparams")
    with torch.no_grad():
        out = model(x).numpy()
    diff, scale = float(np.abs(out - ref).max()), float(np.abs(ref).max())
    assert diff <= 1e-4 * scale, f"{name}: max abs diff {diff:.3g} (largest logit {scale:.3g})"
    assert (out.argmax(1) == ref.argmax(1)).all()


def test_convert_command_writes_loadable_safetensors(refs: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "MobileNetV3_large_x1_0_ssld_pretrained.pdparams"
    src.write_bytes((refs / "MobileNetV3_large_x1_0.pdparams").read_bytes())
    out = tmp_path / "teacher.safetensors"
    assert main(["convert", str(src), "--out", str(out)]) == 0  # the architecture comes from the file name
    assert "MobileNetV3_large_x1_0 -> paddle_mobilenetv3_large_100, 10 classes" in capsys.readouterr().out
    model = timm.create_model("paddle_mobilenetv3_large_100", num_classes=CLASSES).eval()
    load_weights(model, out)
    with torch.no_grad():
        out_logits = model(torch.from_numpy(np.load(refs / "MobileNetV3_large_x1_0.input.npy"))).numpy()
    ref = np.load(refs / "MobileNetV3_large_x1_0.logits.npy")
    assert np.abs(out_logits - ref).max() <= 1e-4 * np.abs(ref).max()
    assert main(["convert", str(src), "--arch", "ResNet18_vd", "--out", str(tmp_path / "no.safetensors")]) == 2
    assert "PaddleClas weights do not fit 'paddle_resnet18_vd'" in capsys.readouterr().err
    assert not (tmp_path / "no.safetensors").exists()


def test_pretrained_model_without_suffix_and_the_rule_kinds(refs: Path, tmp_path: Path) -> None:
    from ssld.engine.model_setup import load_pretrained

    (tmp_path / "ResNet18_vd_pretrained.pdparams").write_bytes((refs / "ResNet18_vd.pdparams").read_bytes())
    model = timm.create_model("paddle_resnet18_vd", num_classes=CLASSES).eval()
    load_pretrained(model, str(tmp_path / "ResNet18_vd_pretrained"))  # PaddleClas configs leave the suffix out
    fc = read_pdparams(refs / "ResNet18_vd.pdparams")["fc.weight"]
    assert torch.equal(model.fc.weight, torch.from_numpy(fc).t())
    assert {r.kind for r in rules_for(model)} == {"conv", "bn", "linear"}
    assert isinstance(rules_for(model)[-1], Rule) and rules_for(model)[-1].head


def test_distillation_with_a_pdparams_teacher_through_ssld_train(refs: Path, tmp_path: Path) -> None:
    """``Arch.models[0].Teacher.pretrained: ResNet18_vd.pdparams`` trains a student a few steps and leaves the
    converted teacher as it was; ``ssld eval --weights`` reads the same .pdparams file."""
    from helpers.configs import distill_config, supervised_config, write_config
    from helpers.fashion_mnist import export_fashion_mnist

    from ssld.models.paddle import convert_pdparams

    data = export_fashion_mnist(tmp_path / "fm", labeled_per_class=6, val_size=40, pool_size=20)
    teacher = str(refs / "ResNet18_vd.pdparams")
    cfg = distill_config(data, tmp_path / "out", teacher)
    cfg["Arch"]["models"][0]["Teacher"]["name"] = "ResNet18_vd"
    cfg["Global"].update({"max_steps_per_epoch": 3, "eval_during_train": False})
    assert main(["train", "-c", str(write_config(tmp_path / "d.yaml", cfg))]) == 0
    ckpt = torch.load(tmp_path / "out" / "checkpoints" / "latest.pt", weights_only=True)["model"]
    expected = convert_pdparams(teacher, timm.create_model("paddle_resnet18_vd", num_classes=CLASSES))
    for key, value in expected.items():
        assert torch.equal(ckpt[f"models.Teacher.{key}"], value), key

    eval_cfg = supervised_config(data, tmp_path / "eval")
    eval_cfg["Arch"] = {"name": "ResNet18_vd", "class_num": CLASSES}
    out_json = tmp_path / "eval.json"
    args = ["eval", "-c", str(write_config(tmp_path / "e.yaml", eval_cfg)), "--weights", teacher]
    assert main([*args, "--out", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["count"] == 40


# Families whose faithful networks ssld re-initialises by Paddle's rules (ssld.models.paddle.init).
INIT_ARCHS = ["MobileNetV3_small_x1_0", "PPLCNet_x1_0", "MobileNetV1_x0_5", "MobileNetV2_x0_5", "ResNet18_vd",
              "Res2Net50_26w_4s"]


@pytest.mark.parametrize("name", INIT_ARCHS)
def test_random_init_follows_paddleclas(refs: Path, name: str) -> None:
    """A network built from scratch starts from PaddleClas's initial weights: every conv and linear weight has the
    spread of PaddleClas's own random init (the refs keep those untouched), classifier included."""
    torch.manual_seed(0)
    model = timm.create_model(resolve_model_name(name), num_classes=CLASSES)
    state = model.state_dict()
    paddle = read_pdparams(refs / f"{name}.pdparams")
    ratios = {}
    for rule in rules_for(model):
        for src, dst in _pairs(rule, state):
            ref = np.asarray(paddle[src], dtype=np.float64)
            if ref.ndim < 2 or ref.size < 256:
                continue
            ratios[dst] = float(state[dst].double().std()) / float((ref * rule.scale).std())
    assert len(ratios) >= 10, f"{name}: only {len(ratios)} weights compared"
    off = {k: round(v, 2) for k, v in ratios.items() if not 0.8 <= v <= 1.25}
    assert not off, f"{name}: std ours / PaddleClas's outside [0.8, 1.25]: {off}"
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(bool((m.weight == 1).all()) and bool((m.bias == 0).all()) for m in bn)  # no zeroed last BN scale


def test_paddleclas_bn_weight_decay_exemption_reaches_the_optimizer() -> None:
    """MobileNetV3 and PP-LCNet exempt their BatchNorm parameters from L2 (``L2Decay(0.0)``); ResNet does not."""
    from ssld.config.schema import OptimizerConfig
    from ssld.engine.optim import param_groups

    cfg = OptimizerConfig.model_validate({"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine",
                                          "learning_rate": 0.1}, "regularizer": {"name": "L2", "coeff": 1e-4}})
    for name, bn_decay in (("MobileNetV3_small_x1_0", 0.0), ("PPLCNet_x0_25", 0.0), ("ResNet18_vd", 1e-4)):
        model = timm.create_model(resolve_model_name(name), num_classes=CLASSES)
        bn_ids = {id(p) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters()}
        decay = {id(p): g["weight_decay"] for g in param_groups(model, cfg) for p in g["params"]}
        assert {decay[i] for i in bn_ids} == {bn_decay}, name
        assert max(decay.values()) == pytest.approx(1e-4)
