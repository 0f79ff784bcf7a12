"""ssld/timm weights -> PaddleClas ``.pdparams`` (``ssld convert --to-paddle``): the reverse of the converter.

Without paddle: pdparams -> ssld -> pdparams gives identical arrays, the file is the pickle ``paddle.save`` writes
(numpy's constructor spelled so numpy 1.x reads it), and the CLI round trip. With paddle (the ``paddle`` test
extra): ``paddle.load`` reads the file and PaddleClas's network gives ssld's logits on the same batch.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from helpers.paths import TESTS
from safetensors.torch import load_file, save_file

from ssld.cli import main
from ssld.errors import UserError
from ssld.models.paddle import read_pdparams, rules_for
from ssld.models.paddle.convert import apply_rules, to_paddle_arrays
from ssld.models.paddle.pdsave import pdparams_bytes, save_pdparams

CLASSES = 10


def _random_state(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """``model``'s state with every float tensor random (BN statistics too, variances positive)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in model.state_dict().items():
        if not v.is_floating_point():
            out[k] = v
        elif k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=g) + 0.5
        else:
            out[k] = torch.randn(v.shape, generator=g) * 0.1
    return out


@pytest.mark.parametrize("arch", ["paddle_resnet18_vd", "paddle_mobilenetv3_small_100"])
def test_pdparams_ssld_pdparams_round_trip(tmp_path: Path, arch: str) -> None:
    model = timm.create_model(arch, num_classes=CLASSES)
    rules = rules_for(model)
    arrays = to_paddle_arrays(_random_state(model, 0), rules, arch)
    save_pdparams(arrays, tmp_path / "a.pdparams")
    read = read_pdparams(tmp_path / "a.pdparams")
    assert read.keys() == arrays.keys() and all(np.array_equal(read[k], v) for k, v in arrays.items())
    state = apply_rules(read, model, rules, tmp_path / "a.pdparams", arch)
    again = to_paddle_arrays(state, rules, arch)
    assert again.keys() == arrays.keys()
    for k, v in arrays.items():
        assert again[k].shape == v.shape and again[k].dtype == v.dtype, k
        if arch == "paddle_resnet18_vd":  # no folded dropout scale: bit-identical
            assert np.array_equal(again[k], v), k
        else:  # the classifier's folded (1 - p) is multiplied in and divided out again
            np.testing.assert_allclose(again[k], v, rtol=1e-6, atol=0, err_msg=k)


def test_pickle_reads_in_numpy_1() -> None:
    data = pdparams_bytes({"w": np.ones((2, 3), np.float32)})
    assert b"numpy.core.multiarray\n_reconstruct" in data and b"numpy._core" not in data
    with pytest.raises(ValueError, match="not numeric"):
        pdparams_bytes({"w": np.array(["x"])})


def test_unused_arrays_cannot_be_rebuilt() -> None:
    model = timm.create_model("lcnetv2_base", num_classes=CLASSES)
    with pytest.raises(UserError, match="cannot be written back"):
        to_paddle_arrays(model.state_dict(), rules_for(model), "lcnetv2_base")


def test_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = timm.create_model("paddle_resnet18_vd", num_classes=CLASSES)
    state = _random_state(model, 1)
    save_file(state, str(tmp_path / "t.safetensors"))
    assert main(["convert", str(tmp_path / "t.safetensors"), "--to-paddle", "--arch", "ResNet18_vd"]) == 0
    assert "10 classes" in capsys.readouterr().out
    assert main(["convert", str(tmp_path / "t.pdparams"), "--arch", "ResNet18_vd",
                 "--out", str(tmp_path / "back.safetensors")]) == 0
    back = load_file(str(tmp_path / "back.safetensors"))
    assert all(torch.equal(back[k], v) for k, v in state.items() if v.is_floating_point())


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = timm.create_model("paddle_resnet18_vd", num_classes=CLASSES)
    save_file(model.state_dict(), str(tmp_path / "t.safetensors"))
    assert main(["convert", str(tmp_path / "t.safetensors"), "--to-paddle"]) != 0
    assert "--arch" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "t.safetensors"), "--to-paddle", "--arch", "ResNet34_vd"]) != 0
    err = capsys.readouterr().err
    assert "do not fit 'ResNet34_vd'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "t.pdparams").exists()


@pytest.mark.skipif(importlib.util.find_spec("paddle") is None or importlib.util.find_spec("paddleclas") is None,
                    reason="paddlepaddle/paddleclas not installed (the paddle test extra)")
@pytest.mark.parametrize(("arch", "name", "module"), [
    ("paddle_resnet18_vd", "ResNet18_vd", "legendary_models.resnet"),
    ("paddle_mobilenetv3_small_100", "MobileNetV3_small_x1_0", "legendary_models.mobilenet_v3"),
])
def test_paddleclas_loads_it_and_agrees(tmp_path: Path, arch: str, name: str, module: str) -> None:
    model = timm.create_model(arch, num_classes=CLASSES)
    model.load_state_dict(_random_state(model, 2))
    model.eval()
    save_file(model.state_dict(), str(tmp_path / "m.safetensors"))
    assert main(["convert", str(tmp_path / "m.safetensors"), "--to-paddle", "--arch", name,
                 "--out", str(tmp_path / "m.pdparams")]) == 0
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    run = subprocess.run([sys.executable, str(TESTS / "paddle" / "load_exported.py"), name, module, str(CLASSES),
                          str(tmp_path / "m.pdparams"), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    with torch.no_grad():
        ours = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), ours, atol=1e-4, rtol=1e-4)
