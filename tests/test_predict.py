"""ssld predict on real Fashion-MNIST PNGs: top-k names and probabilities that match the model, the same answers
from PyTorch weights, ONNX and TorchScript, unreadable images reported while the rest continue, and one-line
errors for an ONNX file whose input shape does not fit the preprocessing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.configs import make_config, write_config
from helpers.fashion_mnist import write_fashion_pngs
from PIL import Image

from ssld.cli import main
from ssld.config.schema import ModelSpec
from ssld.data.fashion_mnist import CLASSES
from ssld.deploy.export import export_model
from ssld.models import create_model, save_safetensors


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("predict")
    torch.manual_seed(1)
    model = create_model(ModelSpec(name="resnet8"), 10).eval()
    weights = root / "student.safetensors"
    save_safetensors(model.state_dict(), weights)
    images = root / "images"
    items = write_fashion_pngs(images, per_class=1, classes=[0, 3, 5, 7, 9])
    labels = root / "labels.txt"
    labels.write_text("".join(f"{i} {name}\n" for i, name in enumerate(CLASSES)))
    cfg = make_config(root, {"name": "resnet8", "class_num": 10})
    cfg_path = write_config(root / "cfg.yaml", cfg)
    export_model(cfg, weights, root / "deploy", ["onnx", "torchscript"])
    return {"root": root, "model": model, "weights": weights, "images": images, "items": items, "labels": labels,
            "cfg": cfg_path}


def reference_top(model: torch.nn.Module, path: Path, k: int) -> tuple[list[int], list[float]]:
    """Top-k of the model on the image, preprocessed by hand as the eval ops say (28 px, FM normalisation)."""
    arr = np.asarray(Image.open(path).convert("RGB").resize((28, 28)), dtype=np.float32) / 255.0
    x = torch.from_numpy((arr - 0.286) / 0.353).permute(2, 0, 1)[None]
    with torch.no_grad():
        top = torch.softmax(model(x), 1)[0].topk(k)
    return top.indices.tolist(), top.values.tolist()


def run_json(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, list[dict]]:
    code = main(["predict", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("source", ["weights", "onnx", "torchscript"])
def test_topk_names_match_the_model(setup: dict, source: str, capsys: pytest.CaptureFixture) -> None:
    via = {"weights": ["-c", str(setup["cfg"]), "--weights", str(setup["weights"])],
           "onnx": ["--onnx", str(setup["root"] / "deploy" / "model.onnx")],
           "torchscript": ["--torchscript", str(setup["root"] / "deploy" / "model.torchscript.pt")]}[source]
    code, results = run_json([*via, "--topk", "3", "--labels", str(setup["labels"]), str(setup["images"])], capsys)
    assert code == 0 and len(results) == len(setup["items"])
    for r in results:
        classes, probs = reference_top(setup["model"], Path(r["path"]), 3)
        assert r["classes"] == classes and r["error"] is None
        np.testing.assert_allclose(r["probs"], probs, atol=1e-4)
        assert r["names"] == [CLASSES[c] for c in classes]


def test_text_output_and_unreadable_images_continue(setup: dict, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    good = setup["images"] / f"{setup['items'][0][0]}"
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not an image")
    shutil.copy(good, tmp_path / "good.png")
    code = main(["predict", "--onnx", str(setup["root"] / "deploy" / "model.onnx"), "--topk", "2",
                 "--labels", str(setup["labels"]), str(tmp_path / "empty.png"), str(tmp_path / "notes.jpg"),
                 str(tmp_path / "good.png")])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert code == 1 and len(lines) == 3
    assert lines[0].startswith(f"{tmp_path / 'empty.png'}: error: cannot read image")
    assert lines[1].startswith(f"{tmp_path / 'notes.jpg'}: error: cannot read image")
    classes, _ = reference_top(setup["model"], tmp_path / "good.png", 2)
    assert lines[2].startswith(f"{tmp_path / 'good.png'}: {classes[0]} {CLASSES[classes[0]]} 0.")
    assert "2 of 3 images could not be read" in captured.err


def test_onnx_with_wrong_input_shape_is_one_line(setup: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bare = tmp_path / "bare.onnx"  # no preprocess.json next to it
    shutil.copy(setup["root"] / "deploy" / "model.onnx", bare)
    image = str(setup["images"] / setup["items"][0][0])
    assert main(["predict", "--onnx", str(bare), "--image-size", "32", image]) == 2
    err = capsys.readouterr().err.strip()
    assert "--onnx" in err and "expects N x 3x28x28" in err and "3x32x32" in err and "\n" not in err
    assert main(["predict", "--onnx", str(bare), image]) == 2
    assert "--image-size" in capsys.readouterr().err
    assert main(["predict", "--onnx", str(bare), "--image-size", "28", image]) == 0


def test_missing_inputs_are_one_line(setup: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["predict", "--weights", str(setup["weights"]), str(setup["images"])]) == 2
    assert "needs -c" in capsys.readouterr().err
    assert main(["predict", "--onnx", str(setup["root"] / "deploy" / "model.onnx"), str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    bad_labels = tmp_path / "labels.txt"
    bad_labels.write_text("a\nb\n")
    assert main(["predict", "--onnx", str(setup["root"] / "deploy" / "model.onnx"), "--labels", str(bad_labels),
                 str(setup["images"])]) == 2
    assert "2 names but the model has 10 classes" in capsys.readouterr().err
