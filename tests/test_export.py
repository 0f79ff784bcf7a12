"""ssld export: ONNX and TorchScript files that match PyTorch on batches of 2 and 5, a dynamic batch axis, the
softmax head, the backbone (pooled features) export, and one-line errors for bad model names and weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from helpers.configs import make_config, write_config
from safetensors.torch import load_file

from ssld.cli import main
from ssld.config.schema import ModelSpec
from ssld.deploy.export import PARITY_ATOL, export_model
from ssld.errors import UserError
from ssld.models import create_model, save_safetensors


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """A resnet8 with non-trivial BN statistics (a few train-mode forwards), saved as safetensors."""
    torch.manual_seed(0)
    model = create_model(ModelSpec(name="resnet8"), 10)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 3, 28, 28) * 2 + 0.5)
    path = tmp_path_factory.mktemp("w") / "student.safetensors"
    save_safetensors(model.state_dict(), path)
    return path, model.eval()


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_onnx_and_torchscript_parity_and_dynamic_batch(tmp_path: Path, trained) -> None:
    weights, model = trained
    cfg = make_config(tmp_path, {"name": "resnet8", "class_num": 10})
    result = export_model(cfg, weights, tmp_path / "out", ["onnx", "torchscript"])
    assert result.ok
    assert set(result.parity) == {"model.onnx", "model.torchscript"}
    for diffs in result.parity.values():
        assert set(diffs) == {"batch2", "batch5"} and max(diffs.values()) <= PARITY_ATOL
    report = json.loads((tmp_path / "out" / "export_report.json").read_text())
    assert report["ok"] and report["input_shape"] == [3, 28, 28] and report["max_abs_diff"] == result.parity

    session = ort.InferenceSession(str(tmp_path / "out" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch" and session.get_inputs()[0].shape[1:] == [3, 28, 28]
    x = torch.randn(7, 3, 28, 28)
    with torch.no_grad():
        want = model(x).numpy()
    got = session.run(None, {"input": x.numpy()})[0]
    assert got.shape == (7, 10) and np.abs(got - want).max() <= PARITY_ATOL
    ts = torch.jit.load(str(tmp_path / "out" / "model.torchscript.pt"))
    torch.testing.assert_close(ts(x[:3]), torch.from_numpy(want[:3]), atol=PARITY_ATOL, rtol=0)

    side = json.loads((tmp_path / "out" / "preprocess.json").read_text())
    assert side["input_shape"] == [3, 28, 28] and side["softmax"] is False and side["num_classes"] == 10
    assert not list((tmp_path / "out").glob("*.tmp")) and not list((tmp_path / "out").glob(".*"))


def test_softmax_head_and_backbone(tmp_path: Path, trained) -> None:
    weights, model = trained
    cfg = make_config(tmp_path, {"name": "resnet8", "class_num": 10})
    result = export_model(cfg, weights, tmp_path, ["onnx"], softmax=True, backbone=True, image_size=32)
    assert result.ok and set(result.parity) == {"model.onnx", "backbone.onnx"}
    x = torch.randn(3, 3, 32, 32)
    probs = ort.InferenceSession(str(tmp_path / "model.onnx")).run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(probs, torch.softmax(model(x), 1).numpy(), atol=1e-5)
        feats_want = model.forward_head(model.forward_features(x), pre_logits=True).numpy()
    feats = ort.InferenceSession(str(tmp_path / "backbone.onnx")).run(None, {"input": x.numpy()})[0]
    assert feats.shape == (3, model.num_features)
    np.testing.assert_allclose(feats, feats_want, atol=PARITY_ATOL)
    state = load_file(str(tmp_path / "backbone.safetensors"))
    assert not any(k.startswith("fc.") for k in state) and "conv1.weight" in state
    assert json.loads((tmp_path / "preprocess.json").read_text())["input_shape"] == [3, 32, 32]


def test_distillation_config_exports_the_infer_model(tmp_path: Path, trained) -> None:
    _, model = trained
    full = {f"models.Student.{k}": v for k, v in model.state_dict().items()}
    teacher = create_model(ModelSpec(name="resnet14"), 10)
    full.update({f"models.Teacher.{k}": v for k, v in teacher.state_dict().items()})
    ckpt = tmp_path / "distill.pt"
    torch.save({"model": full, "epoch": 3}, ckpt)
    arch = {"name": "DistillationModel", "class_num": 10, "freeze_params_list": [True, False],
            "models": [{"Teacher": {"name": "resnet14"}}, {"Student": {"name": "resnet8"}}],
            "infer_model_name": "Student"}
    cfg = make_config(tmp_path, arch)
    result = export_model(cfg, ckpt, tmp_path / "out", ["onnx"])
    assert result.ok and result.report["model"] == "Student" and result.report["arch"] == "resnet8"
    with pytest.raises(UserError, match="--model: 'Pupil' is not a model in Arch.models"):
        export_model(cfg, ckpt, tmp_path / "out2", ["onnx"], model_name="Pupil")


def test_cli_prints_parity_and_one_line_errors(tmp_path: Path, trained, capsys: pytest.CaptureFixture) -> None:
    weights, _ = trained
    cfg_path = write_config(tmp_path / "cfg.yaml", make_config(tmp_path, {"name": "resnet8", "class_num": 10}))
    out = tmp_path / "deploy"
    assert main(["export", "-c", str(cfg_path), "--weights", str(weights), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "model.onnx" in text and "model.torchscript" in text and "batch5" in text and "FAIL" not in text

    other = tmp_path / "resnet14.safetensors"
    save_safetensors(create_model(ModelSpec(name="resnet14"), 10).state_dict(), other)
    assert main(["export", "-c", str(cfg_path), "--weights", str(other), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ssld: error:") and "do not fit" in err and "\n" not in err
    assert not (tmp_path / "x").exists()

    assert main(["export", "-c", str(cfg_path), "--weights", str(weights), "--model", "Teacher"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--model" in err and "Teacher" in err and "\n" not in err
    assert main(["export", "-c", str(cfg_path), "--weights", str(weights), "--format", "tflite"]) == 2
    assert "--format" in capsys.readouterr().err
